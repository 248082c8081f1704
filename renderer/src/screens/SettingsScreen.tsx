import { useEffect, useState, type FormEvent } from 'react';
import { Settings, SyncScopeSettings, type DriftReport, type MethodOutput } from '../../../src/app/contract.js';
import { RpcError } from '../../../src/app/rpc-client.js';
import { api } from '../api.js';
import { Card, Field, Notice, ProgressBar } from '../components/ui.js';
import { describeError, fieldErrors, type FieldErrors } from '../forms.js';
import { projectionLabel } from '../format.js';
import { useLive } from '../status.js';

function TokenStatus({ loaded, serverUrl }: { loaded: MethodOutput<'getSettings'> | null; serverUrl: string }) {
  if (!loaded) return null;
  const url = serverUrl.trim();
  if (!loaded.tokenSet) {
    return (
      <p className="token-status" data-testid="token-status" data-token-set="false">
        No access token is saved{url ? `: enter the one issued for ${url}.` : '.'}
      </p>
    );
  }
  const moved = url !== '' && url !== loaded.tokenServer;
  return (
    <p className="token-status" data-testid="token-status" data-token-set="true">
      Access token saved for <span className="mono">{loaded.tokenServer}</span>.
      {moved ? (
        <>
          {' '}It is never sent to another server: enter the token for <span className="mono">{url}</span> below.
        </>
      ) : url === '' ? (
        ' Saving without a server URL removes it.'
      ) : null}
    </p>
  );
}

function SettingsForm() {
  const [loaded, setLoaded] = useState<MethodOutput<'getSettings'> | null>(null);
  const [serverUrl, setServerUrl] = useState('');
  const [token, setToken] = useState('');
  const [userId, setUserId] = useState('');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);

  // The token is write-only: the form never holds the saved one, only a replacement being typed.
  const show = (s: MethodOutput<'getSettings'>) => {
    setLoaded(s);
    setServerUrl(s.serverUrl);
    setToken('');
    setUserId(s.userId);
  };
  useEffect(() => {
    api
      .getSettings({})
      .then(show)
      .catch((err: unknown) => setMessage({ kind: 'error', text: describeError(err) }));
  }, []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setMessage(null);
    const url = serverUrl.trim();
    const parsed = Settings.safeParse({ serverUrl: url, token: token.trim() || undefined, userId });
    if (!parsed.success) {
      setErrors(fieldErrors(parsed.error));
      return;
    }
    if (url && !parsed.data.token && url !== loaded?.serverUrl) {
      setErrors({ token: `Enter the access token for ${url}.` });
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      show(await api.saveSettings(parsed.data));
      setMessage({ kind: 'ok', text: 'Saved. Sync uses the new settings from its next attempt.' });
    } catch (err) {
      if (err instanceof RpcError && err.code === 'BAD_INPUT' && err.issues.length) {
        setErrors(Object.fromEntries(err.issues.map((i) => [i.path, i.message])));
      } else {
        setMessage({ kind: 'error', text: describeError(err) });
      }
    } finally {
      setBusy(false);
    }
  }

  const replacing = loaded?.tokenSet === true && serverUrl.trim() === loaded.tokenServer;
  return (
    <Card title="Connection">
      <form onSubmit={submit} noValidate className="settings-form">
        <Field id="set-url" label="Server URL" error={errors.serverUrl} hint="Leave empty to work offline only.">
          <input id="set-url" type="url" placeholder="https://orders.example.com" value={serverUrl} onChange={(e) => setServerUrl(e.target.value)} autoComplete="off" />
        </Field>
        <TokenStatus loaded={loaded} serverUrl={serverUrl} />
        <Field
          id="set-token"
          label={replacing ? 'Replace access token' : 'Access token'}
          error={errors.token}
          hint={replacing ? 'Leave empty to keep the saved token.' : 'Issued by your server administrator. It is stored on this device and cannot be shown again.'}
        >
          <input id="set-token" type="password" value={token} onChange={(e) => setToken(e.target.value)} autoComplete="new-password" placeholder={replacing ? 'Saved (hidden)' : ''} />
        </Field>
        <Field id="set-user" label="Your name or user ID" error={errors.userId} hint="Recorded on every change you make.">
          <input id="set-user" value={userId} onChange={(e) => setUserId(e.target.value)} autoComplete="username" />
        </Field>
        <p className="muted">
          This device: <span className="mono">{loaded?.deviceId ?? '…'}</span>
        </p>
        {message ? <Notice kind={message.kind}>{message.text}</Notice> : null}
        <div className="form-actions">
          <button type="submit" className="primary" disabled={busy || !loaded}>
            {busy ? 'Saving…' : 'Save settings'}
          </button>
        </div>
      </form>
    </Card>
  );
}

/** Customer IDs as typed: one per line or separated by commas. */
const parseList = (text: string) => [...new Set(text.split(/[\n,]/).map((x) => x.trim()).filter(Boolean))];

function ScopeForm() {
  const [view, setView] = useState<MethodOutput<'getSyncScope'> | null>(null);
  const [mode, setMode] = useState<'all' | 'scoped'>('all');
  const [customers, setCustomers] = useState('');
  const [recentDays, setRecentDays] = useState('');
  const [retention, setRetention] = useState('');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);

  const show = (v: MethodOutput<'getSyncScope'>) => {
    setView(v);
    setMode(v.scope.mode);
    setCustomers(v.scope.mode === 'scoped' ? v.scope.customers.join('\n') : '');
    setRecentDays(v.scope.mode === 'scoped' && v.scope.recentDays !== null ? String(v.scope.recentDays) : '');
    setRetention(v.retentionDays === null ? '' : String(v.retentionDays));
  };
  useEffect(() => {
    api
      .getSyncScope({})
      .then(show)
      .catch((err: unknown) => setMessage({ kind: 'error', text: describeError(err) }));
  }, []);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setMessage(null);
    const number = (text: string) => (text.trim() === '' ? null : Number(text));
    const parsed = SyncScopeSettings.safeParse({
      scope: mode === 'all' ? { mode } : { mode, customers: parseList(customers), recentDays: number(recentDays), streams: [] },
      retentionDays: number(retention),
    });
    if (!parsed.success) {
      // Field ids by the schema's paths: scope.customers, scope.recentDays, retentionDays.
      setErrors(fieldErrors(parsed.error));
      return;
    }
    if (parsed.data.scope.mode === 'scoped' && parsed.data.scope.customers.length === 0 && parsed.data.scope.recentDays === null) {
      setErrors({ 'scope.customers': 'Name at least one customer, or keep recent orders, or choose "Every order".' });
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      show(await api.saveSyncScope(parsed.data));
      setMessage({ kind: 'ok', text: 'Saved. The next sync fetches what the new scope adds; nothing this device touched or has pending is dropped.' });
    } catch (err) {
      setMessage({ kind: 'error', text: describeError(err) });
    } finally {
      setBusy(false);
    }
  }

  return (
    <Card title="What this device keeps">
      <form onSubmit={submit} noValidate className="settings-form" aria-label="Sync scope">
        <fieldset className="scope-mode">
          <legend>Orders synced to this device</legend>
          <label>
            <input type="radio" name="scope-mode" value="all" checked={mode === 'all'} onChange={() => setMode('all')} /> Every order of the company
          </label>
          <label>
            <input type="radio" name="scope-mode" value="scoped" checked={mode === 'scoped'} onChange={() => setMode('scoped')} /> Only my customers and recent orders
          </label>
        </fieldset>
        {mode === 'scoped' ? (
          <>
            <Field id="scope-customers" label="Customer IDs" error={errors['scope.customers']} hint="One per line, or separated by commas.">
              <textarea id="scope-customers" rows={3} value={customers} onChange={(e) => setCustomers(e.target.value)} />
            </Field>
            <Field id="scope-recent" label="Also orders changed in the last (days)" error={errors['scope.recentDays']} hint="Leave empty for none.">
              <input id="scope-recent" inputMode="numeric" value={recentDays} onChange={(e) => setRecentDays(e.target.value)} />
            </Field>
            <p className="muted">
              Orders you changed on this device, or opened by ID from the server, always stay ({(view?.followedOrders ?? 0).toLocaleString()} now).
            </p>
          </>
        ) : null}
        <Field
          id="scope-retention"
          label="Drop the events of closed orders after (days)"
          error={errors.retentionDays}
          hint="Closed orders keep their final state; their history is fetched from the server when opened. Leave empty to keep everything."
        >
          <input id="scope-retention" inputMode="numeric" value={retention} onChange={(e) => setRetention(e.target.value)} />
        </Field>
        {view ? (
          <p className="muted" data-testid="scope-facts">
            {view.droppedOrders.toLocaleString()} closed order{view.droppedOrders === 1 ? '' : 's'} kept without history
            {view.backfilling ? ' · fetching the history of newly included orders' : ''}
          </p>
        ) : null}
        {message ? <Notice kind={message.kind}>{message.text}</Notice> : null}
        <div className="form-actions">
          <button type="submit" className="primary" disabled={busy || !view}>
            {busy ? 'Saving…' : 'Save scope'}
          </button>
        </div>
      </form>
    </Card>
  );
}

function Admin() {
  const { rebuild } = useLive();
  const [rebuilding, setRebuilding] = useState(false);
  const [rebuildResult, setRebuildResult] = useState<string | null>(null);
  const [drift, setDrift] = useState<DriftReport[] | null>(null);
  const [checking, setChecking] = useState(false);
  const [error, setError] = useState<string | null>(null);

  return (
    <Card title="Maintenance">
      <section className="admin-block" aria-labelledby="rebuild-title">
        <h3 id="rebuild-title">Rebuild projections</h3>
        <p className="muted">Replays the whole local event log into fresh read models. The app stays usable; lists update when it finishes.</p>
        {rebuilding || (rebuild && !rebuild.finished) ? (
          <div>
            <p>
              {rebuild ? `${projectionLabel(rebuild.projection)}: ${rebuild.done.toLocaleString()} of ${rebuild.total.toLocaleString()} events` : 'Starting…'}
              {rebuild && rebuild.ratePerSec > 0 ? ` · ${Math.round(rebuild.ratePerSec).toLocaleString()}/s` : ''}
              {rebuild?.etaMs ? ` · about ${Math.ceil(rebuild.etaMs / 1000)} s left` : ''}
            </p>
            <ProgressBar value={rebuild?.done ?? 0} max={rebuild?.total ?? null} label="Rebuild progress" />
          </div>
        ) : null}
        {rebuildResult ? <Notice kind="ok">{rebuildResult}</Notice> : null}
        <button
          type="button"
          className="secondary"
          disabled={rebuilding}
          onClick={() => {
            setRebuilding(true);
            setRebuildResult(null);
            setError(null);
            api
              .rebuildProjections({})
              .then((r) => setRebuildResult(`Replayed ${r.eventsReplayed.toLocaleString()} events in ${(r.durationMs / 1000).toFixed(1)} s.`))
              .catch((err: unknown) => setError(describeError(err)))
              .finally(() => setRebuilding(false));
          }}
        >
          {rebuilding ? 'Rebuilding…' : 'Rebuild projections'}
        </button>
      </section>
      <section className="admin-block" aria-labelledby="drift-title">
        <h3 id="drift-title">Drift check</h3>
        <p className="muted">
          Rebuilds each read model in memory and compares it with the live one, row by row. A read model can have more than one
          table (the order list keeps one row per order plus one per day and currency for the daily totals), so the rows compared
          can exceed the number of orders.
        </p>
        {drift ? (
          <table>
            <thead>
              <tr>
                <th scope="col">Projection</th>
                <th scope="col" className="num">
                  Rows compared
                </th>
                <th scope="col">Result</th>
              </tr>
            </thead>
            <tbody>
              {drift.map((d) => (
                <tr key={d.projection}>
                  <td>{projectionLabel(d.projection)}</td>
                  <td className="num">{d.checkedRows.toLocaleString()}</td>
                  <td className={d.differences.length ? 'audit-bad' : 'audit-ok'}>
                    {d.differences.length === 0
                      ? 'No drift'
                      : `${d.differences.length} difference(s): ${d.differences
                          .slice(0, 3)
                          .map((x) => `${x.key} ${x.kind}`)
                          .join(', ')}${d.differences.length > 3 ? '…' : ''}`}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : null}
        <button
          type="button"
          className="secondary"
          disabled={checking}
          onClick={() => {
            setChecking(true);
            setError(null);
            api
              .driftCheck({})
              .then(setDrift)
              .catch((err: unknown) => setError(describeError(err)))
              .finally(() => setChecking(false));
          }}
        >
          {checking ? 'Checking…' : 'Run drift check'}
        </button>
      </section>
      {error ? <Notice kind="error">{error}</Notice> : null}
    </Card>
  );
}

export function SettingsScreen() {
  return (
    <div className="page">
      <header className="screen-head">
        <h1>Settings</h1>
      </header>
      <SettingsForm />
      <ScopeForm />
      <Admin />
    </div>
  );
}
