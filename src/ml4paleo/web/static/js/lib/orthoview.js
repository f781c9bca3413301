// One of the viewer's three orthogonal slices: the gray slice, the segmentation's classes on top
// (coloured here from raw label slices, or drawn by the server), a linked cursor, a slider, and
// the slice drawn in physical proportions.
import { AXIS_INDEX, PLANE } from "./axes.js";
import { rgbaTable } from "./colors.js";
import { loadImage } from "./dom.js";

export class OrthoView {
  /**
   * @param figure the <figure data-axis> holding a <canvas>, a slider <input> and an <output>
   * @param state the viewer's state, read only: shape [z, y, x], spacing, cursor {z, y, x}, seg,
   *        opacity, classes [{label, color, visible}], rawLabels
   * @param sliceUrl(axis, index) URL of the slice PNG; fetchLabels(url) → {width, height, values} or null;
   *        onCursor(change) the user moved the cursor ({z?, y?, x?}); window() the display
   *        window on raw values ("lo,hi", or null for the job's)
   */
  constructor(figure, state, { sliceUrl, fetchLabels, onCursor, window = () => null }) {
    Object.assign(this, { state, sliceUrl, fetchLabels, onCursor, window });
    this.axis = figure.dataset.axis;
    this.figure = figure;
    this.canvas = figure.querySelector("canvas");
    this.slider = figure.querySelector("input");
    this.out = figure.querySelector("output");
    this.image = null; // HTMLImageElement of the gray slice
    this.labels = null; // {width, height, values} class indices, or null
    this.labelCanvas = document.createElement("canvas");
    this.request = 0;
    this.slider.addEventListener("input", () => this.onCursor({ [this.axis]: Number(this.slider.value) }));
    const pick = (e) => {
      const r = this.canvas.getBoundingClientRect();
      const { u, v } = PLANE[this.axis];
      const [nu, nv] = this.size();
      const cu = Math.floor(((e.clientX - r.left) / r.width) * nu);
      const cv = Math.floor(((e.clientY - r.top) / r.height) * nv);
      this.onCursor({ [u]: Math.max(0, Math.min(nu - 1, cu)), [v]: Math.max(0, Math.min(nv - 1, cv)) });
    };
    this.canvas.addEventListener("pointerdown", (e) => { this.canvas.setPointerCapture(e.pointerId); pick(e); });
    this.canvas.addEventListener("pointermove", (e) => { if (e.buttons & 1) pick(e); });
    this.canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const n = this.state.shape[AXIS_INDEX[this.axis]];
      this.onCursor({ [this.axis]: Math.max(0, Math.min(n - 1, this.state.cursor[this.axis] + Math.sign(e.deltaY))) });
    }, { passive: false });
  }

  /** Image size (across, down) in voxels. */
  size() {
    const { u, v } = PLANE[this.axis];
    return [this.state.shape[AXIS_INDEX[u]], this.state.shape[AXIS_INDEX[v]]];
  }

  /** Size the canvas to the physical proportions of the slice, a third of the window high at most. */
  layout() {
    const { u, v } = PLANE[this.axis];
    const [nu, nv] = this.size();
    const aspect = (nv * this.state.spacing[AXIS_INDEX[v]]) / (nu * this.state.spacing[AXIS_INDEX[u]]);
    const availW = Math.max(120, this.figure.clientWidth - 8);
    const availH = Math.max(140, (window.innerHeight - 200) / 3);
    let w = availW, h = w * aspect;
    if (h > availH) { h = availH; w = h / aspect; }
    const dpr = window.devicePixelRatio || 1;
    this.canvas.style.width = `${Math.round(w)}px`;
    this.canvas.style.height = `${Math.round(h)}px`;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.slider.max = this.state.shape[AXIS_INDEX[this.axis]] - 1;
  }

  async load() {
    const index = this.state.cursor[this.axis];
    const ticket = ++this.request;
    this.slider.value = index;
    this.out.textContent = `${this.axis} = ${index}`;
    const base = this.sliceUrl(this.axis, index);
    const useServerOverlay = this.state.seg && !this.state.rawLabels;
    const query = new URLSearchParams();
    if (useServerOverlay) { query.set("seg", this.state.seg); query.set("opacity", this.state.opacity); }
    if (this.window()) query.set("window", this.window());
    const url = query.size ? `${base}?${query}` : base;
    const [image, labels] = await Promise.all([
      loadImage(url),
      this.state.seg && this.state.rawLabels ? this.fetchLabels(`${base}?seg=${encodeURIComponent(this.state.seg)}&labels=1`) : null,
    ]);
    if (ticket !== this.request) return;
    this.image = image;
    this.labels = labels;
    this.paintLabels();
    this.draw();
  }

  paintLabels() {
    const l = this.labels;
    if (!l) return;
    this.labelCanvas.width = l.width;
    this.labelCanvas.height = l.height;
    const ctx = this.labelCanvas.getContext("2d");
    const img = ctx.createImageData(l.width, l.height);
    const table = rgbaTable(this.state.classes.filter((c) => c.visible).map((c) => [c.label, c.color]));
    for (let i = 0; i < l.values.length; i++) img.data.set(table.subarray(l.values[i] * 4, l.values[i] * 4 + 4), i * 4);
    ctx.putImageData(img, 0, 0);
  }

  draw() {
    const ctx = this.canvas.getContext("2d");
    const { width: W, height: H } = this.canvas;
    ctx.imageSmoothingEnabled = false;
    ctx.fillStyle = "#111";
    ctx.fillRect(0, 0, W, H);
    if (this.image) ctx.drawImage(this.image, 0, 0, W, H);
    if (this.labels && this.state.seg) {
      ctx.globalAlpha = this.state.opacity;
      ctx.drawImage(this.labelCanvas, 0, 0, W, H);
      ctx.globalAlpha = 1;
    }
    // linked cursor: the other two planes through this one
    const { u, v } = PLANE[this.axis];
    const [nu, nv] = this.size();
    const x = ((this.state.cursor[u] + 0.5) / nu) * W, y = ((this.state.cursor[v] + 0.5) / nv) * H;
    const gap = 6 * (window.devicePixelRatio || 1); // leave the voxel under the cursor visible
    ctx.lineWidth = 1.5 * (window.devicePixelRatio || 1);
    for (const [color, dash] of [["rgba(0, 0, 0, 0.6)", []], ["#ffe066", [6, 4]]]) {
      ctx.strokeStyle = color;
      ctx.setLineDash(dash);
      ctx.beginPath();
      ctx.moveTo(x, 0); ctx.lineTo(x, y - gap); ctx.moveTo(x, y + gap); ctx.lineTo(x, H);
      ctx.moveTo(0, y); ctx.lineTo(x - gap, y); ctx.moveTo(x + gap, y); ctx.lineTo(W, y);
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }
}
