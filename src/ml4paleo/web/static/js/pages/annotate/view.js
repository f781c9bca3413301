// The annotation page's view: the slice with its labels and the suggestion overlay (today the
// model's prediction), the display controls, the slice slider, the cursor readout, the status
// line and the buttons whose state follows the store. It only reads the store.
import { PLANE } from "../../lib/axes.js";
import { $ } from "../../lib/dom.js";
import { SliceView } from "../../lib/sliceview.js";

export class AnnotationView {
  /** @param state the page's AnnotationState */
  constructor(state) {
    this.state = state;
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
    state.on("image", () => this.paintImage());
    state.on("labels", (rect) => this.paintLabels(rect));
    state.on("suggestion", () => this.paintSuggestion());
    state.on("classes", () => { this.paintLabels(); this.paintSuggestion(); });
    state.on("unsaved", () => this._showUnsaved());
    state.on("status", (text) => { $("pred-status").textContent = text; });
  }

  _showSlice() {
    const { state } = this;
    const { width, height } = state.labels;
    this.slice.setSize(width, height);
    $("plane").value = state.axis;
    $("slice").max = Math.max(0, state.depth - 1);
    $("slice").value = state.index;
    $("slice-out").textContent = `${state.index} / ${state.depth - 1}`;
    this.paintImage();
    this.paintLabels();
    this.paintSuggestion();
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
    $("accept-pred").disabled = !suggestion;
    $("accept-pred").title = suggestion && suggestion.source === "completion"
      ? "Fill every unpainted pixel with the slice completed from your strokes (painted pixels stay); then correct it"
      : "Fill every unpainted pixel with the model's prediction (painted pixels stay); then correct it";
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
      $("cursor-info").textContent = "\u00a0";
      return;
    }
    const i = iy * labels.width + ix;
    const cls = state.classOf(labels.values[i]);
    const suggested = suggestion ? state.classOf(suggestion.values[i] + suggestion.offset) : null;
    const { u, v } = PLANE[state.axis];
    $("cursor-info").textContent = `${u} ${ix}, ${v} ${iy}, ${state.axis} ${state.index} · gray ${state.gray[i]} · label: ${cls ? cls.name : "none"}` +
      (suggested ? ` · ${suggestion.source}: ${suggested.name}` : "") + ` · zoom ${Math.round(this.slice.scale * 100)}%`;
  }
}
