// The admin JSON API, with the key kept in sessionStorage and sent as X-API-Key.
const KEY = 'kiosk-admin-key';

export class ApiError extends Error {
  constructor(status, code, message, key) {
    super(message);
    this.status = status; this.code = code; this.key = key;
  }
}

export const auth = {
  get key() { return sessionStorage.getItem(KEY); },
  set(k) { sessionStorage.setItem(KEY, k); },
  clear() { sessionStorage.removeItem(KEY); },
  onSignOut: () => {},
};

export async function api(path, { method = 'GET', body, json, raw = false } = {}) {
  const headers = {};
  if (auth.key) headers['X-API-Key'] = auth.key;
  let payload = body;
  if (json !== undefined) { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(json); }
  const r = await fetch(path, { method, headers, body: payload, cache: 'no-store' });
  if (r.status === 401 && auth.key) { auth.clear(); auth.onSignOut('refused'); }
  if (!r.ok && !(path === '/health' && r.status === 503)) {
    let e = {};
    try { e = (await r.json()).error || {}; } catch { /* not JSON */ }
    throw new ApiError(r.status, e.code || String(r.status), e.message || r.statusText, e.key);
  }
  if (raw) return r;
  const type = r.headers.get('content-type') || '';
  return type.includes('json') ? r.json() : r.text();
}

// An image behind the admin key: fetched with the header, shown from a blob: URL.
export async function blobUrl(path) {
  const r = await api(path, { raw: true });
  return URL.createObjectURL(await r.blob());
}

// Downloads an admin file (diagnostics, Excel) with the key, under its server-given name.
export async function download(path, fallback) {
  const r = await api(path, { raw: true });
  const cd = r.headers.get('content-disposition') || '';
  const m = /filename="?([^";]+)"?/.exec(cd);
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement('a');
  a.href = url; a.download = m ? m[1] : fallback;
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}
