import { useEffect, useRef, useState, type FormEvent } from 'react';
import { CreateOrder } from '../../../src/domain/commands.js';
import { CURRENCY_MINOR_DIGITS } from '../../../src/domain/currencies.js';
import { CUSTOMER_NAME_MAX, DESCRIPTION_MAX } from '../../../src/domain/events.js';
import { formatAmount, MAX_MINOR, parseAmount } from '../amounts.js';
import { api } from '../api.js';
import { describeError, fieldErrors, type FieldErrors } from '../forms.js';
import { newId } from '../format.js';
import { Field, Notice } from './ui.js';

interface ItemDraft {
  key: number;
  sku: string;
  description: string;
  quantity: string;
  unitPrice: string;
}

let itemKey = 0;
const blankItem = (): ItemDraft => ({ key: ++itemKey, sku: '', description: '', quantity: '1', unitPrice: '' });

const MAX_QUANTITY = 1_000_000;

/** Quantity as typed → a whole number, or a sentence. */
function parseQuantity(text: string): number | string {
  const t = text.trim().replace(/[\s,.'’\u00a0\u202f](?=\d{3}(\D|$))/g, '');
  if (!t) return 'Enter a quantity, for example 1.';
  if (!/^\d+$/.test(t)) return 'Enter a whole number of items, for example 3.';
  const q = Number(t);
  if (q < 1) return 'Must be at least 1.';
  if (q > MAX_QUANTITY) return `At most ${MAX_QUANTITY.toLocaleString()} per line.`;
  return q;
}

export function CreateOrderDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (orderId: string) => void }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [orderId, setOrderId] = useState(() => newId('ORD'));
  const [customerId, setCustomerId] = useState('');
  const [customerName, setCustomerName] = useState('');
  const [contact, setContact] = useState('');
  const [currency, setCurrency] = useState('USD');
  const [items, setItems] = useState<ItemDraft[]>(() => [blankItem()]);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    const d = dialog.current;
    if (d && !d.open) d.showModal();
    // showModal focuses the first field (the generated order id); people start with the customer.
    document.getElementById('co-name')?.focus();
  }, []);

  const code = currency.trim().toUpperCase();
  const prices = items.map((i) => parseAmount(i.unitPrice, code || 'USD'));
  const quantities = items.map((i) => parseQuantity(i.quantity));
  // Exact (BigInt) and only from lines that read correctly; a line still being typed adds nothing.
  const total = items.reduce((sum, _item, idx) => {
    const p = prices[idx]!;
    const q = quantities[idx];
    return p.ok && typeof q === 'number' ? sum + p.minor * BigInt(q) : sum;
  }, 0n);
  const complete = prices.every((p) => p.ok) && quantities.every((q) => typeof q === 'number');
  const tooLarge = total > MAX_MINOR;

  // An edited field's old message no longer describes it; the next submit re-validates.
  const clearError = (field: string) =>
    setErrors((errs) => (field in errs ? Object.fromEntries(Object.entries(errs).filter(([k]) => k !== field)) : errs));

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
      const p = prices[idx]!;
      const q = quantities[idx]!;
      if (!p.ok) errs[`items.${idx}.unitPrice`] = p.message;
      if (typeof q === 'string') errs[`items.${idx}.quantity`] = q;
      const description = item.description.trim();
      return { sku: item.sku.trim(), ...(description ? { description } : {}), quantity: typeof q === 'number' ? q : 1, unitPrice: p.ok ? Number(p.minor) : 0 };
    });
    if (tooLarge) errs.items = `The order total is more than the largest amount this app keeps (${formatAmount(MAX_MINOR, code)}).`;
    const parsed = CreateOrder.safeParse({
      type: 'CreateOrder',
      orderId: orderId.trim(),
      customerId: customerId.trim(),
      customerName: customerName.trim(),
      ...(contact.trim() ? { customerContact: contact.trim() } : {}),
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
        <div className="grid-2">
          <Field
            id="co-name"
            label="Customer name"
            error={errors.customerName}
            hint={`As people know them, any language · ${customerName.trim().length} / ${CUSTOMER_NAME_MAX}`}
          >
            <input id="co-name" value={customerName} onChange={(e) => (setCustomerName(e.target.value), clearError('customerName'))} autoComplete="off" />
          </Field>
          <Field id="co-contact" label="Contact (optional)" error={errors.customerContact} hint="E-mail or phone, e.g. +44 20 7946 0958">
            <input id="co-contact" value={contact} onChange={(e) => (setContact(e.target.value), clearError('customerContact'))} autoComplete="off" />
          </Field>
        </div>
        <div className="grid-3">
          <Field id="co-order" label="Order ID" error={errors.orderId} hint="Up to 100: letters, digits, . _ : @ -">
            <input id="co-order" value={orderId} onChange={(e) => (setOrderId(e.target.value), clearError('orderId'))} autoComplete="off" />
          </Field>
          <Field id="co-customer" label="Customer ID" error={errors.customerId} hint="Up to 100: letters, digits, . _ : @ -">
            <input id="co-customer" value={customerId} onChange={(e) => (setCustomerId(e.target.value), clearError('customerId'))} autoComplete="off" />
          </Field>
          <Field id="co-currency" label="Currency" error={errors.currency} hint="e.g. USD, EUR, JPY">
            <input id="co-currency" value={currency} onChange={(e) => (setCurrency(e.target.value), clearError('currency'))} maxLength={3} list="co-currencies" autoComplete="off" />
            <datalist id="co-currencies">
              {[...CURRENCY_MINOR_DIGITS.keys()].map((c) => (
                <option key={c} value={c} />
              ))}
            </datalist>
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
              <Field
                id={`co-desc-${item.key}`}
                label="Description (optional)"
                error={errors[`items.${idx}.description`]}
                hint={item.description.trim().length > DESCRIPTION_MAX * 0.8 ? `${item.description.trim().length} / ${DESCRIPTION_MAX}` : `Up to ${DESCRIPTION_MAX} characters`}
              >
                <input id={`co-desc-${item.key}`} value={item.description} onChange={(e) => update(item.key, { description: e.target.value })} autoComplete="off" />
              </Field>
              <Field id={`co-qty-${item.key}`} label="Quantity" error={errors[`items.${idx}.quantity`]}>
                <input
                  id={`co-qty-${item.key}`}
                  inputMode="numeric"
                  value={item.quantity}
                  onChange={(e) => update(item.key, { quantity: e.target.value })}
                />
              </Field>
              <Field id={`co-price-${item.key}`} label={`Unit price (${code || '—'})`} error={errors[`items.${idx}.unitPrice`]}>
                <input
                  id={`co-price-${item.key}`}
                  inputMode="decimal"
                  placeholder={formatAmount(0, code || 'USD').replace(/^[^\d]*/, '')}
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
        <p className="total-line" data-testid="order-total">
          Total{' '}
          <strong className="money">{tooLarge ? 'too large' : formatAmount(total, code || 'USD')}</strong>
          {!complete && !tooLarge ? <span className="muted small"> (lines still being typed are not counted)</span> : null}
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
