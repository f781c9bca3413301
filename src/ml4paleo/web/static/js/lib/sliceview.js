// A canvas that shows one slice at full resolution with zoom (wheel) and pan, and layers on top
// (a suggestion such as a model's prediction, then labels) drawn pixel for pixel (no smoothing),
// plus screen-space decorations. Pixels are drawn in their physical proportions: a plane across
// a stack of thick slices (3 mm rows, 0.98 mm columns) is stretched down, not squashed.
import { rgbaTable } from "./colors.js";

/** An offscreen canvas of the slice size that layers are painted into as RGBA. */
class Layer {
  constructor(width, height) {
    this.canvas = document.createElement("canvas");
    this.canvas.width = width;
    this.canvas.height = height;
    this.ctx = this.canvas.getContext("2d");
    this.image = this.ctx.createImageData(width, height);
  }
  /** Write RGBA for pixels in rect (inclusive) from `rgbaOf(i, out, o)`, then blit that rect. */
  paint(rect, rgbaOf) {
    const { width } = this.canvas;
    const data = this.image.data;
    for (let y = rect.y0; y <= rect.y1; y++) {
      for (let x = rect.x0; x <= rect.x1; x++) {
        const i = y * width + x;
        rgbaOf(i, data, i * 4);
      }
    }
    this.ctx.putImageData(this.image, 0, 0, rect.x0, rect.y0, rect.x1 - rect.x0 + 1, rect.y1 - rect.y0 + 1);
  }
}

export class SliceView {
  constructor(canvas, stage) {
    this.canvas = canvas;
    this.stage = stage;
    this.ctx = canvas.getContext("2d");
    this.scale = 1;
    this.tx = 0;
    this.ty = 0;
    this.fitted = true; // the slice fills the stage; kept so while the stage is resized
    this.width = 0;
    this.height = 0;
    this.aspect = 1; // physical height of a pixel over its width (rows' voxel size / columns')
    this.overlay = null; // function(ctx) drawing in screen (CSS pixel) coordinates
    this.mark = null; // {x0, y0, x1, y1} (image pixels, end-exclusive) outlined on top: a region to look at
    this.layers = {};
    this.alpha = { suggestion: 0.4, uncertainty: 0.85, labels: 0.55 };
    this.visible = { suggestion: true, uncertainty: true, labels: true };
    this._frame = 0;
    this.onViewChange = null; // called after a zoom, pan or fit (the page may want finer pixels then)
    new ResizeObserver(() => this._resize()).observe(stage);
    canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = canvas.getBoundingClientRect();
      this.zoomAt(e.clientX - r.left, e.clientY - r.top, Math.exp(-e.deltaY * 0.0015));
    }, { passive: false });
  }

  _resize() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this.stage.clientWidth * dpr)), h = Math.max(1, Math.round(this.stage.clientHeight * dpr));
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
      if (this.fitted) this.fit(); // still as fitted: stay fitted; after zoom or pan: stay put
      this.redraw();
    }
  }

  /** New slice size (and pixel `aspect`, see the constructor): (re)allocates the layers when the
   * size changed, and fits the view when the size or the aspect changed. */
  setSize(width, height, aspect = 1) {
    const resized = width !== this.width || height !== this.height;
    const changed = resized || aspect !== this.aspect;
    this.width = width;
    this.height = height;
    this.aspect = aspect > 0 && Number.isFinite(aspect) ? aspect : 1;
    if (resized) for (const name of ["image", "suggestion", "uncertainty", "labels"]) this.layers[name] = new Layer(width, height);
    if (changed) this.fit();
  }

  fit() {
    if (!this.width) return;
    const cw = this.stage.clientWidth, ch = this.stage.clientHeight;
    this.scale = Math.min(cw / this.width, ch / (this.height * this.aspect)) * 0.96;
    this.tx = (cw - this.width * this.scale) / 2;
    this.ty = (ch - this.height * this.aspect * this.scale) / 2;
    this.fitted = true;
    this.redraw();
    if (this.onViewChange) this.onViewChange();
  }

  zoomAt(sx, sy, factor) {
    const s = Math.min(64, Math.max(0.05, this.scale * factor));
    const ix = (sx - this.tx) / this.scale, iy = (sy - this.ty) / (this.scale * this.aspect);
    this.scale = s;
    this.tx = sx - ix * s;
    this.ty = sy - iy * s * this.aspect;
    this.fitted = false;
    this.redraw();
    if (this.onViewChange) this.onViewChange();
  }

  panBy(dx, dy) {
    this.tx += dx;
    this.ty += dy;
    this.fitted = false;
    this.redraw();
    if (this.onViewChange) this.onViewChange();
  }

  /** The image region on screen: {r0, c0, r1, c1} (rows and columns, end-exclusive, clipped). */
  visibleRegion() {
    const cw = this.stage.clientWidth, ch = this.stage.clientHeight;
    const c0 = Math.max(0, Math.floor(-this.tx / this.scale)), c1 = Math.min(this.width, Math.ceil((cw - this.tx) / this.scale));
    const r0 = Math.max(0, Math.floor(-this.ty / (this.scale * this.aspect)));
    const r1 = Math.min(this.height, Math.ceil((ch - this.ty) / (this.scale * this.aspect)));
    return { r0, c0, r1: Math.max(r0 + 1, r1), c1: Math.max(c0 + 1, c1) };
  }

  /** Client (mouse) coordinates → continuous image coordinates (pixel x covers [x, x+1)). */
  toImage(clientX, clientY) {
    const r = this.canvas.getBoundingClientRect();
    return [(clientX - r.left - this.tx) / this.scale, (clientY - r.top - this.ty) / (this.scale * this.aspect)];
  }

  toScreen(ix, iy) {
    return [ix * this.scale + this.tx, iy * this.scale * this.aspect + this.ty];
  }

  /** Paint the gray image through a window [lo, hi] of its 8-bit values. */
  setImage(gray, lo, hi) {
    const span = Math.max(1, hi - lo);
    const lut = new Uint8Array(256);
    for (let v = 0; v < 256; v++) lut[v] = Math.max(0, Math.min(255, Math.round(((v - lo) * 255) / span)));
    this.layers.image.paint(this._all(), (i, d, o) => {
      const g = lut[gray[i]];
      d[o] = g; d[o + 1] = g; d[o + 2] = g; d[o + 3] = 255;
    });
    this.redraw();
  }

  /** Paint label `values` (0 = transparent) with `colors` {value: "#rrggbb"} within `rect`. */
  setLabels(name, values, colors, rect = null, offset = 0) {
    const table = rgbaTable(Object.entries(colors).map(([value, hex]) => [Number(value) - offset, hex]));
    if (offset === 0) table[3] = 0; // 0 = unlabeled
    const layer = this.layers[name];
    layer.paint(rect || this._all(), (i, d, o) => {
      const t = values[i] * 4;
      d[o] = table[t]; d[o + 1] = table[t + 1]; d[o + 2] = table[t + 2]; d[o + 3] = table[t + 3];
    });
    layer.empty = false;
    this.redraw();
  }

  /** Paint `values` (0..255 per pixel) as a heat layer: transparent where 0, opaque magenta-red at 255. */
  setHeat(name, values) {
    const layer = this.layers[name];
    layer.paint(this._all(), (i, d, o) => {
      d[o] = 255; d[o + 1] = 40; d[o + 2] = 120; d[o + 3] = values[i];
    });
    layer.empty = false;
    this.redraw();
  }

  /** Outline `rect` ({x0, y0, x1, y1} in image pixels, end-exclusive), or nothing when null. */
  setMark(rect) {
    this.mark = rect;
    this.redraw();
  }

  clearLayer(name) {
    const layer = this.layers[name];
    if (!layer) return;
    layer.image.data.fill(0);
    layer.ctx.clearRect(0, 0, this.width, this.height);
    layer.empty = true;
    this.redraw();
  }

  _all() {
    return { x0: 0, y0: 0, x1: this.width - 1, y1: this.height - 1 };
  }

  redraw() {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this._draw();
    });
  }

  _draw() {
    const ctx = this.ctx, dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#111";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.width) return;
    ctx.imageSmoothingEnabled = false;
    ctx.setTransform(this.scale * dpr, 0, 0, this.scale * this.aspect * dpr, this.tx * dpr, this.ty * dpr);
    ctx.drawImage(this.layers.image.canvas, 0, 0);
    for (const name of ["suggestion", "uncertainty", "labels"]) {
      const layer = this.layers[name];
      if (!layer || layer.empty !== false || !this.visible[name]) continue;
      ctx.globalAlpha = this.alpha[name];
      ctx.drawImage(layer.canvas, 0, 0);
    }
    ctx.globalAlpha = 1;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    if (this.mark) {
      const [x0, y0] = this.toScreen(this.mark.x0, this.mark.y0), [x1, y1] = this.toScreen(this.mark.x1, this.mark.y1);
      ctx.lineWidth = 2;
      ctx.setLineDash([6, 4]);
      ctx.strokeStyle = "#ff3df2"; // a colour no class palette uses
      ctx.strokeRect(x0 - 1, y0 - 1, x1 - x0 + 2, y1 - y0 + 2);
      ctx.setLineDash([]);
    }
    if (this.overlay) this.overlay(ctx);
  }
}
