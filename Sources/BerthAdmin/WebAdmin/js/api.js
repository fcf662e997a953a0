// The admin API client: same-origin session cookie, CSRF header on every change.

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

let csrfToken = null;
let onUnauthorized = null;

export function setToken(token) { csrfToken = token; }
export function onSessionLost(fn) { onUnauthorized = fn; }

/**
 * api('GET', '/ports') → parsed JSON (null for 204); throws ApiError. `background: true`
 * marks a request the page makes by itself (polls): it does not keep the session alive.
 */
export async function api(method, path, body, { dryRun = false, query = '', background = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (background) headers['X-Berth-Background'] = '1';
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let q = query;
  if (dryRun) q += (q ? '&' : '') + 'dryRun=true';
  let res;
  try {
    res = await fetch(`/api/v1${path}${q ? '?' + q : ''}`, init);
  } catch (e) {
    throw new ApiError(0, 'network', `Cannot reach the server (${e.message}).`);
  }
  let data = null;
  const type = res.headers.get('Content-Type') || '';
  if (res.status !== 204) {
    const text = await res.text();
    if (type.includes('json') && text) {
      try { data = JSON.parse(text); } catch { data = null; }
    } else if (text && !res.ok) {
      data = { error: { code: `http_${res.status}`, message: text.slice(0, 300) } };
    }
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const err = new ApiError(res.status, e.code || `http_${res.status}`, e.message || `${res.status} ${res.statusText}`, e.field);
    if (res.status === 401 && path !== '/session' && onUnauthorized) onUnauthorized(err);
    throw err;
  }
  return data;
}

export const enc = encodeURIComponent;
