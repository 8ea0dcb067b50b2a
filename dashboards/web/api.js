// The one place that talks to the Pulse API. Same-origin requests carry the session
// cookie set by /dashboard/login; no token ever lives in this script.

/** An API answer that is not 2xx. `kind`: 'unauthorized' | 'forbidden' |
 * 'unavailable' (the route does not exist on this server) | 'not_found' (no such
 * data) | 'bad_request' | 'server' | 'network'. */
export class ApiError extends Error {
  constructor(kind, status, message) {
    super(message);
    this.kind = kind;
    this.status = status;
  }
}

async function errorOf(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const msg = body && body.error && body.error.message;
  if (res.status === 401) return new ApiError('unauthorized', 401, msg || 'sign in needed');
  if (res.status === 403) return new ApiError('forbidden', 403, msg || 'not allowed');
  if (res.status === 404) {
    // A route this server does not have answers 404 without Pulse's error envelope.
    return msg
      ? new ApiError('not_found', 404, msg)
      : new ApiError('unavailable', 404, 'not available on this server yet');
  }
  if (res.status >= 400 && res.status < 500) return new ApiError('bad_request', res.status, msg || res.statusText);
  return new ApiError('server', res.status, msg || `server error ${res.status}`);
}

async function request(url, init) {
  let res;
  try {
    res = await fetch(url, { credentials: 'same-origin', ...init });
  } catch (e) {
    throw new ApiError('network', 0, `network error: ${e.message}`);
  }
  if (!res.ok) throw await errorOf(res);
  return res;
}

/** GET a JSON document. */
export async function getJson(path, params = {}) {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  const url = qs.toString() ? `${path}?${qs}` : path;
  const res = await request(url, { headers: { Accept: 'application/json' } });
  return res.json();
}

/** POST the export request; resolves to { blob, filename }. */
export async function exportCsv(body) {
  const res = await request('/api/analytics/export', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'text/csv' },
    body: JSON.stringify(body),
  });
  const cd = res.headers.get('Content-Disposition') || '';
  const m = /filename="([^"]+)"/.exec(cd);
  return { blob: await res.blob(), filename: m ? m[1] : 'pulse-export.csv' };
}

/** A human sentence for an error state. */
export function describe(err) {
  if (!(err instanceof ApiError)) return `Something went wrong: ${err && err.message}`;
  switch (err.kind) {
    case 'unauthorized':
      return 'Sign in to see this: open the login link that `pulse serve --demo` prints (or /dashboard/login?token=…).';
    case 'forbidden':
      return `Not allowed: ${err.message}`;
    case 'unavailable':
      return 'Not available: this server does not offer this data yet.';
    case 'not_found':
      return `No data: ${err.message}`;
    case 'network':
      return 'Cannot reach the server; retrying on the next refresh.';
    default:
      return `Error ${err.status}: ${err.message}`;
  }
}
