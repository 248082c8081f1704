import { useState, type FormEvent } from 'react';
import type { OrderDetail } from '../../../src/app/contract.js';
import { CancelOrder, RecordPayment, ReserveInventory, ShipOrder, type OrderCommand } from '../../../src/domain/commands.js';
import { toMinorUnits } from '../../../src/domain/money.js';
import { outstandingAmount } from '../../../src/domain/state.js';
import { api } from '../api.js';
import { describeError, fieldErrors, type FieldErrors } from '../forms.js';
import { money, newId } from '../format.js';
import { Field, Notice } from './ui.js';

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
  const outstanding = outstandingAmount(state);

  function build(): { command?: OrderCommand; errors: FieldErrors } {
    switch (action) {
      case 'payment': {
        let minor: number;
        try {
          minor = toMinorUnits(amount || 'x');
        } catch (err) {
          return { errors: { amount: amount.trim() ? (err as Error).message : 'enter an amount, e.g. 25.00' } };
        }
        const r = RecordPayment.safeParse({ type: 'RecordPayment', orderId, paymentId: newId('PAY'), amount: minor });
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
        <Field id="act-reason" label="Reason" error={errors.reason}>
          <input id="act-reason" value={reason} onChange={(e) => setReason(e.target.value)} maxLength={500} />
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
