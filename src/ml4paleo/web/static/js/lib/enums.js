// Enumerated values defined once on the server (GET /api/enums): mesh and export formats, codecs,
// default annotation classes with their colours, job statuses, length units and their symbols. Fetched once per page.
import { api } from "./http.js";

let cached = null;

/**
 * The server's enumerations: `{mesh_formats, export_formats, codecs, default_classes:
 * [{value, name, color}], job_statuses, units, unit_symbols: {name: symbol}, train_methods}`.
 * One request per page; a failed request is retried on the next call.
 */
export function enums() {
  if (!cached) {
    cached = api("/api/enums");
    cached.catch(() => { cached = null; });
  }
  return cached;
}
