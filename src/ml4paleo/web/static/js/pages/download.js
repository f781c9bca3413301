// Download page: every artifact of the job with its size; unfinished ones are not links.
import { el, guarded, poll } from "../lib/dom.js";
import { enums } from "../lib/enums.js";
import { formatBytes } from "../lib/format.js";
import { api } from "../lib/http.js";
import { enc, getJob } from "../lib/jobs.js";

/** The size column: known sizes; "made while sent" for files compressed as they download. */
function sizeText(a) {
  if (!a.ready) return "–";
  return a.size !== null && a.size !== undefined ? formatBytes(a.size) : "made while sent";
}

/** Ask the server to make a file written on request only (the segmentation's TIFF). */
async function make(a, button) {
  button.disabled = true;
  await guarded(() => api(a.make, { method: "POST", body: {} }));
  lastKey = ""; // the next poll redraws the row as "in progress"
}

function row(a) {
  let cell;
  if (a.ready) cell = el("a", { class: "button primary", href: a.url, download: "" }, "Download");
  else if (a.make) {
    cell = el("button", { type: "button", class: "button secondary make", onclick: (e) => make(a, e.target) }, "Make");
  } else cell = el("span", { class: "status" }, "in progress…");
  return el("tr", { dataset: { kind: a.kind || "" } },
    el("td", {}, a.name),
    el("td", {}, a.kind || ""),
    el("td", { class: "num" }, sizeText(a)),
    el("td", {}, cell));
}

/** Single mesh files in formats other than the default (its zip, STL, is an artifact of its own). */
const extraFiles = new Map(); // seg_id → [{name, kind, url, size, ready}]
async function meshFiles(job) {
  const out = [];
  const { default_mesh_format: zipped } = await enums();
  for (const seg of job.segmentations || []) {
    if (!seg.meshed) continue;
    if (!extraFiles.has(seg.seg_id)) {
      const doc = await api(`/api/job/${enc}/segmentation/${encodeURIComponent(seg.seg_id)}/meshes`);
      const rows = [];
      for (const m of doc.meshes || []) {
        for (const [fmt, url] of Object.entries(m.files || {})) {
          if (fmt === zipped) continue;
          const head = await fetch(url, { method: "HEAD" });
          const size = Number(head.headers.get("Content-Length"));
          rows.push({ name: `Mesh ${m.name} ${seg.seg_id} (${fmt.toUpperCase()})`, kind: `mesh-${fmt}`, url,
            size: Number.isFinite(size) ? size : null, ready: head.ok });
        }
      }
      extraFiles.set(seg.seg_id, rows);
    }
    out.push(...extraFiles.get(seg.seg_id));
  }
  return out;
}

let lastKey = "";
poll(async () => {
  const [{ artifacts: listed }, job] = await Promise.all([api(`/api/job/${enc}/artifacts`), getJob()]);
  const artifacts = [...listed, ...(await meshFiles(job))];
  const key = JSON.stringify(artifacts);
  if (key !== lastKey) {
    lastKey = key;
    document.querySelector("#artifacts tbody").replaceChildren(...artifacts.map(row));
    document.getElementById("artifacts-empty").hidden = artifacts.length > 0;
  }
  return true;
}, 3000);
