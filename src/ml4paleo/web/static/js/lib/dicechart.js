// Line chart (SVG) of the mean leave-one-slice-out Dice of each model, oldest to newest.
import { metric } from "./metrics.js";
import { svgNode as node } from "./svg.js";

/** Draw into `svg` the mean Dice of each model (oldest to newest) with its number of slices. */
export function diceChart(svg, models) {
  const W = 600, H = 180, L = 36, R = 12, T = 12, B = 28;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const pts = models.map((m, i) => ({ i, d: metric(m, "dice"), n: m.n_slices })).filter((p) => typeof p.d === "number");
  const parts = [];
  for (const v of [0, 0.5, 1]) {
    const y = T + (1 - v) * (H - T - B);
    parts.push(node("line", { x1: L, x2: W - R, y1: y, y2: y, stroke: "#ddd6cb" }), node("text", { x: L - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#5f6670" }, v.toFixed(1)));
  }
  if (!pts.length) {
    // dabs alone correct a model but are never held out: the scores need outlines
    const say = ["No scores yet: they need two slices painted with outlines", "(both classes on either side of an edge, or whole slices)."];
    say.forEach((line, i) => parts.push(node("text", { x: W / 2, y: H / 2 + (i - 0.5) * 18, "text-anchor": "middle", fill: "#5f6670", "font-size": 13 }, line)));
  } else {
    const x = (i) => L + (models.length > 1 ? (i / (models.length - 1)) * (W - L - R - 20) + 10 : (W - L - R) / 2);
    const y = (d) => T + (1 - d) * (H - T - B);
    parts.push(node("polyline", { points: pts.map((p) => `${x(p.i)},${y(p.d)}`).join(" "), fill: "none", stroke: "#8a5a2b", "stroke-width": 2 }));
    for (const p of pts) {
      const dot = node("circle", { cx: x(p.i), cy: y(p.d), r: 4, fill: "#8a5a2b" });
      dot.append(node("title", {}, `model #${p.i + 1}: Dice ${p.d.toFixed(3)}, ${p.n ?? "?"} slices`));
      parts.push(dot, node("text", { x: x(p.i), y: H - 10, "text-anchor": "middle", "font-size": 11, fill: "#5f6670" }, `#${p.i + 1}${p.n ? ` (${p.n} sl.)` : ""}`));
    }
  }
  svg.replaceChildren(...parts);
}
