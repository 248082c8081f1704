// BENCHMARKS.md and bench/results/charts/*.svg, generated from bench/results/latest.json.
//   npx tsx bench/report.ts [results.json]     regenerate without re-running the benchmarks
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { barChart, formatNumber, fractionOfTarget, targetMet, targetsChart, type TargetCheck } from './charts.js';
import type { BenchResults, Section } from './run.js';

type Dict = Record<string, unknown>;

export interface TargetRow extends TargetCheck {
  met: boolean;
  source: Section;
  /** Why it was missed and what would close it (only for misses). */
  explanation?: string;
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const dataOf = (r: BenchResults, s: Section): Dict | Dict[] | undefined => {
  const sec = r.sections[s];
  return sec?.ok ? (sec.data as Dict | Dict[]) : undefined;
};
/** Where a first sync's time went, and what storing costs per event (the views are folded in as pages are stored). */
function firstSyncSpans(first: Dict): string {
  const b = (first.breakdown ?? {}) as Dict;
  const events = num(first.events) ?? NaN;
  const ms = (k: string) => num(b[k]) ?? NaN;
  const perEvent = (ms('store_pages_ms') * 1000) / events;
  const cpu = (first.cpu_us_per_event ?? null) as Dict | null;
  const busy = cpu
    ? `; the device process used ${formatNumber(num(cpu.device) ?? NaN)} µs of CPU per event against ${formatNumber(num(cpu.wall) ?? NaN)} µs of wall time (one thread busy throughout), the server process ${formatNumber(num(cpu.server) ?? NaN)} µs (most of the second core idle)`
    : '';
  return `waiting for pages ${formatNumber(ms('wait_pages_ms') / 1000)} s, storing them ${formatNumber(ms('store_pages_ms') / 1000)} s (about ${formatNumber(perEvent)} µs an event: the contract check, the envelope, two rows per event (the event and its server coordinates), the views folded in as a fed rebuild, the commit), finishing the views ${formatNumber(ms('build_views_ms') / 1000)} s (the index builds at the swap)${busy}`;
}

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;

interface EmmettData {
  single: Dict;
  batched: Dict;
  read_10k: Dict;
  load_10k: Dict;
  durability: Dict;
  params: Dict;
}

/** Every stated target that this results file has a measurement for. */
/** Where a 1M-event rebuild's time goes (profiled on 2026-12-01), and what would close the rest. */
const REBUILD_PROFILE = [
  "Where the time goes at 1M events (2026-12-02 00:30-01:05 on an AMD EPYC, timers in the code, `node --cpu-prof` and each thread's CPU time from /proc; three threads share two cores):",
  'the workers are loaded after 0.2 s (the rebuilding thread folds the first 40k events meanwhile); the fill then takes 2.9-3.1 s in a quiet phase, with each worker busy 2.1 s (reading its partition about 0.75 s, parsing and the fold and the rows the rest), the rebuilding thread 1.0-1.4 s (replaying their 221k writes 1.0 s, committing 100 batches) and V8\'s garbage-collection helper threads 0.9 s in all: the two cores are saturated, so only less CPU makes it shorter.',
  'Then the swap, on one thread: the list\'s eight indexes 0.33-0.36 s, its trigram index 0.21-0.24 s, the customer index 0.04 s, the commit 0.15-0.19 s, while a worker sums the daily totals, gram counts and customer totals (0.37 s).',
  'In all 6.9-7.2 s of CPU in quiet phases (9.6-10.3 s in slow ones, for the same work), where the same rebuild on one thread took about 6.3 s and the raw scan 3.1 s.',
].join(' ');

export function collectTargets(r: BenchResults): TargetRow[] {
  const rows: TargetRow[] = [];
  const add = (source: Section, t: TargetCheck, explain: (t: TargetCheck) => string) => {
    const met = targetMet(t);
    rows.push({ ...t, source, met, ...(met ? {} : { explanation: explain(t) }) });
  };
  const em = dataOf(r, 'emmett') as EmmettData | undefined;
  if (em) {
    const s = em.single;
    const b = em.batched;
    const rawOverEmmett = (num(s.raw_per_s) ?? NaN) / (num(s.emmett_per_s) ?? NaN);
    add('emmett', { name: 'single appends ÷ raw', actual: num(s.ours_vs_raw) ?? NaN, target: 0.5, unit: '×', kind: 'min' }, (t) =>
      `At ${pct(t.actual)} of raw. Single appends are fsync-bound (one WAL fsync per commit for both); the difference is per-append work in JavaScript (validation, idempotency lookup, expected-version check).`,
    );
    add('emmett', { name: 'single appends ÷ Emmett', actual: num(s.ours_vs_emmett) ?? NaN, target: 10, unit: '×', kind: 'min' }, (t) =>
      [
        `Missed: ${formatNumber(t.actual)}× instead of 10× (${pct(t.actual / 10)} of the target).`,
        `The target is beyond the physical limit on this disk: the raw better-sqlite3 loop itself is only ${formatNumber(rawOverEmmett)}× Emmett at the same durability, and ours is at ${pct(num(s.ours_vs_raw) ?? NaN)} of raw.`,
        'Why Emmett is slower: `getSQLiteEventStore` opens a new sqlite3 connection for every call and closes it afterwards; closing the last connection to a WAL file checkpoints it, so an Emmett append costs about 5 fsyncs (counted with strace) where ours costs 1; each append also makes 4 asynchronous round trips through the libuv thread pool (BEGIN, UPDATE … RETURNING, INSERT … RETURNING, COMMIT).',
        `With the file held open by another process (no checkpoint per close) Emmett reaches ${formatNumber(num(s.emmett_held_open_per_s) ?? NaN)} ev/s.`,
        'What would close it: nothing at the same durability on our side, since each acknowledged append must be fsynced before it is acknowledged. Group commit (several appends sharing one fsync, acknowledged together) would raise appends/s under concurrency at the cost of latency; it does not help one writer appending one event at a time.',
      ].join(' '),
    );
    add('emmett', { name: 'batched appends ÷ raw', actual: num(b.ours_vs_raw) ?? NaN, target: 0.8, unit: '×', kind: 'min' }, (t) =>
      [
        `Missed by ${pct(0.8 - t.actual)} of raw (${pct(t.actual)} instead of 80%).`,
        'Batched appends are CPU-bound, not fsync-bound, so the per-event JavaScript work shows. Already done: multi-row INSERTs of 50 rows, one idempotency probe per batch, a fast envelope check held to the zod schema by a property test, the reference time parsed once per batch. What is left per event: the event-type data schema (zod), the contract walk (text, numbers, depth, timestamps) and two JSON.stringify calls, none of which the raw loop of pre-serialised rows pays.',
      ].join(' '),
    );
  }
  const proj = dataOf(r, 'projections') as Dict | undefined;
  if (proj && num(proj.rebuild_ms) !== undefined) {
    const events = num(proj.events) ?? 0;
    const workers = num(proj.rebuild_workers) ?? 0;
    const alone = num(proj.rebuild_one_thread_ms);
    const oneThread =
      workers > 0 && alone !== undefined
        ? ` (folded by ${workers} worker threads; the same rebuild on one thread in the same run took ${formatNumber(alone / 1000)} s, ${formatNumber(num(proj.rebuild_one_thread_events_per_s) ?? NaN)} events/s)`
        : ' (on one thread)';
    // The bound two cores put on this run's rebuild, against the time 0.7 of this run's scan asks for.
    const cpuSeconds = (num(proj.rebuild_cpu_ms) ?? NaN) / 1000;
    const scanSeconds = events / (num(proj.raw_scan_rows_per_s) ?? NaN);
    const bound =
      workers > 0 && Number.isFinite(cpuSeconds)
        ? ` This run's rebuild used ${formatNumber(cpuSeconds)} s of CPU, so two cores cannot finish it in under ${formatNumber(cpuSeconds / 2)} s even if no part of it ran on one thread alone (the swap does, as SQLite has one writer); 0.7 of this run's scan asks for ${formatNumber(scanSeconds / 0.7)} s. ${alone !== undefined && alone / 1000 > (2 * scanSeconds) / 0.7 ? `Closing the gap here means using less CPU in all, not spreading it better: the two-thread rebuild would have to spend less than the one-thread rebuild took (${formatNumber(alone / 1000)} s in this run), or the machine have more cores.` : ''}`
        : '';
    const seconds = (num(proj.rebuild_ms) ?? NaN) / 1000;
    // Issue 17 asks for 5 s at 1M events (the line said 10 s before).
    const targetSeconds = 5;
    add('projections', { name: `rebuild ${formatNumber(events)} events (s)`, actual: seconds, target: targetSeconds, unit: 's', kind: 'max' }, (t) =>
      `Missed by ${formatNumber(t.actual - targetSeconds)} s (${pct(t.actual / targetSeconds - 1)} over). Raw scan of the same rows: ${formatNumber(num(proj.raw_scan_rows_per_s) ?? NaN)} rows/s; rebuild: ${formatNumber(num(proj.rebuild_events_per_s) ?? NaN)} events/s${oneThread}. ${REBUILD_PROFILE}${bound}`,
    );
    const rawScan = num(proj.raw_scan_rows_per_s);
    const rebuildRate = num(proj.rebuild_events_per_s);
    if (rawScan !== undefined && rebuildRate !== undefined) {
      // The median of each run against its own anchor when the bench gives it (older results: one run, one scan).
      const ratio = num(proj.rebuild_vs_raw_scan) ?? Math.round((rebuildRate / rawScan) * 1000) / 1000;
      add('projections', { name: 'projection rebuild ÷ raw scan of the same rows', actual: ratio, target: 0.7, unit: '×', kind: 'min' }, (t) =>
        `At ${pct(t.actual)} of a raw scan (${formatNumber(rebuildRate)} vs ${formatNumber(rawScan)} rows/s)${oneThread}. The scan only reads and parses; the rebuild reads and parses the same rows, then also folds every order, writes each touched order's row and its customer link, commits each page, derives the daily totals, the gram counts (per status and facet) and the customer totals from the final rows, and builds the list's eight indexes, its trigram index and the customer index at the swap. ${REBUILD_PROFILE}${bound}`,
      );
    }
    if (num(proj.list_search_short_p50_ms) !== undefined) {
      add('projections', { name: `substring search under 3 characters, ${formatNumber(num(proj.orders_in_view) ?? 0)} orders (ms, p50)`, actual: num(proj.list_search_short_p50_ms)!, target: 20, unit: 'ms', kind: 'max' }, (t) =>
        `Missed by ${formatNumber(t.actual - 20)} ms.`,
      );
    }
    if (num(proj.list_first_page_status_p50_ms) !== undefined) {
      add('projections', { name: 'filtered first page, 100k orders (ms, p50)', actual: num(proj.list_first_page_status_p50_ms)!, target: 10, unit: 'ms', kind: 'max' }, (t) =>
        `Missed by ${formatNumber(t.actual - 10)} ms.`,
      );
    }
  }
  const server = dataOf(r, 'server') as Dict[] | undefined;
  // Issue 17: PostgreSQL appends in batches of 500 against a raw multi-row INSERT of the same rows into the same table, same run.
  const pg500 = server?.find((x) => x.ok && x.backend === 'pg' && num(x.batchSize) === 500 && num(x.serverVsRaw) !== undefined);
  if (pg500) {
    add('server', { name: 'PostgreSQL appends ÷ raw multi-row INSERT (batches of 500)', actual: num(pg500.serverVsRaw) ?? NaN, target: 0.5, unit: '×', kind: 'min' }, (t) =>
      `Missed: ${formatNumber(t.actual)}× (${formatNumber(num(pg500.eventsPerSec) ?? NaN)} ev/s against ${formatNumber(num(pg500.rawInsertEventsPerSec) ?? NaN)} ev/s raw) with ${String(pg500.connections)} connections, on a 2-core machine where the load generator, the server and PostgreSQL share the cores. Appends no longer take turns (the (txid, position) pull cursor); what remains per append is HTTP and JSON parsing, the event contract, the hash chain, the duplicate lookup of every event id, the stream head and the read-model upsert (see the profile in BENCHMARKS.md). The raw anchor is a run of about a second and swings by up to 2× between runs: the last four full runs measured it at 22.8k, 50.2k, 36.9k and 37.5k ev/s, and the ratio at 0.86, 0.52, 0.56 and this run's figure, with no change to this path between the last two.`,
    );
  }
  const sync = dataOf(r, 'sync') as Dict | undefined;
  if (sync && num(sync.pushMs) !== undefined) {
    add('sync', { name: `push ${formatNumber(num(sync.events) ?? 0)} events (s)`, actual: num(sync.pushMs)! / 1000, target: 10, unit: 's', kind: 'max' }, (t) =>
      [
        `Missed by ${formatNumber(t.actual - 10)} s.`,
        sync.pushCpuUsPerEvent
          ? `CPU per pushed event: the device ${formatNumber(num((sync.pushCpuUsPerEvent as Dict).device) ?? NaN)} µs, the server ${formatNumber(num((sync.pushCpuUsPerEvent as Dict).server) ?? NaN)} µs, against ${formatNumber(num((sync.pushCpuUsPerEvent as Dict).wall) ?? NaN)} µs of wall time: they mostly take turns (a request, then its answer).`
          : '',
        'An absolute target moves with the machine: on 2026-12-01, in the hours of this run, the code of the previous report (7.66 s in its run at 11:40 that morning) pushed in 10.9, 12.0 and 12.5 s, and this code, interleaved with the commit before its multi-row server insert, in 10.5, 10.7 and 11.8 s against 12.2, 11.2 and 11.6 s (`npx tsx bench/sync-bench.ts`).',
      ]
        .filter(Boolean)
        .join(' '),
    );
  }
  const boot = dataOf(r, 'boot') as Dict | undefined;
  if (boot && num(boot.boot_ms) !== undefined) {
    add('boot', { name: `boot: ${formatNumber(num(boot.events) ?? 0)} events, ${formatNumber(num(boot.pending_commands) ?? 0)} pending → first list page (ms)`, actual: num(boot.boot_ms)!, target: 1000, unit: 'ms', kind: 'max' }, (t) =>
      `Missed by ${formatNumber(t.actual - 1000)} ms; reading the same page straight from the file took ${formatNumber(num(boot.raw_first_page_ms) ?? NaN)} ms.`,
    );
  }
  const first = dataOf(r, 'firstsync') as Dict | undefined;
  if (first && num(first.first_sync_events_per_s) !== undefined) {
    const boot = (first.bootstrap ?? {}) as Dict;
    const pulled = (first.pull ?? {}) as Dict;
    const mb = (num(boot.bytes) ?? NaN) / 1e6;
    add('firstsync', { name: `first sync of a new device, ${formatNumber(num(first.events) ?? 0)} events (ev/s)`, actual: num(first.first_sync_events_per_s)!, target: 100_000, unit: 'ev/s', kind: 'min' }, (t) =>
      `At ${pct(t.actual / 100_000)} of the target. A new device opened as users open it (\`Device.open\`) took the tenant's bootstrap in (${formatNumber(mb)} MB: the log and the views as SQLite pages, built by a device that follows the server) and pulled from its cursor until its first list page. The download alone (same client, size and SHA-256 checked, nothing taken in) took ${formatNumber((num(boot.download_only_ms) ?? NaN) / 1000)} s of the ${formatNumber((num(first.first_sync_ms) ?? NaN) / 1000)} s; writing the bootstrap took the builder ${formatNumber((num(boot.publish_ms) ?? NaN) / 1000)} s after its own sync. The pull (a device that follows a scope or has already sent commands) ran at ${formatNumber(num(pulled.first_sync_events_per_s) ?? NaN)} ev/s in the same run (fetch-only anchor ${formatNumber(num(first.fetch_only_events_per_s) ?? NaN)} ev/s): ${firstSyncSpans({ ...pulled, events: first.events })}.`,
    );
    const field = first.offline_first as Dict | undefined;
    if (field && num(field.first_sync_events_per_s) !== undefined) {
      add('firstsync', { name: `first sync of a device with ${formatNumber(num(field.offline_orders) ?? 0)} orders taken offline, ${formatNumber(num(first.events) ?? 0)} events (ev/s)`, actual: num(field.first_sync_events_per_s)!, target: 100_000, unit: 'ev/s', kind: 'min' }, (t) =>
        `At ${pct(t.actual / 100_000)} of the target. The device took the bootstrap before pushing its orders (bootstrap used: ${String(field.bootstrap_used)}), then pushed ${formatNumber(num(field.pushed_events) ?? NaN)} events and pulled the rest.`,
      );
    }
  }
  const broker = dataOf(r, 'broker') as Dict | undefined;
  if (broker) {
    add('broker', { name: 'relay rate ÷ append rate (same run)', actual: num(broker.relay_vs_append) ?? NaN, target: 0.95, unit: '×', kind: 'min' }, (t) =>
      `The relay fell behind: ${formatNumber(t.actual)}× the append rate, ${String(broker.relay_lag_at_end_events)} events behind when the appends ended. Each page waits for the broker's acknowledgements and the checkpoint write; larger pages or several waves in flight would close it.`,
    );
    add('broker', { name: 'cross-process wake-up p99 (ms)', actual: num(broker.wake_p99_ms) ?? NaN, target: 50, unit: 'ms', kind: 'max' }, (t) =>
      `Missed by ${formatNumber(t.actual - 50)} ms at load ${JSON.stringify(broker.load_avg)}: NOTIFY is delivered at the listener's next read, which waits for a core under this load.`,
    );
  }
  const conv = dataOf(r, 'converge') as Dict | undefined;
  if (conv) {
    add('converge', { name: 'devices disagreeing after sync', actual: (num(conv.mismatches) ?? 0) + (num(conv.unaccounted_commands) ?? 0), target: 0, unit: '', kind: 'max' }, (t) =>
      `${t.actual} orders or commands did not converge: a correctness failure, see the run's log.`,
    );
  }
  return rows;
}

// ---------------------------------------------------------------- markdown helpers

const cell = (v: unknown): string => {
  if (typeof v === 'number') return formatNumber(v);
  if (v === undefined || v === null) return '';
  return String(v).replace(/\|/g, '\\|').replace(/\n/g, ' ');
};

export function mdTable(headers: string[], rows: unknown[][]): string {
  return [`| ${headers.join(' | ')} |`, `| ${headers.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

/** Nested results (the first sync's `bootstrap` and `pull`) get a row per leaf, named by its path; arrays stay one value. */
function flatRows(d: Dict, prefix = ''): [string, unknown][] {
  return Object.entries(d).flatMap(([k, v]): [string, unknown][] =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? flatRows(v as Dict, `${prefix}${k}.`) : [[`${prefix}${k}`, Array.isArray(v) ? JSON.stringify(v) : v]],
  );
}
const kvTable = (d: Dict) => mdTable(['metric', 'value'], flatRows(d));

// ---------------------------------------------------------------- the report

export interface RenderedReport {
  markdown: string;
  /** file name → SVG text */
  charts: Record<string, string>;
}

/** Pure: results in, markdown + SVGs out. `chartPath` turns a chart file name into the link used in the markdown. */
/** What `npm run torture` writes to bench/results/torture.json. */
export interface TortureReport {
  date: string;
  node: string;
  cpus: number;
  /** The full run's trial counts, and the cap on each part's time if one was given. */
  planned?: { crashTrials: number; convergenceRuns: number; fuzzRequests: number };
  maxSecondsPerPart?: number | null;
  /** Set when the crash row comes from a separate, crash-only run. */
  crashRun?: { date: string; maxSecondsPerPart?: number | null };
  results: { name: string; trials: number; faults: number; failures: number; seconds: number; notes?: string }[];
}

export function renderReport(
  r: BenchResults,
  chartPath: (file: string) => string = (f) => `bench/results/charts/${f}`,
  torture?: TortureReport,
): RenderedReport {
  const charts: Record<string, string> = {};
  const md: string[] = [];
  const img = (file: string, alt: string) => md.push(`![${alt}](${chartPath(file)})`, '');
  const m = r.machine;
  // Busy before it started (the 1-minute average): other work. The load during and at the end is mostly the run's own processes (device, server, PostgreSQL, broker).
  const busy = (m.load_avg_at_start[0] ?? 0) > m.cpus * 0.5;

  md.push('# Benchmarks', '');
  md.push('Generated by `bench/report.ts` from `bench/results/latest.json` (do not edit by hand; re-run `npm run bench`).', '');
  md.push('## How to reproduce', '');
  md.push('```sh', 'npm run bench                  # everything (about 12 minutes on 2 cores: 1M-event sections)', 'npm run bench -- store emmett   # a subset: store emmett projections server sync converge archive boot firstsync scope broker', 'npm run bench:10m              # the 10M-event projection rebuild', 'npm run torture                # crash, convergence, bad-input and load trials', '```', '');

  md.push('## Machine', '');
  md.push(mdTable(['cpu', 'cores', 'memory', 'os', 'node', 'date', 'load avg (start → end)'], [[m.cpu_model, m.cpus, `${m.total_mem_gib} GiB`, `${m.platform} ${m.kernel}`, m.node, m.date, `${m.load_avg_at_start.join(' ')} → ${m.load_avg_at_end.join(' ')}`]]));
  md.push('');
  if (busy) {
    md.push(`> **Noisy run.** The 1-minute load average was above half the cores when the run started (other work was running on the machine), so absolute numbers are lower and more variable than on a quiet machine. Each comparison runs its variants interleaved on the same disk in the same process, so the **ratios** are the numbers to trust.`, '');
  } else {
    md.push(`> **Quiet start.** The 1-minute load average was ${m.load_avg_at_start[0]} on ${m.cpus} cores when the run started; the load during the run and at its end is mostly the run's own processes (device, server, PostgreSQL, broker). Ratios against an anchor measured in the same run are still the numbers to trust.`, '');
  }
  if (r.quick) md.push('> **Quick sizes**: this file was produced with `--quick`; not for publishing.', '');

  // Targets
  const targets = collectTargets(r);
  md.push('## Targets', '');
  if (targets.length > 0) {
    md.push(mdTable(['target', 'measured', 'required', 'status'], targets.map((t) => [t.name, `${formatNumber(t.actual)} ${t.unit}`.trim(), `${t.kind === 'min' ? '≥' : '≤'} ${formatNumber(t.target)} ${t.unit}`.trim(), t.met ? 'met' : `**missed** (${pct(Math.min(fractionOfTarget(t), 99))} of target)`])));
    md.push('');
    charts['targets.svg'] = targetsChart('Targets: measured ÷ required', targets.filter((t) => t.target !== 0));
    img('targets.svg', 'targets chart');
    const missed = targets.filter((t) => !t.met);
    if (missed.length > 0) {
      md.push('### Missed targets: by how much, why, and what would close it', '');
      for (const t of missed) md.push(`- **${t.name}**: ${t.explanation}`);
      md.push('');
    }
  } else {
    md.push('No section with a target has results yet.', '');
  }

  // Ours vs Emmett vs raw
  const em = dataOf(r, 'emmett') as EmmettData | undefined;
  if (em) {
    const p = em.params;
    md.push('## This store vs Emmett SQLite vs raw better-sqlite3', '');
    md.push(`Same workload in the same run: an Order stream (OrderCreated, then PaymentReceived events), ${String(p.singles)} single-event appends and ${formatNumber(num(p.batchedEvents) ?? 0)} events in batches of ${String(p.batchSize)} per variant and round, ${String(p.rounds)} interleaved rounds on fresh files, median reported. Reads and loads: one ${formatNumber(num(p.streamLength) ?? 0)}-event stream, median of at least 5 runs.`, '');
    md.push('Durability of each variant:', '');
    md.push(`- ours: ${String(em.durability.ours)}`, `- raw: ${String(em.durability.raw)}`, `- Emmett: ${String(em.durability.emmett)}`, '');
    const s = em.single;
    const b = em.batched;
    const rd = em.read_10k;
    const ld = em.load_10k;
    md.push(
      mdTable(
        ['workload', 'raw', 'ours', 'Emmett', 'ours ÷ raw', 'ours ÷ Emmett'],
        [
          ['single appends (events/s)', s.raw_per_s, s.ours_per_s, s.emmett_per_s, s.ours_vs_raw, s.ours_vs_emmett],
          [`batched appends ×${String(p.batchSize)} (events/s)`, b.raw_per_s, b.ours_per_s, b.emmett_per_s, b.ours_vs_raw, b.ours_vs_emmett],
          [`read ${formatNumber(num(p.streamLength) ?? 0)}-event stream (ms)`, rd.raw_ms, rd.ours_ms, rd.emmett_ms, rd.ours_vs_raw, rd.ours_vs_emmett],
          [`aggregate load, ${formatNumber(num(p.streamLength) ?? 0)} events, no snapshot (ms)`, ld.raw_ms, ld.ours_ms, ld.emmett_ms, ld.ours_vs_raw, ld.ours_vs_emmett],
          ['aggregate load with snapshot (ms)', '', ld.ours_snapshot_ms, '', '', ''],
        ],
      ),
    );
    md.push('');
    md.push('For times, "ours ÷ X" is X\'s time divided by ours, so above 1 means ours is faster, as for rates. The aggregate load folds with the same `foldOrder` in every variant (Emmett\'s `evolve` collects the events, the fold runs once), so the comparison is of storage and reading, not of reducers.', '');
    md.push(`Emmett's commits failed intermittently with \`SQLITE_BUSY: cannot commit transaction - SQL statements in progress\` (single: ${String(s.emmett_commit_errors)}, batched: ${String(b.emmett_commit_errors)} in this run) although it was the only writer; the bench re-reads the stream position and carries on, and the lost time stays in Emmett's numbers.`, '');
    const series = (label: string, raw: unknown, ours: unknown, emmett: unknown) => [
      { label: `raw ${label}`, value: num(raw) ?? NaN, tone: 'raw' as const },
      { label: `ours ${label}`, value: num(ours) ?? NaN, tone: 'ours' as const },
      { label: `Emmett ${label}`, value: num(emmett) ?? NaN, tone: 'emmett' as const },
    ];
    charts['appends-single.svg'] = barChart({ title: 'Single-event appends (events/s, higher is better)', subtitle: 'WAL + synchronous=FULL for all three', unit: 'ev/s', bars: [...series('', s.raw_per_s, s.ours_per_s, s.emmett_per_s), { label: 'Emmett, file held open', value: num(s.emmett_held_open_per_s) ?? NaN, tone: 'emmett' }] });
    charts['appends-batched.svg'] = barChart({ title: `Batched appends ×${String(p.batchSize)} (events/s, higher is better)`, unit: 'ev/s', bars: series('', b.raw_per_s, b.ours_per_s, b.emmett_per_s) });
    charts['read-load.svg'] = barChart({
      title: `Read and load a ${formatNumber(num(p.streamLength) ?? 0)}-event stream (ms, lower is better)`,
      unit: 'ms',
      bars: [...series('read', rd.raw_ms, rd.ours_ms, rd.emmett_ms), ...series('load', ld.raw_ms, ld.ours_ms, ld.emmett_ms), { label: 'ours load (snapshot)', value: num(ld.ours_snapshot_ms) ?? NaN, tone: 'ours' }],
    });
    charts['ratios.svg'] = barChart({
      title: 'Ours relative to raw and to Emmett (above 1 = ours faster)',
      log: true,
      bars: [
        { label: 'single ÷ raw', value: num(s.ours_vs_raw) ?? NaN, tone: 'raw' },
        { label: 'batched ÷ raw', value: num(b.ours_vs_raw) ?? NaN, tone: 'raw' },
        { label: 'read ÷ raw', value: num(rd.ours_vs_raw) ?? NaN, tone: 'raw' },
        { label: 'load ÷ raw', value: num(ld.ours_vs_raw) ?? NaN, tone: 'raw' },
        { label: 'single ÷ Emmett', value: num(s.ours_vs_emmett) ?? NaN, tone: 'emmett' },
        { label: 'batched ÷ Emmett', value: num(b.ours_vs_emmett) ?? NaN, tone: 'emmett' },
        { label: 'read ÷ Emmett', value: num(rd.ours_vs_emmett) ?? NaN, tone: 'emmett' },
        { label: 'load ÷ Emmett', value: num(ld.ours_vs_emmett) ?? NaN, tone: 'emmett' },
      ],
      reference: { value: 1, label: 'parity' },
    });
    for (const [f, alt] of [
      ['ratios.svg', 'ratios'],
      ['appends-single.svg', 'single appends'],
      ['appends-batched.svg', 'batched appends'],
      ['read-load.svg', 'read and load'],
    ] as const) img(f, alt);
  }

  const store = dataOf(r, 'store') as Dict | undefined;
  if (store) {
    md.push('## Local store (the store owner\'s bench: raw loop, snapshots)', '');
    md.push(kvTable(store), '');
  }

  const proj = dataOf(r, 'projections') as Dict | undefined;
  const proj10 = dataOf(r, 'projections10m') as Dict | undefined;
  if (proj || proj10) {
    md.push(
      '## Projection rebuild and queries',
      '',
      'The raw anchor is every row of the log read by one better-sqlite3 statement with its data parsed. The log is scanned first (`raw_scan_before_rows_per_s`), then the rebuild runs `rebuild_runs` times (3 up to 2M events) with a scan after each (`rebuild_k_ms`, `raw_scan_after_k_rows_per_s`). Each run is set against the faster of the scans either side of it (`rebuild_k_vs_raw_scan`), so a slow phase of the machine during one scan cannot make its ratio kinder; `rebuild_ms`, `rebuild_cpu_ms`, `raw_scan_rows_per_s` and `rebuild_vs_raw_scan` are the medians over the runs. Peak memory is sampled during the first run.',
      '',
    );
    const sizes = [proj, proj10].filter((x): x is Dict => x !== undefined);
    const keys = [...new Set(sizes.flatMap((x) => Object.keys(x)))];
    md.push(mdTable(['metric', ...sizes.map((x) => `${formatNumber(num(x.events) ?? 0)} events`)], keys.map((k) => [k, ...sizes.map((x) => x[k])])), '');
    charts['rebuild.svg'] = barChart({
      title: 'Projection rebuild vs raw scan of the same rows (rows/s, higher is better)',
      unit: 'rows/s',
      bars: sizes.flatMap((x) => [
        { label: `raw scan, ${formatNumber(num(x.events) ?? 0)}`, value: num(x.raw_scan_rows_per_s) ?? NaN, tone: 'raw' as const },
        { label: `rebuild, ${formatNumber(num(x.events) ?? 0)}`, value: num(x.rebuild_events_per_s) ?? NaN, tone: 'ours' as const },
      ]),
    });
    img('rebuild.svg', 'rebuild');
  }

  const server = dataOf(r, 'server') as Dict[] | undefined;
  if (server) {
    md.push('## Server over HTTP (loopback)', '');
    md.push(
      mdTable(
        ['backend', 'batch', 'connections', 'events', 'append ev/s', 'p50 ms', 'p99 ms', 'pull ev/s', 'raw INSERT ev/s', 'append ÷ raw', 'error'],
        server.map((x) => [x.backend, x.batchSize, x.connections, x.events, x.eventsPerSec, x.p50Ms, x.p99Ms, x.pullEventsPerSec, x.rawInsertEventsPerSec, x.serverVsRaw, x.error]),
      ),
      '',
    );
    charts['server.svg'] = barChart({
      title: 'Server append throughput over HTTP (events/s)',
      unit: 'ev/s',
      bars: server.filter((x) => x.ok).map((x) => ({ label: `${String(x.backend)} batch ${String(x.batchSize)}`, value: num(x.eventsPerSec) ?? NaN, tone: x.backend === 'pg' ? ('ours' as const) : ('neutral' as const) })),
    });
    img('server.svg', 'server');
  }

  const sync = dataOf(r, 'sync') as Dict | undefined;
  if (sync) {
    md.push('## Sync over loopback (SQLite server)', '');
    md.push(kvTable(sync), '');
  }
  const bootData = dataOf(r, 'boot') as Dict | undefined;
  if (bootData) {
    md.push('## Boot: a device with a long log and many pending commands', '');
    md.push('From `Device.open` on a directory whose log holds the events (projections caught up, as after a normal shutdown) and whose outbox holds the pending commands, until the first list page is ready (median of 5). Raw anchor: the same page read straight from `order_list` with better-sqlite3. `load_avg` is the load beside the run.', '');
    md.push(kvTable(bootData), '');
  }
  const firstData = dataOf(r, 'firstsync') as Dict | undefined;
  if (firstData) {
    md.push('## First sync of a new device', '');
    md.push('A SQLite server in its own process holds the events (seeded in-process beforehand). First a device pulls every page until its order list is usable (projections caught up, first page read): `pull`, with its raw anchor `fetch_only_events_per_s` (the same pages fetched and parsed by the same HTTP client, nothing stored). That device then writes the tenant\'s bootstrap as the builder does (`bootstrap.publish_ms`). Then a new device, opened with `Device.open`, takes the bootstrap in and pulls the rest until its first list page: `first_sync_*`, with its raw anchor `bootstrap.download_only_ms` (the file downloaded and checked by the same client, nothing taken in). Last, a field device that took orders offline before it ever synced: from its first sync to its first list page (`offline_first`: it takes the bootstrap before it pushes them, then pulls the rest, its own orders included). `load_avg` is the load beside the run.', '');
    md.push(kvTable(firstData), '');
  }
  const conv = dataOf(r, 'converge') as Dict | undefined;
  if (conv) {
    md.push('## Devices converging after a day offline (simulated)', '');
    md.push('Each device works through a simulated 8-hour shift offline (random commands, many on orders shared by all devices, so they conflict), then all reconnect at once against an in-process SQLite server; `converge_ms` runs from reconnect until every device has pushed, rebased and pulled everything. Afterwards every device\'s state of every order is compared with the server\'s fold of its stream, and every command must be synced or in a conflict inbox.', '');
    md.push(kvTable(conv), '');
  }

  const archive = dataOf(r, 'archive') as Dict | undefined;
  if (archive) {
    md.push('## Archive and restore of a PostgreSQL partition', '');
    md.push(
      'One full partition (`events` events, 4 tenants, streams of 50) archived with `archivePartitions` (written, read back with every chain recomputed, detached, dropped) and restored with `restoreArchive` (read, checked, inserted, attached). MB/s counts the rows\' JSON text. Anchors in the same run: the same rows read and gzip\'d to a file with nothing checked (`rawDump`), and a server-side `CREATE TABLE AS` copy (`rawCopy`); `archiveVsRaw` and `restoreVsRaw` are raw time / our time. `loadAvg`: 1-minute load average when it finished.',
      '',
    );
    md.push(kvTable(archive), '');
  }

  const scope = dataOf(r, 'scope') as Dict | undefined;
  if (scope && scope.full && scope.scoped && scope.year) {
    const full = scope.full as Dict;
    const scoped = scope.scoped as Dict;
    const year = scope.year as Dict;
    md.push('## Scoped sync and bounded device history (issue 16)', '');
    md.push(
      `A new device against a SQLite server (its own process) holding ${formatNumber(num(scope.server_events) ?? 0)} events (10 per order, 100 customers), ` +
        'timed from the first pull until its first order-list page answers (projections built inline, as in the app). Both runs in the same process ' +
        `and against the same server; load average at the end ${(scope.load_avg as number[]).join(' ')}. The ratio is the figure to compare across runs.`,
      '',
    );
    md.push('| scope | events pulled | orders | time to usable (ms) | device file (MiB) |', '|---|---:|---:|---:|---:|');
    for (const x of [scoped, full]) md.push(`| ${String(x.scope)} | ${formatNumber(num(x.events) ?? 0)} | ${formatNumber(num(x.orders) ?? 0)} | ${formatNumber(num(x.ms) ?? 0)} | ${num(x.fileMiB)} |`);
    md.push('', `Scoped to 1 %: **${num(scope.speedup)}×** faster to usable than the full pull.`, '');
    md.push(
      `A year of one device's work (${formatNumber(num(year.orders) ?? 0)} orders, ${formatNumber(num(year.events) ?? 0)} events; 80 % shipped and paid, 10 % cancelled, 10 % left open): ` +
        `**${num(year.keep_all_mib)} MiB** keeping everything, **${num(year.retention_mib)} MiB** with a ${num(year.retention_days)}-day retention of closed orders ` +
        `(ratio ${num(year.ratio)}; ${formatNumber(num(year.evicted_orders) ?? 0)} closed orders kept without local events). Where the bytes are (MiB):`,
      '',
    );
    const keepT = year.tables_keep_all as Record<string, number>;
    const retT = year.tables_retention as Record<string, number>;
    const names = [...new Set([...Object.keys(keepT), ...Object.keys(retT)])];
    md.push('| table (with its indexes) | keep everything | with retention |', '|---|---:|---:|');
    for (const n of names) md.push(`| ${n} | ${keepT[n] ?? '—'} | ${retT[n] ?? '—'} |`);
    md.push(
      '',
      'Retention drops the events (and their server coordinates), and with them their lines of the customer activity feed (read from the log). It keeps the order list\'s row with the folded state per order, and each evicted order\'s final state (evicted_streams, so later events and commands fold onto it): those two bound what the file can lose this way.',
      '',
    );
  }

  const brokerData = dataOf(r, 'broker') as Dict | undefined;
  if (brokerData) {
    md.push('## Events to the broker (NATS JetStream) and the worker-built read model', '');
    md.push(
      'Same run, PostgreSQL server store, a private nats-server with file storage: single-event appends 8 at a time (the raw anchor: the rate the store takes appends) with the relay publishing beside them; the relay then drains the same events as a stored backlog, against publishing the same bodies straight to JetStream (the raw broker anchor); then one append at a time (50 ms apart) through relay, broker and a worker into its own schema (append commit to the worker\'s commit); and NOTIFY on one connection to the LISTEN callback on another (the cross-process wake-up). Load average at the start of the section: ' +
        `${JSON.stringify(brokerData.load_avg)}.`,
      '',
    );
    md.push(kvTable(brokerData), '');
  }

  const failed = Object.entries(r.sections).filter(([, s]) => s && !s.ok);
  if (failed.length > 0) {
    md.push('## Sections that failed in this run', '');
    for (const [name, s] of failed) md.push(`- **${name}**: ${s!.error}`);
    md.push('');
  }
  if (torture) {
    md.push('## Torture', '');
    md.push(`From \`npm run torture\` on ${torture.date} (${torture.cpus} cores, node ${torture.node}); each part bounded in count and time.`, '');
    if (torture.maxSecondsPerPart && torture.planned) {
      md.push(
        `Each part was capped at ${torture.maxSecondsPerPart} s (\`--max-seconds\`); planned: ${torture.planned.crashTrials} crash trials, ${torture.planned.convergenceRuns} convergence runs, ${torture.planned.fuzzRequests} fuzzed requests. A part that hit the cap ran fewer trials than planned.`,
        '',
      );
    }
    if (torture.crashRun) {
      md.push(`The crash row comes from a separate crash-only run on ${torture.crashRun.date} (\`--only=crash\`, cap ${String(torture.crashRun.maxSecondsPerPart ?? 'none')} s).`, '');
    }
    md.push(mdTable(['part', 'trials', 'faults injected', 'failures', 'seconds'], torture.results.map((t) => [t.name, t.trials, t.faults, t.failures, t.seconds])));
    md.push('');
    for (const t of torture.results) if (t.notes) md.push(`- **${t.name}**: ${t.notes}`);
    md.push('');
  }
  md.push('## Method', '');
  md.push('- Every number comes from one `npm run bench` run on the machine above; the section times are in `latest.json`.');
  md.push('- Comparisons (ours / Emmett / raw) run in the same process, on the same disk, with interleaved rounds and medians, so a burst of load from elsewhere hits all variants alike.');
  md.push('- "Raw" is the physical limit: better-sqlite3 inserting pre-serialised rows into the same table with the same indexes, triggers and pragmas, in one transaction per append (single) or per batch (batched).');
  md.push('- Charts are drawn from the JSON by `bench/charts.ts`.', '');
  return { markdown: md.join('\n'), charts };
}

/** Write BENCHMARKS.md at the repository root and the charts; returns the files written. */
export function writeReport(r: BenchResults, opts: { repoRoot: string; chartsDir: string }): string[] {
  const tortureFile = join(dirname(opts.chartsDir), 'torture.json');
  const torture = existsSync(tortureFile) ? (JSON.parse(readFileSync(tortureFile, 'utf8')) as TortureReport) : undefined;
  const { markdown, charts } = renderReport(r, (f) => relative(opts.repoRoot, join(opts.chartsDir, f)), torture);
  mkdirSync(opts.chartsDir, { recursive: true });
  const written: string[] = [];
  for (const [file, svg] of Object.entries(charts)) {
    writeFileSync(join(opts.chartsDir, file), svg);
    written.push(join(opts.chartsDir, file));
  }
  const md = join(opts.repoRoot, 'BENCHMARKS.md');
  writeFileSync(md, markdown);
  written.push(md);
  return written;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const here = dirname(fileURLToPath(import.meta.url));
  const file = process.argv[2] ?? join(here, 'results', 'latest.json');
  const results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
  console.log(writeReport(results, { repoRoot: join(here, '..'), chartsDir: join(here, 'results', 'charts') }).join('\n'));
}
