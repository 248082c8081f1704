import { useState, type FormEvent } from 'react';
import { api } from '../api.js';
import { describeError } from '../forms.js';
import { navigate } from '../router.js';
import { Notice } from './ui.js';

/**
 * Open an order that is not on this device (outside its sync scope) from the server. The device
 * keeps it and follows its changes from then on. Returns a sentence for the person when it cannot.
 */
export async function openFromServer(orderId: string): Promise<string | null> {
  const outcome = await api.openRemoteOrder({ orderId });
  if (outcome.status === 'ok') return null;
  if (outcome.status === 'not-found') return `The server has no order ${orderId}.`;
  return `Could not reach the server: ${outcome.reason}`;
}

/** "Open by ID": an order on this device opens at once; any other is fetched from the server first. */
export function OpenOrderById() {
  const [orderId, setOrderId] = useState('');
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const id = orderId.trim();
    if (!id) return;
    setBusy(true);
    setMessage(null);
    try {
      const local = await api.getOrder({ orderId: id });
      const problem = local ? null : await openFromServer(id);
      if (problem) setMessage(problem);
      else {
        setOrderId('');
        navigate(`/orders/${encodeURIComponent(id)}`);
      }
    } catch (err) {
      setMessage(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="open-by-id" onSubmit={submit} aria-label="Open an order by ID">
      <label className="sr-only" htmlFor="open-order-id">
        Order ID
      </label>
      <input id="open-order-id" placeholder="Order ID…" value={orderId} onChange={(e) => setOrderId(e.target.value)} maxLength={200} autoComplete="off" />
      <button type="submit" className="secondary" disabled={busy || orderId.trim() === ''}>
        {busy ? 'Opening…' : 'Open by ID'}
      </button>
      {message ? <Notice kind="error">{message}</Notice> : null}
    </form>
  );
}
