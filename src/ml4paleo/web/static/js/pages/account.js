// Account page: the user's API tokens, made (shown once) and revoked.
import { api } from "../lib/http.js";
import { $, el, guarded } from "../lib/dom.js";
import { formatDate } from "../lib/format.js";

async function refresh() {
  const { tokens } = await api("/api/account/tokens");
  const body = $("tokens").querySelector("tbody");
  body.replaceChildren(...tokens.map((t) => el("tr", { dataset: { tokenId: t.token_id } },
    el("td", {}, t.name), el("td", {}, formatDate(t.created_at)),
    el("td", {}, t.last_used_at ? formatDate(t.last_used_at) : "never"),
    el("td", {}, el("button", { type: "button", onclick: () => guarded(async () => {
      await api(`/api/account/tokens/${t.token_id}`, { method: "DELETE" });
      $("token-new").hidden = true;
      await refresh();
    }) }, "Revoke")))));
  $("tokens-empty").hidden = tokens.length > 0;
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    const made = await api("/api/account/tokens", { method: "POST", body: { name: $("token-name").value } });
    $("token-secret").textContent = made.token;
    $("token-new").hidden = false;
    $("token-name").value = "";
    await refresh();
  });
});

guarded(refresh);
