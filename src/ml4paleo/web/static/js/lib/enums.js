// Enumerated values defined once on the server (GET /api/enums): mesh and export formats, codecs,
// default annotation classes with their colours, statuses, length units and their symbols, the default voxel size.
// Fetched once per page. Which statuses count as ready or finished is not here: the job document's flags say it.
import { api } from "./http.js";

let cached = null;

/**
 * The server's enumerations: `{mesh_formats, default_mesh_format, export_formats, codecs, default_classes:
 * [{value, name, color}], job_statuses, model_statuses, segmentation_statuses, mesh_statuses, task_statuses, units,
 * unit_symbols: {name: symbol}, default_voxel_size: [z, y, x], train_methods, class_name_max,
 * job_steps, status_steps: {status: {step, running}}}`.
 * One request per page; a failed request is retried on the next call.
 */
export function enums() {
  if (!cached) {
    cached = api("/api/enums");
    cached.catch(() => { cached = null; });
  }
  return cached;
}
