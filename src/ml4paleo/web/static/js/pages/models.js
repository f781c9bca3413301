// Models page: every trained model, its training data and leave-one-slice-out scores; for a
// U-Net, its training curve.
import { curveChart } from "../lib/curvechart.js";
import { diceChart } from "../lib/dicechart.js";
import { el, poll } from "../lib/dom.js";
import { formatDate, shortId } from "../lib/format.js";
import { api } from "../lib/http.js";
import { enc, getJob, modelReport } from "../lib/jobs.js";
import { metric, perClass } from "../lib/metrics.js";

const fmt = (v) => (typeof v === "number" ? v.toFixed(3) : "–");

function className(m, key) {
  const cls = (m.classes || []).map((c) => (typeof c === "string" ? c : c.name));
  return /^\d+$/.test(String(key)) && cls[Number(key)] ? cls[Number(key)] : key;
}

/** A model saved before its leave-one-slice-out (a `start` job segments first) has no scores yet. */
const validationNote = (m) => (m.validating ? "validating…" : m.validation_error ? "validation failed" : "");

function scoreCell(m, name) {
  if (validationNote(m)) {
    return el("td", { class: "num hint", title: m.validation_error || "" }, validationNote(m));
  }
  const overall = metric(m, name);
  const detail = perClass(m, name);
  const parts = detail ? Object.entries(detail).map(([k, v]) => `${className(m, k)} ${fmt(v)}`) : [];
  return el("td", { class: "num", title: parts.join("\n") }, fmt(overall),
    parts.map((part) => el("div", { class: "hint nowrap" }, part)));
}

function row(m, i) {
  const classes = (m.classes || []).map((c) => (typeof c === "string" ? c : c.name)).join(", ");
  const voxels = m.voxels_per_class
    ? Object.entries(m.voxels_per_class).map(([k, v]) => el("div", { class: "nowrap" }, `${className(m, k)} ${Number(v).toLocaleString()}`))
    : "–";
  return el("tr", {},
    el("td", { class: "nowrap" }, `#${i + 1} `, el("code", {}, shortId(m.model_id))),
    el("td", {}, m.status || "–",
      validationNote(m) ? el("div", { class: "hint" }, validationNote(m)) : ""),
    el("td", { class: "nowrap" }, formatDate(m.created_at)),
    el("td", {}, classes || "–"),
    el("td", { class: "num" }, m.n_slices ?? "–"),
    el("td", {}, voxels),
    scoreCell(m, "dice"),
    scoreCell(m, "iou"),
    el("td", {}, m.ready ? el("a", { href: `/api/job/${enc}/models/${encodeURIComponent(m.model_id)}/download` }, "download") : ""));
}

/** The newest model's estimate of its Dice on the whole volume (from where it is least sure), and how it is made:
 * one number, or, where nothing held out measured the painted outlines' odds (one slice of outlines), a range that says so. */
async function estimate(m) {
  const box = document.getElementById("choice-estimate");
  const advice = await api(`/api/annotate/${enc}/suggestions`);
  const dice = advice.estimated_mean_dice;
  const range = advice.estimated_mean_dice_range;
  box.hidden = advice.model_id !== m.model_id || (typeof dice !== "number" && !Array.isArray(range));
  if (box.hidden) return;
  const how = el("span", { class: "hint" }, `How: ${advice.calibration || "not said"}.`);
  if (typeof dice !== "number") {
    const per = Object.entries(advice.estimated_dice_range || {}).map(([k, [lo, hi]]) => `${k} ${fmt(lo)}–${fmt(hi)}`).join(", ");
    box.replaceChildren(el("strong", {}, `Estimated Dice of the whole volume: between ${fmt(range[0])} and ${fmt(range[1])}`),
      per ? ` (${per}). ` : ". ", how);
    return;
  }
  const per = Object.entries(advice.estimated_dice || {}).map(([k, v]) => `${k} ${fmt(v)}`).join(", ");
  box.replaceChildren(el("strong", {}, `Estimated Dice of the whole volume: ${fmt(dice)}`), per ? ` (${per}). ` : ". ", how);
}

/** A plane as the pages name it ("z5", "y48"): the model's JSON gives a z slice as its index alone. */
const planeName = (ref) => (/^\d+$/.test(String(ref)) ? `z${ref}` : String(ref));

/** Which method the newest ready model uses, every candidate's held-out Dice per class, and why. */
async function choice(models) {
  const box = document.getElementById("choice");
  const ready = models.filter((m) => m.ready);
  if (!ready.length) { box.hidden = true; return; }
  const m = ready[ready.length - 1];
  const r = await modelReport(m.model_id);
  const classes = r.classes || [];
  const cell = (metrics, c) => fmt(metrics && metrics[c] ? metrics[c].dice : null);
  const rows = Object.entries(r.candidates || {}).map(([name, c]) => el("tr", { class: name === r.method ? "chosen" : "", "data-method": name },
    el("td", {}, name === r.method ? el("strong", {}, `${name} ✓`) : name),
    ...classes.map((k) => el("td", { class: "num" }, cell(c.metrics, k))),
    ...classes.map((k) => el("td", { class: "num hint" }, cell(c.interior, k))),
    ...classes.map((k) => el("td", { class: "num hint" }, cell(c.extrapolated, k))),
    el("td", { class: "num" }, typeof c.seconds === "number" ? `${c.seconds.toFixed(1)} s` : "–")));
  const head = el("tr", {}, el("th", {}, "Method"),
    ...classes.map((k) => el("th", { class: "num" }, `Dice ${k}`)),
    ...classes.map((k) => el("th", { class: "num", title: "held-out slices between other painted slices" }, `between ${k}`)),
    ...classes.map((k) => el("th", { class: "num", title: "held-out first/last painted slices: extrapolation" }, `beyond ${k}`)),
    el("th", { class: "num" }, "Time"));
  document.getElementById("choice-model").textContent = `#${ready.length} (${shortId(m.model_id)})`;
  document.getElementById("choice-method").textContent = r.method || "–";
  const note = m.validating ? " Validating… (the held-out scores follow the segmentation)"
    : m.validation_error ? ` The validation failed: ${m.validation_error}` : "";
  document.getElementById("choice-reason").textContent = (r.method_reason || "") + note;
  // one slice of outlines: the methods were scored on stripes of it, which say nothing along the stack
  const within = Object.values(r.candidates || {}).map((c) => c.within_slice).find(Boolean);
  const across = Object.values(r.candidates || {}).some((c) => c.across);
  const how = document.getElementById("choice-how");
  how.dataset.leaveOneOut ??= how.textContent;
  how.textContent = within
    ? `One slice holds outlines (${planeName(within)}): each method was trained on alternate stripes of it and scored on the others. ` +
      "That chose the method but says nothing about the slices between and beyond, so the table has no scores: " +
      "paint a second slice with outlines for leave-one-slice-out scores."
    : across
      ? "Scored across the stack: each plane painted as a correction was held out in turn. A correction lies where " +
        "the model of its time was wrong, so that model's method scores low on them by design; another method " +
        "replaces it only where it is right on every one."
      : how.dataset.leaveOneOut;
  document.getElementById("choice-network").textContent = r.network ? `U-Net ${r.network}.` : "";
  document.querySelector("#choice-table thead").replaceChildren(head);
  document.querySelector("#choice-table tbody").replaceChildren(...rows);
  const completed = r.completed_slices || [];
  document.getElementById("choice-completed").textContent = completed.length
    ? `Slices completed from strokes (the interpolated outlines are drawn through them): ${completed.map(planeName).join(", ")}.` : "";
  document.getElementById("choice-warnings").replaceChildren(...(r.warnings || []).map((w) => el("li", {}, w)));
  trainingCurve(r.training_curve);
  await estimate(m);
  box.hidden = false;
}

/** The U-Net's epochs (a model of another kind has none: the figure stays hidden). */
function trainingCurve(curve) {
  const figure = document.getElementById("curve");
  figure.hidden = !curve || !(curve.epochs || []).length;
  if (figure.hidden) return;
  const drawn = curveChart(document.getElementById("curve-chart"), curve);
  document.getElementById("curve-summary").textContent =
    `${drawn.epochs} epoch(s), ${drawn.folds} fold(s)`
    + (curve.best_epochs ? `; weights kept from epoch ${curve.best_epochs}.` : ".");
}

let lastKey = "";
poll(async () => {
  const job = await getJob();
  const models = [...(job.models || [])].sort((a, b) => String(a.created_at).localeCompare(String(b.created_at)));
  const key = JSON.stringify(models);
  if (key === lastKey) return true;
  lastKey = key;
  document.querySelector("#models tbody").replaceChildren(...models.map(row));
  document.getElementById("models-empty").hidden = models.length > 0;
  diceChart(document.getElementById("dice-chart"), models);
  await choice(models);
  return true;
}, 3000);
