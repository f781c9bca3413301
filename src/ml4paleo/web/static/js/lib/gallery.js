// Gallery of annotated slices: small previews (slice + painted classes), open on click, delete.
import { rgbaTable } from "./colors.js";
import { el, flash, loadImage } from "./dom.js";
import { fetchPng } from "./png.js";

const THUMB = 160; // longest side of a preview, in pixels

const PLANE_NAME = { z: "XY", y: "XZ", x: "YZ" };

export class Gallery {
  /**
   * @param list the <ul> to fill
   * @param enc the URL-encoded job id
   * @param colors function returning {value: "#rrggbb"} of the classes
   * @param aspect(axis) physical height over width of a pixel of a plane across `axis` (from the
   *        voxel size): a plane across a stack of thick slices is previewed as tall as it is, not squashed
   * @param onOpen(slice) / onDelete(slice) what a click on a preview / on its × does, with
   *        slice = {axis, index}
   */
  constructor(list, enc, { colors, onOpen, onDelete, aspect = () => 1 }) {
    Object.assign(this, { list, enc, colors, onOpen, onDelete, aspect });
    this.cache = new Map(); // "axis/index/labelled voxels" → canvas: unchanged slices are not fetched again
  }

  _preview(axis, index, labeled) {
    const key = `${axis}/${index}/${labeled}/${this.aspect(axis)}`;
    if (this.cache.has(key)) return this.cache.get(key);
    const canvas = el("canvas", { width: 1, height: 1 });
    this.cache.set(key, canvas);
    this._draw(canvas, axis, index).catch((err) => flash(err.message));
    return canvas;
  }

  async _draw(canvas, axis, index) {
    // the server shrinks the slice (?max=): a large scan's gallery does not fetch full slices
    const [img, mask] = await Promise.all([
      loadImage(`/api/job/${this.enc}/slice/${axis}/${index}.png?max=${THUMB}`),
      fetchPng(`/api/annotate/${this.enc}/annotations/${axis}/${index}`),
    ]);
    // rows stretched by the pixel aspect (the longest side kept at most THUMB)
    const tall = img.naturalHeight * this.aspect(axis);
    const fit = Math.min(1, THUMB / Math.max(img.naturalWidth, tall));
    const w = Math.max(1, Math.round(img.naturalWidth * fit)), h = Math.max(1, Math.round(tall * fit));
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(img, 0, 0, w, h);
    if (mask) {
      // painted classes at the mask's full size, then drawn shrunk (nearest) over the image
      const full = el("canvas", { width: mask.width, height: mask.height });
      const fctx = full.getContext("2d");
      const paint = fctx.createImageData(mask.width, mask.height);
      const table = rgbaTable(Object.entries(this.colors()).map(([v, hex]) => [Number(v), hex]));
      table.fill(0, 0, 4); // 0 = unlabeled
      const d = paint.data;
      for (let i = 0; i < mask.values.length; i++) {
        const t = mask.values[i] * 4;
        d[i * 4] = table[t]; d[i * 4 + 1] = table[t + 1]; d[i * 4 + 2] = table[t + 2]; d[i * 4 + 3] = table[t + 3];
      }
      fctx.putImageData(paint, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.globalAlpha = 0.5;
      ctx.drawImage(full, 0, 0, w, h);
      ctx.globalAlpha = 1;
    }
  }

  /** Show `annotated` (Map key → {axis, index, labeled}, as the page's state holds it), marking
   * the slice whose key is `current`; each preview is captioned with its plane. */
  render(annotated, current) {
    const order = { z: 0, y: 1, x: 2 };
    const entries = [...annotated.entries()].sort(([, a], [, b]) => order[a.axis] - order[b.axis] || a.index - b.index);
    const items = entries.map(([key, { axis, index, labeled }]) => {
      const name = `${PLANE_NAME[axis]} ${axis} ${index}`;
      const del = el("button", { type: "button", class: "del", title: `Delete the annotation of ${name}` }, "×");
      del.addEventListener("click", (e) => { e.stopPropagation(); this.onDelete({ axis, index }); });
      const li = el("li", { class: key === current ? "current" : "", dataset: { key, axis, index, ...(axis === "z" ? { z: index } : {}) }, title: `${name}: ${labeled} labelled pixels` },
        this._preview(axis, index, labeled), el("span", { class: "cap" }, name), del);
      li.addEventListener("click", () => { if (key !== current) this.onOpen({ axis, index }); });
      return li;
    });
    if (!items.length) items.push(el("li", { class: "empty hint" }, "None yet."));
    this.list.replaceChildren(...items);
  }
}
