// The home page's list of jobs: one table row per job, with rename and delete.
import { el, guarded } from "./dom.js";
import { formatBytes, formatDate } from "./format.js";
import { api } from "./http.js";
import { statusText } from "./jobs.js";

function statusBadge(job) {
  const cls = job.status === "error" ? "status error" : job.ready ? "status done" : "status";
  const pct = job.progress > 0 && job.progress < 1 && !job.ready ? ` ${Math.round(job.progress * 100)}%` : "";
  return el("span", { class: cls, title: job.error || job.stage || "" }, statusText(job.status) + pct);
}

/**
 * The <tr> of one job: its name (a link, renamed in place), status, creation date, upload size,
 * and delete (a first click arms it for 4 s, a second deletes).
 * @param refresh() reload the list; pause(paused) stop / resume refreshing it while the user acts
 *        on a row; onDeleted(jobId) the job is gone
 */
export function jobRow(job, { refresh, pause, onDeleted }) {
  const link = el("a", { href: `/job/${encodeURIComponent(job.job_id)}`, class: "job-link" }, job.name);
  const nameCell = el("td", {}, link);
  const rename = el("button", { type: "button", class: "rename" }, "Rename");
  const del = el("button", { type: "button", class: "button danger delete" }, "Delete");
  rename.addEventListener("click", () => {
    const input = el("input", { type: "text", value: job.name, maxlength: "200", "aria-label": "New name" });
    const save = el("button", { type: "button", class: "button primary" }, "Save");
    const done = () => guarded(async () => {
      const name = input.value.trim();
      if (name && name !== job.name) await api(`/api/job/${encodeURIComponent(job.job_id)}`, { method: "PATCH", body: { name } });
      await refresh();
    });
    save.addEventListener("click", done);
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") done(); if (e.key === "Escape") refresh(); });
    nameCell.replaceChildren(input, " ", save);
    input.focus();
    input.select();
    pause(true);
  });
  del.addEventListener("click", () => {
    if (del.dataset.armed) {
      guarded(async () => {
        await api(`/api/job/${encodeURIComponent(job.job_id)}`, { method: "DELETE" });
        onDeleted(job.job_id);
        await refresh();
      });
      return;
    }
    del.dataset.armed = "1";
    del.textContent = "Really delete?";
    pause(true);
    setTimeout(() => { delete del.dataset.armed; del.textContent = "Delete"; pause(false); }, 4000);
  });
  return el("tr", { dataset: { jobId: job.job_id } },
    nameCell,
    el("td", {}, statusBadge(job)),
    el("td", {}, formatDate(job.created_at)),
    el("td", { class: "num" }, job.upload_bytes ? formatBytes(job.upload_bytes) : "–"),
    el("td", { class: "num" }, rename, " ", del));
}
