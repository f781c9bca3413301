// Viewer: three orthogonal slices with the segmentation overlay and linked cursors, and the
// meshes in 3D (lib/view3d.js).
import { AXIS_INDEX, PLANE } from "../lib/axes.js";
import { classColor, rgbaTable } from "../lib/colors.js";
import { $, el, guarded, loadImage, poll } from "../lib/dom.js";
import { enums } from "../lib/enums.js";
import { shortId } from "../lib/format.js";
import { enc, getJob } from "../lib/jobs.js";
import { decodePng } from "../lib/png.js";
import { MeshView } from "../lib/view3d.js";

const state = {
  job: null,
  shape: null, // [z, y, x]
  spacing: [1, 1, 1],
  cursor: { z: 0, y: 0, x: 0 },
  seg: "",
  opacity: 0.5,
  classes: [], // segmentation labels: {label, name, color, visible}
  rawLabels: true, // the server answers ?labels=1 with a gray PNG of class indices
};

// ---------------------------------------------------------------- 2D views
class OrthoView {
  constructor(figure) {
    this.axis = figure.dataset.axis;
    this.figure = figure;
    this.canvas = figure.querySelector("canvas");
    this.slider = figure.querySelector("input");
    this.out = figure.querySelector("output");
    this.image = null; // HTMLImageElement of the gray slice
    this.labels = null; // {width, height, values} class indices, or null
    this.labelCanvas = document.createElement("canvas");
    this.request = 0;
    this.slider.addEventListener("input", () => setCursor({ [this.axis]: Number(this.slider.value) }));
    const pick = (e) => {
      const r = this.canvas.getBoundingClientRect();
      const { u, v } = PLANE[this.axis];
      const [nu, nv] = this.size();
      const cu = Math.floor(((e.clientX - r.left) / r.width) * nu);
      const cv = Math.floor(((e.clientY - r.top) / r.height) * nv);
      setCursor({ [u]: Math.max(0, Math.min(nu - 1, cu)), [v]: Math.max(0, Math.min(nv - 1, cv)) });
    };
    this.canvas.addEventListener("pointerdown", (e) => { this.canvas.setPointerCapture(e.pointerId); pick(e); });
    this.canvas.addEventListener("pointermove", (e) => { if (e.buttons & 1) pick(e); });
    this.canvas.addEventListener("wheel", (e) => {
      e.preventDefault();
      const n = state.shape[AXIS_INDEX[this.axis]];
      setCursor({ [this.axis]: Math.max(0, Math.min(n - 1, state.cursor[this.axis] + Math.sign(e.deltaY))) });
    }, { passive: false });
  }

  /** Image size (across, down) in voxels. */
  size() {
    const { u, v } = PLANE[this.axis];
    return [state.shape[AXIS_INDEX[u]], state.shape[AXIS_INDEX[v]]];
  }

  /** Size the canvas to the physical proportions of the slice, a third of the window high at most. */
  layout() {
    const { u, v } = PLANE[this.axis];
    const [nu, nv] = this.size();
    const aspect = (nv * state.spacing[AXIS_INDEX[v]]) / (nu * state.spacing[AXIS_INDEX[u]]);
    const availW = Math.max(120, this.figure.clientWidth - 8);
    const availH = Math.max(140, (window.innerHeight - 200) / 3);
    let w = availW, h = w * aspect;
    if (h > availH) { h = availH; w = h / aspect; }
    const dpr = window.devicePixelRatio || 1;
    this.canvas.style.width = `${Math.round(w)}px`;
    this.canvas.style.height = `${Math.round(h)}px`;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(h * dpr);
    this.slider.max = state.shape[AXIS_INDEX[this.axis]] - 1;
  }

  async load() {
    const index = state.cursor[this.axis];
    const ticket = ++this.request;
    this.slider.value = index;
    this.out.textContent = `${this.axis} = ${index}`;
    const base = `/api/job/${enc}/slice/${this.axis}/${index}.png`;
    const useServerOverlay = state.seg && !state.rawLabels;
    const url = useServerOverlay ? `${base}?seg=${encodeURIComponent(state.seg)}&opacity=${state.opacity}` : base;
    const [image, labels] = await Promise.all([
      loadImage(url),
      state.seg && state.rawLabels ? fetchLabels(`${base}?seg=${encodeURIComponent(state.seg)}&labels=1`) : null,
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
    const table = rgbaTable(state.classes.filter((c) => c.visible).map((c) => [c.label, c.color]));
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
    if (this.labels && state.seg) {
      ctx.globalAlpha = state.opacity;
      ctx.drawImage(this.labelCanvas, 0, 0, W, H);
      ctx.globalAlpha = 1;
    }
    // linked cursor: the other two planes through this one
    const { u, v } = PLANE[this.axis];
    const [nu, nv] = this.size();
    const x = ((state.cursor[u] + 0.5) / nu) * W, y = ((state.cursor[v] + 0.5) / nv) * H;
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

/** Class indices of one slice, exact; null (and server-side overlay from then on) when the
 * server answers with a colour image instead of the gray label PNG. */
async function fetchLabels(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`could not load ${url} (${response.status})`);
  const png = await decodePng(new Uint8Array(await response.arrayBuffer()));
  if (png.colorType !== 0) {
    state.rawLabels = false;
    renderLegend();
    refreshAll();
    return null;
  }
  return png;
}

const views = [...document.querySelectorAll(".view2d")].map((f) => new OrthoView(f));

function setCursor(change) {
  const moved = Object.keys(change).filter((k) => change[k] !== state.cursor[k]);
  if (!moved.length) return;
  Object.assign(state.cursor, change);
  for (const view of views) {
    if (moved.includes(view.axis)) guarded(() => view.load());
    else view.draw();
  }
}

function refreshAll() {
  for (const view of views) guarded(() => view.load());
}

// ---------------------------------------------------------------- classes & segmentation
function renderLegend() {
  const items = state.classes.map((c) => {
    const show = el("input", { type: "checkbox", checked: c.visible, "aria-label": `Show ${c.name}` });
    const color = el("input", { type: "color", value: c.color, "aria-label": `Colour of ${c.name}` });
    show.addEventListener("change", () => { c.visible = show.checked; repaintLabels(); });
    color.addEventListener("input", () => { c.color = color.value; repaintLabels(); });
    show.disabled = color.disabled = !state.rawLabels;
    return el("li", {}, show, color, el("span", {}, c.name));
  });
  $("legend").replaceChildren(...items);
  if (!state.rawLabels && items.length) $("legend").append(el("li", { class: "hint" }, "This server draws the overlay itself: per-class colour and visibility need raw label slices (?labels=1)."));
}

function repaintLabels() {
  for (const view of views) { view.paintLabels(); view.draw(); }
}

$("seg-opacity").addEventListener("input", (e) => {
  state.opacity = e.target.value / 100;
  if (state.rawLabels) for (const view of views) view.draw();
});
$("seg-opacity").addEventListener("change", () => { if (!state.rawLabels) refreshAll(); });
$("seg-select").addEventListener("change", (e) => guarded(() => selectSeg(e.target.value)));

const mesh3d = new MeshView($("view3d"), $("view3d-msg"), $("mesh-list"), $("measure"));
$("reset-camera").addEventListener("click", () => mesh3d.resetCamera());
$("screenshot").addEventListener("click", () => mesh3d.screenshot(`${(state.job && state.job.name) || "ml4paleo"}-3d.png`));

async function selectSeg(segId) {
  state.seg = segId;
  refreshAll();
  updateNeuroglancer();
  // Ask for meshes only once they exist (a 409 would show up as an error in the console).
  const seg = ((state.job && state.job.segmentations) || []).find((s) => s.seg_id === segId);
  const meshed = seg && ["meshed", "done", "ready", "complete"].includes(seg.mesh_status);
  await mesh3d.load(meshed ? `/api/job/${enc}/segmentation/${encodeURIComponent(segId)}/meshes` : null, state.classes);
}

function updateNeuroglancer() {
  const link = $("neuroglancer");
  if (!link) return;
  const origin = window.location.origin;
  const layers = [{ type: "image", name: "volume", source: `zarr://${origin}/api/job/${enc}/zarr/` }];
  if (state.seg) layers.push({ type: "segmentation", name: "segmentation", source: `zarr://${origin}/api/job/${enc}/segmentation/${encodeURIComponent(state.seg)}/zarr/` });
  link.href = `${link.dataset.base.replace(/\/$/, "")}/#!${encodeURIComponent(JSON.stringify({ layers, layout: "4panel" }))}`;
}

let segKey = "";
async function refreshJob() {
  const job = await getJob();
  state.job = job;
  if (!job.shape) {
    $("view3d-msg").textContent = "The volume is not converted yet.";
    return;
  }
  const first = !state.shape;
  if (first) {
    state.shape = job.shape;
    state.spacing = job.voxel_size || [1, 1, 1];
    state.cursor = { z: Math.floor(job.shape[0] / 2), y: Math.floor(job.shape[1] / 2), x: Math.floor(job.shape[2] / 2) };
    state.classes = (job.classes && job.classes.length ? job.classes : (await enums()).default_classes)
      .map((c) => ({ label: c.value - 1, name: c.name, color: classColor(c), visible: c.value !== 1 }));
    renderLegend();
    for (const view of views) view.layout();
  }
  const done = (job.segmentations || []).filter((s) => ["segmented", "done", "meshed"].includes(s.status));
  const key = done.map((s) => `${s.seg_id}:${s.mesh_status}`).join(",");
  if (key !== segKey) {
    segKey = key;
    const select = $("seg-select");
    const previous = select.value;
    select.replaceChildren(el("option", { value: "" }, "none"),
      ...done.map((s, i) => el("option", { value: s.seg_id }, `#${i + 1} · ${shortId(s.seg_id)}${s.mesh_status && s.mesh_status !== "none" ? ` · meshes ${s.mesh_status}` : ""}`)));
    const pick = done.some((s) => s.seg_id === previous) && previous ? previous : done.length ? done[done.length - 1].seg_id : "";
    select.value = pick;
    await selectSeg(pick);
  } else if (first) {
    refreshAll();
  }
}

window.addEventListener("resize", () => { if (state.shape) { for (const v of views) v.layout(); for (const v of views) v.draw(); } });
updateNeuroglancer();
poll(refreshJob, 4000);
