import type { ReactNode } from 'react';
import { FULFILMENT_LABEL, PAYMENT_LABEL, STATUS_LABEL } from '../format.js';

export function StatusBadge({ status }: { status: string | null }) {
  if (!status) return <span className="badge">—</span>;
  return <span className={`badge status-${status.toLowerCase()}`}>{STATUS_LABEL[status] ?? status}</span>;
}

/** One facet of an order (payment or fulfilment) as a small badge. */
export function FacetBadge({ facet, value }: { facet: 'payment' | 'fulfilment'; value: string | null }) {
  if (!value) return <span className="badge">—</span>;
  const label = (facet === 'payment' ? PAYMENT_LABEL : FULFILMENT_LABEL)[value] ?? value;
  return <span className={`badge ${facet}-${value.toLowerCase()}`}>{label}</span>;
}

const SYNC_TEXT: Record<string, string> = { pending: 'Pending', synced: 'Synced', rejected: 'Rejected', superseded: 'Superseded', attention: 'Needs attention' };
const SYNC_HINT: Record<string, string> = {
  pending: 'Saved on this device, not yet accepted by the server',
  synced: 'Accepted by the server',
  rejected: 'The server refused a change; see the conflict inbox',
  superseded: 'Replaced while syncing with the server',
  attention: 'This device received changes to this order it cannot read; see Sync (usually: update the app)',
};

export function SyncBadge({ sync }: { sync: string }) {
  return (
    <span className={`badge sync-${sync}`} title={SYNC_HINT[sync]} data-sync={sync}>
      <span className="dot" aria-hidden="true" />
      {SYNC_TEXT[sync] ?? sync}
    </span>
  );
}

export function ProgressBar({ value, max, label }: { value: number; max: number | null; label: string }) {
  const pct = max && max > 0 ? Math.min(100, Math.round((value / max) * 100)) : null;
  return (
    <div className="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={max ?? undefined} aria-valuenow={max ? value : undefined}>
      <div className={pct === null ? 'bar indeterminate' : 'bar'} style={pct === null ? undefined : { width: `${pct}%` }} />
    </div>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <p className="empty-title">{title}</p>
      {children ? <div className="empty-body">{children}</div> : null}
    </div>
  );
}

export function Card({ title, actions, children, className }: { title?: ReactNode; actions?: ReactNode; children: ReactNode; className?: string }) {
  return (
    <section className={`card ${className ?? ''}`}>
      {title || actions ? (
        <header className="card-head">
          {title ? <h2>{title}</h2> : <span />}
          {actions ? <div className="card-actions">{actions}</div> : null}
        </header>
      ) : null}
      {children}
    </section>
  );
}

export function Field({ id, label, error, hint, children }: { id: string; label: string; error?: string | undefined; hint?: string; children: ReactNode }) {
  return (
    <div className={error ? 'field invalid' : 'field'}>
      <label htmlFor={id}>{label}</label>
      {children}
      {error ? (
        <p className="field-error" id={`${id}-error`} role="alert">
          {error}
        </p>
      ) : hint ? (
        <p className="field-hint">{hint}</p>
      ) : null}
    </div>
  );
}

export function Notice({ kind, children }: { kind: 'error' | 'ok' | 'info'; children: ReactNode }) {
  return (
    <div className={`notice notice-${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
      {children}
    </div>
  );
}
