// Job page, accounts on: who the job is shared with (read-only), and reviewer links, for its owner.
import { api, ApiError } from "../lib/http.js";
import { $, el, guarded } from "../lib/dom.js";
import { formatDate } from "../lib/format.js";
import { enc } from "../lib/jobs.js";

const base = `/api/job/${enc}`;

function show(shares) {
  const others = shares.users.length + shares.links.length;
  $("share-status").textContent = others
    ? `Shared read-only with ${shares.users.length} user(s) and ${shares.links.length} reviewer link(s).`
    : "Only you (and administrators) see this job.";
  $("share-users").replaceChildren(...shares.users.map((u) => el("li", {}, `${u.name} `,
    el("button", { type: "button", class: "button", onclick: () => change(() => api(
      `${base}/shares/${encodeURIComponent(u.name)}`, { method: "DELETE" })) }, "Stop sharing"))));
  $("share-links").replaceChildren(...shares.links.map((k) => el("li", { dataset: { linkId: k.link_id } },
    `Link ${k.label ? `"${k.label}" ` : ""}made ${formatDate(k.created_at)} `,
    el("button", { type: "button", class: "button", onclick: () => change(() => {
      $("link-new").hidden = true;
      return api(`${base}/links/${k.link_id}`, { method: "DELETE" });
    }) }, "Revoke"))));
}

async function change(request) {
  await guarded(async () => show(await request()));
}

async function load() {
  try {
    show(await api(`${base}/shares`));
    $("share-controls").hidden = false;
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 403)) throw err;
    $("share-status").textContent = "Shared with you read-only: you can view and download, not change it.";
  }
}

$("share-form").addEventListener("submit", (event) => {
  event.preventDefault();
  change(async () => {
    const shares = await api(`${base}/shares`, { method: "POST", body: { user: $("share-user").value.trim() } });
    $("share-user").value = "";
    return shares;
  });
});

$("link-form").addEventListener("submit", (event) => {
  event.preventDefault();
  guarded(async () => {
    const link = await api(`${base}/links`, { method: "POST", body: { label: $("link-label").value } });
    $("link-url").textContent = link.url;
    $("link-new").hidden = false;
    $("link-label").value = "";
    await load();
  });
});

guarded(load);
