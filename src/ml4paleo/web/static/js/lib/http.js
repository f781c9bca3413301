// HTTP: fetch a JSON API route, with the server's error text carried by the thrown error.

/** An error from the API, carrying the HTTP status and the server's message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The page's CSRF token (accounts on; empty otherwise): sent back with every change. */
const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content || "";

/** fetch() a JSON API route; throws ApiError with the server's `error` text on 4xx/5xx. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: { Accept: "application/json" } };
  if (csrfToken && !["GET", "HEAD"].includes(method)) init.headers["X-CSRF-Token"] = csrfToken;
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

/** POST a JSON body (default `{}`) to an API route. */
export const post = (path, body) => api(path, { method: "POST", body: body || {} });
