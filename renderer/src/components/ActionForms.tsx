import { useState, type FormEvent } from 'react';
import type { OrderDetail } from '../../../src/app/contract.js';
import { CancelOrder, RecordPayment, ReserveInventory, ShipOrder, type OrderCommand } from '../../../src/domain/commands.js';
import { outstandingAmount } from '../../../src/domain/state.js';
import { parseAmount } from '../amounts.js';
import { api } from '../api.js';
import { describeError, fieldErrors, lengthNote, type FieldErrors } from '../forms.js';
import { money, newId } from '../format.js';
import { Field, Notice } from './ui.js';

/** The domain's limit on a cancellation reason (CancelOrder.reason). */
const REASON_MAX = 500;

type Action = 'payment' | 'reserve' | 'ship' | 'cancel';
const ACTIONS: { id: Action; label: string }[] = [
  { id: 'payment', label: 'Record payment' },
  { id: 'reserve', label: 'Reserve inventory' },
  { id: 'ship', label: 'Ship' },
  { id: 'cancel', label: 'Cancel order' },
];

/**
 * Commands on an open order. Each form validates with the domain's zod schema before sending;
 * the store then runs the business rules (offline, on this device) and a rejection is shown
 * right here in the words the domain chose.
 */
export function ActionForms({ detail }: { detail: OrderDetail }) {
  const state = detail.state;
  const orderId = state.orderId!;
  const [action, setAction] = useState<Action>('payment');
  const [amount, setAmount] = useState('');
  const [reason, setReason] = useState('');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [result, setResult] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const closed = state.status === 'SHIPPED' || state.status === 'CANCELLED';
  const reasonNote = lengthNote(reason, REASON_MAX);
  const outstanding = outstandingAmount(state);

  function build(): { command?: OrderCommand; errors: FieldErrors } {
    switch (action) {
      case 'payment': {
        const parsed = parseAmount(amount, state.currency ?? 'USD');
        if (!parsed.ok) return { errors: { amount: parsed.message } };
        if (parsed.minor === 0n) return { errors: { amount: 'A payment must be more than zero.' } };
        const r = RecordPayment.safeParse({ type: 'RecordPayment', orderId, paymentId: newId('PAY'), amount: Number(parsed.minor) });
        return r.success ? { command: r.data, errors: {} } : { errors: fieldErrors(r.error) };
      }
      case 'reserve': {
        const r = ReserveInventory.safeParse({ type: 'ReserveInventory', orderId, reservationId: newId('RES') });
        return r.success ? { command: r.data, errors: {} } : { errors: fieldErrors(r.error) };
      }
      case 'ship': {
        const r = ShipOrder.safeParse({ type: 'ShipOrder', orderId, shipmentId: newId('SHP'), shippedAt: new Date().toISOString() });
        return r.success ? { command: r.data, errors: {} } : { errors: fieldErrors(r.error) };
      }
      case 'cancel': {
        if (reasonNote.over) return { errors: { reason: `Too long: ${reason.trim().length.toLocaleString()} characters, at most ${REASON_MAX} (nothing was cut; shorten it).` } };
        const r = CancelOrder.safeParse({ type: 'CancelOrder', orderId, reason, cancelledAt: new Date().toISOString() });
        return r.success ? { command: r.data, errors: {} } : { errors: fieldErrors(r.error) };
      }
    }
  }

  async function submit(e: FormEvent) {
    e.preventDefault();
    setResult(null);
    const built = build();
    setErrors(built.errors);
    if (!built.command) return;
    setBusy(true);
    try {
      const res = await api.execute({ command: built.command });
      if (res.ok) {
        setResult({ kind: 'ok', text: `Saved on this device (version ${res.version}).` });
        setAmount('');
        setReason('');
      } else {
        setResult({ kind: 'error', text: res.rejection.message });
      }
    } catch (err) {
      setResult({ kind: 'error', text: describeError(err) });
    } finally {
      setBusy(false);
    }
  }

  if (closed) {
    return (
      <p className="muted">
        This order is {state.status === 'SHIPPED' ? 'shipped' : 'cancelled'}; no further actions apply.
      </p>
    );
  }

  return (
    <form onSubmit={submit} className="actions" noValidate>
      <div className="segmented" role="radiogroup" aria-label="Action">
        {ACTIONS.map((a) => (
          <label key={a.id} className={a.id === action ? 'seg active' : 'seg'}>
            <input
              type="radio"
              name="action"
              value={a.id}
              checked={a.id === action}
              onChange={() => {
                setAction(a.id);
                setErrors({});
                setResult(null);
              }}
            />
            {a.label}
          </label>
        ))}
      </div>
      {action === 'payment' ? (
        <Field id="act-amount" label={`Amount (${state.currency ?? ''})`} error={errors.amount} hint={`Outstanding: ${money(outstanding, state.currency)}`}>
          <input id="act-amount" inputMode="decimal" placeholder="0.00" value={amount} onChange={(e) => setAmount(e.target.value)} />
        </Field>
      ) : null}
      {action === 'reserve' ? <p className="muted">Reserves stock for every item on this order.</p> : null}
      {action === 'ship' ? <p className="muted">Records the shipment now. The order must be paid and reserved.</p> : null}
      {action === 'cancel' ? (
        <Field id="act-reason" label="Reason" error={errors.reason} hint={`${reasonNote.text} characters`}>
          <input id="act-reason" value={reason} onChange={(e) => setReason(e.target.value)} aria-invalid={reasonNote.over || undefined} />
        </Field>
      ) : null}
      {result ? <Notice kind={result.kind}>{result.text}</Notice> : null}
      <div className="form-actions">
        <button type="submit" className={action === 'cancel' ? 'danger' : 'primary'} disabled={busy}>
          {busy ? 'Saving…' : ACTIONS.find((a) => a.id === action)!.label}
        </button>
      </div>
    </form>
  );
}
