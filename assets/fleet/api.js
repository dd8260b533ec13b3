// The fleet JSON API: the fleet key lives in sessionStorage (gone with the tab) and goes
// out as X-API-Key; a 401 forgets it and shows the sign-in again.
const STORE = 'selfie-fleet-key';

export const key = {
  get() { return sessionStorage.getItem(STORE); },
  set(v) { sessionStorage.setItem(STORE, v); },
  forget() { sessionStorage.removeItem(STORE); },
};

export class FleetError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

export async function get(path) {
  const k = key.get();
  const r = await fetch(path, { headers: k ? { 'X-API-Key': k } : {}, cache: 'no-store' });
  if (r.ok) return r.json();
  let err = {};
  try { err = (await r.json()).error || {}; } catch { /* not JSON */ }
  if (r.status === 401) key.forget();
  throw new FleetError(r.status, err.code || String(r.status), err.message || r.statusText);
}
