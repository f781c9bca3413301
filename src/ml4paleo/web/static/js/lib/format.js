// Formatting of numbers, durations, dates and ids for display.

export function formatBytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : n < 10 ? 2 : 1)} ${units[i]}`;
}

/** A measured number with `digits` significant digits and no trailing zeros: a voxel size
 * stored as 0.97699999809265 (float32 in the files) reads 0.977. */
export function formatNumber(value, digits = 4) {
  const n = Number(value);
  if (value === null || value === undefined || !Number.isFinite(n)) return "–";
  return String(Number(n.toPrecision(digits)));
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  if (seconds < 60) return `${Math.ceil(seconds)} s`;
  const m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function formatDate(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** The first 8 characters of a job, model or segmentation id. */
export const shortId = (id) => String(id).slice(0, 8);
