// Annotation page: paint classes on slices of any plane (XY, XZ, YZ), save them, train, see the
// model's prediction or the slice completed from its strokes.
//
// state.js holds what the page knows, view.js draws it, tools.js turns input into edits; this
// module talks to the server (slices, masks, classes, training, predictions, completions, the
// display window) and wires the rest.
import { AXIS_INDEX, PLANE } from "../../lib/axes.js";
import { classColor } from "../../lib/colors.js";
import { $, el, guarded, poll } from "../../lib/dom.js";
import { enums } from "../../lib/enums.js";
import { shortId } from "../../lib/format.js";
import { Gallery } from "../../lib/gallery.js";
import { api, ApiError, post } from "../../lib/http.js";
import { enc, getJob, modelReport, statusText } from "../../lib/jobs.js";
import { LabelBuffer } from "../../lib/labels.js";
import { metric } from "../../lib/metrics.js";
import { base64ToBytes, bytesToBase64, decodePng, encodeGrayPng, fetchPng } from "../../lib/png.js";
import { WindowLevel } from "../../lib/windowlevel.js";
import { AnnotationState, PLANE_NAME, sliceKey } from "./state.js";
import { AnnotationTools } from "./tools.js";
import { AnnotationView } from "./view.js";

/** Whether the job accepts a (re)train now (the server decides: idle with annotations, or failed after conversion). */
const canTrain = (job) => Boolean(job) && job.can_train;

const state = new AnnotationState();
const view = new AnnotationView(state, { rawValue: ({ z, y, x }) => api(`/api/job/${enc}/voxel?z=${z}&y=${y}&x=${x}`) });
const tools = new AnnotationTools(state, view, {
  save, openSlice: (index) => (index === null ? nextSuggested() : loadSlice(index)), openPlane, saveClasses });
const windowLevel = new WindowLevel(enc, () => guarded(reloadImage));

// ---------------------------------------------------------------- classes
async function saveClasses(classes) {
  const body = { classes: classes.map(({ value, name, color }) => ({ value, name, color: color || classColor({ value }) })) };
  await api(`/api/job/${enc}/classes`, { method: "PUT", body });
  state.setClasses(classes);
}

// ---------------------------------------------------------------- slices
const annotationUrl = (axis, index) => `/api/annotate/${enc}/annotations/${axis}/${index}`;
const sliceName = (axis, index) => `${PLANE_NAME[axis]} ${axis} ${index}`;
const windowQuery = () => (windowLevel.query() ? `&window=${windowLevel.query()}` : "");

let loading = 0; // ticket of the newest slice request: older answers are dropped
const VIEW = `page-${Math.random().toString(36).slice(2, 12)}`; // this page's view: a newer prediction supersedes ours
let imageLevel = 0; // pyramid level of the gray image shown (0: full resolution)
let grayCovers = null; // [r0, c0, r1, c1] the gray holds at full resolution when read as a region (null: the whole plane)

/** The coarsest pyramid level with at least one pixel per device pixel at `scale` (CSS pixels per
 * image pixel); the server answers with its coarsest level when there are fewer. */
function levelFor(scale) {
  const perPixel = 1 / Math.max(1e-6, scale * (window.devicePixelRatio || 1));
  return Math.max(0, Math.floor(Math.log2(perPixel) + 1e-9));
}

/** The pyramid level nearest the screen's resolution at `scale`: the overlay's first pass, a quick
 * look refined at full resolution right after (a 1024² slice on a 700-pixel stage: level 1). */
function overlayLevel(scale) {
  const perPixel = 1 / Math.max(1e-6, scale * (window.devicePixelRatio || 1));
  return Math.max(0, Math.round(Math.log2(perPixel)));
}

/** The scale at which a w×h plane (pixel `aspect`) fits the stage, as the view fits it. */
function fittedScale(w, h, aspect) {
  const stage = $("stage");
  return Math.min(stage.clientWidth / w, stage.clientHeight / (h * aspect)) * 0.96;
}

/** A level's image (or labels) `png` covering `region` [r0, c0, r1, c1] with `factors` [rows, cols]
 * full-resolution pixels per pixel, drawn into a w×h full-resolution copy of `base` (or zeros). */
function toFullResolution(png, w, h, factors, region, base = null) {
  const out = base ? base.slice() : new Uint8Array(w * h);
  const [fr, fc] = factors || [1, 1];
  const [r0, c0, r1, c1] = region || [0, 0, h, w];
  const src = png.values, pw = png.width;
  for (let y = r0; y < r1; y++) {
    const row = Math.floor((y - r0) / fr) * pw, o = y * w;
    for (let x = c0; x < c1; x++) out[o + x] = src[row + Math.floor((x - c0) / fc)];
  }
  return out;
}

/** The slice image of `index` across `axis` at `level`, as the server sends it (JSON with the PNG). */
const sliceImage = (axis, index, level) =>
  api(`/api/annotate/${enc}/images/next?axis=${axis}${index === null || index === undefined ? "" : `&index=${index}`}` +
    `&level=${level}${windowQuery()}`);

const REGION_MARGIN = 64; // full-resolution pixels read beyond the visible region on each side

/** The part of slice `index` across `axis` in `region` [r0, c0, r1, c1] (full resolution) at `level`. */
const regionImage = (axis, index, level, region) =>
  api(`/api/annotate/${enc}/images/region?axis=${axis}&index=${index}&level=${level}&region=${region.join(",")}` +
    windowQuery());

/** What to read of a w×h plane shown at `level`: null (the whole plane) unless the view shows full
 * resolution over part of it; then the visible region widened by up to one 64-voxel chunk each way
 * (a short pan needs no read; wider, the chunk block a switch keeps would outgrow the server's
 * 256 MB slice cache on a 4096² scan). A zoomed-in view so reads what it shows, not the plane. */
function regionToRead(level, w, h) {
  if (level !== 0 || !state.labels || state.labels.width !== w || state.labels.height !== h) return null;
  const { r0, c0, r1, c1 } = view.slice.visibleRegion();
  if (r0 === 0 && c0 === 0 && r1 >= h && c1 >= w) return null;
  const mr = Math.min(REGION_MARGIN, Math.ceil((r1 - r0) / 2)), mc = Math.min(REGION_MARGIN, Math.ceil((c1 - c0) / 2));
  return [Math.max(0, r0 - mr), Math.max(0, c0 - mc), Math.min(h, r1 + mr), Math.min(w, c1 + mc)];
}

/** Show slice `index` across `axis` (index null: the one the server suggests on that plane),
 * saving the current one first. The image comes from the pyramid level the fitted view needs. */
async function loadSlice(index, axis = state.axis) {
  if (state.unsaved) await save();
  const ticket = ++loading;
  const shape = (state.job && state.job.shape) || null;
  const { u, v } = PLANE[axis];
  // another slice of the plane shown keeps the view's zoom; a new plane is fitted to the stage
  const scale = state.labels && state.axis === axis && !view.slice.fitted ? view.slice.scale
    : shape ? fittedScale(shape[AXIS_INDEX[u]], shape[AXIS_INDEX[v]], pixelAspect(axis)) : 1;
  const level = levelFor(scale);
  const keepZoom = state.labels && state.axis === axis && !view.slice.fitted && index !== null && index !== undefined;
  const region = keepZoom ? regionToRead(level, state.labels.width, state.labels.height) : null;
  const data = region ? await regionImage(axis, index, level, region) : await sliceImage(axis, index, level);
  const png = await decodePng(base64ToBytes(data.image));
  if (ticket !== loading) return;
  const [h, w] = data.shape || [png.height, png.width];
  const [ih, iw] = data.image_shape || [h, w];
  if (png.width !== iw || png.height !== ih) throw new Error(`slice image is ${png.width}×${png.height}, expected ${iw}×${ih}`);
  let values = null;
  if (state.annotated.has(sliceKey(data.axis, data.index))) {
    const mask = await fetchPng(annotationUrl(data.axis, data.index));
    if (mask) values = mask.values;
    if (ticket !== loading) return;
  }
  imageLevel = data.level || 0;
  grayCovers = region ? data.region : null;
  state.setSlice({ axis: data.axis, index: data.index, depth: data.depth, aspect: pixelAspect(data.axis),
    gray: region || imageLevel ? toFullResolution(png, w, h, data.factors, data.region) : png.values,
    labels: new LabelBuffer(w, h, values) });
  renderGallery();
  history.replaceState(null, "", data.axis === "z" ? `?z=${data.index}` : `?axis=${data.axis}&index=${data.index}`);
  await refreshPrediction();
}

/** Physical height over width of a pixel of a slice across `axis` (a plane across a stack of
 * thick slices is taller than its voxel count says); 1 without a voxel size. */
function pixelAspect(axis) {
  const size = state.job && state.job.voxel_size;
  if (!size) return 1;
  const { u, v } = PLANE[axis];
  const aspect = Number(size[AXIS_INDEX[v]]) / Number(size[AXIS_INDEX[u]]);
  return Number.isFinite(aspect) && aspect > 0 ? aspect : 1;
}

/** A slice across another axis: the one the server suggests on that plane. */
function openPlane(axis) {
  return loadSlice(null, axis);
}

/** The slice shown, through the window just chosen (same slice, same labels), at `level`
 * (default: the level shown). */
async function reloadImage(level = imageLevel) {
  const { axis, index } = state;
  if (index === null || !state.labels) return;
  const region = regionToRead(level, state.labels.width, state.labels.height);
  const data = region ? await regionImage(axis, index, level, region) : await sliceImage(axis, index, level);
  if (state.axis !== axis || state.index !== index || !state.labels) return;
  const png = await decodePng(base64ToBytes(data.image));
  if (state.axis !== axis || state.index !== index) return;
  imageLevel = data.level || 0;
  grayCovers = region ? data.region : null;
  const { width: w, height: h } = state.labels;
  state.setGray(region || imageLevel ? toFullResolution(png, w, h, data.factors, data.region) : png.values);
}

// After a zoom or pan: finer pixels where the view now shows more of them, image and overlay.
let resolutionTimer = 0;
view.slice.onViewChange = () => {
  clearTimeout(resolutionTimer);
  resolutionTimer = setTimeout(() => guarded(async () => {
    if (state.index === null) return;
    const level = levelFor(view.slice.scale);
    // finer pixels needed, or a pan or zoom out past the region read at full resolution
    if (level < imageLevel || (grayCovers && !covers(grayCovers, visibleRegion()))) await reloadImage(level);
    await refreshPrediction();
  }), 300);
};

$("slice").addEventListener("change", (e) => guarded(() => loadSlice(Number(e.target.value))));
$("next-slice").addEventListener("click", () => guarded(nextSuggested));

// ---------------------------------------------------------------- where to paint next
let adviceOf = null; // "<model id>|<draft id>" whose suggestions are loaded ("|" for none)
const opened = new Set(); // suggestions opened since they came: N goes on to the next one

/** The newest model's suggestions, fetched once per model and once per draft (the server answers
 * with the draft's own while it is newer than the model). */
async function refreshAdvice(model) {
  const id = `${model ? model.model_id : ""}|${newestDraft}`;
  if (id === adviceOf) return;
  const advice = id !== "|" ? await api(`/api/annotate/${enc}/suggestions?draft=1`) : { suggestions: [] };
  adviceOf = id;
  opened.clear();
  state.setAdvice({ ...advice, suggestions: advice.suggestions || [] });
}

/** The slice the newest model is least sure of, its region outlined (the best suggestion not
 * opened or painted yet); without one, a slice the server picks far from the painted ones. */
async function nextSuggested() {
  const next = state.advice.suggestions.find((s) => {
    const key = sliceKey(s.axis, s.index);
    return !opened.has(key) && key !== state.key && !state.annotated.has(key);
  });
  if (!next) {
    state.setTarget(null);
    return loadSlice(null);
  }
  opened.add(sliceKey(next.axis, next.index));
  state.setTarget(next);
  await loadSlice(next.index, next.axis);
}
$("plane").addEventListener("change", (e) => guarded(() => openPlane(e.target.value)));

// ---------------------------------------------------------------- save, train, predict
async function save() {
  const { labels, axis, index } = state;
  if (!labels) return;
  const edits = state.edits; // strokes made while this request is on its way stay unsaved
  const name = sliceName(axis, index);
  if (!labels.values.some((v) => v !== 0)) {
    if (state.annotated.has(sliceKey(axis, index))) {
      await api(annotationUrl(axis, index), { method: "DELETE" });
      state.markAnnotated(axis, index, null);
      state.say(`${name}: annotation removed.`);
    }
    if (state.edits === edits) state.setUnsaved(false);
    await refreshGallery();
    return;
  }
  const png = await encodeGrayPng(labels.values, labels.width, labels.height);
  const result = await post(`/api/annotate/${enc}/data/submit`, { axis, index, mask: bytesToBase64(png) });
  state.markAnnotated(axis, index, result.labeled_voxels);
  const current = state.axis === axis && state.index === index;
  if (current && state.edits === edits) state.setUnsaved(false);
  state.say(`Saved ${name} (${result.labeled_voxels} labelled pixels).`);
  await refreshGallery();
  // without live drafts or a model, the slice completed from its strokes is the suggestion
  if (current && !state.model && !$("live-train").checked) await showCompletion();
}
$("submit").addEventListener("click", () => guarded(save));

/** Whether the labels are strokes the server can complete: two classes or more, not every pixel. */
function completable(values) {
  const seen = new Set();
  let unpainted = false;
  for (const v of values) { if (v) seen.add(v); else unpainted = true; }
  return unpainted && seen.size >= 2;
}

/** The slice completed from its strokes (as training completes it), as the suggestion to
 * accept or correct; nothing for a slice painted in full or with one class. */
async function showCompletion({ explain = false } = {}) {
  const { labels, axis, index, edits } = state;
  if (!labels || !completable(labels.values)) {
    if (explain) state.say("To complete a slice, paint strokes of two classes or more (and leave the rest unpainted).");
    return;
  }
  const key = sliceKey(axis, index);
  const png = await encodeGrayPng(labels.values, labels.width, labels.height);
  const data = await post(`/api/annotate/${enc}/data/complete`, { axis, index, mask: bytesToBase64(png) });
  if (state.key !== key) return;
  const completed = await decodePng(base64ToBytes(data.completed));
  if (state.edits !== edits) return; // painted meanwhile: these strokes are not the slice's any more
  state.setSuggestion({ values: completed.values, offset: 0, key: `completion/${key}/${edits}`, source: "completion",
    slice: key, edits });
  state.say(`${sliceName(axis, index)} completed from your strokes: accept it (or correct it first).`);
}
$("complete").addEventListener("click", () => guarded(() => showCompletion({ explain: true })));

/** Queue the full model (`explain`: the user asked, so say when the newest model already is it). */
async function train({ explain = false } = {}) {
  try {
    const { model_reused: reused } = await post(`/api/job/${enc}/retrain`);
    if (reused) {
      state.setTraining({ retrainWanted: false });
      if (explain) state.say("The newest model was trained on exactly these slices: nothing to train again.");
      return;
    }
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
  if (state.training) { // the server would refuse a second training (409): queue it here instead
    state.setTraining({ retrainWanted: true });
    state.say("A model is training now: the newest strokes train as soon as it is done.");
    return;
  }
  await train({ explain: true });
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
let newestDraft = ""; // id of the newest ready draft model ("draft-<n>"): the prediction route may answer with it
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

/** Whether the suggestion shown is a completion the user asked for and has not painted since:
 * no prediction replaces it until the next edit. */
const completionPinned = () => {
  const s = state.suggestion;
  return Boolean(s && s.source === "completion" && s.slice === state.key && s.edits === state.edits);
};

/** Queue a draft model predicting the slice shown, and show its prediction once it is ready
 * (the draft runner predicts z slices itself; a slice of another plane asks the prediction route). */
async function draft() {
  const ticket = ++draftTicket;
  const { axis, index } = state;
  const key = sliceKey(axis, index);
  const onZ = axis === "z";
  const level = overlayLevel(view.slice.scale); // the draft predicts the view's level; the route refines it
  const region = onZ && state.labels ? visibleRegion() : null; // zoomed in: what the view shows, first
  const { annotation_rev: rev } = await post(`/api/annotate/${enc}/draft`,
    onZ ? { z: index, level, ...(region ? { region } : {}) } : {});
  for (let wait = 50; ticket === draftTicket; wait = Math.min(wait * 1.5, 200)) {
    const d = await api(`/api/annotate/${enc}/draft${onZ ? `?z=${index}` : ""}`);
    if (d.ready && d.ready.annotation_rev >= rev) {
      newestDraft = `draft-${d.ready.task_id}`;
      refreshAdvice(state.model).catch((err) => state.say(`No suggestions: ${err.message}`)); // the draft's own
      if (ticket !== draftTicket || state.key !== key) return;
      if (!d.ready.prediction || state.showDoubt) return refreshPrediction(); // the route gives the uncertainty too
      if (completionPinned()) return;
      const png = await decodePng(base64ToBytes(d.ready.prediction));
      if (ticket !== draftTicket || state.key !== key || !state.labels) return;
      const coarse = d.ready.level || 0;
      const part = d.ready.region || null; // a zoomed-in view's region, drawn over what was shown
      const { width: w, height: h } = state.labels;
      const s = state.suggestion;
      const prev = part && s && s.source === "prediction" && String(s.key).endsWith(`/${key}`) ? s.values : null;
      state.setSuggestion({ values: coarse || part ? toFullResolution(png, w, h, d.ready.factors, part, prev) : png.values,
        offset: 1, key: `${newestDraft}/${key}`, source: "prediction", basis: overlayBasis(key), level: coarse,
        covers: coarse ? [0, 0, 0, 0] : part });
      state.say(`Prediction of model ${newestDraft} (draft) shown${coarse ? ` (level ${coarse}, refining…)` : ""} (P hides it).`);
      if (coarse) await refreshPrediction();
      return;
    }
    if (d.error && !d.pending) { state.say(`No draft model: ${d.error}`); return; }
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

/** What the prediction route would answer from for slice `key`: the newest full model and the
 * newest draft known (the server picks the newer of them). A prediction shown for the same
 * basis is not asked for again; a new draft or a new full model changes it. */
const overlayBasis = (key) => `${state.model ? state.model.model_id : ""}|${newestDraft}/${key}${state.showDoubt ? "/doubt" : ""}`;

let predicting = null; // {basis, promise, abort} of the prediction on its way: never asked for twice

/** The visible region as the prediction route takes it (null: the whole plane is visible). */
function visibleRegion() {
  const { r0, c0, r1, c1 } = view.slice.visibleRegion();
  const { width: w, height: h } = state.labels;
  return r0 === 0 && c0 === 0 && r1 >= h && c1 >= w ? null : [r0, c0, r1, c1];
}

/** Whether `outer` [r0, c0, r1, c1] (null: everything) holds `inner` (null: everything). */
function covers(outer, inner) {
  return !outer || (inner && outer[0] <= inner[0] && outer[1] <= inner[1] && outer[2] >= inner[2] && outer[3] >= inner[3]);
}

/** The newest model's prediction of the slice shown, as the suggestion (once per basis, see
 * overlayBasis): first on the pyramid level the view shows, then refined at full resolution over
 * what is visible. A newer basis aborts the request on its way (the server stops its work: same
 * view). A completion the user asked for stays until the next edit. */
async function refreshPrediction() {
  const { model, axis, index } = state;
  if (index === null || (!model && !newestDraft) || completionPinned()) return;
  const key = sliceKey(axis, index);
  const basis = overlayBasis(key);
  const s = state.suggestion;
  const region = visibleRegion();
  if (s && s.basis === basis && s.level === 0 && covers(s.covers, region)) return;
  if (predicting) {
    if (predicting.basis === basis) return predicting.promise;
    predicting.abort.abort();
  }
  const abort = new AbortController();
  const promise = predictPasses(axis, index, basis, region, abort.signal);
  predicting = { basis, promise, abort };
  try {
    await promise;
  } finally {
    if (predicting && predicting.promise === promise) predicting = null;
  }
}

/** The coarse pass (when the view shows a pyramid level and nothing of this basis is shown yet),
 * then the full-resolution pass over `region`. */
async function predictPasses(axis, index, basis, region, signal) {
  const coarse = overlayLevel(view.slice.scale);
  const shown = state.suggestion && state.suggestion.basis === basis;
  if (coarse > 0 && !shown) {
    if (!(await askPrediction(axis, index, basis, { level: coarse, region }, signal))) return;
  }
  await askPrediction(axis, index, basis, { level: 0, region }, signal);
}

/** Ask the prediction route for slice `index` across `axis` (`level`, `region`) and show it
 * (unless the page moved on); true when shown. */
async function askPrediction(axis, index, basis, { level = 0, region = null } = {}, signal = undefined) {
  const key = sliceKey(axis, index);
  try {
    const body = { axis, index, uncertainty: state.showDoubt, level, view: VIEW, ...(region ? { region } : {}) };
    const data = await api(`/api/annotate/${enc}/data/predict`, { method: "POST", body, signal });
    if (state.key !== key || completionPinned()) return false;
    const png = await decodePng(base64ToBytes(data.prediction));
    const doubtPng = data.uncertainty ? await decodePng(base64ToBytes(data.uncertainty)) : null;
    if (state.key !== key || completionPinned() || !state.labels) return false;
    const { width: w, height: h } = state.labels;
    const prev = state.suggestion && state.suggestion.basis === basis && state.suggestion.source === "prediction" ? state.suggestion : null;
    const full = data.level === 0 && !data.region ? null : [data.factors, data.region];
    const values = full ? toFullResolution(png, w, h, ...full, prev && prev.values) : png.values;
    const doubt = doubtPng ? (full ? toFullResolution(doubtPng, w, h, ...full, prev && prev.doubt) : doubtPng.values) : null;
    const whole = data.region && data.region[0] === 0 && data.region[1] === 0 && data.region[2] >= h && data.region[3] >= w;
    const modelId = data.model_id;
    // class indices: annotation value - 1
    state.setSuggestion({ values, offset: 1, key: `${modelId}/${key}`, source: "prediction", basis, doubt,
      level: data.level || 0, covers: data.level ? [0, 0, 0, 0] : (whole ? null : data.region) });
    state.say(`Prediction of model ${data.draft ? `${modelId} (draft)` : shortId(modelId)} shown` +
      `${data.level ? ` (level ${data.level}, refining…)` : ""} (P hides it).`);
    return true;
  } catch (err) {
    if (err && err.name === "AbortError") return false;
    if (!(err instanceof ApiError && err.status === 409)) throw err;
    return false;
  }
}

function describeModel(m, job) {
  if (!m && newestDraft) {
    return `Draft ${newestDraft} shown: a quick model of your strokes; the full model ${job.training
      ? "is training" : "trains when painting pauses (or Train model now)"}.`;
  }
  if (!m) return job.training ? "Training the first model…" : "No model yet: save a few painted slices (both classes), then train.";
  const dice = metric(m, "dice");
  const scores = m.validating ? ", validating…"
    : dice !== null ? `, leave-one-slice-out Dice ${dice.toFixed(2)}` : "";
  return `Model ${shortId(m.model_id)}: ${m.n_slices ?? "?"} slice${m.n_slices === 1 ? "" : "s"}${scores}`;
}

let methodOf = null; // {model_id, method} of the newest model seen on this page
let methodNote = ""; // said while the newest model uses another method than the one before it
/** The newest model's method and warnings, beside the painting: what to paint next when a class is
 * poor; when a new model uses another method than the one before it, the page says so and why. */
async function showModelReport(m) {
  const list = $("model-warnings");
  if (!m) { list.replaceChildren(); return; }
  const r = await modelReport(m.model_id);
  $("model-info").textContent += ` · method ${r.method}`;
  if (methodOf && methodOf.model_id !== m.model_id) {
    methodNote = methodOf.method !== r.method
      ? `The method changed from ${methodOf.method} to ${r.method}. ${r.method_reason || ""}`.trim() : "";
  }
  methodOf = { model_id: m.model_id, method: r.method };
  list.replaceChildren(...(methodNote ? [el("li", { class: "method-change" }, methodNote)] : []),
    ...(r.warnings || []).map((w) => el("li", {}, w)));
}

async function refreshJob() {
  const job = await getJob();
  state.setJob(job);
  if (!state.classes.length) {
    const classes = job.classes && job.classes.length ? job.classes : (await enums()).default_classes;
    state.setClasses(classes.map((c) => ({ ...c })));
  }
  const ready = (job.models || []).filter((m) => m.ready);
  const newest = ready.length ? ready[ready.length - 1] : null;
  const trainingNow = job.training; // the job, or one of its models, trains or waits to
  state.setModel({ model: newest, training: trainingNow });
  await refreshAdvice(newest).catch((err) => state.say(`No suggestions: ${err.message}`));
  $("model-info").textContent = describeModel(newest, job) +
    (trainingNow ? ` · training${job.progress ? ` ${Math.round(job.progress * 100)}%` : ""}…` : "");
  $("train").disabled = trainingNow;
  $("segment").hidden = !newest;
  $("segment").disabled = trainingNow || !canTrain(job);
  $("segment").textContent = job.newest_model_current ? "Segment the whole volume" : "Retrain, then segment the whole volume";
  $("train").textContent = newest ? "Retrain now" : "Train model";
  await showModelReport(newest).catch(() => {});
  if (!trainingNow && state.retrainWanted && canTrain(job)) await train();
  await refreshPrediction();
  state.setFailure(job.status === "error" ? job.error || "no reason recorded" : "");
}

$("show-doubt").addEventListener("change", (e) => guarded(async () => {
  state.setShowDoubt(e.target.checked);
  if (e.target.checked && !state.model && !newestDraft) state.say("The uncertainty shows once a model (or a draft) exists.");
  await refreshPrediction();
}));

// ---------------------------------------------------------------- gallery
const gallery = new Gallery($("gallery"), enc, {
  colors: () => state.colors(),
  aspect: pixelAspect,
  onOpen: ({ axis, index }) => guarded(() => loadSlice(index, axis)),
  onDelete: ({ axis, index }) => guarded(async () => {
    await api(annotationUrl(axis, index), { method: "DELETE" });
    if (state.key === sliceKey(axis, index)) {
      state.labels.begin();
      state.labels.clear();
      state.labels.end();
      state.labelsChanged();
      state.setUnsaved(false);
    }
    await refreshGallery();
  }),
});
const renderGallery = () => gallery.render(state.annotated, state.key);

async function refreshGallery() {
  const { annotations } = await api(`/api/annotate/${enc}/annotations`);
  state.setAnnotated(new Map(annotations.map((a) => [sliceKey(a.axis, a.index), { axis: a.axis, index: a.index, labeled: a.labeled_voxels }])));
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
  // a draft made before this page was opened (a reload, another plane opened by its address) is
  // the newest prediction of the strokes while no full model is newer: shown on every plane
  const drafted = await api(`/api/annotate/${enc}/draft`).catch(() => null);
  if (drafted && drafted.ready && !newestDraft) newestDraft = `draft-${drafted.ready.task_id}`;
  await refreshGallery();
  // without the histogram, slices still come in the job's window
  await windowLevel.load(state.job.window).catch((err) => state.say(`No histogram of the scan: ${err.message}`));
  const query = new URLSearchParams(location.search);
  const axis = ["z", "y", "x"].includes(query.get("axis")) ? query.get("axis") : "z";
  const index = query.get("index") ?? query.get("z");
  await loadSlice(index === null || index === "" ? null : Number(index), axis);
  poll(refreshJob, 2000);
});
