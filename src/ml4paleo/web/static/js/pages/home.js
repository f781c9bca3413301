// Home page: create a job, upload the scan (chunked, resumable), list previous jobs.
import { el, guarded, poll } from "../lib/dom.js";
import { formatBytes, formatDuration } from "../lib/format.js";
import { api } from "../lib/http.js";
import { jobRow } from "../lib/joblist.js";
import { filesFromDrop, filesFromInput, forgetUpload, pendingUploads, rememberUpload, uploadFiles } from "../lib/upload.js";

const form = document.getElementById("new-job-form");
const dropzone = document.getElementById("dropzone");
const selection = document.getElementById("selection");
const startButton = document.getElementById("start-upload");
const panel = document.getElementById("upload-panel");
const bar = document.getElementById("upload-progress");
const text = document.getElementById("upload-text");
const actions = document.getElementById("upload-actions");
let chosen = [];
let activeJobId = null; // the job this tab is uploading into right now

function choose(files) {
  chosen = files;
  const bytes = files.reduce((s, f) => s + f.file.size, 0);
  const folders = new Set(files.map((f) => f.path.split("/").slice(0, -1).join("/")).filter(Boolean));
  selection.textContent = files.length
    ? `${files.length} file${files.length > 1 ? "s" : ""}, ${formatBytes(bytes)}${folders.size ? ` in ${[...folders].slice(0, 2).join(", ")}${folders.size > 2 ? "…" : ""}` : ""}`
    : "Nothing selected yet.";
  const nameInput = document.getElementById("job-name");
  if (files.length && !nameInput.value) {
    nameInput.value = files[0].path.includes("/") ? files[0].path.split("/")[0] : files[0].path.replace(/\.[^.]+$/, "");
  }
  startButton.disabled = !files.length;
}

document.getElementById("folder-input").addEventListener("change", (e) => choose(filesFromInput(e.target)));
document.getElementById("file-input").addEventListener("change", (e) => choose(filesFromInput(e.target)));
dropzone.addEventListener("dragover", (e) => { e.preventDefault(); dropzone.classList.add("over"); });
dropzone.addEventListener("dragleave", () => dropzone.classList.remove("over"));
dropzone.addEventListener("drop", async (e) => {
  e.preventDefault();
  dropzone.classList.remove("over");
  await guarded(async () => choose(await filesFromDrop(e.dataTransfer)));
});

function showProgress(p) {
  bar.max = p.total || 1;
  bar.value = p.done;
  const pct = p.total ? Math.floor((100 * p.done) / p.total) : 100;
  const parts = [`${pct}% · ${formatBytes(p.done)} of ${formatBytes(p.total)}`];
  if (p.rate > 0) parts.push(`${formatBytes(p.rate)}/s`);
  if (p.done < p.total && Number.isFinite(p.eta)) parts.push(`about ${formatDuration(p.eta)} left`);
  if (p.resumedBytes) parts.push(`resumed: ${formatBytes(p.resumedBytes)} were already on the server`);
  if (p.retrying) parts.push(p.retrying);
  text.textContent = parts.join(" · ");
}

/** Upload `files` into an existing job, then tell the server the upload is complete. */
async function runUpload(jobId, files) {
  panel.hidden = false;
  activeJobId = jobId;
  actions.replaceChildren();
  startButton.disabled = true;
  try {
    await uploadFiles(jobId, files, showProgress);
    text.textContent = "Upload complete; starting conversion…";
    const keep = document.getElementById("keep-upload").checked;
    await api("/api/job/status/upload-complete", { method: "POST", body: { job_id: jobId, keep_upload: keep } });
    forgetUpload(jobId);
    window.location.href = `/job/${encodeURIComponent(jobId)}`;
  } catch (err) {
    text.textContent = err.message;
    actions.replaceChildren(
      el("button", { type: "button", class: "button primary", onclick: () => runUpload(jobId, files) }, "Retry upload"),
      " ",
      el("span", { class: "hint" }, "Bytes already received are kept; only the rest is sent."),
    );
    startButton.disabled = false;
    refreshJobs();
  }
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  guarded(async () => {
    const name = document.getElementById("job-name").value.trim();
    if (!name) throw new Error("Please give the job a name.");
    if (!chosen.length) throw new Error("Please choose a folder or files to upload.");
    const body = { name };
    const v = ["vz", "vy", "vx"].map((id) => document.getElementById(id).value);
    if (v.some((x) => x !== "")) {
      if (v.some((x) => !(Number(x) > 0))) throw new Error("Voxel size: give all three of z, y, x as positive numbers (or none).");
      body.voxel_size = v.map(Number);
      body.unit = document.getElementById("unit").value;
    }
    startButton.disabled = true;
    const { job_id: jobId } = await api("/api/job/new", { method: "POST", body });
    rememberUpload(jobId, name, chosen);
    refreshJobs();
    await runUpload(jobId, chosen);
  }).finally(() => { if (panel.hidden) startButton.disabled = !chosen.length; });
});

// ---- resume an upload interrupted by a reload -------------------------------------------
let resumeJob = null;
/**
 * ``jobsById``: the job list as the server had it when asked at ``listedAt`` (ms). A list asked for
 * before an upload began may arrive after it (a slow server): it cannot hold that upload's job, so
 * the upload is forgotten only on a list asked for after it was remembered.
 */
async function offerResume(jobsById, listedAt) {
  const card = document.getElementById("resume");
  const pending = pendingUploads();
  resumeJob = null;
  // ?resume=<job_id> (from the job page) works for uploads started in another browser too
  const asked = new URLSearchParams(location.search).get("resume");
  if (asked && jobsById.get(asked) && jobsById.get(asked).status === "uploading" && asked !== activeJobId) {
    resumeJob = { jobId: asked, info: pending[asked] || null };
  }
  for (const [jobId, info] of Object.entries(pending)) {
    if (resumeJob) break;
    if (jobId === activeJobId) continue;
    const job = jobsById.get(jobId);
    if (!job || job.status !== "uploading") {
      if (!(Date.parse(info.started) >= listedAt)) forgetUpload(jobId);
      continue;
    }
    resumeJob = { jobId, info };
  }
  card.hidden = !resumeJob;
  if (!resumeJob) return;
  const job = jobsById.get(resumeJob.jobId);
  const info = resumeJob.info;
  const total = info ? ` of ${formatBytes(info.bytes)} (${info.files} files)` : "";
  document.getElementById("resume-text").textContent =
    `“${job.name}” stopped at ${formatBytes(job.upload_bytes || 0)}${total}. The browser cannot reopen files by itself after a reload: ` +
    "choose the same folder or files again and the upload goes on from where it stopped.";
}
for (const id of ["resume-input", "resume-files"]) {
  document.getElementById(id).addEventListener("change", (e) => {
    if (!resumeJob) return;
    const files = filesFromInput(e.target);
    document.getElementById("resume").hidden = true;
    runUpload(resumeJob.jobId, files);
  });
}
document.getElementById("resume-forget").addEventListener("click", () => {
  if (resumeJob) forgetUpload(resumeJob.jobId);
  document.getElementById("resume").hidden = true;
});

// ---- job list -----------------------------------------------------------------------------
let pausedRefresh = false;
async function refreshJobs() {
  pausedRefresh = false;
  const listedAt = Date.now();
  const { jobs } = await api("/api/jobs");
  const tbody = document.querySelector("#jobs tbody");
  const actions = { refresh: refreshJobs, pause: (paused) => { pausedRefresh = paused; }, onDeleted: forgetUpload };
  tbody.replaceChildren(...jobs.map((job) => jobRow(job, actions)));
  document.getElementById("jobs-empty").hidden = jobs.length > 0;
  await offerResume(new Map(jobs.map((j) => [j.job_id, j])), listedAt);
}

poll(async () => {
  if (!pausedRefresh) await refreshJobs();
}, 5000);
window.addEventListener("beforeunload", (e) => {
  if (!panel.hidden && bar.value < bar.max) e.preventDefault();
});
