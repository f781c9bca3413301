// Small helpers shared by every page: JSON fetch with errors shown to the user, formatting.

/** The job id the server rendered into <body data-job-id>, or "" on the home page. */
export const jobId = document.body.dataset.jobId || "";

/** An error from the API, carrying the HTTP status and the server's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** fetch() a JSON API route; throws ApiError with the server's `error` text on 4xx/5xx. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: { Accept: "application/json" } };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `Cannot reach the server (${err.message}).`);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const message = (data && data.error) || text.slice(0, 200) || response.statusText;
    throw new ApiError(response.status, message);
  }
  return data;
}

/** Show an error in the page's flash bar (as text, never HTML). */
export function flash(message) {
  const el = document.getElementById("flash");
  if (!el) return;
  el.textContent = message;
  el.hidden = !message;
  if (message) {
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { el.hidden = true; }, 8000);
  }
}

/** Run an async UI action; report its error in the flash bar instead of the console. */
export async function guarded(action) {
  try {
    return await action();
  } catch (err) {
    flash(err instanceof ApiError || err instanceof Error ? err.message : String(err));
    return undefined;
  }
}

/** Create an element with properties and children; strings become text nodes (never HTML). */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function formatBytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i === 0 ? 0 : n < 10 ? 2 : 1)} ${units[i]}`;
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

/** The job record from GET /api/job/<id>/status. */
export function getJob(id = jobId) {
  return api(`/api/job/${encodeURIComponent(id)}/status`);
}

/** Call `fn` now and every `ms` milliseconds while it returns true; errors are shown once. */
export function poll(fn, ms = 1500) {
  let stopped = false;
  let timer;
  const tick = async () => {
    let again = true;
    try { again = (await fn()) !== false; } catch (err) { flash(err.message); }
    if (again && !stopped) timer = setTimeout(tick, document.hidden ? ms * 3 : ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

/** Default colours for classes the server does not colour (value 1 background, 2.. structures). */
export const DEFAULT_COLORS = ["#000000", "#4c9be8", "#f59e0b", "#e5484d", "#30a46c", "#8e4ec6", "#12a594", "#d6409f", "#f76b15", "#94ba2c"];

export function classColor(cls) {
  return cls.color || DEFAULT_COLORS[cls.value % DEFAULT_COLORS.length];
}

/** "#rrggbb" → [r, g, b]. */
export function hexToRgb(hex) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [255, 0, 255];
}

/** An <img> loaded from ``url`` (rejects with the url when it cannot be loaded). */
export function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`could not load ${url}`));
    img.src = url;
  });
}
