// Annotation page: paint classes on slices, save them, train, see the model's prediction.
import { api, ApiError, classColor, DEFAULT_COLORS, el, getJob, guarded, jobId, poll } from "./api.js";
import { LabelBuffer } from "./labels.js";
import { PaintInput } from "./paint.js";
import { base64ToBytes, bytesToBase64, decodePng, encodeGrayPng } from "./png.js";
import { Gallery } from "./gallery.js";
import { SliceView } from "./sliceview.js";

const enc = encodeURIComponent(jobId);
const $ = (id) => document.getElementById(id);
const view = new SliceView($("view"), $("stage"));

const state = {
  job: null,
  z: null,
  depth: 0,
  gray: null,
  labels: null,
  prediction: null, // Uint8Array of class indices (annotation value - 1)
  predictionKey: "", // "<model_id>/<z>" of the prediction shown
  classes: [],
  active: 2,
  tool: "brush",
  size: 6,
  tolerance: 0, // flood fill: 0 = whole region of equal label, else also within ± this gray level
  unsaved: false,
  edits: 0, // number of edits so far: a save only clears "unsaved" if none came in meanwhile
  annotated: new Map(), // z → labeled voxels
  model: null,
  training: false,
  retrainWanted: false,
  lasso: null, // points of the lasso / polygon being drawn
};

const DEFAULT_CLASSES = [
  { value: 1, name: "background", color: "#4c9be8" },
  { value: 2, name: "fossil", color: "#f59e0b" },
];
const colors = () => Object.fromEntries(state.classes.map((c) => [c.value, classColor(c)]));
const TRAINABLE = new Set(["annotated", "trained", "segmented", "meshed"]); // statuses that accept a retrain
/** Whether the job accepts a (re)train now: idle with annotations, or failed after conversion. */
const canTrain = (job) => Boolean(job) && (TRAINABLE.has(job.status) || (job.status === "error" && Boolean(job.shape)));
const MODEL_READY = (m) => !["queued", "training_queued", "training", "error", "failed", "cancelled"].includes(m.status);

// ---------------------------------------------------------------- status line
function say(text) {
  $("pred-status").textContent = text;
}

// ---------------------------------------------------------------- classes
function renderClasses() {
  const items = state.classes.map((c, i) => {
    const color = el("input", { type: "color", value: classColor(c), "aria-label": `Colour of ${c.name}` });
    color.addEventListener("change", () => guarded(async () => {
      c.color = color.value;
      await saveClasses();
    }));
    const li = el("li", { class: c.value === state.active ? "active" : "", dataset: { value: c.value }, title: `value ${c.value}` },
      color, el("span", { class: "name" }, c.name), el("span", { class: "key" }, i < 9 ? String(i + 1) : ""));
    li.addEventListener("click", (e) => { if (e.target !== color) setActive(c.value); });
    return li;
  });
  $("classes").replaceChildren(...items);
  // offer a colour no class uses yet for the next one
  const used = new Set(state.classes.map((c) => classColor(c).toLowerCase()));
  const free = DEFAULT_COLORS.slice(2).find((c) => !used.has(c)) || `#${Math.floor(Math.random() * 0xffffff).toString(16).padStart(6, "0")}`;
  $("new-class-color").value = free;
}

function setActive(value) {
  state.active = value;
  if (state.tool === "eraser") setTool("brush");
  renderClasses();
}

async function saveClasses() {
  const body = { classes: state.classes.map(({ value, name, color }) => ({ value, name, color: color || classColor({ value }) })) };
  await api(`/api/job/${enc}/classes`, { method: "PUT", body });
  paintLabels();
  paintPrediction();
  renderClasses();
}

$("add-class").addEventListener("submit", (e) => {
  e.preventDefault();
  guarded(async () => {
    const name = $("new-class-name").value.trim();
    if (!name) throw new Error("Give the new class a name.");
    if (state.classes.some((c) => c.name === name)) throw new Error(`There is already a class named “${name}”.`);
    const value = Math.max(1, ...state.classes.map((c) => c.value)) + 1;
    if (value > 255) throw new Error("At most 254 classes.");
    state.classes.push({ value, name, color: $("new-class-color").value });
    await saveClasses();
    setActive(value);
    $("new-class-name").value = "";
  });
});

// ---------------------------------------------------------------- tools
function setTool(tool) {
  state.tool = tool;
  state.lasso = null;
  for (const b of document.querySelectorAll(".tool")) b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
  $("stage").classList.toggle("panning", tool === "pan");
  view.redraw();
}
for (const b of document.querySelectorAll(".tool")) b.addEventListener("click", () => setTool(b.dataset.tool));

function setSize(size) {
  state.size = Math.max(1, Math.min(64, size));
  $("brush-size").value = state.size;
  $("brush-size-out").textContent = state.size;
  view.redraw();
}
$("brush-size").addEventListener("input", (e) => setSize(Number(e.target.value)));
$("fill-tol").addEventListener("input", (e) => {
  state.tolerance = Number(e.target.value);
  $("fill-tol-out").textContent = state.tolerance ? `± ${state.tolerance}` : "off";
});

// ---------------------------------------------------------------- drawing layers
function paintLabels(rect = null) {
  if (state.labels) view.setLabels("labels", state.labels.values, colors(), rect);
}
function paintPrediction() {
  if (state.prediction) view.setLabels("prediction", state.prediction, colors(), null, 1);
  else view.clearLayer("prediction");
  $("accept-pred").disabled = !state.prediction;
}
function paintImage() {
  if (state.gray) view.setImage(state.gray, Number($("win-lo").value), Number($("win-hi").value));
}
for (const id of ["win-lo", "win-hi"]) $(id).addEventListener("input", paintImage);
$("label-opacity").addEventListener("input", (e) => { view.alpha.labels = e.target.value / 100; view.redraw(); });
$("pred-opacity").addEventListener("input", (e) => { view.alpha.prediction = e.target.value / 100; view.redraw(); });
$("show-pred").addEventListener("change", (e) => { view.visible.prediction = e.target.checked; view.redraw(); });
view.alpha.labels = $("label-opacity").value / 100;
view.alpha.prediction = $("pred-opacity").value / 100;

function afterEdit() {
  if (!state.labels) return;
  const rect = state.labels.takeDirty();
  if (rect) paintLabels(rect);
  state.edits++;
  markUnsaved(true);
  scheduleLive();
}

function markUnsaved(value) {
  state.unsaved = value;
  $("submit").textContent = value ? "Save slice *" : "Save slice";
  updateUndo();
}
function updateUndo() {
  $("undo").disabled = !state.labels || !state.labels.undoStack.length;
  $("redo").disabled = !state.labels || !state.labels.redoStack.length;
}

// ---------------------------------------------------------------- pointer input
const input = new PaintInput(view, $("view"), $("stage"), state, {
  onStroke: (rect) => paintLabels(rect),
  onEdit: () => afterEdit(),
  onHover: (p) => showCursor(p),
});

function showCursor([x, y]) {
  const ix = Math.floor(x), iy = Math.floor(y);
  if (!state.labels || ix < 0 || iy < 0 || ix >= state.labels.width || iy >= state.labels.height) {
    $("cursor-info").textContent = "\u00a0";
    return;
  }
  const i = iy * state.labels.width + ix;
  const label = state.labels.values[i];
  const cls = state.classes.find((c) => c.value === label);
  const pred = state.prediction ? state.classes.find((c) => c.value === state.prediction[i] + 1) : null;
  $("cursor-info").textContent = `x ${ix}, y ${iy}, z ${state.z} · gray ${state.gray[i]} · label: ${cls ? cls.name : "none"}` +
    (pred ? ` · prediction: ${pred.name}` : "") + ` · zoom ${Math.round(view.scale * 100)}%`;
}

// ---------------------------------------------------------------- keyboard
document.addEventListener("keydown", (e) => {
  const t = e.target;
  if (t instanceof HTMLInputElement && ["text", "number", "color"].includes(t.type)) return;
  const ctrl = e.ctrlKey || e.metaKey;
  const key = e.key.toLowerCase();
  if (ctrl && key === "z" && !e.shiftKey) { e.preventDefault(); undo(); return; }
  if (ctrl && (key === "y" || (key === "z" && e.shiftKey))) { e.preventDefault(); redo(); return; }
  if (ctrl && key === "s") { e.preventDefault(); guarded(save); return; }
  if (ctrl || e.altKey) return;
  if (e.key === " ") { input.spaceHeld = true; $("stage").classList.add("panning"); e.preventDefault(); return; }
  const tools = { b: "brush", e: "eraser", l: "lasso", f: "fill" };
  if (tools[key]) setTool(tools[key]);
  else if (/^[1-9]$/.test(key) && state.classes[Number(key) - 1]) setActive(state.classes[Number(key) - 1].value);
  else if (key === "[") setSize(state.size - (state.size > 10 ? 2 : 1));
  else if (key === "]") setSize(state.size + (state.size >= 10 ? 2 : 1));
  else if (key === "n") guarded(() => loadSlice(null));
  else if (key === "p") { $("show-pred").click(); }
  else if (key === "," && state.z > 0) guarded(() => loadSlice(state.z - 1));
  else if (key === "." && state.z < state.depth - 1) guarded(() => loadSlice(state.z + 1));
  else if (e.key === "Escape") input.cancelPolygon();
  else if (e.key === "Enter" && state.lasso) input.closePolygon();
});
document.addEventListener("keyup", (e) => {
  if (e.key === " ") { input.spaceHeld = false; $("stage").classList.toggle("panning", state.tool === "pan"); }
});

function undo() {
  if (state.labels && state.labels.undo()) afterEdit();
  updateUndo();
}
function redo() {
  if (state.labels && state.labels.redo()) afterEdit();
  updateUndo();
}
$("undo").addEventListener("click", undo);
$("redo").addEventListener("click", redo);
$("fit").addEventListener("click", () => view.fit());
$("clear").addEventListener("click", () => {
  if (!state.labels) return;
  state.labels.begin();
  state.labels.clear();
  if (state.labels.end()) afterEdit();
});
$("accept-pred").addEventListener("click", () => {
  if (!state.labels || !state.prediction) return;
  const pred = state.prediction, labels = state.labels.values;
  state.labels.begin();
  state.labels.assign((i) => labels[i] === 0, (i) => pred[i] + 1); // painted pixels stay as painted
  if (state.labels.end()) afterEdit();
});

// ---------------------------------------------------------------- slices
let loading = 0; // ticket of the newest slice request: older answers are dropped
async function loadSlice(z) {
  if (state.unsaved) await save();
  const ticket = ++loading;
  const query = z === null || z === undefined ? "" : `?z=${z}`;
  const data = await api(`/api/annotate/${enc}/images/next${query}`);
  const png = await decodePng(base64ToBytes(data.image));
  if (ticket !== loading) return;
  const [h, w] = data.shape || [png.height, png.width];
  if (png.width !== w || png.height !== h) throw new Error(`slice image is ${png.width}×${png.height}, expected ${w}×${h}`);
  state.z = data.z;
  state.depth = data.depth;
  state.gray = png.values;
  view.setSize(w, h);
  let values = null;
  if (state.annotated.has(data.z)) {
    const mask = await fetch(`/api/annotate/${enc}/annotations/${data.z}`);
    if (mask.ok) values = (await decodePng(new Uint8Array(await mask.arrayBuffer()))).values;
    if (ticket !== loading) return;
  }
  state.labels = new LabelBuffer(w, h, values);
  state.prediction = null;
  state.predictionKey = "";
  state.lasso = null;
  markUnsaved(false);
  $("slice").max = Math.max(0, data.depth - 1);
  $("slice").value = data.z;
  $("slice-out").textContent = `${data.z} / ${data.depth - 1}`;
  paintImage();
  paintLabels();
  paintPrediction();
  renderGallery();
  history.replaceState(null, "", `?z=${data.z}`);
  await refreshPrediction();
}

$("slice").addEventListener("input", (e) => { $("slice-out").textContent = `${e.target.value} / ${state.depth - 1}`; });
$("slice").addEventListener("change", (e) => guarded(() => loadSlice(Number(e.target.value))));
$("next-slice").addEventListener("click", () => guarded(() => loadSlice(null)));

// ---------------------------------------------------------------- save, train, predict
async function save() {
  if (!state.labels) return;
  const z = state.z;
  const labelled = state.labels.values.some((v) => v !== 0);
  if (!labelled) {
    const edits = state.edits;
    if (state.annotated.has(z)) {
      await api(`/api/annotate/${enc}/annotations/${z}`, { method: "DELETE" });
      state.annotated.delete(z);
      say(`Slice ${z}: annotation removed.`);
    }
    if (state.edits === edits) markUnsaved(false);
    await refreshGallery();
    return;
  }
  const edits = state.edits; // strokes made while this request is on its way stay unsaved
  const png = await encodeGrayPng(state.labels.values, state.labels.width, state.labels.height);
  const result = await api(`/api/annotate/${enc}/data/submit`, { method: "POST", body: { z, mask: bytesToBase64(png) } });
  state.annotated.set(z, result.labeled_voxels);
  if (state.z === z && state.edits === edits) markUnsaved(false);
  say(`Saved slice ${z} (${result.labeled_voxels} labelled pixels).`);
  await refreshGallery();
}
$("submit").addEventListener("click", () => guarded(save));

async function train() {
  try {
    await api(`/api/job/${enc}/retrain`, { method: "POST", body: {} });
    state.training = true;
    state.retrainWanted = false;
    say("Training a model on the saved slices…");
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && state.training) state.retrainWanted = true; // busy: train again when done
    else throw err;
  }
}
$("train").addEventListener("click", () => guarded(async () => {
  if (state.unsaved) await save();
  if (!state.annotated.size) throw new Error("Save at least one painted slice first (paint background and fossil).");
  await train();
}));

$("segment").addEventListener("click", () => guarded(async () => {
  if (state.unsaved) await save();
  await api(`/api/job/${enc}/start`, { method: "POST", body: {} });
  window.location.href = `/job/${enc}`;
}));

// When a model exists, each stroke is saved and the model retrained a moment later, and the
// prediction is refreshed as soon as the new model is ready.
let liveTimer = 0;
function scheduleLive() {
  clearTimeout(liveTimer);
  if (!state.model) return;
  if (!$("live-train").checked) return;
  liveTimer = setTimeout(() => guarded(async () => {
    if (input.busy) return scheduleLive();
    if (state.unsaved) await save();
    if (state.training || !canTrain(state.job)) state.retrainWanted = true;
    else await train();
  }), 1200);
}

async function refreshPrediction() {
  const model = state.model;
  if (!model || state.z === null) return;
  const key = `${model.model_id}/${state.z}`;
  if (key === state.predictionKey) return;
  const z = state.z;
  try {
    const data = await api(`/api/annotate/${enc}/data/predict`, { method: "POST", body: { z } });
    if (state.z !== z) return;
    const png = await decodePng(base64ToBytes(data.prediction));
    state.prediction = png.values;
    state.predictionKey = `${data.model_id || model.model_id}/${z}`;
    paintPrediction();
    say(`Prediction of model ${String(data.model_id || model.model_id).slice(0, 8)} shown (P hides it).`);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409)) throw err;
  }
}

/** Mean Dice over classes from {class: {dice, iou}} (null when not measured). */
function meanDice(metrics) {
  const values = Object.values(metrics || {}).map((v) => (v && typeof v === "object" ? v.dice : null)).filter((v) => typeof v === "number");
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

function describeModel(m, job) {
  if (!m) return job.status === "training" || job.status === "training_queued" ? "Training the first model…" : "No model yet: save a few painted slices (both classes), then train.";
  const dice = meanDice(m.metrics);
  return `Model ${String(m.model_id).slice(0, 8)}: ${m.n_slices ?? "?"} slices` + (dice !== null ? `, leave-one-slice-out Dice ${dice.toFixed(2)}` : "");
}

const reports = new Map(); // model_id -> promise of its report: the method and its warnings
/** The newest model's method and warnings, beside the painting: what to paint next when a class is poor. */
async function showModelReport(m) {
  const list = $("model-warnings");
  if (!m) { list.replaceChildren(); return; }
  if (!reports.has(m.model_id)) reports.set(m.model_id, api(`/api/job/${enc}/models/${encodeURIComponent(m.model_id)}`));
  const r = await reports.get(m.model_id);
  $("model-info").textContent += ` · method ${r.method}`;
  list.replaceChildren(...(r.warnings || []).map((w) => el("li", {}, w)));
}

async function refreshJob() {
  const job = await getJob();
  state.job = job;
  if (!state.classes.length) {
    state.classes = job.classes && job.classes.length ? job.classes.map((c) => ({ ...c })) : DEFAULT_CLASSES.map((c) => ({ ...c }));
    if (!state.classes.some((c) => c.value === state.active)) state.active = state.classes[state.classes.length - 1].value;
    renderClasses();
  }
  const ready = (job.models || []).filter(MODEL_READY);
  const newest = ready.length ? ready[ready.length - 1] : null;
  const trainingNow = ["training", "training_queued"].includes(job.status) || (job.models || []).some((m) => ["training", "queued", "training_queued"].includes(m.status));
  state.training = trainingNow;
  state.model = newest;
  $("model-info").textContent = describeModel(newest, job) +
    (trainingNow ? ` · training${job.progress ? ` ${Math.round(job.progress * 100)}%` : ""}…` : "");
  $("train").disabled = trainingNow;
  $("segment").hidden = !newest;
  $("segment").disabled = trainingNow || !canTrain(job);
  $("train").textContent = newest ? "Retrain now" : "Train model";
  await showModelReport(newest).catch(() => {});
  if (!trainingNow && state.retrainWanted && canTrain(job)) await train();
  await refreshPrediction();
  const failure = job.status === "error" ? job.error || "no reason recorded" : "";
  if (failure && failure !== state.failure) say(`Last step failed: ${failure}`);
  state.failure = failure;
}

// ---------------------------------------------------------------- gallery
const gallery = new Gallery($("gallery"), enc, {
  colors,
  onOpen: (z) => guarded(() => loadSlice(z)),
  onDelete: (z) => guarded(async () => {
    await api(`/api/annotate/${enc}/annotations/${z}`, { method: "DELETE" });
    if (state.z === z) {
      state.labels.begin();
      state.labels.clear();
      state.labels.end();
      paintLabels();
      markUnsaved(false);
    }
    await refreshGallery();
  }),
});
const renderGallery = () => gallery.render(state.annotated, state.z);

async function refreshGallery() {
  const { annotations } = await api(`/api/annotate/${enc}/annotations`);
  state.annotated = new Map(annotations.map((a) => [a.z, a.labeled_voxels]));
  renderGallery();
}

// ---------------------------------------------------------------- start
window.addEventListener("beforeunload", (e) => { if (state.unsaved) e.preventDefault(); });
setTool("brush");
setSize(state.size);
updateUndo();
guarded(async () => {
  await refreshJob();
  // Slices exist once the upload is converted; until then, say so and wait.
  while (!state.job.shape) {
    if (state.job.status === "error") throw new Error(`The scan could not be converted: ${state.job.error || "no reason recorded"}`);
    say(`The scan is not ready yet (${state.job.status.replace("_", " ")}); slices appear as soon as it is converted.`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await refreshJob();
  }
  say("");
  await refreshGallery();
  const z = new URLSearchParams(location.search).get("z");
  await loadSlice(z === null ? null : Number(z));
  poll(refreshJob, 2000);
});
