// Objects page: find the objects of a segmentation, see them coloured one by one in a slice and
// in 3D, sort and select them in the table (a click in the slice or in 3D selects the row, and
// the row's object lights up in both), merge a wrong split,
// download the table and one object's mesh.
import { $, el, flash, guarded, poll } from "../lib/dom.js";
import { enums } from "../lib/enums.js";
import { api, post } from "../lib/http.js";
import { enc, getJob } from "../lib/jobs.js";
import { ObjectsView } from "../lib/objects3d.js";

const COLUMNS = [
  ["id", "Id", (o) => o.id],
  ["class_name", "Class", (o) => o.class_name],
  ["volume", "Volume", (o) => o.volume, "³"],
  ["surface_area", "Surface", (o) => o.surface_area, "²"],
  ["sphericity", "Sphericity", (o) => o.sphericity],
  ["thickness_mean", "Mean thickness", (o) => o.thickness_mean, ""],
  ["thickness_max", "Max thickness", (o) => o.thickness_max, ""],
  ["cavity_volume", "Cavities", (o) => o.cavity_volume, "³"],
  ["axis_major", "Length", (o) => o.axis_lengths[0], ""],
  ["grey_mean", "Mean grey", (o) => o.grey_mean],
];

const state = { unitSymbols: {}, segId: "", table: null, sortKey: "id", sortUp: true, selected: 0, z: 0, depth: 1, params: null,
  ticked: new Set(), tableKey: "", splitting: null, colourBy: "objects" };

const view3d = new ObjectsView($("objects-3d"), $("objects-3d-msg"), (id) => select(id, { moveSlice: true }));

const segUrl = () => `/api/job/${enc}/segmentation/${encodeURIComponent(state.segId)}`;

function fmt(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  return Number.isInteger(value) ? String(value) : value.toPrecision(4);
}

function renderSlice() {
  const img = $("objects-slice");
  const run = state.table ? state.table.ready.task_id : 0; // a new run: a new image, never the cached one
  const thickness = state.colourBy === "thickness" && state.table && state.table.thickness_map;
  img.src = thickness ? `${segUrl()}/objects/thickness/z/${state.z}.png?run=${run}`
    : `${segUrl()}/objects/slice/z/${state.z}.png?selected=${state.selected}&run=${run}`;
  $("thickness-bar").hidden = !thickness;
  if (thickness) {
    const unit = state.unitSymbols[state.table.unit] || state.table.unit || "";
    $("thickness-bar-ramp").style.background = `linear-gradient(to right, ${state.table.thickness_colors.join(", ")})`;
    $("thickness-bar-high").textContent = `${fmt(state.table.thickness_top)} ${unit}`;
  }
  $("objects-z").value = String(state.z);
  $("objects-z-text").textContent = `${state.z + 1} / ${state.depth}`;
}

function select(id, { moveSlice = false } = {}) {
  state.selected = id;
  const obj = state.table && state.table.objects.find((o) => o.id === id);
  if (obj && moveSlice) {
    const vz = (state.table.voxel_size || [1])[0];
    state.z = Math.min(state.depth - 1, Math.max(0, Math.round(obj.centroid[0] / vz)));
  }
  const stl = $("object-stl");
  stl.hidden = !obj;
  if (obj) stl.href = `${segUrl()}/objects/${id}.stl`;
  for (const tr of document.querySelectorAll("#objects-table tbody tr")) {
    tr.classList.toggle("selected", Number(tr.dataset.id) === id);
  }
  view3d.select(id);
  renderSlice();
}

function renderTable() {
  const unit = state.unitSymbols[state.table.unit] || state.table.unit || "";
  $("objects-table").querySelector("thead tr").replaceChildren(el("th", {}, ""), ...COLUMNS.map(([key, title, , power]) =>
    el("th", { dataset: { key }, class: key === "class_name" ? "" : "num",
      onclick: () => { state.sortUp = state.sortKey === key ? !state.sortUp : true; state.sortKey = key; renderTable(); } },
    `${title}${power !== undefined ? ` (${unit}${power})` : ""}${state.sortKey === key ? (state.sortUp ? " ▲" : " ▼") : ""}`)));
  const getter = COLUMNS.find(([key]) => key === state.sortKey)[2];
  const rows = [...state.table.objects].sort((a, b) => {
    const x = getter(a), y = getter(b);
    const order = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
    return state.sortUp ? order : -order;
  });
  $("objects-table").querySelector("tbody").replaceChildren(...rows.map((o) => el("tr", {
    dataset: { id: String(o.id) }, class: o.id === state.selected ? "selected" : "",
    onclick: (e) => { if (e.target.tagName !== "INPUT") select(o.id, { moveSlice: true }); } },
  el("td", {}, el("input", { type: "checkbox", "aria-label": `tick object ${o.id}`, checked: state.ticked.has(o.id),
    onchange: (e) => { e.target.checked ? state.ticked.add(o.id) : state.ticked.delete(o.id); updateMerge(); } })),
  ...COLUMNS.map(([key, , get]) => el("td", { class: key === "class_name" ? "" : "num" }, fmt(get(o)))))));
}

/** A small bar chart of a class's thickness histogram (voxels per bin), as inline SVG. */
function histogramSvg(hist, unit) {
  const counts = hist.counts || [];
  const top = Math.max(1, ...counts);
  const w = 160, h = 32, bar = w / Math.max(1, counts.length);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  svg.setAttribute("width", String(w));
  svg.setAttribute("height", String(h));
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `thickness histogram, bins of ${fmt(hist.bin_width)} ${unit}`);
  counts.forEach((c, i) => {
    const r = document.createElementNS(ns, "rect");
    const height = c / top * h;
    r.setAttribute("x", String(i * bar));
    r.setAttribute("y", String(h - height));
    r.setAttribute("width", String(Math.max(bar - 1, 1)));
    r.setAttribute("height", String(height));
    r.setAttribute("class", "histogram-bar");
    const tip = document.createElementNS(ns, "title");
    tip.textContent = `${fmt(i * hist.bin_width)}–${fmt((i + 1) * hist.bin_width)} ${unit}: ${c} voxels`;
    r.append(tip);
    svg.append(r);
  });
  return svg;
}

function renderClasses() {
  const unit = state.unitSymbols[state.table.unit] || state.table.unit || "";
  $("classes-table").querySelector("tbody").replaceChildren(...(state.table.classes || []).map((c) => el("tr", {
    dataset: { cls: String(c.class) } },
  el("td", {}, c.class_name), el("td", { class: "num" }, `${fmt(c.volume)} ${unit}³`),
  el("td", { class: "num" }, `${fmt(c.cavity_volume)} ${unit}³`),
  el("td", { class: "num" }, `${(100 * c.porosity).toFixed(2)} %`),
  el("td", { class: "num" }, `${fmt(c.thickness_mean)} ${unit}`),
  el("td", {}, histogramSvg(c.thickness_histogram || {}, unit)))));
}

function updateMerge() {
  $("merge-objects").disabled = state.ticked.size < 2;
}

/** The options of the next run: the form's, or (for a merge) the ready run's plus the new merge. */
function formOptions() {
  const cls = $("objects-class").value;
  return { seg_id: state.segId, split: $("objects-split").value, min_size: Number($("objects-min-size").value || 0),
    ...(cls ? { classes: [cls] } : {}) };
}

async function queue(options) {
  await post(`/api/job/${enc}/objects`, options);
  state.tableKey = "";
  startPolling();
}

let stopPolling = null;
function startPolling() {
  if (stopPolling) stopPolling();
  stopPolling = poll(async () => {
    if (!state.segId) return false;
    const doc = await api(`${segUrl()}/objects`);
    $("objects-progress-box").hidden = !doc.pending;
    if (doc.pending) {
      $("objects-progress").value = doc.pending.progress || 0;
      $("objects-stage").textContent = doc.pending.stage || doc.pending.status;
    }
    $("objects-error").hidden = !doc.error;
    $("objects-error").textContent = doc.error ? `Finding objects failed: ${doc.error}` : "";
    $("find-objects").disabled = Boolean(doc.pending);
    const key = JSON.stringify(doc.ready);
    if (doc.ready && key !== state.tableKey) {
      state.tableKey = key;
      state.table = doc;
      state.params = doc.parameters;
      state.ticked.clear();
      updateMerge();
      $("objects-card").hidden = false;
      $("objects-count").textContent = `${doc.objects.length} object${doc.objects.length === 1 ? "" : "s"}`;
      $("objects-messages").replaceChildren(...(doc.messages || []).map((m) => el("li", {}, m)));
      $("objects-csv").href = `${segUrl()}/objects.csv`;
      $("objects-json").href = `${segUrl()}/objects.json`;
      $("objects-meshes").href = `${segUrl()}/objects/meshes.zip?run=${doc.ready.task_id}`;
      renderTable();
      renderClasses();
      select(doc.objects.some((o) => o.id === state.selected) ? state.selected : 0);
      guarded(() => view3d.load(doc.ready.task_id, doc.objects, (id) => `${segUrl()}/objects/${id}.stl`));
    }
    return Boolean(doc.pending);
  }, 1500);
}

$("objects-form").addEventListener("submit", (e) => {
  e.preventDefault();
  guarded(() => queue(formOptions()));
});

$("merge-objects").addEventListener("click", () => guarded(async () => {
  const ids = [...state.ticked].sort((a, b) => a - b);
  const options = readyOptions();
  if (options.seeds.length) {
    // merges apply before seeded splits: a merge of ids made by a split would name other objects
    flash("Merge before splitting: find the objects again to merge these.");
    return;
  }
  await queue({ ...options, merge: [...options.merge, ids] });
}));

$("objects-z").addEventListener("input", (e) => { state.z = Number(e.target.value); renderSlice(); });
$("objects-colour").addEventListener("change", (e) => { state.colourBy = e.target.value; renderSlice(); });

/** The options of the ready run, to make it again with one more correction. */
function readyOptions() {
  const p = state.params || {};
  return { seg_id: state.segId, split: p.split || "auto", min_size: p.min_size || 0,
    ...(p.classes ? { classes: p.classes } : {}), merge: p.merge || [], seeds: p.seeds || [] };
}

/** Split mode: the next clicks in the slice are the parts of one object (part 1, part 2, ...). */
function showSplit() {
  const s = state.splitting;
  $("split-help").hidden = !s;
  $("split-go").hidden = !s;
  $("split-object").textContent = s ? "Cancel the split" : "Split an object…";
  if (!s) return;
  $("split-go").disabled = s.points.length < 2;
  $("split-help").textContent = s.points.length
    ? `Slice ${s.z + 1}: ${s.points.map(([r, c, p]) => `part ${p} at (${r}, ${c})`).join(", ")}. `
      + (s.points.length < 2 ? "Click the other part." : "Click more parts, or Split.")
    : "Click one part of the object in the slice, then the other.";
}

$("split-object").addEventListener("click", () => {
  state.splitting = state.splitting ? null : { z: state.z, points: [] };
  showSplit();
});

$("split-go").addEventListener("click", () => guarded(async () => {
  const { z, points } = state.splitting;
  const options = readyOptions();
  state.splitting = null;
  showSplit();
  await queue({ ...options, seeds: [...options.seeds, { z, points }] });
}));

$("objects-slice").addEventListener("click", (e) => guarded(async () => {
  const img = e.currentTarget;
  const rect = img.getBoundingClientRect();
  const row = Math.floor((e.clientY - rect.top) / rect.height * img.naturalHeight);
  const col = Math.floor((e.clientX - rect.left) / rect.width * img.naturalWidth);
  const s = state.splitting;
  if (s) {
    if (s.z !== state.z) s.points = []; // the parts of one split lie on one slice
    s.z = state.z;
    s.points.push([row, col, s.points.length + 1]);
    showSplit();
    return;
  }
  const { id } = await api(`${segUrl()}/objects/at/z/${state.z}/${row}/${col}`);
  select(id);
}));

$("objects-seg").addEventListener("change", (e) => { state.segId = e.target.value; state.tableKey = ""; startPolling(); });

guarded(async () => {
  const [job, { unit_symbols: symbols }] = await Promise.all([getJob(), enums()]);
  state.unitSymbols = symbols || {};
  const segs = (job.segmentations || []).filter((s) => s.done)
    .sort((a, b) => String(b.created_at).localeCompare(String(a.created_at))); // newest first
  $("objects-none").hidden = segs.length > 0;
  $("objects-form").hidden = segs.length === 0;
  if (!segs.length) return;
  state.depth = job.shape[0];
  state.z = Math.floor(state.depth / 2);
  $("objects-z").max = String(state.depth - 1);
  $("objects-seg").replaceChildren(...segs.map((s) => el("option", { value: s.seg_id }, s.seg_id)));
  state.segId = segs[0].seg_id;
  $("objects-class").append(...(job.classes || []).filter((c) => c.value >= 2)
    .map((c) => el("option", { value: c.name }, c.name)));
  startPolling();
});
