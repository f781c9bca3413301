// Download page: every artifact of the job with its size; unfinished ones are not links.
import { api, el, formatBytes, jobId, poll } from "./api.js";

const enc = encodeURIComponent(jobId);

function row(a) {
  const cell = a.ready
    ? el("a", { class: "button primary", href: a.url, download: "" }, "Download")
    : el("span", { class: "status" }, "in progress…");
  return el("tr", { dataset: { kind: a.kind || "" } },
    el("td", {}, a.name),
    el("td", {}, a.kind || ""),
    el("td", { class: "num" }, a.ready && a.size !== null && a.size !== undefined ? formatBytes(a.size) : "–"),
    el("td", {}, cell));
}

let lastKey = "";
poll(async () => {
  const { artifacts } = await api(`/api/job/${enc}/artifacts`);
  const key = JSON.stringify(artifacts);
  if (key !== lastKey) {
    lastKey = key;
    document.querySelector("#artifacts tbody").replaceChildren(...artifacts.map(row));
    document.getElementById("artifacts-empty").hidden = artifacts.length > 0;
  }
  return true;
}, 3000);
