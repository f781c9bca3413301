// The label buffer of one slice: exact class values painted by the user, with undo/redo.
//
// Painting touches only this Uint8Array (no canvas, no antialiasing): a pixel is either in the
// brush disc / polygon / filled region or not, so the mask sent to the server is exactly what
// the user painted, at the volume's resolution.

export class LabelBuffer {
  constructor(width, height, values = null) {
    this.width = width;
    this.height = height;
    this.values = values ? Uint8Array.from(values) : new Uint8Array(width * height);
    this.undoStack = [];
    this.redoStack = [];
    this.dirty = null; // {x0, y0, x1, y1} changed since the last draw, for partial redraws
    this._before = null;
    this._box = null;
  }

  /** Start an undoable edit; every change until end() becomes one undo step. */
  begin() {
    this._before = this.values.slice();
    this._box = null;
  }

  /** Finish the edit; returns true when any value changed. */
  end() {
    const before = this._before, box = this._box;
    this._before = null;
    this._box = null;
    if (!before || !box) return false;
    const patch = this._patch(before, box);
    if (!patch.changed) return false;
    this.undoStack.push(patch);
    if (this.undoStack.length > 100) this.undoStack.shift();
    this.redoStack = [];
    return true;
  }

  _patch(before, { x0, y0, x1, y1 }) {
    const w = x1 - x0 + 1, h = y1 - y0 + 1;
    const old = new Uint8Array(w * h), now = new Uint8Array(w * h);
    let changed = false;
    for (let y = 0; y < h; y++) {
      const row = (y0 + y) * this.width + x0;
      old.set(before.subarray(row, row + w), y * w);
      now.set(this.values.subarray(row, row + w), y * w);
    }
    for (let i = 0; i < old.length && !changed; i++) changed = old[i] !== now[i];
    return { x0, y0, w, h, old, now, changed };
  }

  _apply(patch, data) {
    for (let y = 0; y < patch.h; y++) {
      this.values.set(data.subarray(y * patch.w, (y + 1) * patch.w), (patch.y0 + y) * this.width + patch.x0);
    }
    this._touch(patch.x0, patch.y0, patch.x0 + patch.w - 1, patch.y0 + patch.h - 1);
  }

  undo() {
    const patch = this.undoStack.pop();
    if (!patch) return false;
    this._apply(patch, patch.old);
    this.redoStack.push(patch);
    return true;
  }

  redo() {
    const patch = this.redoStack.pop();
    if (!patch) return false;
    this._apply(patch, patch.now);
    this.undoStack.push(patch);
    return true;
  }

  _touch(x0, y0, x1, y1) {
    x0 = Math.max(0, x0); y0 = Math.max(0, y0);
    x1 = Math.min(this.width - 1, x1); y1 = Math.min(this.height - 1, y1);
    if (x1 < x0 || y1 < y0) return;
    for (const key of ["dirty", "_box"]) {
      const b = this[key];
      this[key] = b ? { x0: Math.min(b.x0, x0), y0: Math.min(b.y0, y0), x1: Math.max(b.x1, x1), y1: Math.max(b.y1, y1) } : { x0, y0, x1, y1 };
    }
  }

  /** Take and reset the rectangle changed since the last call (null when nothing changed). */
  takeDirty() {
    const d = this.dirty;
    this.dirty = null;
    return d;
  }

  /** A filled disc of `size` pixels across, centred on pixel (cx, cy). */
  disc(cx, cy, size, value) {
    const r = size / 2;
    const x0 = Math.floor(cx - r + 0.5), x1 = Math.ceil(cx + r - 0.5);
    const y0 = Math.floor(cy - r + 0.5), y1 = Math.ceil(cy + r - 0.5);
    const r2 = size <= 1 ? 0.25 : r * r;
    for (let y = Math.max(0, y0); y <= Math.min(this.height - 1, y1); y++) {
      for (let x = Math.max(0, x0); x <= Math.min(this.width - 1, x1); x++) {
        const dx = x - cx, dy = y - cy;
        if (dx * dx + dy * dy <= r2) this.values[y * this.width + x] = value;
      }
    }
    this._touch(x0, y0, x1, y1);
  }

  /** A stroke of discs from (x0, y0) to (x1, y1) in pixel coordinates, with no gaps. */
  line(x0, y0, x1, y1, size, value) {
    const ax = Math.floor(x0), ay = Math.floor(y0), bx = Math.floor(x1), by = Math.floor(y1);
    const steps = Math.max(Math.abs(bx - ax), Math.abs(by - ay), 1);
    for (let i = 0; i <= steps; i++) {
      this.disc(Math.round(ax + ((bx - ax) * i) / steps), Math.round(ay + ((by - ay) * i) / steps), size, value);
    }
  }

  /** Fill a polygon (even-odd rule, pixel centres) given as [[x, y], ...] in pixel coordinates. */
  polygon(points, value) {
    if (points.length < 3) return;
    const ys = points.map((p) => p[1]);
    const yMin = Math.max(0, Math.floor(Math.min(...ys))), yMax = Math.min(this.height - 1, Math.ceil(Math.max(...ys)));
    let xMinAll = Infinity, xMaxAll = -Infinity;
    for (let y = yMin; y <= yMax; y++) {
      const yc = y + 0.5;
      const xs = [];
      for (let i = 0; i < points.length; i++) {
        const [ax, ay] = points[i], [bx, by] = points[(i + 1) % points.length];
        if ((ay <= yc && by > yc) || (by <= yc && ay > yc)) xs.push(ax + ((yc - ay) * (bx - ax)) / (by - ay));
      }
      xs.sort((a, b) => a - b);
      for (let k = 0; k + 1 < xs.length; k += 2) {
        const from = Math.max(0, Math.ceil(xs[k] - 0.5)), to = Math.min(this.width - 1, Math.floor(xs[k + 1] - 0.5));
        for (let x = from; x <= to; x++) this.values[y * this.width + x] = value;
        if (from <= to) { xMinAll = Math.min(xMinAll, from); xMaxAll = Math.max(xMaxAll, to); }
      }
    }
    if (xMinAll <= xMaxAll) this._touch(xMinAll, yMin, xMaxAll, yMax);
  }

  /**
   * Flood-fill the 4-connected region of equal label around (x, y) with `value`; with `gray`
   * (the slice's 8-bit values) and `tolerance` > 0, only through pixels whose gray value is
   * within `tolerance` of the clicked one (a "magic wand" that stops at edges in the image).
   */
  flood(x, y, value, gray = null, tolerance = 0) {
    const { width: w, height: h, values } = this;
    if (x < 0 || y < 0 || x >= w || y >= h) return;
    const target = values[y * w + x];
    if (target === value) return;
    const useGray = gray && tolerance > 0;
    const g0 = useGray ? gray[y * w + x] : 0;
    const stack = [y * w + x];
    let x0 = x, x1 = x, y0 = y, y1 = y;
    while (stack.length) {
      const i = stack.pop();
      if (values[i] !== target) continue;
      if (useGray && Math.abs(gray[i] - g0) > tolerance) continue;
      values[i] = value;
      const px = i % w, py = (i - px) / w;
      if (px < x0) x0 = px; if (px > x1) x1 = px; if (py < y0) y0 = py; if (py > y1) y1 = py;
      if (px > 0) stack.push(i - 1);
      if (px < w - 1) stack.push(i + 1);
      if (py > 0) stack.push(i - w);
      if (py < h - 1) stack.push(i + w);
    }
    this._touch(x0, y0, x1, y1);
  }

  /** Set every pixel where `where(i)` holds to `valueOf(i)` (used by "accept prediction"). */
  assign(where, valueOf) {
    for (let i = 0; i < this.values.length; i++) if (where(i)) this.values[i] = valueOf(i);
    this._touch(0, 0, this.width - 1, this.height - 1);
  }

  clear() {
    this.values.fill(0);
    this._touch(0, 0, this.width - 1, this.height - 1);
  }

  /** Number of labelled pixels per value: {value: count}. */
  counts() {
    const c = new Map();
    for (const v of this.values) if (v) c.set(v, (c.get(v) || 0) + 1);
    return c;
  }
}
