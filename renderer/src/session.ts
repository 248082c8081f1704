/**
 * Browser mode's sign-in. `npm start` prints the app's address with a per-launch key in the
 * fragment (`#k=…`), which a browser never sends to a server by itself. The page takes the key
 * out of the address bar at once (so it is not bookmarked or shown), then trades it for an
 * HttpOnly session cookie; a reload finds the cookie instead. Electron (IPC) needs none of this.
 */
export const SESSION_PATH = '/auth/session';

export type SessionState = { ok: true } | { ok: false; message: string };

const NOT_SIGNED_IN = 'This browser is not connected to the running app. Open the address that “npm start” printed (it carries a key for this run), or restart it to get a new one.';

export async function openBrowserSession(): Promise<SessionState> {
  const key = /^#k=([0-9a-f]{64})$/.exec(window.location.hash)?.[1];
  if (key) window.history.replaceState(null, '', window.location.pathname + window.location.search);
  try {
    const res = key
      ? await fetch(SESSION_PATH, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ secret: key }), credentials: 'same-origin' })
      : await fetch(SESSION_PATH, { credentials: 'same-origin' });
    if (res.ok) return { ok: true };
    const body = (await res.json().catch(() => null)) as { message?: unknown } | null;
    return { ok: false, message: res.status === 401 ? NOT_SIGNED_IN : typeof body?.message === 'string' ? body.message : `The app answered ${res.status}.` };
  } catch (err) {
    return { ok: false, message: `The app's local service cannot be reached (${(err as Error).message}). Is “npm start” still running?` };
  }
}
