// The annotation page's state: one store, changed only through its setters, each of which
// announces what changed as an event (`store.on("slice", fn)`), so the view and the tools
// follow it without calling each other.
//
// Events: "slice" (a new slice and its labels), "image" (the same slice through another
// display window), "labels" (detail: the changed rect, or null for
// all), "edit" (the user changed the labels: one undo step), "suggestion", "classes", "active",
// "tool", "size", "tolerance", "unsaved", "annotated", "model", "advice" (suggestions of where to
// paint next, or the one opened), "status" (detail: the text).
import { classColor } from "../../lib/colors.js";

/** The name of the slice at `index` across `axis`, as the server lists it (`key`): "12" for a
 * z slice, "y120" for a slice across the stack. */
export const sliceKey = (axis, index) => (axis === "z" ? String(index) : `${axis}${index}`);

/** How a plane is called on the page. */
export const PLANE_NAME = { z: "XY", y: "XZ", x: "YZ" };

export class AnnotationState extends EventTarget {
  constructor() {
    super();
    // the job and its annotations on the server
    this.job = null;
    this.classes = []; // [{value, name, color}]: 1 background, 2.. structures
    this.annotated = new Map(); // sliceKey → {axis, index, labeled} of every plane, as saved on the server
    this.model = null; // newest usable model record, or null
    this.training = false;
    this.retrainWanted = false; // a retrain was asked for while one was running
    this.failure = ""; // reason of the job's last failure, once reported
    // where the newest model says to paint next: {model_id, suggestions: [{axis, index, bbox, score,
    // reason}], estimated_dice, estimated_mean_dice (or, too little painted, the _range pair), calibration}
    // (GET .../suggestions), and the one opened last ("target"), whose region the view outlines while
    // its slice is shown
    this.advice = { suggestions: [] };
    this.target = null;

    // the slice being painted: the plane across `axis` at `index` (0 .. depth-1)
    this.axis = "z";
    this.index = null;
    this.depth = 0;
    this.aspect = 1; // physical height of a pixel over its width on this plane (from the voxel size)
    this.gray = null; // Uint8Array of the slice's 8-bit display values (the server applies the window)
    this.labels = null; // LabelBuffer of the painted class values (0 unlabeled)
    // a proposal for the whole slice (the model's prediction, or the slice completed from its
    // strokes), shown as an overlay and taken into the labels by "accept": {values, offset, key,
    // source, basis, doubt (a prediction's uncertainty, 0..255 per pixel, when asked for)},
    // class value = values[i] + offset
    this.suggestion = null;
    this.showDoubt = false; // the model's uncertainty shown over the slice (the prediction then carries `doubt`)
    this.unsaved = false;
    this.edits = 0; // edits so far: a save only clears "unsaved" if none came in meanwhile

    // painting input
    this.active = 2; // class value painted by brush, lasso and fill
    this.tool = "brush";
    this.size = 6; // brush diameter in pixels
    this.tolerance = 0; // flood fill: 0 = whole region of equal label, else also within ± this gray level
  }

  /** Call `fn(detail)` on each change of `type`. */
  on(type, fn) {
    this.addEventListener(type, (e) => fn(e.detail));
  }

  _emit(type, detail = null) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  /** {value: "#rrggbb"} of the classes. */
  colors() {
    return Object.fromEntries(this.classes.map((c) => [c.value, classColor(c)]));
  }

  classOf(value) {
    return this.classes.find((c) => c.value === value) || null;
  }

  setJob(job) {
    this.job = job;
  }

  setClasses(classes) {
    this.classes = classes;
    if (!classes.some((c) => c.value === this.active)) this.active = classes[classes.length - 1].value;
    this._emit("classes");
  }

  setActive(value) {
    this.active = value;
    this._emit("active");
  }

  setTool(tool) {
    this.tool = tool;
    this._emit("tool");
  }

  setSize(size) {
    this.size = Math.max(1, Math.min(64, size));
    this._emit("size");
  }

  setTolerance(tolerance) {
    this.tolerance = tolerance;
    this._emit("tolerance");
  }

  /** A new slice: its place, pixel aspect, gray values and labels (a LabelBuffer); the suggestion is dropped. */
  setSlice({ axis = "z", index, depth, aspect = 1, gray, labels }) {
    Object.assign(this, { axis, index, depth, aspect, gray, labels, suggestion: null });
    this._emit("slice");
    this.setUnsaved(false);
  }

  /** The key (`sliceKey`) of the slice shown, or null. */
  get key() {
    return this.index === null ? null : sliceKey(this.axis, this.index);
  }

  /** The same slice's gray values through another display window. */
  setGray(gray) {
    this.gray = gray;
    this._emit("image");
  }

  /** Labels changed in `rect` (everywhere when null): during a stroke, or not by the user. */
  labelsChanged(rect = null) {
    this._emit("labels", rect);
  }

  /** The user finished an edit of the labels; `rect` is what changed since last shown (or null). */
  labelsEdited(rect) {
    if (rect) this.labelsChanged(rect);
    this.edits++;
    this.setUnsaved(true);
    this._emit("edit");
  }

  setUnsaved(value) {
    this.unsaved = value;
    this._emit("unsaved");
  }

  /** Show (or hide) the model's uncertainty over the slice. */
  setShowDoubt(show) {
    this.showDoubt = show;
    this._emit("suggestion");
  }

  setSuggestion(suggestion) {
    this.suggestion = suggestion;
    this._emit("suggestion");
  }

  /** Saved annotations: Map sliceKey → {axis, index, labeled}, as the server lists them. */
  setAnnotated(annotated) {
    this.annotated = annotated;
    this._emit("annotated");
  }

  /** The slice at `index` across `axis` was saved with `labeled` pixels (null: its annotation was removed). */
  markAnnotated(axis, index, labeled) {
    const key = sliceKey(axis, index);
    if (labeled === null) this.annotated.delete(key);
    else this.annotated.set(key, { axis, index, labeled });
    this._emit("annotated");
  }

  /** The newest usable model (or null) and whether a model is being trained now. */
  setModel({ model, training }) {
    this.model = model;
    this.training = training;
    this._emit("model");
  }

  /** A retrain was queued (`training`), or is wanted as soon as the running one ends. */
  setTraining({ training = this.training, retrainWanted }) {
    this.training = training;
    this.retrainWanted = retrainWanted;
  }

  /** The job's failure reason ("" when none); said once per new reason. */
  setFailure(failure) {
    if (failure && failure !== this.failure) this.say(`Last step failed: ${failure}`);
    this.failure = failure;
  }

  /** The newest model's suggestions (see the constructor); the target is kept only if still listed,
   * with the newer model's region and reason (the older box would outline what it no longer doubts). */
  setAdvice(advice) {
    this.advice = advice;
    const t = this.target;
    if (t) this.target = advice.suggestions.find((s) => s.axis === t.axis && s.index === t.index) || null;
    this._emit("advice");
  }

  /** The suggestion opened (or null): its region is outlined while its slice is shown. */
  setTarget(target) {
    this.target = target;
    this._emit("advice");
  }

  /** A line for the user in the status bar. */
  say(text) {
    this._emit("status", text);
  }
}
