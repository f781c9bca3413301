// Window/level on the volume's raw values: the histogram of the whole volume (from the server,
// computed once per volume), two sliders in raw units and the presets "auto" (the scan's
// percentiles) and "full" (min to max). The server renders each slice through the chosen
// window (`window=lo,hi`), so two materials a few dozen grey values apart in a 16-bit scan stay
// apart on screen; the page only re-fetches the slice when the window changes.
import { $ } from "./dom.js";
import { api } from "./http.js";

const MARGIN = 0.5; // the sliders and the plot span the window and the auto preset, plus this share on each side

const fmt = (v) => (Math.abs(v) >= 1000 || Number.isInteger(v) ? String(Math.round(v)) : v.toPrecision(4));

export class WindowLevel {
  /**
   * @param enc the URL-encoded job id
   * @param onChange([lo, hi]) called (at most every `delay` ms while a slider moves) with the new window
   */
  constructor(enc, onChange, { delay = 120 } = {}) {
    Object.assign(this, { enc, onChange, delay });
    this.hist = null;
    this.window = null; // [lo, hi] in raw values, null until the histogram is known
    this.timer = 0;
    for (const id of ["win-lo", "win-hi"]) $(id).addEventListener("input", () => this._fromSliders(id));
    $("win-auto").addEventListener("click", () => this.set(this.hist.presets.auto));
    $("win-full").addEventListener("click", () => this.set(this.hist.presets.full));
  }

  /** Fetch the histogram and start from `initial` (default: the "auto" preset). */
  async load(initial = null) {
    this.hist = await api(`/api/job/${this.enc}/histogram`);
    this._show(initial || this.hist.presets.auto, true);
  }

  /** The window as the slice routes take it (`lo,hi`), or null before the histogram is loaded. */
  query() {
    return this.window ? `${this.window[0]},${this.window[1]}` : null;
  }

  /** Set the window and tell the page at once. */
  set([lo, hi]) {
    this._show([lo, hi], true);
    clearTimeout(this.timer);
    this.onChange(this.window);
  }

  _fromSliders(moved) {
    let lo = Number($("win-lo").value), hi = Number($("win-hi").value);
    const step = Number($("win-lo").step) || 1;
    if (hi <= lo) { if (moved === "win-lo") lo = hi - step; else hi = lo + step; }
    this._show([lo, hi], false);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onChange(this.window), this.delay);
  }

  /** Show the window; with `rescale`, the sliders and the plot span it and the auto preset
   * (plus a margin) rather than the whole range, so a few dozen grey values of a 16-bit scan
   * are many pixels of slider; "Full range" spans everything. */
  _show([lo, hi], rescale) {
    this.window = [Number(lo), Number(hi)];
    if (rescale || !this.view) {
      const { min, max, presets } = this.hist;
      const a = Math.min(lo, presets.auto[0]), b = Math.max(hi, presets.auto[1]);
      const pad = (b - a) * MARGIN;
      this.view = [Math.max(min, a - pad), Math.min(max > min ? max : min + 1, b + pad)];
      const integer = /int/.test(this.hist.dtype);
      for (const id of ["win-lo", "win-hi"]) {
        Object.assign($(id), { min: this.view[0], max: this.view[1], step: integer ? 1 : (this.view[1] - this.view[0]) / 1000 });
      }
    }
    $("win-lo").value = lo;
    $("win-hi").value = hi;
    $("win-lo-out").textContent = fmt(Number(lo));
    $("win-hi-out").textContent = fmt(Number(hi));
    this._draw();
  }

  /** Bars of log(1 + count) over the sliders' span, the window shaded and its ends marked. */
  _draw() {
    const canvas = $("histogram");
    if (!canvas || !this.hist) return;
    const ctx = canvas.getContext("2d");
    const { width, height } = canvas;
    const { edges, counts } = this.hist;
    const [x0, x1] = this.view;
    const span = (x1 - x0) || 1;
    const px = (v) => ((v - x0) / span) * width;
    const inside = counts.map((c, i) => (px(edges[i + 1]) >= 0 && px(edges[i]) < width ? c : 0));
    const top = Math.log1p(Math.max(1, ...inside));
    ctx.clearRect(0, 0, width, height);
    ctx.fillStyle = "rgba(59, 130, 246, 0.15)";
    const [lo, hi] = this.window;
    ctx.fillRect(px(lo), 0, Math.max(1, px(hi) - px(lo)), height);
    ctx.fillStyle = "#555";
    inside.forEach((c, i) => {
      if (!c) return;
      const h = (Math.log1p(c) / top) * (height - 2);
      const a = Math.max(0, px(edges[i])), b = Math.min(width, px(edges[i + 1]));
      ctx.fillRect(a, height - h, Math.max(1, b - a), h);
    });
    ctx.fillStyle = "#3b82f6";
    ctx.fillRect(px(lo) - 1, 0, 2, height);
    ctx.fillRect(px(hi) - 1, 0, 2, height);
  }
}
