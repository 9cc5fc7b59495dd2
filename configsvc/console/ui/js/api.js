// The configsvc REST API, as the console calls it: same-origin requests that carry the
// session cookie (set by the service, HttpOnly: this script never sees it) and, on writes,
// the CSRF token the service gave at sign-in. The token itself is never kept here.

export const SESSION_PATH = "/v1/session";
const CSRF_HEADER = "X-CSRF-Token";
const SAFE = new Set(["GET", "HEAD"]);

let csrfToken = null;
const endedListeners = new Set();

/** Remember the CSRF token of the current session (in this page's memory only). */
export function setCsrf(token) {
  csrfToken = token;
}

/** Call `listener(message)` when the service says the session is over (401). */
export function onSessionEnded(listener) {
  endedListeners.add(listener);
  return () => endedListeners.delete(listener);
}

/** Tell the page that the service ended the session (`message` says why). */
export function sessionEnded(message) {
  for (const listener of endedListeners) listener(message);
}

/** An error answer of the API, in the contract's shape. */
export class ApiError extends Error {
  constructor(status, body, fallback) {
    const error = (body && body.error) || {};
    super(error.message || fallback || `the service answered ${status}`);
    this.status = status;
    this.code = error.code || (status === 0 ? "network" : "error");
    this.details = Array.isArray(error.details) ? error.details : [];
  }

  /** True when the route itself is not there (a service without that feature). */
  get routeMissing() {
    return this.status === 405 || (this.status === 404 && this.message === "Not Found");
  }
}

function url(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * One API call. Answers {data, status, etag}; throws ApiError for an error answer or when
 * the service cannot be reached (status 0).
 */
export async function request(method, path, { body, headers = {}, query, retry = true } = {}) {
  const init = {
    method,
    credentials: "same-origin",
    cache: "no-store",
    headers: { Accept: "application/json", ...headers },
  };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  if (!SAFE.has(method) && csrfToken) init.headers[CSRF_HEADER] = csrfToken;
  let response;
  try {
    response = await fetch(url(path, query), init);
  } catch {
    throw new ApiError(0, null, "The service cannot be reached. Check the network and try again.");
  }
  const data = await response.json().catch(() => null);
  if (response.ok) return { data, status: response.status, etag: response.headers.get("ETag") };
  const error = new ApiError(response.status, data);
  if (response.status === 403 && error.code === "csrf_failed" && retry) {
    // The page lost its CSRF token (e.g. a sign-in in another tab): fetch it and try once more.
    const session = await request("GET", SESSION_PATH, { retry: false });
    setCsrf(session.data.csrf_token);
    return request(method, path, { body, headers, query, retry: false });
  }
  if (response.status === 401 && path !== SESSION_PATH) sessionEnded(error.message);
  throw error;
}

export const api = {
  get: (path, options) => request("GET", path, options),
  put: (path, body, options = {}) => request("PUT", path, { ...options, body }),
  post: (path, body, options = {}) => request("POST", path, { ...options, body }),
  delete: (path, options) => request("DELETE", path, options),
};

const seg = encodeURIComponent;

/** Paths of the API, in one place. */
export const paths = {
  namespaces: () => "/v1/namespaces",
  configs: (ns) => `/v1/configs/${seg(ns)}`,
  doc: (ns, name) => `/v1/configs/${seg(ns)}/${seg(name)}`,
  history: (ns, name) => `/v1/configs/${seg(ns)}/${seg(name)}/history`,
  version: (ns, name, v) => `/v1/configs/${seg(ns)}/${seg(name)}/versions/${seg(v)}`,
  rollback: (ns, name) => `/v1/configs/${seg(ns)}/${seg(name)}/rollback`,
  rollout: (ns, name) => `/v1/configs/${seg(ns)}/${seg(name)}/rollouts/current`,
  rolloutAction: (ns, name, action) => `/v1/configs/${seg(ns)}/${seg(name)}/rollouts/current/${seg(action)}`,
  docFleet: (ns, name) => `/v1/configs/${seg(ns)}/${seg(name)}/fleet`,
  fleet: () => "/v1/fleet",
  schemas: () => "/v1/schemas",
  schema: (kind) => `/v1/schemas/${seg(kind)}`,
  tokens: () => "/v1/tokens",
  token: (name) => `/v1/tokens/${seg(name)}`,
  watch: () => "/v1/watch",
};
