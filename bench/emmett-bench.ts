// Side by side, same run, same workload, same durability (WAL + synchronous=FULL):
//   ours   — openLocalStore(...).log.append / readStream / orders.load
//   emmett — @event-driven-io/emmett-sqlite getSQLiteEventStore (sqlite3 driver), its public API
//   raw    — a better-sqlite3 INSERT/SELECT loop of the same pre-serialised rows (the physical limit)
// Each measurement runs in interleaved rounds (raw, ours, emmett, raw, ours, ...) on fresh files and
// reports the median rate, because this machine is shared and noisy.
// Run alone: npx tsx bench/emmett-bench.ts
import type { Event, ReadEvent } from '@event-driven-io/emmett';
import { getSQLiteEventStore, sqliteConnection, type SQLiteEventStore, type SQLiteReadEventMetadata } from '@event-driven-io/emmett-sqlite';
import Database from 'better-sqlite3';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { foldOrder, initialOrderState, type FoldableEvent, type OrderState } from '../src/domain/state.js';
import type { NewEvent } from '../src/protocol/envelope.js';
import { openDatabase, openLocalStore, type LocalStore } from '../src/store/index.js';
import { printTable, round } from './stats.js';

export interface EmmettBenchOptions {
  /** Single-event appends per variant per round. */
  singles?: number;
  /** Events appended in batches per variant per round. */
  batchedEvents?: number;
  batchSize?: number;
  /** Length of the stream read back and folded. */
  streamLength?: number;
  rounds?: number;
  /** A variant stops early (and is measured on what it did) after this long per round. */
  maxMsPerRun?: number;
}

type Variant = 'raw' | 'ours' | 'emmett';

type EmmettOrderEvent = Event<string, Record<string, unknown>>;

const ORDER_ID = 'O-bench';
const metadata = { userId: 'bench', deviceId: 'bench-device', source: 'bench', correlationId: 'c-1' };

function created(orderId: string): NewEvent {
  return {
    eventId: uuidv7(),
    eventType: 'OrderCreated',
    schemaVersion: 2,
    data: { orderId, customerId: 'C-1', items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 500_000_000 }], total: 1_000_000_000, currency: 'USD' },
    metadata,
  };
}

function payment(i: number): NewEvent {
  return { eventId: uuidv7(), eventType: 'PaymentReceived', schemaVersion: 1, data: { paymentId: `P-${i}`, amount: 1 }, metadata };
}

/** The same logical events for every variant: an OrderCreated and then payments. */
function workload(n: number): NewEvent[] {
  return [created(ORDER_ID), ...Array.from({ length: n - 1 }, (_, i) => payment(i))];
}

const fresh = (e: NewEvent): NewEvent => ({ ...e, eventId: uuidv7() });
const toEmmett = (e: NewEvent) => ({ type: e.eventType, data: e.data, metadata: { ...e.metadata, eventId: e.eventId } });
const emmettStream = (id: string) => `Order-${id}`;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const now = () => Number(process.hrtime.bigint()) / 1e6;

// ---------------------------------------------------------------- appends

function rawAppend(file: string, events: NewEvent[], batchSize: number, maxMs: number): { ms: number; done: number } {
  const db = openDatabase(file, { durability: 'full' });
  const insert = db.prepare(
    `INSERT INTO events (event_id, stream_id, stream_type, stream_version, event_type, schema_version, data, metadata, recorded_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const rows = events.map((e, i) => [e.eventId, ORDER_ID, 'Order', i + 1, e.eventType, e.schemaVersion, JSON.stringify(e.data), JSON.stringify(e.metadata), new Date().toISOString()]);
  const write = db.transaction((batch: unknown[][]) => {
    for (const r of batch) insert.run(...r);
  });
  const t0 = now();
  let done = 0;
  while (done < rows.length && now() - t0 < maxMs) {
    const batch = rows.slice(done, done + batchSize);
    write.immediate(batch);
    done += batch.length;
  }
  const ms = now() - t0;
  db.close();
  return { ms, done };
}

function oursAppend(file: string, events: NewEvent[], batchSize: number, maxMs: number): { ms: number; done: number } {
  const store = openLocalStore(file, { durability: 'full' });
  const t0 = now();
  let done = 0;
  while (done < events.length && now() - t0 < maxMs) {
    const batch = events.slice(done, done + batchSize);
    store.log.append(ORDER_ID, batch, { expectedVersion: done === 0 ? 'no_stream' : done });
    done += batch.length;
  }
  const ms = now() - t0;
  store.close();
  return { ms, done };
}

/**
 * Emmett 0.38.5 on the sqlite3 driver intermittently fails a COMMIT with "SQLITE_BUSY: cannot
 * commit transaction - SQL statements in progress" even with a single writer (its statements are
 * finalised asynchronously). The bench counts those failures, asks the database where the stream
 * really is, and carries on from there; the time lost stays in the measurement.
 */
async function emmettAppend(
  file: string,
  events: NewEvent[],
  batchSize: number,
  maxMs: number,
): Promise<{ ms: number; done: number; errors: number }> {
  const store = getSQLiteEventStore({ fileName: file });
  const stream = emmettStream(ORDER_ID);
  const t0 = now();
  let done = 0;
  let errors = 0;
  const restoreLog = muteEmmettErrorLog();
  try {
    while (done < events.length && now() - t0 < maxMs) {
      const batch = events.slice(done, done + batchSize);
      try {
        await store.appendToStream(stream, batch.map(toEmmett), { expectedStreamVersion: BigInt(done) });
        done += batch.length;
      } catch (err) {
        errors++;
        if (errors > 100) throw err;
        done = await emmettStreamPosition(file, stream);
      }
    }
  } finally {
    restoreLog();
  }
  return { ms: now() - t0, done, errors };
}

async function emmettStreamPosition(file: string, stream: string): Promise<number> {
  const c = sqliteConnection({ fileName: file });
  try {
    const row = await c.querySingle<{ p: number }>('SELECT stream_position AS p FROM emt_streams WHERE stream_id = ?', [stream]);
    return Number(row?.p ?? 0);
  } finally {
    c.close();
  }
}

/** Emmett console.logs every failed transaction before rethrowing; the bench reports them itself. */
function muteEmmettErrorLog(): () => void {
  const log = console.log;
  console.log = (...args: unknown[]) => {
    if (args.length === 1 && args[0] instanceof Error && 'code' in args[0]) return;
    log(...args);
  };
  return () => {
    console.log = log;
  };
}

/** A separate process with the file open in WAL mode (locks are per process, so it must be another one). */
async function holdOpen(file: string): Promise<ChildProcess> {
  const code = `const D=require('better-sqlite3');const d=new D(process.argv[1]);d.pragma('journal_mode = WAL');d.prepare('SELECT count(*) FROM sqlite_master').get();console.log('ready');setInterval(()=>{},1e6)`;
  const child = spawn(process.execPath, ['-e', code, file], { stdio: ['ignore', 'pipe', 'inherit'], cwd: process.cwd() });
  await new Promise((resolve, reject) => {
    child.stdout!.once('data', resolve);
    child.once('exit', (c) => reject(new Error(`file holder exited with ${c}`)));
  });
  return child;
}

// ---------------------------------------------------------------- reads and loads

/** Fill one 10k-event stream in each variant's own file (not timed). */
async function fill(dir: string, events: NewEvent[]): Promise<Record<Variant | 'ours_snapshot', string>> {
  const files = {
    raw: join(dir, 'read-raw.sqlite'),
    ours: join(dir, 'read-ours.sqlite'),
    ours_snapshot: join(dir, 'read-ours-snapshot.sqlite'),
    emmett: join(dir, 'read-emmett.sqlite'),
  };
  rawAppend(files.raw, events, 1000, Infinity);
  oursAppend(files.ours, events, 1000, Infinity);
  oursAppend(files.ours_snapshot, events, 1000, Infinity);
  await emmettAppend(files.emmett, events, 500, Infinity);
  return files;
}

interface Readers {
  read: Record<Variant, () => Promise<number>>;
  load: Record<Variant | 'ours_snapshot', () => Promise<OrderState>>;
  close(): void;
}

function readers(files: Record<Variant | 'ours_snapshot', string>): Readers {
  const raw = new Database(files.raw, { readonly: true });
  const rawSelect = raw.prepare<[string], { stream_version: number; event_type: string; data: string; metadata: string; recorded_at: string }>(
    'SELECT stream_version, event_type, data, metadata, recorded_at FROM events WHERE stream_id = ? ORDER BY stream_version',
  );
  // Cold loads: a file whose store never writes snapshots; warm loads: another file, default store, after one load.
  const oursCold: LocalStore = openLocalStore(files.ours, { durability: 'full', snapshotEvery: Number.MAX_SAFE_INTEGER });
  const oursWarm: LocalStore = openLocalStore(files.ours_snapshot, { durability: 'full', snapshotEvery: 100 });
  oursWarm.orders.load(ORDER_ID);
  const emmett: SQLiteEventStore = getSQLiteEventStore({ fileName: files.emmett });
  return {
    read: {
      raw: async () => rawSelect.all(ORDER_ID).map((r) => ({ ...r, data: JSON.parse(r.data), metadata: JSON.parse(r.metadata) })).length,
      ours: async () => oursCold.log.readStream(ORDER_ID).length,
      emmett: async () => (await emmett.readStream(emmettStream(ORDER_ID))).events.length,
    },
    load: {
      raw: async () =>
        foldOrder(rawSelect.all(ORDER_ID).map((r) => ({ type: r.event_type, data: JSON.parse(r.data), version: r.stream_version, recordedAt: r.recorded_at }))),
      ours: async () => oursCold.orders.load(ORDER_ID).state,
      ours_snapshot: async () => oursWarm.orders.load(ORDER_ID).state,
      // Emmett folds event by event through `evolve`. To compare storage and not reducers, evolve
      // collects the events and the same foldOrder runs once at the end, exactly as in our load.
      emmett: async () => {
        const { state } = await emmett.aggregateStream<FoldableEvent[], EmmettOrderEvent>(emmettStream(ORDER_ID), {
          initialState: () => [],
          evolve: (acc: FoldableEvent[], e: ReadEvent<EmmettOrderEvent, SQLiteReadEventMetadata>) => {
            acc.push({ type: e.type, data: e.data, version: Number(e.metadata.streamPosition), recordedAt: undefined });
            return acc;
          },
        });
        return foldOrder(state, initialOrderState);
      },
    },
    close: () => {
      raw.close();
      oursCold.close();
      oursWarm.close();
    },
  };
}

async function timeAsync(fn: () => Promise<unknown>): Promise<number> {
  const t0 = now();
  await fn();
  return now() - t0;
}

/** What Emmett's own connection reports for the durability settings, on the file it wrote. */
async function emmettDurability(file: string): Promise<{ journal_mode: string; synchronous: number }> {
  const c = sqliteConnection({ fileName: file });
  try {
    const j = await c.querySingle<{ journal_mode: string }>('PRAGMA journal_mode');
    const s = await c.querySingle<{ synchronous: number }>('PRAGMA synchronous');
    return { journal_mode: j?.journal_mode ?? '?', synchronous: s?.synchronous ?? -1 };
  } finally {
    c.close();
  }
}

// ---------------------------------------------------------------- the bench

export interface EmmettBenchResult {
  durability: {
    ours: string;
    raw: string;
    emmett: string;
  };
  params: Required<EmmettBenchOptions>;
  single: { raw_per_s: number; ours_per_s: number; emmett_per_s: number; emmett_held_open_per_s: number; ours_vs_raw: number; ours_vs_emmett: number; emmett_done: number; emmett_commit_errors: number };
  batched: { raw_per_s: number; ours_per_s: number; emmett_per_s: number; ours_vs_raw: number; ours_vs_emmett: number; emmett_commit_errors: number };
  read_10k: { raw_ms: number; ours_ms: number; emmett_ms: number; ours_vs_raw: number; ours_vs_emmett: number };
  load_10k: { raw_ms: number; ours_ms: number; ours_snapshot_ms: number; emmett_ms: number; ours_vs_raw: number; ours_vs_emmett: number };
  targets: { single_vs_raw: number; single_vs_emmett: number; batched_vs_raw: number };
}

export async function benchEmmett(opts: EmmettBenchOptions = {}): Promise<EmmettBenchResult> {
  const p: Required<EmmettBenchOptions> = {
    singles: opts.singles ?? 500,
    batchedEvents: opts.batchedEvents ?? 50_000,
    batchSize: opts.batchSize ?? 500,
    streamLength: opts.streamLength ?? 10_000,
    rounds: opts.rounds ?? 3,
    maxMsPerRun: opts.maxMsPerRun ?? 15_000,
  };
  const dir = mkdtempSync(join(tmpdir(), 'emmett-bench-'));
  try {
    const rates = (batch: number, n: number) => ({ raw: [] as number[], ours: [] as number[], emmett: [] as number[], held: [] as number[], emmettDone: 0, emmettErrors: 0, batch, n });
    const single = rates(1, p.singles);
    const batched = rates(p.batchSize, p.batchedEvents);
    for (let r = 0; r < p.rounds; r++) {
      for (const s of [single, batched]) {
        const events = workload(s.n);
        const f = (v: string) => join(dir, `${v}-${s.batch}-${r}.sqlite`);
        const raw = rawAppend(f('raw'), events.map(fresh), s.batch, p.maxMsPerRun);
        s.raw.push((raw.done / raw.ms) * 1000);
        const ours = oursAppend(f('ours'), events.map(fresh), s.batch, p.maxMsPerRun);
        s.ours.push((ours.done / ours.ms) * 1000);
        const em = await emmettAppend(f('emmett'), events.map(fresh), s.batch, p.maxMsPerRun);
        s.emmett.push((em.done / em.ms) * 1000);
        s.emmettDone = em.done;
        s.emmettErrors += em.errors;
        if (s.batch === 1) {
          // Emmett opens and closes a connection per call; the close of the last connection to a
          // WAL file checkpoints it (about 5 fsyncs per append instead of 1, measured with strace).
          // Another process holding the file open prevents that checkpoint and shows what it costs.
          const holder = await holdOpen(f('emmett-held'));
          const held = await emmettAppend(f('emmett-held'), events.map(fresh), 1, p.maxMsPerRun);
          holder.kill();
          s.emmettErrors += held.errors;
          s.held.push((held.done / held.ms) * 1000);
        }
      }
    }
    const durEmmett = await emmettDurability(join(dir, 'emmett-1-0.sqlite'));

    const files = await fill(dir, workload(p.streamLength));
    const rd = readers(files);
    const times: Record<string, number[]> = { read_raw: [], read_ours: [], read_emmett: [], load_raw: [], load_ours: [], load_ours_snapshot: [], load_emmett: [] };
    let check: OrderState | null = null;
    try {
      for (let r = 0; r < Math.max(p.rounds, 5); r++) {
        for (const v of ['raw', 'ours', 'emmett'] as const) times[`read_${v}`]!.push(await timeAsync(rd.read[v]));
        for (const v of ['raw', 'ours', 'ours_snapshot', 'emmett'] as const) {
          let state: OrderState | null = null;
          times[`load_${v}`]!.push(await timeAsync(async () => (state = await rd.load[v]())));
          const s = state as OrderState | null;
          // Every variant must produce the same order, or the comparison means nothing.
          if (!s || s.paidAmount !== p.streamLength - 1 || s.version !== p.streamLength) throw new Error(`load ${v}: wrong state (paid ${s?.paidAmount}, version ${s?.version})`);
          check ??= s;
        }
      }
    } finally {
      rd.close();
    }
    void check;

    const m = (xs: number[]) => median(xs);
    const t = (k: string) => round(m(times[k]!), 2);
    return {
      durability: {
        ours: 'WAL, synchronous=FULL (openLocalStore durability "full")',
        raw: 'WAL, synchronous=FULL (same schema, indexes, triggers)',
        emmett: `journal_mode=${durEmmett.journal_mode}, synchronous=${durEmmett.synchronous} (${durEmmett.synchronous === 2 ? 'FULL' : 'NOT FULL'}; sqlite3 default, Emmett sets WAL)`,
      },
      params: p,
      single: {
        raw_per_s: round(m(single.raw)),
        ours_per_s: round(m(single.ours)),
        emmett_per_s: round(m(single.emmett)),
        emmett_held_open_per_s: round(m(single.held)),
        ours_vs_raw: round(m(single.ours) / m(single.raw), 3),
        ours_vs_emmett: round(m(single.ours) / m(single.emmett), 2),
        emmett_done: single.emmettDone,
        emmett_commit_errors: single.emmettErrors,
      },
      batched: {
        raw_per_s: round(m(batched.raw)),
        ours_per_s: round(m(batched.ours)),
        emmett_per_s: round(m(batched.emmett)),
        ours_vs_raw: round(m(batched.ours) / m(batched.raw), 3),
        ours_vs_emmett: round(m(batched.ours) / m(batched.emmett), 2),
        emmett_commit_errors: batched.emmettErrors,
      },
      read_10k: {
        raw_ms: t('read_raw'),
        ours_ms: t('read_ours'),
        emmett_ms: t('read_emmett'),
        // For times, "ours vs X" is X's time / ours, so > 1 means ours is faster (same sense as rates).
        ours_vs_raw: round(m(times.read_raw!) / m(times.read_ours!), 3),
        ours_vs_emmett: round(m(times.read_emmett!) / m(times.read_ours!), 2),
      },
      load_10k: {
        raw_ms: t('load_raw'),
        ours_ms: t('load_ours'),
        ours_snapshot_ms: t('load_ours_snapshot'),
        emmett_ms: t('load_emmett'),
        ours_vs_raw: round(m(times.load_raw!) / m(times.load_ours!), 3),
        ours_vs_emmett: round(m(times.load_emmett!) / m(times.load_ours!), 2),
      },
      targets: { single_vs_raw: 0.5, single_vs_emmett: 10, batched_vs_raw: 0.8 },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printEmmett(r: EmmettBenchResult): void {
  printTable('Appends and reads: ours vs Emmett SQLite vs raw better-sqlite3 (same durability: WAL + FULL)', [
    { workload: 'single appends (ev/s)', raw: r.single.raw_per_s, ours: r.single.ours_per_s, emmett: r.single.emmett_per_s, 'ours/raw': r.single.ours_vs_raw, 'ours/emmett': r.single.ours_vs_emmett, target: '≥0.5 raw, ≥10× emmett' },
    { workload: `batched appends x${r.params.batchSize} (ev/s)`, raw: r.batched.raw_per_s, ours: r.batched.ours_per_s, emmett: r.batched.emmett_per_s, 'ours/raw': r.batched.ours_vs_raw, 'ours/emmett': r.batched.ours_vs_emmett, target: '≥0.8 raw' },
    { workload: `read ${r.params.streamLength} events (ms)`, raw: r.read_10k.raw_ms, ours: r.read_10k.ours_ms, emmett: r.read_10k.emmett_ms, 'ours/raw': r.read_10k.ours_vs_raw, 'ours/emmett': r.read_10k.ours_vs_emmett, target: '' },
    { workload: `aggregate load ${r.params.streamLength} (ms)`, raw: r.load_10k.raw_ms, ours: r.load_10k.ours_ms, emmett: r.load_10k.emmett_ms, 'ours/raw': r.load_10k.ours_vs_raw, 'ours/emmett': r.load_10k.ours_vs_emmett, target: '' },
  ]);
  console.log(`  ours with snapshot: ${r.load_10k.ours_snapshot_ms} ms; Emmett single appends with the file held open by another process (no checkpoint on each close): ${r.single.emmett_held_open_per_s} ev/s`);
  console.log(`  Emmett failed commits (SQLITE_BUSY "statements in progress", recovered and retried): single ${r.single.emmett_commit_errors}, batched ${r.batched.emmett_commit_errors}`);
  console.log(`  durability: ours ${r.durability.ours}; raw ${r.durability.raw}; emmett ${r.durability.emmett}`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printEmmett(await benchEmmett({}));
}
