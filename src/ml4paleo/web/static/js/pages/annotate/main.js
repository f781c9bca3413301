// Annotation page: paint classes on slices, save them, train, see the model's prediction.
//
// state.js holds what the page knows, view.js draws it, tools.js turns input into edits; this
// module talks to the server (slices, masks, classes, training, predictions) and wires the rest.
import { classColor } from "../../lib/colors.js";
import { $, el, guarded, poll } from "../../lib/dom.js";
import { enums } from "../../lib/enums.js";
import { shortId } from "../../lib/format.js";
import { Gallery } from "../../lib/gallery.js";
import { api, ApiError, post } from "../../lib/http.js";
import { enc, getJob, modelReady, modelReport, statusText } from "../../lib/jobs.js";
import { LabelBuffer } from "../../lib/labels.js";
import { metric } from "../../lib/metrics.js";
import { base64ToBytes, bytesToBase64, decodePng, encodeGrayPng, fetchPng } from "../../lib/png.js";
import { AnnotationState } from "./state.js";
import { AnnotationTools } from "./tools.js";
import { AnnotationView } from "./view.js";

const TRAINABLE = new Set(["annotated", "trained", "segmented", "meshed"]); // statuses that accept a retrain
/** Whether the job accepts a (re)train now: idle with annotations, or failed after conversion. */
const canTrain = (job) => Boolean(job) && (TRAINABLE.has(job.status) || (job.status === "error" && Boolean(job.shape)));

const state = new AnnotationState();
const view = new AnnotationView(state);
const tools = new AnnotationTools(state, view, { save, openSlice: loadSlice, saveClasses });

// ---------------------------------------------------------------- classes
async function saveClasses(classes) {
  const body = { classes: classes.map(({ value, name, color }) => ({ value, name, color: color || classColor({ value }) })) };
  await api(`/api/job/${enc}/classes`, { method: "PUT", body });
  state.setClasses(classes);
}

// ---------------------------------------------------------------- slices
const annotationUrl = (index) => `/api/annotate/${enc}/annotations/${index}`;

let loading = 0; // ticket of the newest slice request: older answers are dropped
/** Show slice `index` along z (null: the next one the server suggests), saving the current one first. */
async function loadSlice(index) {
  if (state.unsaved) await save();
  const ticket = ++loading;
  const query = index === null || index === undefined ? "" : `?z=${index}`;
  const data = await api(`/api/annotate/${enc}/images/next${query}`);
  const png = await decodePng(base64ToBytes(data.image));
  if (ticket !== loading) return;
  const [h, w] = data.shape || [png.height, png.width];
  if (png.width !== w || png.height !== h) throw new Error(`slice image is ${png.width}×${png.height}, expected ${w}×${h}`);
  let values = null;
  if (state.annotated.has(data.z)) {
    const mask = await fetchPng(annotationUrl(data.z));
    if (mask) values = mask.values;
    if (ticket !== loading) return;
  }
  state.setSlice({ axis: "z", index: data.z, depth: data.depth, gray: png.values, labels: new LabelBuffer(w, h, values) });
  renderGallery();
  history.replaceState(null, "", `?z=${data.z}`);
  await refreshPrediction();
}

$("slice").addEventListener("change", (e) => guarded(() => loadSlice(Number(e.target.value))));
$("next-slice").addEventListener("click", () => guarded(() => loadSlice(null)));

// ---------------------------------------------------------------- save, train, predict
async function save() {
  const { labels, index } = state;
  if (!labels) return;
  const edits = state.edits; // strokes made while this request is on its way stay unsaved
  if (!labels.values.some((v) => v !== 0)) {
    if (state.annotated.has(index)) {
      await api(annotationUrl(index), { method: "DELETE" });
      state.markAnnotated(index, null);
      state.say(`Slice ${index}: annotation removed.`);
    }
    if (state.edits === edits) state.setUnsaved(false);
    await refreshGallery();
    return;
  }
  const png = await encodeGrayPng(labels.values, labels.width, labels.height);
  const result = await post(`/api/annotate/${enc}/data/submit`, { z: index, mask: bytesToBase64(png) });
  state.markAnnotated(index, result.labeled_voxels);
  if (state.index === index && state.edits === edits) state.setUnsaved(false);
  state.say(`Saved slice ${index} (${result.labeled_voxels} labelled pixels).`);
  await refreshGallery();
}
$("submit").addEventListener("click", () => guarded(save));

async function train() {
  try {
    await post(`/api/job/${enc}/retrain`);
    state.setTraining({ training: true, retrainWanted: false });
    state.say("Training a model on the saved slices…");
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && state.training) state.setTraining({ retrainWanted: true }); // busy: train again when done
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
  await post(`/api/job/${enc}/start`);
  window.location.href = `/job/${enc}`;
}));

// A moment after each stroke the slice is saved and a draft model (a quick forest on the saved
// slices, trained by the server's train runner) predicts the slice shown: its overlay follows
// the painting. When painting pauses for longer, the full model (validated, the method chosen)
// trains in the background and replaces the drafts.
const DRAFT_AFTER_MS = 300;
const FULL_AFTER_MS = 20000;
let liveTimer = 0;
let fullTimer = 0;
let draftTicket = 0; // newest draft awaited: an older wait stops
let draftReady = false; // a draft model exists: the prediction route has a model even before the full one
function scheduleLive() {
  clearTimeout(liveTimer);
  clearTimeout(fullTimer);
  if (!$("live-train").checked) return;
  liveTimer = setTimeout(() => guarded(async () => {
    if (tools.input.busy) return scheduleLive();
    if (state.unsaved) await save();
    if (!state.annotated.size) return;
    await draft();
    fullTimer = setTimeout(() => guarded(async () => {
      if (state.training || !canTrain(state.job)) state.setTraining({ retrainWanted: true });
      else await train();
    }), FULL_AFTER_MS);
  }), DRAFT_AFTER_MS);
}
state.on("edit", scheduleLive);

/** Queue a draft model predicting the slice shown, and show its prediction once it is ready. */
async function draft() {
  const ticket = ++draftTicket;
  const index = state.index;
  const { annotation_rev: rev } = await post(`/api/annotate/${enc}/draft`, { z: index });
  for (let wait = 50; ticket === draftTicket; wait = Math.min(wait * 1.5, 200)) {
    const d = await api(`/api/annotate/${enc}/draft?z=${index}`);
    if (d.ready && d.ready.annotation_rev >= rev) {
      draftReady = true;
      if (ticket !== draftTicket || state.index !== index) return;
      if (!d.ready.prediction) return refreshPrediction();
      const png = await decodePng(base64ToBytes(d.ready.prediction));
      state.setSuggestion({ values: png.values, offset: 1, key: `${d.ready.model_id}/${index}`, source: "prediction" });
      draftOver = `${state.model ? state.model.model_id : ""}/${index}`;
      state.say(`Prediction of model ${d.ready.model_id} (draft) shown (P hides it).`);
      return;
    }
    if (d.error && !d.pending) { state.say(`No draft model: ${d.error}`); return; }
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

let draftOver = ""; // `${full model}/${slice}` over which a draft's overlay is shown (a draft is newer)
/** The newest model's prediction of the slice shown, as the suggestion (once per model and slice;
 * the server answers with the newest draft while it is newer than the full model). */
async function refreshPrediction() {
  const { model, index } = state;
  if (index === null || (!model && !draftReady)) return;
  const base = `${model ? model.model_id : ""}/${index}`;
  const current = state.suggestion ? state.suggestion.key : "";
  if (base === current || base === draftOver) return;
  try {
    const data = await post(`/api/annotate/${enc}/data/predict`, { z: index });
    if (state.index !== index) return;
    draftOver = data.draft ? base : "";
    const png = await decodePng(base64ToBytes(data.prediction));
    const modelId = data.model_id;
    // class indices: annotation value - 1
    state.setSuggestion({ values: png.values, offset: 1, key: `${modelId}/${index}`, source: "prediction" });
    state.say(`Prediction of model ${data.draft ? `${modelId} (draft)` : shortId(modelId)} shown (P hides it).`);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 409)) throw err;
  }
}

function describeModel(m, job) {
  if (!m) return job.status === "training" || job.status === "training_queued" ? "Training the first model…" : "No model yet: save a few painted slices (both classes), then train.";
  const dice = metric(m, "dice");
  return `Model ${shortId(m.model_id)}: ${m.n_slices ?? "?"} slices` + (dice !== null ? `, leave-one-slice-out Dice ${dice.toFixed(2)}` : "");
}

/** The newest model's method and warnings, beside the painting: what to paint next when a class is poor. */
async function showModelReport(m) {
  const list = $("model-warnings");
  if (!m) { list.replaceChildren(); return; }
  const r = await modelReport(m.model_id);
  $("model-info").textContent += ` · method ${r.method}`;
  list.replaceChildren(...(r.warnings || []).map((w) => el("li", {}, w)));
}

async function refreshJob() {
  const job = await getJob();
  state.setJob(job);
  if (!state.classes.length) {
    const classes = job.classes && job.classes.length ? job.classes : (await enums()).default_classes;
    state.setClasses(classes.map((c) => ({ ...c })));
  }
  const ready = (job.models || []).filter(modelReady);
  const newest = ready.length ? ready[ready.length - 1] : null;
  const trainingNow = ["training", "training_queued"].includes(job.status) || (job.models || []).some((m) => ["training", "queued", "training_queued"].includes(m.status));
  state.setModel({ model: newest, training: trainingNow });
  $("model-info").textContent = describeModel(newest, job) +
    (trainingNow ? ` · training${job.progress ? ` ${Math.round(job.progress * 100)}%` : ""}…` : "");
  $("train").disabled = trainingNow;
  $("segment").hidden = !newest;
  $("segment").disabled = trainingNow || !canTrain(job);
  $("train").textContent = newest ? "Retrain now" : "Train model";
  await showModelReport(newest).catch(() => {});
  if (!trainingNow && state.retrainWanted && canTrain(job)) await train();
  await refreshPrediction();
  state.setFailure(job.status === "error" ? job.error || "no reason recorded" : "");
}

// ---------------------------------------------------------------- gallery
const gallery = new Gallery($("gallery"), enc, {
  colors: () => state.colors(),
  onOpen: (index) => guarded(() => loadSlice(index)),
  onDelete: (index) => guarded(async () => {
    await api(annotationUrl(index), { method: "DELETE" });
    if (state.index === index) {
      state.labels.begin();
      state.labels.clear();
      state.labels.end();
      state.labelsChanged();
      state.setUnsaved(false);
    }
    await refreshGallery();
  }),
});
const renderGallery = () => gallery.render(state.annotated, state.index);

async function refreshGallery() {
  const { annotations } = await api(`/api/annotate/${enc}/annotations`);
  state.setAnnotated(new Map(annotations.map((a) => [a.z, a.labeled_voxels])));
}
state.on("annotated", renderGallery);

// ---------------------------------------------------------------- start
window.addEventListener("beforeunload", (e) => { if (state.unsaved) e.preventDefault(); });
state.setTool("brush");
state.setSize(state.size);
state.setUnsaved(false);
guarded(async () => {
  await refreshJob();
  // Slices exist once the upload is converted; until then, say so and wait.
  while (!state.job.shape) {
    if (state.job.status === "error") throw new Error(`The scan could not be converted: ${state.job.error || "no reason recorded"}`);
    state.say(`The scan is not ready yet (${statusText(state.job.status)}); slices appear as soon as it is converted.`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await refreshJob();
  }
  state.say("");
  await refreshGallery();
  const z = new URLSearchParams(location.search).get("z");
  await loadSlice(z === null ? null : Number(z));
  poll(refreshJob, 2000);
});
