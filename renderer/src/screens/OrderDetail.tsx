import { useEffect, useRef, useState } from 'react';
import type { OrderDetail as OrderDetailT, TimelineEntry } from '../../../src/app/contract.js';
import type { MethodOutput } from '../../../src/app/contract.js';
import { netPaidAmount, outstandingAmount } from '../../../src/domain/state.js';
import { api } from '../api.js';
import { ActionForms } from '../components/ActionForms.js';
import { ConflictCard } from '../components/ConflictCard.js';
import { openFromServer } from '../components/OpenFromServer.js';
import { Card, Empty, FacetBadge, Notice, SyncBadge } from '../components/ui.js';
import { describeError } from '../forms.js';
import { EVENT_LABEL, itemCount, money, when, whenShort } from '../format.js';
import { navigate } from '../router.js';
import { useLive } from '../status.js';

type AsOf = MethodOutput<'getOrderAsOf'>;

function meta(entry: TimelineEntry, key: string): string | null {
  const v = entry.metadata[key];
  return typeof v === 'string' && v ? v : null;
}

function eventSummary(e: TimelineEntry, currency: string | null): string {
  const d = e.data as Record<string, unknown>;
  switch (e.eventType) {
    case 'OrderCreated':
      return `for ${String(d.customerName ?? d.customerId ?? '')}, ${Array.isArray(d.items) ? itemCount(d.items as { quantity: number }[]) : ''}, ${typeof d.total === 'number' ? money(d.total, currency) : String(d.totalAmount ?? '')}`;
    case 'PaymentReceived':
      return `${typeof d.amount === 'number' ? money(d.amount, currency) : ''} (${String(d.paymentId ?? '')})`;
    case 'PaymentRefunded':
      return `${typeof d.amount === 'number' ? money(d.amount, currency) : ''}: ${String(d.reason ?? '')}`;
    case 'InventoryReserved':
      return String(d.reservationId ?? '');
    case 'InventoryReleased':
      return `reservation ${String(d.reservationId ?? '')} is back in stock`;
    case 'OrderShipped':
      return `${String(d.shipmentId ?? '')}`;
    case 'OrderCancelled':
      return String(d.reason ?? '');
    case 'OrderStatusChanged':
      return `to ${String(d.newStatus ?? '')} (declared by another system)`;
    default:
      return '';
  }
}

/**
 * Where the stock stands. Cancelling a reserved order records InventoryReleased; orders cancelled
 * before that event existed say that no release was recorded rather than "Reserved".
 */
function inventoryText(s: OrderDetailT['state']): string {
  if (!s.reservationId) return 'Not reserved';
  if (s.inventoryReleasedAt) return `Stock released (reservation ${s.reservationId})`;
  if (s.status === 'CANCELLED') return `Cancelled; no release recorded for reservation ${s.reservationId}`;
  if (s.status === 'SHIPPED') return `Shipped from reservation ${s.reservationId}`;
  return `Reserved (${s.reservationId})`;
}

/**
 * Newest first, by when each change was made: the order's versions in order, and a change the
 * server refused (or an attempt replaced by a rebase) where it happened, not on top of later events.
 */
function newestFirst(timeline: readonly TimelineEntry[]): TimelineEntry[] {
  const time = (e: TimelineEntry) => Date.parse(e.recordedAt) || 0;
  const spine = timeline.filter((e) => e.streamVersion > 0).sort((a, b) => a.streamVersion - b.streamVersion);
  const aside = timeline.filter((e) => e.streamVersion <= 0).sort((a, b) => time(a) - time(b));
  const out: TimelineEntry[] = [];
  let next = 0;
  for (const e of spine) {
    while (next < aside.length && time(aside[next]!) < time(e)) out.push(aside[next++]!);
    out.push(e);
  }
  out.push(...aside.slice(next));
  return out.reverse();
}

function TimeTravel({ orderId, version, currency }: { orderId: string; version: number; currency: string | null }) {
  const [at, setAt] = useState(version);
  const [asOf, setAsOf] = useState<AsOf | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => setAt(version), [version]);
  useEffect(() => {
    let alive = true;
    api
      .getOrderAsOf({ orderId, version: at })
      .then((s) => alive && (setAsOf(s), setError(null)))
      .catch((err: unknown) => alive && setError(describeError(err)));
    return () => {
      alive = false;
    };
  }, [orderId, at]);
  if (version < 1) return null;
  return (
    <div className="time-travel">
      <label htmlFor="tt-version">
        As of version <strong data-testid="tt-version">{at}</strong> of {version}
        {at === version ? ' (current)' : ''}
      </label>
      <input
        id="tt-version"
        type="range"
        min={1}
        max={version}
        step={1}
        value={at}
        disabled={version === 1}
        onChange={(e) => setAt(Number(e.target.value))}
      />
      {error ? <Notice kind="error">{error}</Notice> : null}
      {asOf ? (
        <dl className="facts compact" data-testid="tt-state">
          <div>
            <dt>Status</dt>
            <dd className="facets">
              <FacetBadge facet="payment" value={asOf.paymentStatus} />
              <FacetBadge facet="fulfilment" value={asOf.fulfilmentStatus} />
            </dd>
          </div>
          <div>
            <dt>Paid</dt>
            <dd className="money">{money(netPaidAmount(asOf), currency)}</dd>
          </div>
          <div>
            <dt>Inventory</dt>
            <dd>{inventoryText(asOf)}</dd>
          </div>
          <div>
            <dt>At</dt>
            <dd title={when(asOf.updatedAt)}>{whenShort(asOf.updatedAt)}</dd>
          </div>
        </dl>
      ) : null}
    </div>
  );
}

/**
 * The audit line belongs to one order: a result is kept with the order id it was computed for and
 * shown only for that order (the pane is reused when another order is selected, and a check may
 * still be running when the selection changes).
 */
function AuditStatus({ orderId, audit }: { orderId: string; audit: OrderDetailT['audit'] }) {
  const [checking, setChecking] = useState<string | null>(null);
  const [checked, setChecked] = useState<{ orderId: string; verified: boolean; message: string } | null>(null);
  const [failed, setFailed] = useState<{ orderId: string; message: string } | null>(null);
  const result = checked?.orderId === orderId ? checked : null;
  const error = failed?.orderId === orderId ? failed.message : null;
  const shown = result ?? (audit ? { verified: audit.verified, message: audit.verified ? `Verified ${when(audit.checkedAt)}` : `Broken at ${audit.firstBrokenEventId ?? 'an unknown event'}` } : null);
  return (
    <div className="audit">
      {shown ? (
        <p className={shown.verified ? 'audit-ok' : 'audit-bad'} data-testid="audit-status">
          <span className="dot" aria-hidden="true" /> {shown.verified ? 'Hash chain intact' : 'Hash chain broken'} — {shown.message}
        </p>
      ) : (
        <p className="muted" data-testid="audit-status">
          Not verified against the server yet.
        </p>
      )}
      {error ? <Notice kind="error">{error}</Notice> : null}
      <button
        type="button"
        className="secondary"
        disabled={checking === orderId}
        onClick={() => {
          setChecking(orderId);
          setFailed(null);
          api
            .verifyAudit({ orderId })
            .then((r) => setChecked({ orderId, verified: r.verified, message: r.message }))
            .catch((err: unknown) => setFailed({ orderId, message: describeError(err) }))
            .finally(() => setChecking((c) => (c === orderId ? null : c)));
        }}
      >
        {checking === orderId ? 'Verifying…' : 'Verify audit chain'}
      </button>
    </div>
  );
}

/** The device's timeline with the server's history in front of it (the events this device dropped). */
function withServerHistory(local: readonly TimelineEntry[], server: readonly TimelineEntry[] | null): TimelineEntry[] {
  if (!server) return [...local];
  const have = new Set(local.map((e) => e.eventId));
  return [...server.filter((e) => !have.has(e.eventId)), ...local];
}

/** A closed order past this device's retention window: its early events are on the server only. */
function DroppedHistory({
  orderId,
  dropped,
  loaded,
  onLoaded,
}: {
  orderId: string;
  dropped: NonNullable<OrderDetailT['historyDropped']>;
  loaded: boolean;
  onLoaded: (timeline: TimelineEntry[]) => void;
}) {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string | null>(null);
  if (loaded) return <Notice kind="info">Showing the full history from the server.</Notice>;
  return (
    <div className="dropped-history" data-testid="dropped-history">
      <p className="muted">
        This order is closed: this device dropped its events up to version {dropped.version} on {whenShort(dropped.droppedAt)} to save space. The
        server keeps them.
      </p>
      <button
        type="button"
        className="secondary"
        disabled={busy}
        onClick={() => {
          setBusy(true);
          setProblem(null);
          api
            .remoteHistory({ orderId })
            .then((r) => {
              if (r.status === 'ok') onLoaded(r.timeline);
              else setProblem(r.status === 'not-found' ? `The server has no order ${orderId}.` : `Could not reach the server: ${r.reason}`);
            })
            .catch((err: unknown) => setProblem(describeError(err)))
            .finally(() => setBusy(false));
        }}
      >
        {busy ? 'Loading…' : 'Load full history from server'}
      </button>
      {problem ? <Notice kind="error">{problem}</Notice> : null}
    </div>
  );
}

export function OrderDetailPane({ orderId }: { orderId: string }) {
  const live = useLive();
  const [detail, setDetail] = useState<OrderDetailT | null | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [reload, setReload] = useState(0);
  const [history, setHistory] = useState<{ orderId: string; timeline: TimelineEntry[] } | null>(null);
  const [opening, setOpening] = useState(false);
  const [openProblem, setOpenProblem] = useState<string | null>(null);
  useEffect(() => {
    let alive = true;
    api
      .getOrder({ orderId })
      .then((d) => alive && (setDetail(d), setError(null)))
      .catch((err: unknown) => alive && setError(describeError(err)));
    return () => {
      alive = false;
    };
  }, [orderId, live.changeTick, reload]);
  // Where the order opens as a panel over the list (below 1200 px), keyboard focus moves into it
  // once per opened order, so Tab continues inside the panel rather than behind it.
  const heading = useRef<HTMLHeadingElement>(null);
  const focusedFor = useRef<string | null>(null);
  const loaded = !!detail;
  useEffect(() => {
    if (!loaded || focusedFor.current === orderId) return;
    focusedFor.current = orderId;
    if (window.matchMedia('(max-width: 1200px)').matches) heading.current?.focus();
  }, [orderId, loaded]);
  // Escape closes the order (back to the list), unless a dialog or a field is handling it.
  useEffect(() => {
    const onKey = (e: globalThis.KeyboardEvent) => {
      if (e.key !== 'Escape' || e.defaultPrevented || document.querySelector('dialog[open]')) return;
      const target = e.target as HTMLElement | null;
      if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) && (target as HTMLInputElement).value) return;
      navigate('/orders');
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  if (error) return <Notice kind="error">Could not load order {orderId}: {error}</Notice>;
  if (detail === undefined) return <p className="muted pad">Loading {orderId}…</p>;
  if (detail === null)
    return (
      <Empty title={`Order ${orderId} was not found`}>
        <p>It is not on this device: it may be outside what this device keeps (Settings), or not synced yet.</p>
        <button
          type="button"
          className="primary"
          disabled={opening}
          onClick={() => {
            setOpening(true);
            setOpenProblem(null);
            openFromServer(orderId)
              .then((problem) => (problem ? setOpenProblem(problem) : setReload((n) => n + 1)))
              .catch((err: unknown) => setOpenProblem(describeError(err)))
              .finally(() => setOpening(false));
          }}
        >
          {opening ? 'Opening…' : 'Open from server'}
        </button>
        {openProblem ? <Notice kind="error">{openProblem}</Notice> : null}
      </Empty>
    );
  const s = detail.state;
  const serverHistory = history?.orderId === orderId ? history.timeline : null;
  const setServerHistory = (timeline: TimelineEntry[]) => setHistory({ orderId, timeline });
  const openConflicts = detail.conflicts.filter((c) => c.status === 'rejected');
  return (
    <div className="detail" aria-labelledby="detail-title">
      <header className="detail-head">
        <div>
          <h1 id="detail-title" ref={heading} tabIndex={-1}>
            {s.orderId}
          </h1>
          <p className="muted">
            <strong className="customer-name">{s.customerName ?? s.customerId}</strong>
            {s.customerName && s.customerName !== s.customerId ? ` (${s.customerId})` : ''}
            {s.customerContact ? ` · ${s.customerContact}` : ''} · created {when(s.createdAt)}
          </p>
        </div>
        <div className="detail-badges">
          <FacetBadge facet="payment" value={s.paymentStatus} />
          <FacetBadge facet="fulfilment" value={s.fulfilmentStatus} />
          <SyncBadge sync={detail.sync} />
          {/* Shown where the detail opens over the list (narrow windows); Escape does the same. */}
          <button type="button" className="ghost detail-close" onClick={() => navigate('/orders')}>
            Close
          </button>
        </div>
      </header>

      {openConflicts.map((c) => (
        <ConflictCard key={c.commandId} conflict={c} compact />
      ))}

      <dl className="facts">
        <div>
          <dt>Total</dt>
          <dd className="money">{money(s.total, s.currency)}</dd>
        </div>
        <div>
          <dt>Paid</dt>
          <dd className="money">{money(netPaidAmount(s), s.currency)}</dd>
        </div>
        <div>
          <dt>Outstanding</dt>
          <dd className="money">{money(Math.max(0, outstandingAmount(s)), s.currency)}</dd>
        </div>
        <div>
          <dt>Inventory</dt>
          <dd data-testid="inventory-fact">{inventoryText(s)}</dd>
        </div>
        <div>
          <dt>Shipment</dt>
          <dd>{s.shipmentId ? `${s.shipmentId}, ${when(s.shippedAt)}` : '—'}</dd>
        </div>
        {s.cancelReason ? (
          <div>
            <dt>Cancelled</dt>
            <dd>
              {when(s.cancelledAt)}: {s.cancelReason}
            </dd>
          </div>
        ) : null}
      </dl>

      <Card title="Actions">
        <ActionForms detail={detail} />
      </Card>

      <div className="two-col">
        <Card title="Items">
          <table>
            <thead>
              <tr>
                <th scope="col">Item</th>
                <th scope="col" className="num">
                  Qty
                </th>
                <th scope="col" className="num">
                  Unit price
                </th>
                <th scope="col" className="num">
                  Line total
                </th>
              </tr>
            </thead>
            <tbody>
              {s.items.map((i, idx) => (
                <tr key={`${i.sku}-${idx}`}>
                  <td>
                    {i.description ? (
                      <>
                        {i.description}
                        <br />
                        <small className="muted mono">{i.sku}</small>
                      </>
                    ) : (
                      i.sku
                    )}
                  </td>
                  <td className="num">{i.quantity}</td>
                  <td className="num">{money(i.unitPrice, s.currency)}</td>
                  <td className="num">{money(i.unitPrice * i.quantity, s.currency)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Card>
        <Card title="Payments">
          {s.payments.length === 0 ? (
            <p className="muted">No payments yet.</p>
          ) : (
            <table>
              <thead>
                <tr>
                  <th scope="col">Payment</th>
                  <th scope="col" className="num">
                    Amount
                  </th>
                  <th scope="col" className="num">
                    Refunded
                  </th>
                </tr>
              </thead>
              <tbody>
                {s.payments.map((p) => (
                  <tr key={p.paymentId}>
                    <td>{p.paymentId}</td>
                    <td className="num">{money(p.amount, s.currency)}</td>
                    <td className="num">{p.refunded ? money(p.refunded, s.currency) : '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Card>
      </div>

      <Card title="Time travel">
        <TimeTravel orderId={orderId} version={s.version} currency={s.currency} />
      </Card>

      <Card title="History" actions={<AuditStatus orderId={orderId} audit={detail.audit} />}>
        {detail.historyDropped ? <DroppedHistory key={orderId} orderId={orderId} dropped={detail.historyDropped} onLoaded={setServerHistory} loaded={serverHistory !== null} /> : null}
        <ol className="timeline" aria-label="Event timeline">
          {newestFirst(withServerHistory(detail.timeline, serverHistory)).map((e) => (
            <li key={e.eventId} className={`tl-${e.sync}`}>
              <div className="tl-marker" aria-hidden="true">
                {e.streamVersion > 0 ? e.streamVersion : '·'}
              </div>
              <div className="tl-body">
                <p className="tl-title">
                  <strong>{EVENT_LABEL[e.eventType] ?? e.eventType}</strong> <span className="muted">{eventSummary(e, s.currency)}</span>
                </p>
                <p className="tl-meta">
                  <span title="Who">{meta(e, 'userId') ?? 'unknown user'}</span>
                  <span title="When">{when(e.recordedAt)}</span>
                  <span title={`Device ${meta(e, 'deviceId') ?? 'unknown'}`}>
                    {meta(e, 'deviceId') === null ? 'unknown device' : meta(e, 'deviceId') === live.deviceId ? 'this device' : 'another device'}
                  </span>
                  {meta(e, 'source') ? <span title="Source">via {meta(e, 'source')}</span> : null}
                  {e.globalPosition !== null ? <span title="Server position">#{e.globalPosition}</span> : null}
                  {e.hash ? (
                    <span title={`Chain hash ${e.hash}`} className="mono">
                      {e.hash.slice(0, 10)}…
                    </span>
                  ) : null}
                </p>
              </div>
              <SyncBadge sync={e.sync} />
            </li>
          ))}
        </ol>
      </Card>
    </div>
  );
}
