// Mouse / pen input of the annotation canvas: brush, eraser, lasso or polygon, flood fill, pan.
//
// Every change goes into the page's LabelBuffer (state.labels); the canvas only shows it. The
// input reads the tool, size, active class, gray image and tolerance from `state` and changes
// nothing else of it; the lasso / polygon being drawn is its own.
import { classColor } from "./colors.js";

export class PaintInput {
  /**
   * @param view the SliceView (coordinates, redraw, overlay)
   * @param canvas its <canvas>; @param stage the element that takes keyboard focus
   * @param state the page state, read only: labels, gray, tool, size, tolerance, active, classes
   * @param onStroke(rect) labels changed in rect during a stroke; onEdit() an edit is complete;
   *        onHover([x, y]) the pointer is over image position x, y
   */
  constructor(view, canvas, stage, state, { onStroke, onEdit, onHover }) {
    Object.assign(this, { view, canvas, stage, state, onStroke, onEdit, onHover });
    this.drag = null; // {mode: "paint" | "pan" | "lasso", ...}
    this.hover = null;
    this.spaceHeld = false;
    this.lasso = null; // points of the lasso / polygon being drawn, in image coordinates
    canvas.addEventListener("contextmenu", (e) => e.preventDefault());
    canvas.addEventListener("pointerdown", (e) => this._down(e));
    canvas.addEventListener("pointermove", (e) => this._move(e));
    canvas.addEventListener("pointerup", () => this._up());
    canvas.addEventListener("pointercancel", () => this._up());
    canvas.addEventListener("pointerleave", () => { this.hover = null; view.redraw(); });
    canvas.addEventListener("dblclick", () => { if (state.tool === "lasso") this.closePolygon(); });
    view.overlay = (ctx) => this._drawOverlay(ctx);
  }

  /** True while a stroke or drag is in progress (the page waits before saving). */
  get busy() {
    return this.drag !== null;
  }

  _flush() {
    const rect = this.state.labels.takeDirty();
    if (rect) this.onStroke(rect);
  }

  _down(e) {
    const { state, view } = this;
    if (!state.labels) return;
    this.canvas.setPointerCapture(e.pointerId);
    this.stage.focus({ preventScroll: true });
    const p = view.toImage(e.clientX, e.clientY);
    if (e.button === 1 || e.button === 2 || this.spaceHeld || state.tool === "pan") {
      this.drag = { mode: "pan", last: [e.clientX, e.clientY] };
      return;
    }
    if (e.button !== 0) return;
    if (state.tool === "brush" || state.tool === "eraser") {
      const value = state.tool === "eraser" ? 0 : state.active;
      state.labels.begin();
      state.labels.disc(Math.floor(p[0]), Math.floor(p[1]), state.size, value);
      this.drag = { mode: "paint", last: p, value };
      this._flush();
    } else if (state.tool === "fill") {
      state.labels.begin();
      state.labels.flood(Math.floor(p[0]), Math.floor(p[1]), state.active, state.gray, state.tolerance);
      if (state.labels.end()) this.onEdit();
    } else if (state.tool === "lasso") {
      if (this.lasso && this.lasso.length > 2 && this._nearFirst(p)) {
        this.closePolygon();
        return;
      }
      if (!this.lasso) this.lasso = [];
      this.lasso.push(p);
      this.drag = { mode: "lasso", moved: false, start: [e.clientX, e.clientY] };
    }
  }

  _move(e) {
    const { state, view, drag } = this;
    const p = view.toImage(e.clientX, e.clientY);
    this.hover = p;
    this.onHover(p);
    if (!drag) { view.redraw(); return; }
    if (drag.mode === "pan") {
      view.panBy(e.clientX - drag.last[0], e.clientY - drag.last[1]);
      drag.last = [e.clientX, e.clientY];
    } else if (drag.mode === "paint") {
      state.labels.line(drag.last[0], drag.last[1], p[0], p[1], state.size, drag.value);
      drag.last = p;
      this._flush();
    } else if (drag.mode === "lasso") {
      if (Math.hypot(e.clientX - drag.start[0], e.clientY - drag.start[1]) > 4) drag.moved = true;
      if (drag.moved) this.lasso.push(p);
      view.redraw();
    }
  }

  _up() {
    const drag = this.drag;
    this.drag = null;
    if (!drag) return;
    if (drag.mode === "paint") {
      if (this.state.labels.end()) this.onEdit();
    } else if (drag.mode === "lasso" && drag.moved) {
      this.closePolygon(); // a dragged lasso closes on release; clicks build a polygon
    }
  }

  _nearFirst(p) {
    const [a, b] = this.view.toScreen(...this.lasso[0]), [c, d] = this.view.toScreen(...p);
    return Math.hypot(a - c, b - d) < 8;
  }

  /** Fill the lasso / polygon drawn so far with the active class. */
  closePolygon() {
    const { state } = this;
    const points = this.lasso;
    this.lasso = null;
    if (points && points.length > 2) {
      state.labels.begin();
      state.labels.polygon(points, state.active);
      if (state.labels.end()) this.onEdit();
    }
    this.view.redraw();
  }

  /** Drop the lasso / polygon drawn so far (Esc, another tool, another slice). */
  cancelPolygon() {
    this.lasso = null;
    this.view.redraw();
  }

  /** True while a polygon is being drawn (Enter closes it). */
  get drawingPolygon() {
    return this.lasso !== null;
  }

  /** Brush outline and lasso path, drawn on top in screen coordinates. */
  _drawOverlay(ctx) {
    const { state, view, hover, lasso } = this;
    if (lasso && lasso.length) {
      ctx.strokeStyle = classColor(state.classes.find((c) => c.value === state.active) || { value: state.active });
      ctx.lineWidth = 1.5;
      ctx.setLineDash([4, 3]);
      ctx.beginPath();
      for (const [i, [x, y]] of lasso.entries()) {
        const [sx, sy] = view.toScreen(x, y);
        if (i) ctx.lineTo(sx, sy); else ctx.moveTo(sx, sy);
      }
      if (hover) ctx.lineTo(...view.toScreen(hover[0], hover[1]));
      ctx.stroke();
      ctx.setLineDash([]);
    }
    if (hover && (state.tool === "brush" || state.tool === "eraser")) {
      const [sx, sy] = view.toScreen(Math.floor(hover[0]) + 0.5, Math.floor(hover[1]) + 0.5);
      ctx.strokeStyle = state.tool === "eraser" ? "#fff" : "#ffe066";
      ctx.lineWidth = 1;
      ctx.beginPath();
      const r = Math.max(1.5, (state.size / 2) * view.scale); // the brush in image pixels, drawn as the pixels are
      ctx.ellipse(sx, sy, r, Math.max(1.5, r * view.aspect), 0, 0, 2 * Math.PI);
      ctx.stroke();
    }
  }
}
