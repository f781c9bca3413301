// Model scores as the train pipeline records them: `metrics` is {class: {dice, iou}} (numbers or
// null), or older forms {dice: {class: v}}, {dice: v}, {mean_dice: v}.

/** Mean of a score that may be a number, {class: number} or [numbers]; null when absent. */
function mean(score) {
  if (typeof score === "number") return score;
  const values = Array.isArray(score) ? score : score && typeof score === "object" ? Object.values(score) : [];
  const nums = values.filter((v) => typeof v === "number" && Number.isFinite(v));
  return nums.length ? nums.reduce((a, b) => a + b, 0) / nums.length : null;
}

/** Scores per class: metrics may be {class: {dice, iou}} (the train pipeline) or {dice: {class: v}}. */
export function perClass(m, name) {
  const x = m.metrics || {};
  const nested = Object.entries(x).filter(([, v]) => v && typeof v === "object" && !Array.isArray(v) && name in v);
  if (nested.length) return Object.fromEntries(nested.map(([k, v]) => [k, v[name]]));
  const flat = x[name] ?? x[`${name}_per_class`];
  return flat && typeof flat === "object" && !Array.isArray(flat) ? flat : null;
}

/** One number per model: the mean over classes (or the server's own mean). */
export function metric(m, name) {
  const x = m.metrics || {};
  if (typeof x[`mean_${name}`] === "number") return x[`mean_${name}`];
  if (typeof x[name] === "number") return x[name];
  return mean(perClass(m, name));
}
