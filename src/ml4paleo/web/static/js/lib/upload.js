// Chunked, resumable upload of many files (a folder of slices, a zip, a multi-page TIFF).
//
// Each file is sent in CHUNK-byte pieces to POST /api/upload with its byte `offset` and
// `total_size`; a chunk that fails is retried with back-off (re-sending the same offset is
// harmless on the server), and GET /api/job/<id>/upload says how much of each file arrived, so
// an upload interrupted by a reload resumes where it stopped once the same files are chosen again.
import { api, ApiError } from "./http.js";

export const CHUNK = 8 * 1024 * 1024;
const RETRIES = 6;
const PARALLEL_FILES = 3; // many small slices: keep a few requests in flight

/** Files the scanner software leaves next to the slices and that are never part of the scan. */
export function isJunk(path) {
  const name = path.split("/").pop();
  return name.startsWith(".") || name === "Thumbs.db" || name === "desktop.ini" || path.includes("__MACOSX/");
}

/** [{file, path}] from an <input type=file> (folder inputs carry webkitRelativePath). */
export function filesFromInput(input) {
  return [...input.files]
    .map((file) => ({ file, path: file.webkitRelativePath || file.name }))
    .filter((entry) => !isJunk(entry.path));
}

/** [{file, path}] from a drop: walks dropped folders recursively. */
export async function filesFromDrop(dataTransfer) {
  const entries = [...dataTransfer.items]
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null))
    .filter(Boolean);
  if (!entries.length) {
    return [...dataTransfer.files].map((file) => ({ file, path: file.name }));
  }
  const out = [];
  const walk = async (entry, prefix) => {
    if (entry.isFile) {
      const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
      out.push({ file, path: prefix + file.name });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child, `${prefix}${entry.name}/`);
      }
    }
  };
  for (const entry of entries) await walk(entry, "");
  return out.filter((entry) => !isJunk(entry.path));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Upload `files` ([{file, path}]) into job `jobId`.
 *
 * `onProgress({done, total, rate, eta, file, retrying})` is called as bytes arrive; bytes that
 * the server already holds (from an earlier, interrupted upload) count as done from the start.
 * Resolves when every byte is on the server; rejects after RETRIES failures of one chunk.
 */
export async function uploadFiles(jobId, files, onProgress, { signal } = {}) {
  const have = new Map();
  try {
    const state = await api(`/api/job/${encodeURIComponent(jobId)}/upload`);
    for (const f of state.files || []) have.set(f.filename, f);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
  const total = files.reduce((sum, f) => sum + f.file.size, 0);
  let done = 0;
  const todo = [];
  for (const entry of files) {
    const known = have.get(entry.path);
    const received = known && known.total_size === entry.file.size ? Math.min(known.received, entry.file.size) : 0;
    if (received >= entry.file.size && entry.file.size > 0) done += entry.file.size;
    else todo.push({ ...entry, offset: received, resumed: received });
  }
  done += todo.reduce((sum, t) => sum + t.offset, 0);
  const startDone = done;
  const t0 = performance.now();
  const samples = [[t0, done]];
  let retrying = "";
  const report = (file) => {
    const now = performance.now();
    samples.push([now, done]);
    while (samples.length > 2 && now - samples[0][0] > 8000) samples.shift();
    const [t1, d1] = samples[0];
    const rate = now > t1 ? ((done - d1) * 1000) / (now - t1) : 0;
    const eta = rate > 0 ? (total - done) / rate : Infinity;
    onProgress({ done, total, rate, eta, file, retrying, resumedBytes: startDone, elapsed: (now - t0) / 1000 });
  };
  report("");

  const sendFile = async (entry) => {
    const size = entry.file.size;
    do {
      const end = Math.min(entry.offset + CHUNK, size);
      const form = new FormData();
      form.append("job_id", jobId);
      form.append("filename", entry.path);
      form.append("offset", String(entry.offset));
      form.append("total_size", String(size));
      form.append("file", entry.file.slice(entry.offset, end), entry.path.split("/").pop());
      let attempt = 0;
      for (;;) {
        if (signal && signal.aborted) throw new DOMException("Upload stopped", "AbortError");
        try {
          await api("/api/upload", { method: "POST", body: form, signal });
          break;
        } catch (err) {
          // 4xx other than 408/429 means the server refuses this file: retrying will not help.
          const fatal = err instanceof ApiError && err.status >= 400 && err.status < 500 && ![408, 409, 429].includes(err.status);
          if (err.name === "AbortError" || fatal || ++attempt > RETRIES) {
            throw new Error(`Upload of ${entry.path} failed at byte ${entry.offset}: ${err.message}`);
          }
          retrying = `retrying ${entry.path} (attempt ${attempt + 1} of ${RETRIES + 1})`;
          report(entry.path);
          await sleep(Math.min(500 * 2 ** attempt, 15000));
          retrying = "";
        }
      }
      done += end - entry.offset;
      entry.offset = end;
      report(entry.path);
    } while (entry.offset < size);
  };

  let next = 0;
  const worker = async () => {
    while (next < todo.length) await sendFile(todo[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_FILES, todo.length) }, worker));
  report("");
}

const KEY = "ml4paleo.pendingUploads";

/** Uploads started in this browser and not finished: {job_id: {name, files, bytes, started}}. */
export function pendingUploads() {
  try { return JSON.parse(localStorage.getItem(KEY) || "{}"); } catch { return {}; }
}

export function rememberUpload(jobId, name, files) {
  const all = pendingUploads();
  all[jobId] = { name, files: files.length, bytes: files.reduce((s, f) => s + f.file.size, 0), started: new Date().toISOString() };
  localStorage.setItem(KEY, JSON.stringify(all));
}

export function forgetUpload(jobId) {
  const all = pendingUploads();
  delete all[jobId];
  localStorage.setItem(KEY, JSON.stringify(all));
}
