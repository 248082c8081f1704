import { useEffect, useState } from 'react';
import type { Conflict, QuarantinedEvent } from '../../../src/app/contract.js';
import { api } from '../api.js';
import { ConflictCard } from '../components/ConflictCard.js';
import { Card, Empty, Notice, ProgressBar } from '../components/ui.js';
import { describeError } from '../forms.js';
import { ago, syncErrorInWords, when } from '../format.js';
import { useLive } from '../status.js';
import { WorkOfflineSwitch } from '../components/WorkOffline.js';

const STATE_TEXT: Record<string, string> = {
  idle: 'Up to date',
  syncing: 'Syncing…',
  offline: 'Offline — changes are kept on this device',
  error: 'Sync failed',
  unauthorized: 'The server refused the token',
  disabled: 'Sync is off (no server configured)',
  paused: 'Working offline — nothing is sent or received until you turn it off',
};
const PHASE_TEXT = { push: 'Sending local changes', pull: 'Receiving changes', rebase: 'Re-applying local changes' } as const;

export function SyncPanel() {
  const { sync, setSync } = useLive();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  if (!sync) return <p className="muted">Loading sync status…</p>;
  return (
    <Card
      title="Sync"
      actions={
        <button
          type="button"
          className="primary"
          disabled={busy || sync.state === 'disabled' || sync.paused}
          title={sync.paused ? 'Turn off “Work offline” to sync' : undefined}
          onClick={() => {
            setBusy(true);
            setError(null);
            api
              .syncNow({})
              .then(setSync)
              .catch((err: unknown) => setError(describeError(err)))
              .finally(() => setBusy(false));
          }}
        >
          {busy ? 'Syncing…' : 'Sync now'}
        </button>
      }
    >
      <WorkOfflineSwitch />
      <div className={`sync-state state-${sync.state}`} data-testid="sync-state" data-state={sync.state}>
        <span className="dot" aria-hidden="true" />
        <strong>{STATE_TEXT[sync.state]}</strong>
        <span className="muted">
          {sync.serverUrl ? (
            <>
              {sync.paused ? 'Paused' : sync.online && sync.state !== 'offline' && sync.state !== 'error' ? 'Server reachable' : 'Server not reachable'}:{' '}
              <span className="mono">{sync.serverUrl}</span>
            </>
          ) : (
            'No server configured'
          )}
        </span>
      </div>
      {sync.progress ? (
        <div className="sync-progress">
          <p>
            {PHASE_TEXT[sync.progress.phase]}: {sync.progress.done.toLocaleString()}
            {sync.progress.total !== null ? ` of ${sync.progress.total.toLocaleString()}` : ''}
          </p>
          <ProgressBar value={sync.progress.done} max={sync.progress.total} label="Sync progress" />
        </div>
      ) : null}
      {sync.lastError ? (
        <Notice kind="error">
          {syncErrorInWords(sync.lastError, sync.serverUrl)}
          <span className="error-detail">Details: {sync.lastError}</span>
        </Notice>
      ) : null}
      {error ? <Notice kind="error">{error}</Notice> : null}
      <dl className="facts">
        <div>
          <dt>Waiting to sync</dt>
          <dd data-testid="pending-count">{sync.pendingCount.toLocaleString()}</dd>
        </div>
        <div>
          <dt>Conflicts</dt>
          <dd>{sync.conflictCount.toLocaleString()}</dd>
        </div>
        <div>
          <dt>Kept aside (unreadable)</dt>
          <dd data-testid="quarantined-count">{sync.quarantinedCount.toLocaleString()}</dd>
        </div>
        <div>
          <dt>Last successful sync</dt>
          <dd title={when(sync.lastSuccessAt)}>{ago(sync.lastSuccessAt)}</dd>
        </div>
        <div>
          <dt>Last attempt</dt>
          <dd title={when(sync.lastAttemptAt)}>{ago(sync.lastAttemptAt)}</dd>
        </div>
        <div>
          <dt>Next attempt</dt>
          <dd title={when(sync.nextAttemptAt)}>{sync.nextAttemptAt ? ago(sync.nextAttemptAt) : '—'}</dd>
        </div>
      </dl>
    </Card>
  );
}

export function ConflictInbox() {
  const { changeTick, sync } = useLive();
  const [showDismissed, setShowDismissed] = useState(false);
  const [conflicts, setConflicts] = useState<Conflict[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  useEffect(() => {
    let alive = true;
    api
      .listConflicts({ includeDismissed: showDismissed })
      .then((c) => alive && (setConflicts(c), setError(null)))
      .catch((err: unknown) => alive && setError(describeError(err)));
    return () => {
      alive = false;
    };
  }, [showDismissed, changeTick, sync?.conflictCount, reload]);
  return (
    <Card
      title="Conflict inbox"
      actions={
        <>
          <label className="check">
            <input type="checkbox" checked={showDismissed} onChange={(e) => setShowDismissed(e.target.checked)} /> Show dismissed
          </label>
          <button type="button" className="ghost" onClick={() => setReload((n) => n + 1)}>
            Refresh
          </button>
        </>
      }
    >
      {error ? <Notice kind="error">{error}</Notice> : null}
      {conflicts === null ? (
        <p className="muted">Loading…</p>
      ) : conflicts.length === 0 ? (
        <Empty title="No conflicts">
          <p>When the server refuses a change made on this device, it appears here with the reason and what changed on the server.</p>
        </Empty>
      ) : (
        <div className="conflict-list" data-testid="conflict-list">
          {conflicts.map((c) => (
            <ConflictCard key={c.commandId} conflict={c} />
          ))}
        </div>
      )}
    </Card>
  );
}

const KIND_TEXT: Record<QuarantinedEvent['kind'], string> = {
  'newer-version': 'Update the app',
  invalid: 'Unreadable data',
  blocked: 'Waiting',
};

/**
 * Events pulled from the server that this app cannot read: kept on the device, re-tried at every
 * sync (they apply by themselves once the app is updated); only their orders wait meanwhile.
 */
export function QuarantineList() {
  const { changeTick, sync } = useLive();
  const [items, setItems] = useState<QuarantinedEvent[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let alive = true;
    api
      .listQuarantine({})
      .then((q) => alive && (setItems(q), setError(null)))
      .catch((err: unknown) => alive && setError(describeError(err)));
    return () => {
      alive = false;
    };
  }, [changeTick, sync?.quarantinedCount]);
  if (!error && (items === null || items.length === 0)) return null;
  return (
    <Card title="Changes this app cannot read">
      {error ? <Notice kind="error">{error}</Notice> : null}
      <p className="muted">
        Kept on this device and tried again at every sync. Only the orders below wait; everything else keeps syncing.
      </p>
      <ul className="quarantine-list" data-testid="quarantine-list">
        {(items ?? []).map((q) => (
          <li key={q.eventId} data-kind={q.kind}>
            <span className="badge sync-attention">{KIND_TEXT[q.kind]}</span>{' '}
            <a href={`#/orders/${encodeURIComponent(q.streamId)}`} className="mono">
              {q.streamType} {q.streamId}
            </a>{' '}
            <span className="mono">
              {q.eventType} v{q.schemaVersion} (#{q.streamVersion})
            </span>
            <p>{q.reason}</p>
          </li>
        ))}
      </ul>
    </Card>
  );
}

export function SyncScreen() {
  return (
    <div className="page">
      <header className="screen-head">
        <h1>Sync &amp; conflicts</h1>
      </header>
      <SyncPanel />
      <QuarantineList />
      <ConflictInbox />
    </div>
  );
}
