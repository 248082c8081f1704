import { useState } from 'react';
import type { Conflict } from '../../../src/app/contract.js';
import { api } from '../api.js';
import { describeError } from '../forms.js';
import { COMMAND_LABEL, EVENT_LABEL, money, when } from '../format.js';
import { Notice } from './ui.js';

function commandSummary(c: Conflict): string {
  const cmd = c.command;
  switch (cmd.type) {
    case 'CreateOrder':
      return `${cmd.items.length} item(s) for ${cmd.customerId}`;
    case 'RecordPayment':
      return `${money(cmd.amount, c.currency)} as ${cmd.paymentId}`;
    case 'RefundPayment':
      return `${money(cmd.amount, c.currency)} of ${cmd.paymentId}`;
    case 'CancelOrder':
      return `“${cmd.reason}”`;
    case 'ReserveInventory':
      return cmd.reservationId;
    case 'ShipOrder':
      return cmd.shipmentId;
  }
}

/** A command the server refused: why, what changed there first, and what to do about it. */
export function ConflictCard({ conflict, compact = false }: { conflict: Conflict; compact?: boolean }) {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const act = (what: 'retry' | 'dismiss') => {
    setBusy(true);
    setMessage(null);
    const call =
      what === 'retry'
        ? api.retryConflict({ commandId: conflict.commandId }).then((r) =>
            r.ok ? { kind: 'ok' as const, text: 'Re-applied as a new command on the current state.' } : { kind: 'error' as const, text: r.rejection.message },
          )
        : api.dismissConflict({ commandId: conflict.commandId }).then(() => ({ kind: 'ok' as const, text: 'Dismissed.' }));
    call
      .then(setMessage)
      .catch((err: unknown) => setMessage({ kind: 'error', text: describeError(err) }))
      .finally(() => setBusy(false));
  };
  return (
    <article className={`conflict ${compact ? 'compact' : ''} conflict-${conflict.status}`} aria-label={`Conflict on ${conflict.orderId}`} data-command-id={conflict.commandId}>
      <header>
        <p className="conflict-title">
          <strong>{COMMAND_LABEL[conflict.command.type] ?? conflict.command.type}</strong> on{' '}
          <a href={`#/orders/${encodeURIComponent(conflict.orderId)}`}>{conflict.orderId}</a> was rejected
          {compact ? '' : <span className="muted"> · {commandSummary(conflict)}</span>}
        </p>
        <span className="badge sync-rejected">{conflict.rejection.code.replaceAll('_', ' ').toLowerCase()}</span>
      </header>
      <p className="conflict-reason" data-testid="conflict-reason">
        {conflict.rejection.message}
      </p>
      {conflict.causedBy.length ? (
        <div className="caused-by">
          <p className="muted">What changed on the server first:</p>
          <ul>
            {conflict.causedBy.map((e) => (
              <li key={e.eventId}>
                <strong>{EVENT_LABEL[e.eventType] ?? e.eventType}</strong> (version {e.streamVersion}) by {e.userId ?? 'unknown user'} on device{' '}
                {e.deviceId ?? 'unknown'}, {when(e.recordedAt)}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <p className="muted small">
        Made {when(conflict.createdAt)}, rejected {when(conflict.rejectedAt)}
        {conflict.status !== 'rejected' ? ` · ${conflict.status}` : ''}
      </p>
      {conflict.status === 'rejected' && !conflict.retry.possible ? (
        <p className="muted small" data-testid="retry-impossible">
          Retrying would be refused too{conflict.retry.reason ? `: ${conflict.retry.reason.replace(/\.$/, '')}` : ''}. Dismiss it once you have dealt with it.
        </p>
      ) : null}
      {message ? <Notice kind={message.kind}>{message.text}</Notice> : null}
      {conflict.status === 'rejected' ? (
        <div className="form-actions">
          <button type="button" className="secondary" disabled={busy} onClick={() => act('dismiss')}>
            Dismiss
          </button>
          {conflict.retry.possible ? (
            <button type="button" className="primary" disabled={busy} onClick={() => act('retry')}>
              Retry as new
            </button>
          ) : null}
        </div>
      ) : null}
    </article>
  );
}
