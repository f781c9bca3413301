// The page's job (rendered by the server into <body data-job-id>) and readings of job records.
import { api } from "./http.js";

/** The job id the server rendered into <body data-job-id>, or "" on the home page. */
export const jobId = document.body.dataset.jobId || "";

/** The job id, URL-encoded for API paths. */
export const enc = encodeURIComponent(jobId);

/** The job record from GET /api/job/<id>/status. */
export function getJob(id = jobId) {
  return api(`/api/job/${encodeURIComponent(id)}/status`);
}

const reports = new Map(); // model_id → promise of its report (a ready model's report never changes)

/** GET /api/job/<id>/models/<model_id> of the page's job, once per model: the method a model uses
 * and why (candidates' held-out scores, warnings, completed slices). */
export function modelReport(modelId) {
  if (!reports.has(modelId)) reports.set(modelId, api(`/api/job/${enc}/models/${encodeURIComponent(modelId)}`));
  return reports.get(modelId);
}

/** The "_" of a status shown as a space ("training_queued" → "training queued"). */
export const statusText = (status) => status.replace("_", " ");
