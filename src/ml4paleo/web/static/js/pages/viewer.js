// Viewer: three orthogonal slices with the segmentation overlay and linked cursors, and the
// meshes in 3D (lib/view3d.js).
import { classColor } from "../lib/colors.js";
import { $, el, guarded, poll } from "../lib/dom.js";
import { enums } from "../lib/enums.js";
import { shortId } from "../lib/format.js";
import { enc, getJob } from "../lib/jobs.js";
import { OrthoView } from "../lib/orthoview.js";
import { decodePng } from "../lib/png.js";
import { MeshView } from "../lib/view3d.js";
import { WindowLevel } from "../lib/windowlevel.js";

const state = {
  job: null,
  shape: null, // [z, y, x]
  spacing: null, // [z, y, x], set with shape
  cursor: { z: 0, y: 0, x: 0 },
  seg: "",
  opacity: 0.5,
  classes: [], // segmentation labels: {label, name, color, visible}
  rawLabels: true, // the server answers ?labels=1 with a gray PNG of class indices
};

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

// the three slices are rendered by the server through the window chosen on the raw values
const windowLevel = new WindowLevel(enc, () => refreshAll());
const views = [...document.querySelectorAll(".view2d")].map((figure) => new OrthoView(figure, state, {
  sliceUrl: (axis, index) => `/api/job/${enc}/slice/${axis}/${index}.png`,
  fetchLabels,
  onCursor: setCursor,
  window: () => windowLevel.query(),
}));

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
  const meshed = seg && seg.meshed;
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
    state.spacing = job.voxel_size || (await enums()).default_voxel_size;
    state.cursor = { z: Math.floor(job.shape[0] / 2), y: Math.floor(job.shape[1] / 2), x: Math.floor(job.shape[2] / 2) };
    state.classes = (job.classes && job.classes.length ? job.classes : (await enums()).default_classes)
      .map((c) => ({ label: c.value - 1, name: c.name, color: classColor(c), visible: c.value !== 1 }));
    renderLegend();
    await windowLevel.load(job.window).catch(() => {}); // without it, slices come in the job's window
    for (const view of views) view.layout();
  }
  const done = (job.segmentations || []).filter((s) => s.done);
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
