import { useEffect, useRef, useState, type FormEvent } from 'react';
import { CreateOrder } from '../../../src/domain/commands.js';
import { formatMinor, toMinorUnits } from '../../../src/domain/money.js';
import { api } from '../api.js';
import { describeError, fieldErrors, type FieldErrors } from '../forms.js';
import { newId } from '../format.js';
import { Field, Notice } from './ui.js';

interface ItemDraft {
  key: number;
  sku: string;
  quantity: string;
  unitPrice: string;
}

let itemKey = 0;
const blankItem = (): ItemDraft => ({ key: ++itemKey, sku: '', quantity: '1', unitPrice: '' });

/** Major-unit text → minor units, or a message. Exact: no floating point on the way. */
function parsePrice(text: string): number | string {
  if (!text.trim()) return 'enter a price, e.g. 12.50';
  try {
    const minor = toMinorUnits(text);
    return minor < 0 ? 'must not be negative' : minor;
  } catch (err) {
    return (err as Error).message;
  }
}

export function CreateOrderDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (orderId: string) => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [orderId, setOrderId] = useState(() => newId('ORD'));
  const [customerId, setCustomerId] = useState('');
  const [currency, setCurrency] = useState('USD');
  const [items, setItems] = useState<ItemDraft[]>(() => [blankItem()]);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const d = dialog.current;
    if (d && !d.open) d.showModal();
  }, []);

  const prices = items.map((i) => parsePrice(i.unitPrice));
  const total = items.reduce((sum, item, idx) => {
    const p = prices[idx];
    const q = Number(item.quantity);
    return typeof p === 'number' && Number.isInteger(q) ? sum + p * q : sum;
  }, 0);

  const update = (key: number, patch: Partial<ItemDraft>) => {
    setItems((xs) => xs.map((x) => (x.key === key ? { ...x, ...patch } : x)));
    // An edited row's old messages no longer describe it; the next submit re-validates.
    const idx = items.findIndex((x) => x.key === key);
    setErrors((errs) => Object.fromEntries(Object.entries(errs).filter(([k]) => !k.startsWith(`items.${idx}.`) && k !== 'items')));
  };

  async function submit(e: FormEvent) {
    e.preventDefault();
    setFailure(null);
    const errs: FieldErrors = {};
    const parsedItems = items.map((item, idx) => {
      const p = prices[idx];
      if (typeof p === 'string') errs[`items.${idx}.unitPrice`] = p;
      const q = item.quantity.trim() === '' ? NaN : Number(item.quantity);
      return { sku: item.sku.trim(), quantity: q, unitPrice: typeof p === 'number' ? p : 0 };
    });
    const parsed = CreateOrder.safeParse({
      type: 'CreateOrder',
      orderId: orderId.trim(),
      customerId: customerId.trim(),
      currency: currency.trim().toUpperCase(),
      items: parsedItems,
    });
    if (!parsed.success) Object.assign(errs, fieldErrors(parsed.error), errs);
    setErrors(errs);
    if (!parsed.success || Object.keys(errs).length) return;
    setBusy(true);
    try {
      const res = await api.execute({ command: parsed.data });
      if (res.ok) onCreated(res.orderId);
      else setFailure(res.rejection.message);
    } catch (err) {
      setFailure(describeError(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <dialog ref={dialog} className="dialog" aria-labelledby="create-order-title" onClose={onClose} onCancel={onClose}>
      <form onSubmit={submit} noValidate>
        <header className="dialog-head">
          <h2 id="create-order-title">New order</h2>
          <p className="muted">Saved on this device immediately; it syncs when the server is reachable.</p>
        </header>
        <div className="grid-3">
          <Field id="co-order" label="Order ID" error={errors.orderId}>
            <input id="co-order" value={orderId} onChange={(e) => setOrderId(e.target.value)} autoComplete="off" />
          </Field>
          <Field id="co-customer" label="Customer ID" error={errors.customerId}>
            <input id="co-customer" value={customerId} onChange={(e) => setCustomerId(e.target.value)} autoComplete="off" autoFocus />
          </Field>
          <Field id="co-currency" label="Currency" error={errors.currency}>
            <input id="co-currency" value={currency} onChange={(e) => setCurrency(e.target.value)} maxLength={3} autoComplete="off" />
          </Field>
        </div>
        <fieldset className="items">
          <legend>Items</legend>
          {errors.items ? (
            <p className="field-error" role="alert">
              {errors.items}
            </p>
          ) : null}
          {items.map((item, idx) => (
            <div className="item-row" key={item.key}>
              <Field id={`co-sku-${item.key}`} label="SKU" error={errors[`items.${idx}.sku`]}>
                <input id={`co-sku-${item.key}`} value={item.sku} onChange={(e) => update(item.key, { sku: e.target.value })} autoComplete="off" />
              </Field>
              <Field id={`co-qty-${item.key}`} label="Quantity" error={errors[`items.${idx}.quantity`]}>
                <input
                  id={`co-qty-${item.key}`}
                  inputMode="numeric"
                  value={item.quantity}
                  onChange={(e) => update(item.key, { quantity: e.target.value })}
                />
              </Field>
              <Field id={`co-price-${item.key}`} label={`Unit price (${currency || '—'})`} error={errors[`items.${idx}.unitPrice`]}>
                <input
                  id={`co-price-${item.key}`}
                  inputMode="decimal"
                  placeholder="0.00"
                  value={item.unitPrice}
                  onChange={(e) => update(item.key, { unitPrice: e.target.value })}
                />
              </Field>
              <button
                type="button"
                className="ghost remove"
                aria-label={`Remove item ${idx + 1}`}
                disabled={items.length === 1}
                onClick={() => setItems((xs) => xs.filter((x) => x.key !== item.key))}
              >
                Remove
              </button>
            </div>
          ))}
          <button type="button" className="secondary" onClick={() => setItems((xs) => [...xs, blankItem()])}>
            Add item
          </button>
        </fieldset>
        <p className="total-line">
          Total <strong>{`${formatMinor(total)} ${currency.toUpperCase()}`}</strong>
        </p>
        {failure ? <Notice kind="error">{failure}</Notice> : null}
        <footer className="dialog-actions">
          <button type="button" className="secondary" onClick={() => dialog.current?.close()}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? 'Saving…' : 'Create order'}
          </button>
        </footer>
      </form>
    </dialog>
  );
}
