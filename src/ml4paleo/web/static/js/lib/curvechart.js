// Line chart (SVG) of a U-Net's training: held-out Dice per epoch of each leave-one-slice-out
// fold (and their mean), and the final fit's training loss, on one epoch axis.
import { svgNode as node } from "./svg.js";

const DICE = "#2f7d4f";
const LOSS = "#8a5a2b";

/** Mean of the numbers at each index (epochs some folds did not reach are skipped). */
function meanPerEpoch(series) {
  const n = Math.max(0, ...series.map((s) => s.length));
  return Array.from({ length: n }, (_, i) => {
    const v = series.map((s) => s[i]).filter((x) => typeof x === "number");
    return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
  });
}

/** Draw `curve` (a model report's `training_curve`: {epochs, best_epochs, folds}) into `svg`.
 * Dice uses the left axis (0–1); the loss is drawn against its own maximum (right axis). */
export function curveChart(svg, curve) {
  const W = 600, H = 200, L = 36, R = 52, T = 12, B = 30;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const folds = (curve.folds || []).map((f) => ({
    heldout: f.heldout || [],
    dice: (f.curve || []).map((e) => e.heldout_dice),
  }));
  const loss = (curve.epochs || []).map((e) => e.train_loss);
  const meanDice = meanPerEpoch(folds.map((f) => f.dice));
  const epochs = Math.max(loss.length, meanDice.length, 1);
  const maxLoss = Math.max(1e-9, ...loss.filter((v) => typeof v === "number"));
  const x = (i) => L + (epochs > 1 ? (i / (epochs - 1)) * (W - L - R) : (W - L - R) / 2);
  const y = (v) => T + (1 - v) * (H - T - B);
  const line = (values, scale, attrs) => {
    const pts = values.map((v, i) => (typeof v === "number" ? `${x(i)},${y(v / scale)}` : null)).filter(Boolean);
    return pts.length ? node("polyline", { points: pts.join(" "), fill: "none", ...attrs }) : null;
  };
  const parts = [];
  for (const v of [0, 0.5, 1]) {
    parts.push(node("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#ddd6cb" }),
      node("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: DICE }, v.toFixed(1)),
      node("text", { x: W - R + 6, y: y(v) + 4, "font-size": 11, fill: LOSS }, (v * maxLoss).toPrecision(2)));
  }
  for (const i of [0, epochs - 1]) {
    const label = { x: x(i), y: H - 12, "text-anchor": "middle", "font-size": 11, fill: "#5f6670" };
    parts.push(node("text", label, `epoch ${i + 1}`));
  }
  for (const f of folds) {
    const l = line(f.dice, 1, { stroke: DICE, "stroke-width": 1, "stroke-opacity": 0.35, class: "fold-dice" });
    if (l) { l.append(node("title", {}, `held-out Dice, slice(s) ${f.heldout.join(", ")} left out`)); parts.push(l); }
  }
  const mean = line(meanDice, 1, { stroke: DICE, "stroke-width": 2.5, class: "heldout-dice" });
  if (mean) { mean.append(node("title", {}, "held-out Dice, mean of the folds")); parts.push(mean); }
  const lossLine = line(loss, maxLoss,
    { stroke: LOSS, "stroke-width": 2, "stroke-dasharray": "5 3", class: "train-loss" });
  if (lossLine) { lossLine.append(node("title", {}, "training loss of the final model")); parts.push(lossLine); }
  if (curve.best_epochs && curve.best_epochs <= epochs) {
    parts.push(node("line", { x1: x(curve.best_epochs - 1), x2: x(curve.best_epochs - 1), y1: T, y2: H - B,
      stroke: "#5f6670", "stroke-dasharray": "2 3" }));
  }
  svg.replaceChildren(...parts);
  return { epochs, folds: folds.length };
}
