import { useVirtualizer } from '@tanstack/react-virtual';
import { useCallback, useEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import type { ListOrdersInput, OrderRow } from '../../../src/app/contract.js';
import { FULFILMENT_STATUSES, PAYMENT_STATUSES, type FulfilmentStatus, type PaymentStatus } from '../../../src/domain/state.js';
import { api } from '../api.js';
import { CreateOrderDialog } from '../components/CreateOrderDialog.js';
import { OpenOrderById } from '../components/OpenFromServer.js';
import { Empty, FacetBadge, Notice, SyncBadge } from '../components/ui.js';
import { describeError } from '../forms.js';
import { ago, FULFILMENT_LABEL, money, PAYMENT_LABEL } from '../format.js';
import { navigate } from '../router.js';
import { useLive } from '../status.js';
import { OrderDetailPane } from './OrderDetail.js';

const PAGE_SIZE = 100;
const ROW_HEIGHT = 60;
type PaymentFilter = PaymentStatus | 'ALL';
type FulfilmentFilter = FulfilmentStatus | 'ALL';
const PAYMENT_FILTERS: PaymentFilter[] = ['ALL', ...PAYMENT_STATUSES];
const FULFILMENT_FILTERS: FulfilmentFilter[] = ['ALL', ...FULFILMENT_STATUSES];

/** One facet's chips: each says how many orders picking it would show. */
function FacetChips<T extends string>({
  label,
  values,
  labels,
  value,
  counts,
  onPick,
}: {
  label: string;
  values: readonly T[];
  labels: Record<string, string>;
  value: T;
  counts: Record<string, number>;
  onPick: (v: T) => void;
}) {
  return (
    <div className="filters" role="group" aria-label={`Filter by ${label.toLowerCase()}`}>
      <span className="filters-label" aria-hidden="true">
        {label}
      </span>
      {values.map((f) => (
        <button key={f} type="button" className={f === value ? 'chip active' : 'chip'} aria-pressed={f === value} onClick={() => onPick(f)}>
          {labels[f]}
          <span className="chip-count">{(counts[f] ?? 0).toLocaleString()}</span>
        </button>
      ))}
    </div>
  );
}

type Sort = `${NonNullable<ListOrdersInput['sort']>}:${NonNullable<ListOrdersInput['direction']>}`;
const SORTS: { value: Sort; label: string }[] = [
  { value: 'updatedAt:desc', label: 'Recently updated' },
  { value: 'updatedAt:asc', label: 'Least recently updated' },
  { value: 'createdAt:desc', label: 'Newest first' },
  { value: 'createdAt:asc', label: 'Oldest first' },
];

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

/**
 * Offset-paged cache behind the virtual list: only pages that scroll into view are fetched, so a
 * 100k-order log costs a few pages of DOM and memory. A query change starts a new generation;
 * answers for an old generation are dropped.
 */
function useOrderPages(query: Omit<ListOrdersInput, 'limit' | 'offset'>, changeTick: number) {
  const [pages, setPages] = useState<Map<number, OrderRow[]>>(new Map());
  const [total, setTotal] = useState<number | null>(null);
  const [counts, setCounts] = useState<{ payment: Record<string, number>; fulfilment: Record<string, number> }>({ payment: {}, fulfilment: {} });
  const [error, setError] = useState<string | null>(null);
  const generation = useRef(0);
  const inFlight = useRef(new Set<number>());
  const visible = useRef<[number, number]>([0, 0]);
  const key = JSON.stringify(query);

  const fetchPage = useCallback(
    (page: number, gen: number) => {
      if (inFlight.current.has(page)) return;
      inFlight.current.add(page);
      api
        .listOrders({ ...query, limit: PAGE_SIZE, offset: page * PAGE_SIZE })
        .then((res) => {
          if (gen !== generation.current) return;
          setPages((prev) => new Map(prev).set(page, res.rows));
          setTotal(res.total);
          setCounts({ payment: res.paymentCounts, fulfilment: res.fulfilmentCounts });
          setError(null);
        })
        .catch((err: unknown) => gen === generation.current && setError(describeError(err)))
        .finally(() => gen === generation.current && inFlight.current.delete(page));
    },
    [key],
  );

  const pagesFor = ([first, last]: [number, number]) => {
    const out: number[] = [];
    for (let p = Math.floor(first / PAGE_SIZE); p <= Math.floor(Math.max(first, last) / PAGE_SIZE); p++) out.push(p);
    return out;
  };

  // New query: forget everything and load the first page.
  useEffect(() => {
    generation.current++;
    inFlight.current = new Set();
    setPages(new Map());
    setTotal(null);
    fetchPage(0, generation.current);
  }, [fetchPage]);

  // Data changed underneath: refetch what is on screen, keeping old rows until the new ones arrive.
  const firstTick = useRef(true);
  useEffect(() => {
    if (firstTick.current) {
      firstTick.current = false;
      return;
    }
    generation.current++;
    inFlight.current = new Set();
    const gen = generation.current;
    setPages((prev) => {
      const keep = new Map<number, OrderRow[]>();
      for (const p of pagesFor(visible.current)) if (prev.has(p)) keep.set(p, prev.get(p)!);
      return keep;
    });
    for (const p of pagesFor(visible.current)) fetchPage(p, gen);
    if (!pagesFor(visible.current).includes(0)) fetchPage(0, gen);
  }, [changeTick]);

  const ensureRange = useCallback(
    (first: number, last: number) => {
      visible.current = [first, last];
      for (const p of pagesFor([first, last])) if (!pages.has(p)) fetchPage(p, generation.current);
    },
    [pages, fetchPage],
  );

  const rowAt = (index: number): OrderRow | undefined => pages.get(Math.floor(index / PAGE_SIZE))?.[index % PAGE_SIZE];
  return { total, counts, error, rowAt, ensureRange };
}

export function OrdersScreen({ selectedId }: { selectedId: string | null }) {
  const live = useLive();
  const [payment, setPayment] = useState<PaymentFilter>('ALL');
  const [fulfilment, setFulfilment] = useState<FulfilmentFilter>('ALL');
  const [searchText, setSearchText] = useState('');
  const [sort, setSort] = useState<Sort>('updatedAt:desc');
  const [creating, setCreating] = useState(false);
  const search = useDebounced(searchText.trim(), 250);
  const [sortField, direction] = sort.split(':') as [NonNullable<ListOrdersInput['sort']>, NonNullable<ListOrdersInput['direction']>];
  const query = useMemo(
    () => ({ payment, fulfilment, sort: sortField, direction, ...(search ? { search } : {}) }),
    [payment, fulfilment, sortField, direction, search],
  );
  const { total, counts, error, rowAt, ensureRange } = useOrderPages(query, live.changeTick);

  const scrollRef = useRef<HTMLDivElement>(null);
  const virtualizer = useVirtualizer({
    count: total ?? 0,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ROW_HEIGHT,
    overscan: 12,
  });
  const items = virtualizer.getVirtualItems();
  const first = items[0]?.index ?? 0;
  const last = items[items.length - 1]?.index ?? 0;
  useEffect(() => {
    if (total) ensureRange(first, last);
  }, [first, last, total, ensureRange]);

  // Arrow keys move between rows (only the visible ones exist in the DOM, so scroll first, then focus).
  const focusRow = (index: number) => {
    if (!total) return;
    const target = Math.max(0, Math.min(total - 1, index));
    virtualizer.scrollToIndex(target, { align: 'auto' });
    const tryFocus = (attempts: number) => {
      const link = scrollRef.current?.querySelector<HTMLElement>(`[data-index="${target}"] a`);
      if (link) link.focus();
      else if (attempts > 0) requestAnimationFrame(() => tryFocus(attempts - 1));
    };
    requestAnimationFrame(() => tryFocus(10));
  };
  const onListKey = (e: KeyboardEvent) => {
    const slot = (e.target as HTMLElement).closest<HTMLElement>('[data-index]');
    if (!slot) return;
    const index = Number(slot.dataset.index);
    const moves: Record<string, number> = { ArrowDown: index + 1, ArrowUp: index - 1, Home: 0, End: (total ?? 1) - 1, PageDown: index + 10, PageUp: index - 10 };
    if (!(e.key in moves)) return;
    e.preventDefault();
    focusRow(moves[e.key]!);
  };

  const filtered = search || payment !== 'ALL' || fulfilment !== 'ALL';

  return (
    <div className={selectedId ? 'orders-screen has-selection' : 'orders-screen'}>
      <div className="orders-main">
        <header className="screen-head">
          <h1>Orders</h1>
          <OpenOrderById />
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            New order
          </button>
        </header>
        <div className="toolbar">
          <label className="sr-only" htmlFor="order-search">
            Search orders
          </label>
          <input
            id="order-search"
            type="search"
            placeholder="Search by order, customer or name…"
            value={searchText}
            onChange={(e) => setSearchText(e.target.value)}
            maxLength={100}
          />
          <label className="sr-only" htmlFor="order-sort">
            Sort orders
          </label>
          <select id="order-sort" value={sort} onChange={(e) => setSort(e.target.value as Sort)}>
            {SORTS.map((s) => (
              <option key={s.value} value={s.value}>
                {s.label}
              </option>
            ))}
          </select>
        </div>
        <FacetChips label="Payment" values={PAYMENT_FILTERS} labels={PAYMENT_LABEL} value={payment} counts={counts.payment} onPick={setPayment} />
        <FacetChips
          label="Fulfilment"
          values={FULFILMENT_FILTERS}
          labels={FULFILMENT_LABEL}
          value={fulfilment}
          counts={counts.fulfilment}
          onPick={setFulfilment}
        />
        {error ? <Notice kind="error">Could not load orders: {error}</Notice> : null}
        <div className="list-head" aria-hidden="true">
          <span>Order</span>
          <span>Status</span>
          <span className="num">Total</span>
          <span>Updated</span>
          <span>Sync</span>
        </div>
        <div ref={scrollRef} className="order-list" aria-label={`Orders, ${total ?? 0} shown`} role="list" onKeyDown={onListKey}>
          {total === 0 ? (
            <Empty title={filtered ? 'No orders match' : 'No orders yet'}>
              {filtered ? (
                <p>Try another search, payment or fulfilment filter.</p>
              ) : (
                <p>Orders you create here are saved on this device first and synced when the server is reachable.</p>
              )}
            </Empty>
          ) : (
            <div className="order-list-inner" style={{ height: virtualizer.getTotalSize() }}>
              {items.map((v) => {
                const row = rowAt(v.index);
                return (
                  <div key={v.key} className="order-row-slot" role="listitem" data-index={v.index} style={{ transform: `translateY(${v.start}px)`, height: v.size }}>
                    {row ? (
                      <a
                        href={`#/orders/${encodeURIComponent(row.orderId)}`}
                        className={row.orderId === selectedId ? 'order-row selected' : 'order-row'}
                        aria-current={row.orderId === selectedId ? 'true' : undefined}
                        data-order-id={row.orderId}
                      >
                        <span className="cell-id">
                          <strong>{row.orderId}</strong>
                          <small title={row.customerName === row.customerId ? row.customerId : `${row.customerName} (${row.customerId})`}>
                            {row.customerName} · {row.itemCount} item{row.itemCount === 1 ? '' : 's'}
                          </small>
                        </span>
                        <span className="facets">
                          <FacetBadge facet="payment" value={row.paymentStatus} />
                          <FacetBadge facet="fulfilment" value={row.fulfilmentStatus} />
                        </span>
                        <span className="num">{money(row.total, row.currency)}</span>
                        <span className="muted nowrap" title={row.updatedAt}>
                          {ago(row.updatedAt)}
                        </span>
                        <span>
                          <SyncBadge sync={row.sync} />
                        </span>
                      </a>
                    ) : (
                      <div className="order-row loading" aria-label="Loading">
                        <span className="skeleton" />
                      </div>
                    )}
                  </div>
                );
              })}
            </div>
          )}
        </div>
      </div>
      <div className="orders-detail">
        {selectedId ? (
          <OrderDetailPane orderId={selectedId} />
        ) : (
          <Empty title="No order selected">
            <p>Pick an order from the list to see its items, payments and full history.</p>
          </Empty>
        )}
      </div>
      {creating ? (
        <CreateOrderDialog
          onClose={() => setCreating(false)}
          onCreated={(orderId) => {
            setCreating(false);
            navigate(`/orders/${encodeURIComponent(orderId)}`);
          }}
        />
      ) : null}
    </div>
  );
}
