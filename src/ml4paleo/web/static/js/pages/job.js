// Job page: where the job stands in its lifecycle, live progress, and the one obvious next step.
import { el, guarded, poll } from "../lib/dom.js";
import { enums } from "../lib/enums.js";
import { formatDate, formatNumber, shortId } from "../lib/format.js";
import { api, post } from "../lib/http.js";
import { enc, getJob, modelReport, statusText } from "../lib/jobs.js";

// the timeline's steps and each status's place on it come from the server (GET /api/enums)
const { job_steps: STEPS, status_steps: PLACE } = await enums();
const RUNNING = new Set(Object.entries(PLACE).filter(([, v]) => v.running).map(([k]) => k));

function latest(list) {
  return list && list.length ? list[list.length - 1] : null;
}
function newestSeg(job) {
  return [...(job.segmentations || [])].sort((a, b) => String(a.created_at).localeCompare(String(b.created_at))).pop() || null;
}
function trainedModel(job) {
  return [...(job.models || [])].reverse().find((m) => m.ready) || null;
}

/** Which method the newest model uses, and its warnings (a class it still gets wrong), where the user acts. */
async function showModel(job) {
  const model = trainedModel(job);
  const line = document.getElementById("model-method");
  const list = document.getElementById("model-warnings");
  if (!model) { line.hidden = true; list.replaceChildren(); return; }
  const r = await modelReport(model.model_id);
  line.hidden = false;
  // a model saved before its leave-one-slice-out: its figures come after the segmentation
  const pending = model.validating ? "Validating… (leave-one-slice-out scores follow the segmentation) "
    : model.validation_error ? `Validation failed: ${model.validation_error}. ` : "";
  line.replaceChildren(`Newest model: ${r.method}. ${r.method_reason || ""} `, pending,
    el("a", { href: `/job/${enc}/models` }, "Details"));
  list.replaceChildren(...(r.warnings || []).map((w) => el("li", {}, w)));
}

/** Where an error happened, guessed from what the job already holds. */
function failedStep(job) {
  const seg = newestSeg(job);
  if (!job.shape) return job.upload_bytes ? 1 : 0;
  if (seg && (seg.mesh_status === "error")) return 5;
  if (seg && seg.status === "error") return 4;
  const model = latest(job.models);
  if (model && model.status === "error") return 3;
  if (seg) return 5;
  if (job.models && job.models.length) return 4;
  return 3;
}

function renderTimeline(job) {
  const place = PLACE[job.status] || { step: 0, running: false };
  const [current, running] = job.status === "error" ? [failedStep(job), false] : [place.step, place.running];
  const items = STEPS.map((label, i) => {
    const li = el("li", {}, label);
    if (i < current) li.classList.add("done");
    if (i === current) li.classList.add(job.status === "error" ? "failed" : "current");
    if (i === current && running) li.append(el("div", { class: "hint" }, "running"));
    return li;
  });
  document.getElementById("timeline").replaceChildren(...items);
}

function actionButton(label, handler, primary = false) {
  const b = el("button", { type: "button", class: `button ${primary ? "primary big" : "secondary"}` }, label);
  b.addEventListener("click", () => {
    b.disabled = true;
    guarded(async () => { await handler(); await refresh(); }).finally(() => { b.disabled = false; });
  });
  return b;
}
const linkButton = (label, href, primary = false) =>
  el("a", { class: `button ${primary ? "primary big" : "secondary"}`, href }, label);

const annotate = (primary) => linkButton(primary ? "Annotate slices" : "Annotate more slices", `/job/annotate/${enc}`, primary);
/** The method chosen next to the buttons ({} for the server's default, auto). */
function trainMethod() {
  const method = document.getElementById("train-method").value;
  return method ? { method } : {};
}
const train = (primary) => actionButton("Train model", () => post(`/api/job/${enc}/retrain`, trainMethod()), primary);
/** Segment: with the newest model as it is, or (its annotations or classes changed since) after training a new one, said on the button. */
function segment(primary, job) {
  const retrains = !job.newest_model_current;
  const b = actionButton(retrains ? "Retrain, then segment the whole volume" : "Segment the whole volume",
    () => post(`/api/job/${enc}/start`, trainMethod()), primary);
  b.title = retrains ? "The annotations or classes changed since the newest model: a new model is trained on them first"
    : "Segment with the newest model (trained on the current annotations)";
  return b;
}
/** The training methods the server offers, besides auto (the empty choice). */
async function renderTrainMethods() {
  const { train_methods: methods } = await enums();
  document.getElementById("train-method").append(...methods.filter((m) => m !== "auto")
    .map((m) => el("option", { value: m }, m)));
}
/** A checkbox per mesh format the server writes besides its default (always written: the mesh download zips it). */
async function renderMeshFormats() {
  const { mesh_formats: formats, default_mesh_format: always } = await enums();
  document.getElementById("mesh-formats").append(...formats.filter((f) => f !== always)
    .flatMap((f) => [" ", el("label", {}, el("input", { type: "checkbox", value: f }), ` ${f.toUpperCase()}`)]));
}

/** Mesh formats chosen next to the button, as the request's `formats` (none: the server's default alone). */
function meshFormats() {
  const chosen = [...document.querySelectorAll("#mesh-formats input:checked")].map((c) => c.value);
  return chosen.length ? { formats: chosen } : {};
}
function mesh(primary, seg) {
  const b = actionButton("Make 3D meshes",
    () => post(`/api/job/${enc}/mesh`, { ...(seg ? { seg_id: seg.seg_id } : {}), ...meshFormats() }), primary);
  b.dataset.action = "mesh"; // the format checkboxes show beside it
  return b;
}
const viewer = (primary) => linkButton("Open the viewer", `/job/${enc}/viewer`, primary);
const download = (primary) => linkButton("Download results", `/job/${enc}/download`, primary);
const models = () => linkButton("Check the models", `/job/${enc}/models`);
const cancel = () => actionButton("Cancel", () => post(`/api/job/${enc}/cancel`));

/** The next step as one big button, other possible steps as small ones. */
/** Painted slices of every plane (XY, and XZ/YZ across the stack). */
const paintedSlices = (job) => (job.annotations || []).length + (job.plane_annotations || []).length;

function actionsFor(job) {
  const seg = newestSeg(job);
  const hasAnnotations = paintedSlices(job) > 0;
  const model = trainedModel(job);
  switch (job.status) {
    case "uploading": return [[linkButton("Continue the upload", `/?resume=${enc}`, true)], []];
    case "converted": return [[annotate(true)], [viewer()]];
    case "annotated": return [[train(true)], [annotate(false)]];
    case "trained": return [[segment(true, job)], [annotate(false), models(), train(false)]];
    case "segmented": return [[mesh(true, seg)], [viewer(), download(), annotate(false)]];
    case "meshed": return [[download(true)], [viewer(), annotate(false), segment(false, job), mesh(false, seg)]];
    case "error": {
      const extra = [];
      if (job.shape) extra.push(annotate(false));
      if (hasAnnotations) extra.push(train(false));
      if (model) extra.push(segment(false, job));
      if (seg && seg.done) extra.push(mesh(false, seg));
      return [job.shape ? [] : [linkButton("Start a new upload", "/", true)], extra];
    }
    default:
      return RUNNING.has(job.status) ? [[], [cancel()]] : [[], []];
  }
}

let lastKey = "";
function render(job) {
  document.getElementById("job-title").textContent = job.name;
  const meta = [];
  if (job.shape) meta.push(`${job.shape.join(" × ")} voxels (z, y, x), ${job.dtype}`);
  if (job.voxel_size) meta.push(`voxel ${job.voxel_size.map((v) => formatNumber(v)).join(" × ")} ${job.unit || ""}`);
  meta.push(`created ${formatDate(job.created_at)}`);
  const painted = paintedSlices(job);
  if (painted) meta.push(`${painted} annotated slice${painted > 1 ? "s" : ""}`);
  document.getElementById("job-meta").textContent = meta.join(" · ");
  renderTimeline(job);
  guarded(() => renderVoxelForm(job));

  const running = RUNNING.has(job.status);
  document.getElementById("job-progress-box").hidden = !running;
  if (running) {
    document.getElementById("job-progress").value = job.progress || 0;
    document.getElementById("job-stage").textContent =
      `${statusText(job.status)}${job.stage ? `: ${job.stage}` : ""} · ${Math.round((job.progress || 0) * 100)}%`;
  }
  const errorBox = document.getElementById("job-error");
  errorBox.hidden = job.status !== "error";
  errorBox.textContent = job.status === "error" ? `This step failed: ${job.error || "no reason recorded"}` : "";
  document.getElementById("job-warning").hidden = !job.annotations_changed_since_segmentation;
  const notes = job.warnings || []; // e.g. from conversion: "no voxel size in the files; using 1 1 1"
  const notesBox = document.getElementById("job-notes");
  notesBox.hidden = !notes.length;
  notesBox.replaceChildren(...notes.map((w) => el("li", {}, w)));
  showModel(job).catch(() => {});

  // Rebuild the buttons only when the situation changes (keeps focus and avoids flicker).
  const key = `${job.status}|${(job.segmentations || []).length}|${(job.models || []).length}|${(job.annotations || []).length}|${job.newest_model_current}`;
  if (key !== lastKey) {
    lastKey = key;
    const [main, others] = actionsFor(job);
    document.getElementById("next-action").replaceChildren(...main);
    document.getElementById("mesh-formats").hidden = ![...main, ...others].some((b) => b.dataset.action === "mesh");
    document.getElementById("train-method-box").hidden = !paintedSlices(job);
    document.getElementById("other-actions").replaceChildren(...others);
  }

  const segs = job.segmentations || [];
  document.getElementById("segs-card").hidden = !segs.length;
  document.querySelector("#segs tbody").replaceChildren(...segs.map((s) => el("tr", {},
    el("td", {}, el("code", {}, shortId(s.seg_id))),
    el("td", {}, el("code", {}, shortId(s.model_id || ""))),
    el("td", { title: s.error || "" }, s.status + (s.status === "segmenting" && s.progress ? ` ${Math.round(s.progress * 100)}%` : "") + (s.error ? ` (${s.error})` : "")),
    el("td", {}, s.mesh_status && s.mesh_status !== "none" ? s.mesh_status : "–"),
    el("td", {}, formatDate(s.created_at)))));
  return running;
}

/** The voxel-size form: filled from the job once (and after each save), never while being edited. */
let voxelKey = "";
async function renderVoxelForm(job) {
  const form = document.getElementById("voxel-form");
  const key = `${(job.voxel_size || []).join(",")}|${job.unit || ""}`;
  const size = job.voxel_size || (await enums()).default_voxel_size; // not set yet: what the converter would use
  if (key === voxelKey || form.contains(document.activeElement)) return;
  voxelKey = key;
  ["z", "y", "x"].forEach((axis, i) => { form.elements[axis].value = formatNumber(size[i], 6); });
  const unit = form.elements.unit;
  if (job.unit && ![...unit.options].some((o) => o.value === job.unit)) unit.append(el("option", { value: job.unit }, job.unit));
  unit.value = job.unit || [...unit.options].find((o) => o.defaultSelected).value; // the default: the template's
}

document.getElementById("voxel-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const form = e.target;
  const voxel_size = ["z", "y", "x"].map((axis) => Number(form.elements[axis].value));
  guarded(async () => {
    const doc = await api(`/api/job/${enc}`, { method: "PATCH", body: { voxel_size, unit: form.elements.unit.value } });
    document.getElementById("voxel-note").textContent = `Saved: ${doc.voxel_size_note || "done"}.`;
    voxelKey = "";
    render(doc);
  });
});

async function refresh() {
  const job = await getJob();
  return render(job);
}

guarded(renderMeshFormats);
guarded(renderTrainMethods);
poll(async () => { await refresh(); return true; }, 1500);
