// The annotation page's view: the slice with its labels and the suggestion overlay (today the
// model's prediction), the display controls, the slice slider, the cursor readout, the status
// line and the buttons whose state follows the store. It only reads the store.
import { PLANE } from "../../lib/axes.js";
import { $ } from "../../lib/dom.js";
import { SliceView } from "../../lib/sliceview.js";

/** How long the cursor rests on a voxel before its raw value is asked for. */
const PROBE_AFTER_MS = 120;

export class AnnotationView {
  /**
   * @param state the page's AnnotationState
   * @param rawValue async ({z, y, x}) → {value, source_kind}: the scan's raw value at a voxel (a DICOM
   *        series holds rescaled values: HU for CT)
   */
  constructor(state, { rawValue }) {
    this.state = state;
    this.rawValue = rawValue;
    this.probe = { key: "", text: "", timer: 0 }; // the voxel under the cursor and its raw value, once known
    this.pointer = null; // the image position the readout names: read again when what lies there changes
    this.slice = new SliceView($("view"), $("stage"));
    const slice = this.slice;

    $("label-opacity").addEventListener("input", (e) => { slice.alpha.labels = e.target.value / 100; slice.redraw(); });
    $("pred-opacity").addEventListener("input", (e) => { slice.alpha.suggestion = e.target.value / 100; slice.redraw(); });
    $("show-pred").addEventListener("change", (e) => { slice.visible.suggestion = e.target.checked; slice.redraw(); });
    slice.alpha.labels = $("label-opacity").value / 100;
    slice.alpha.suggestion = $("pred-opacity").value / 100;
    $("fit").addEventListener("click", () => slice.fit());
    $("slice").addEventListener("input", (e) => { $("slice-out").textContent = `${e.target.value} / ${state.depth - 1}`; });

    state.on("slice", () => this._showSlice());
    state.on("advice", () => this._showAdvice());
    state.on("image", () => this.paintImage());
    // a draft, a completion or a stroke that lands under a resting cursor changes what it points at
    const reread = () => { if (this.pointer) this.showCursor(this.pointer); };
    state.on("labels", (rect) => { this.paintLabels(rect); reread(); });
    state.on("suggestion", () => { this.paintSuggestion(); reread(); });
    state.on("classes", () => { this.paintLabels(); this.paintSuggestion(); reread(); });
    state.on("unsaved", () => this._showUnsaved());
    state.on("status", (text) => { $("pred-status").textContent = text; $("pred-status").title = text; });
  }

  _showSlice() {
    const { state } = this;
    const { width, height } = state.labels;
    this.slice.setSize(width, height, state.aspect);
    $("plane").value = state.axis;
    $("slice").max = Math.max(0, state.depth - 1);
    $("slice").value = state.index;
    $("slice-out").textContent = `${state.index} / ${state.depth - 1}`;
    // the readout named the voxel under the cursor on the slice before (its plane, index and value):
    // cleared until the cursor moves on this one
    clearTimeout(this.probe.timer);
    this.probe = { key: "", text: "", timer: 0 };
    this.pointer = null;
    $("cursor-info").textContent = "\u00a0";
    this.paintImage();
    this.paintLabels();
    this.paintSuggestion();
    this._showAdvice();
  }

  /** The region of the suggested slice outlined while it is shown, and what the model says of it. */
  _showAdvice() {
    const { state } = this;
    const t = state.target;
    const here = t && t.axis === state.axis && t.index === state.index;
    const [r0, c0, r1, c1] = here ? t.bbox : [];
    this.slice.setMark(here ? { x0: c0, y0: r0, x1: c1, y1: r1 } : null);
    const { estimated_mean_dice: dice, estimated_mean_dice_range: range } = state.advice;
    const estimate = typeof dice === "number" ? `Estimated Dice of the volume: ${dice.toFixed(2)}. `
      : Array.isArray(range) ? `Estimated Dice of the volume: between ${range[0].toFixed(2)} and ${range[1].toFixed(2)} `
        + "(too little painted for one number). " : "";
    $("suggestion-info").textContent = here ? `${estimate}Suggested here (outlined): ${t.reason}`
      : state.advice.suggestions.length ? `${estimate}N opens the slice the model is least sure of.` : estimate;
  }

  /** The gray slice (the server rendered it through the display window). */
  paintImage() {
    if (this.state.gray) this.slice.setImage(this.state.gray, 0, 255);
  }

  /** The painted labels, within `rect` (everything when null). */
  paintLabels(rect = null) {
    const { labels } = this.state;
    if (labels) this.slice.setLabels("labels", labels.values, this.state.colors(), rect);
  }

  /** The suggestion overlay (cleared when there is none); "Accept suggestion" only with one. */
  paintSuggestion() {
    const { suggestion } = this.state;
    if (suggestion) this.slice.setLabels("suggestion", suggestion.values, this.state.colors(), null, suggestion.offset);
    else this.slice.clearLayer("suggestion");
    if (suggestion && suggestion.doubt && this.state.showDoubt) this.slice.setHeat("uncertainty", suggestion.doubt);
    else this.slice.clearLayer("uncertainty");
    $("accept-pred").disabled = !suggestion;
    $("accept-pred").title = suggestion && suggestion.source === "completion"
      ? "Fill every unpainted pixel with the slice completed from your strokes (painted pixels stay); then correct it"
      : "Fill every unpainted pixel with the model's prediction (painted pixels stay); then correct it";
  }

  /** Labels at most `opacity` (0..1) opaque: a slice filled by an accepted suggestion leaves the
   * scan visible under it, to see what to correct. The slider follows. */
  dimLabels(opacity) {
    const slider = $("label-opacity");
    if (Number(slider.value) / 100 <= opacity) return;
    slider.value = String(Math.round(opacity * 100));
    this.slice.alpha.labels = opacity;
    this.slice.redraw();
  }

  _showUnsaved() {
    const { labels, unsaved } = this.state;
    $("submit").textContent = unsaved ? "Save slice *" : "Save slice";
    $("undo").disabled = !labels || !labels.undoStack.length;
    $("redo").disabled = !labels || !labels.redoStack.length;
  }

  /** The readout under the canvas for image position [x, y] (continuous pixel coordinates). */
  showCursor([x, y]) {
    const { state } = this;
    const { labels, suggestion } = state;
    const ix = Math.floor(x), iy = Math.floor(y);
    if (!labels || ix < 0 || iy < 0 || ix >= labels.width || iy >= labels.height) {
      this.pointer = null;
      $("cursor-info").textContent = "\u00a0";
      return;
    }
    this.pointer = [x, y];
    const i = iy * labels.width + ix;
    const cls = state.classOf(labels.values[i]);
    const suggested = suggestion ? state.classOf(suggestion.values[i] + suggestion.offset) : null;
    const { u, v } = PLANE[state.axis];
    const voxel = { [state.axis]: state.index, [u]: ix, [v]: iy };
    const key = `${voxel.z},${voxel.y},${voxel.x}`;
    if (key !== this.probe.key) this._probe(key, voxel, [x, y]);
    $("cursor-info").textContent = `${u} ${ix}, ${v} ${iy}, ${state.axis} ${state.index} · ${this.probe.text} · label: ${cls ? cls.name : "none"}` +
      (suggested ? ` · ${suggestion.source}: ${suggested.name}` : "") + ` · zoom ${Math.round(this.slice.scale * 100)}%`;
  }

  /** Ask for the raw value of `voxel` once the cursor rests there, then show it (if it still does). */
  _probe(key, voxel, point) {
    clearTimeout(this.probe.timer);
    this.probe = { key, text: "value …", timer: 0 };
    this.probe.timer = setTimeout(async () => {
      let text;
      try {
        const { value, source_kind: kind } = await this.rawValue(voxel);
        text = `value ${Number.isInteger(value) ? value : Number(value).toPrecision(5)}${/(^|:)dicom/.test(kind || "") ? " HU" : ""}`;
      } catch {
        text = "value –";
      }
      if (this.probe.key !== key) return;
      this.probe.text = text;
      this.showCursor(point);
    }, PROBE_AFTER_MS);
  }
}
