// Home page: the folder picker over the server's import roots, and registering a scan found there.
import { el, guarded } from "../lib/dom.js";
import { formatBytes } from "../lib/format.js";
import { api } from "../lib/http.js";

const body = document.querySelector("#picker tbody");
const shownPath = document.getElementById("picker-path");
const up = document.getElementById("picker-up");
const here = document.getElementById("register-here");
const note = document.getElementById("picker-note");
const KINDS = { folder: "folder", file: "file", "ome-zarr": "OME-Zarr (read in place)" };
let current = null; // the listing shown

async function register(path) {
  note.textContent = `Registering ${path}…`;
  const name = document.getElementById("register-name").value.trim();
  const { job_id: jobId } = await api("/api/job/import", { method: "POST", body: name ? { path, name } : { path } });
  window.location.href = `/job/${encodeURIComponent(jobId)}`;
}

async function open(path) {
  const query = path ? `?path=${encodeURIComponent(path)}` : "";
  current = await api(`/api/import/folders${query}`);
  shownPath.textContent = current.path || "import roots";
  up.hidden = !current.path;
  here.hidden = !current.path;
  note.textContent = current.truncated ? "Only the first entries are listed." : "";
  body.replaceChildren(...current.entries.map((entry) => el("tr", { dataset: { path: entry.path } },
    el("td", {}, entry.kind === "folder"
      ? el("a", { href: "#", class: "open", onclick: (e) => { e.preventDefault(); guarded(() => open(entry.path)); } }, entry.name)
      : entry.name),
    el("td", {}, KINDS[entry.kind] || entry.kind),
    el("td", {}, entry.size === null ? "" : formatBytes(entry.size)),
    el("td", {}, current.path || entry.kind !== "folder"
      ? el("button", { type: "button", class: "button secondary register", onclick: () => guarded(() => register(entry.path)) }, "Register")
      : ""),
  )));
}

up.addEventListener("click", () => guarded(() => open(current && current.parent)));
here.addEventListener("click", () => guarded(() => register(current.path)));
guarded(() => open(null));
