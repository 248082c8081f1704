// `npm run bench`: every benchmark in one run, readable tables on stdout, the numbers in
// bench/results/latest.json (with the machine they ran on), then BENCHMARKS.md and the SVG
// charts regenerated from that JSON.
//
//   npm run bench                       all default sections (about 12 minutes on 2 cores)
//   npm run bench -- store emmett       a subset (sections: store emmett projections server sync
//                                       converge archive boot firstsync scope broker projections10m) (also BENCH_ONLY=store,emmett); other sections of
//                                       latest.json are kept from their previous run
//   npm run bench -- --quick            small sizes (smoke test of the pipeline, not for publishing)
//   npm run bench:10m                   the 10M-event projection rebuild (separate, longer)
//   BENCH_SCOPE_EVENTS=200000 npm run bench -- scope   the scope section against a smaller server
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeReport } from './report.js';

export const SECTIONS = ['store', 'emmett', 'projections', 'server', 'sync', 'converge', 'archive', 'boot', 'firstsync', 'scope', 'broker', 'projections10m'] as const;
export type Section = (typeof SECTIONS)[number];
const DEFAULT_SECTIONS: Section[] = ['store', 'emmett', 'projections', 'server', 'sync', 'converge', 'archive', 'boot', 'firstsync', 'scope', 'broker'];

export interface SectionResult {
  ok: boolean;
  ran_at: string;
  seconds: number;
  /** Present when ok. */
  data?: unknown;
  error?: string;
}

export interface MachineInfo {
  cpu_model: string;
  cpus: number;
  total_mem_gib: number;
  platform: string;
  kernel: string;
  node: string;
  load_avg_at_start: number[];
  load_avg_at_end: number[];
  date: string;
}

export interface BenchResults {
  machine: MachineInfo;
  quick: boolean;
  sections: Partial<Record<Section, SectionResult>>;
}

const HERE = dirname(fileURLToPath(import.meta.url));
export const RESULTS_DIR = join(HERE, 'results');
export const LATEST = join(RESULTS_DIR, 'latest.json');

function machine(loadAtStart: number[]): MachineInfo {
  const cpus = os.cpus();
  return {
    cpu_model: cpus[0]?.model.trim() ?? 'unknown',
    cpus: cpus.length,
    total_mem_gib: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.arch()}`,
    kernel: os.release(),
    node: process.version,
    load_avg_at_start: loadAtStart.map((x) => Math.round(x * 100) / 100),
    load_avg_at_end: os.loadavg().map((x) => Math.round(x * 100) / 100),
    date: new Date().toISOString(),
  };
}

/** The projection bench runs in a fresh process so its peak RSS is its own. */
function projectionsInChild(events: number, orders: number): Record<string, number> {
  const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', join(HERE, 'projections-bench.ts'), String(events), String(orders)], {
    env: { ...process.env, PROJECTIONS_BENCH_JSON: '1' },
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  if (child.status !== 0) throw new Error(`projections bench exited with ${child.status}: ${child.stderr.slice(-2000)}`);
  return JSON.parse(child.stdout.trim().split('\n').at(-1)!) as Record<string, number>;
}

async function runSection(name: Section, quick: boolean): Promise<unknown> {
  switch (name) {
    case 'store': {
      const { benchStore } = await import('./store-bench.js');
      const r = await benchStore(quick ? { singles: 200, batchedEvents: 20_000 } : {});
      console.table([r]);
      return r;
    }
    case 'emmett': {
      const { benchEmmett, printEmmett } = await import('./emmett-bench.js');
      const r = await benchEmmett(quick ? { singles: 100, batchedEvents: 5_000, streamLength: 2_000, rounds: 1 } : {});
      printEmmett(r);
      return r;
    }
    case 'projections': {
      const r = quick ? projectionsInChild(50_000, 5_000) : projectionsInChild(1_000_000, 100_000);
      console.table([r]);
      return r;
    }
    case 'projections10m': {
      const r = projectionsInChild(10_000_000, 1_000_000);
      console.table([r]);
      return r;
    }
    case 'server': {
      const { benchServer } = await import('./server-bench.js');
      const events = quick ? 2_000 : 20_000;
      const rows = [];
      for (const backend of ['sqlite', 'pg'] as const) {
        for (const [batchSize, n] of [
          [500, events * 2],
          [100, events],
          [1, Math.min(events, 2_000)],
        ] as const) {
          try {
            rows.push({ ok: true, ...(await benchServer({ backend, events: n, batchSize, connections: 8 })) });
          } catch (err) {
            rows.push({ ok: false, backend, batchSize, error: err instanceof Error ? err.message : String(err) });
          }
        }
      }
      console.table(rows);
      return rows;
    }
    case 'sync': {
      const { benchSync } = await import('./sync-bench.js');
      const r = await benchSync({ events: quick ? 5_000 : 100_000 });
      console.table([r]);
      return r;
    }
    case 'archive': {
      const { benchArchive } = await import('./archive-bench.js');
      const r = await benchArchive({ events: quick ? 10_000 : 200_000 });
      console.table([r]);
      return r;
    }
    case 'boot': {
      const { benchBoot } = await import('./device-bench.js');
      const r = await benchBoot(quick ? { events: 20_000, pending: 2_000, runs: 3 } : { events: 1_000_000, pending: 100_000 });
      console.table([r]);
      return r;
    }
    case 'firstsync': {
      const { benchFirstSync } = await import('./device-bench.js');
      const r = await benchFirstSync({ events: quick ? 10_000 : 1_000_000 });
      console.table([r]);
      return r;
    }
    case 'scope': {
      // Issue 16: time to usable against 1M server events with a 1 % scope next to a full pull; a year's device file with and without retention.
      const { benchScope, printScope } = await import('./scope-bench.js');
      // BENCH_SCOPE_EVENTS: a smaller server for a quicker run (the default is the 1M the issue names).
      const events = Number(process.env.BENCH_SCOPE_EVENTS ?? (quick ? 20_000 : 1_000_000));
      const r = await benchScope(quick ? { events, ordersPerDay: 20 } : { events });
      printScope(r);
      return r;
    }
    case 'broker': {
      const { benchBroker } = await import('./broker-bench.js');
      const r = await benchBroker(quick ? { events: 1_000, latencySamples: 50 } : { events: 5_000 });
      console.table([r]);
      return r;
    }
    case 'converge': {
      const { simulateOfflineDay } = await import('./torture/converge.js');
      const r = await simulateOfflineDay(quick ? { commandsPerDevice: 40, sharedOrders: 10 } : { devices: 5, commandsPerDevice: 400, sharedOrders: 50 });
      console.table([r]);
      return r;
    }
  }
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv): { sections: Section[]; quick: boolean } {
  const quick = argv.includes('--quick');
  const named = argv.filter((a) => !a.startsWith('--'));
  const fromEnv = (env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const wanted = [...named, ...fromEnv];
  if (argv.includes('--10m')) wanted.push('projections10m');
  const unknown = wanted.filter((w) => !(SECTIONS as readonly string[]).includes(w));
  if (unknown.length > 0) throw new Error(`unknown bench section(s): ${unknown.join(', ')}; choose from ${SECTIONS.join(', ')}`);
  return { sections: wanted.length > 0 ? [...new Set(wanted as Section[])] : DEFAULT_SECTIONS, quick };
}

export function readResults(file = LATEST): BenchResults | null {
  if (!existsSync(file)) return null;
  return JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
}

async function main(): Promise<void> {
  const { sections, quick } = parseArgs(process.argv.slice(2), process.env);
  const loadAtStart = os.loadavg();
  const previous = readResults();
  // A quick run never overwrites published numbers.
  const out = quick ? join(RESULTS_DIR, 'quick.json') : LATEST;
  const results: BenchResults = { machine: machine(loadAtStart), quick, sections: quick ? {} : { ...(previous?.sections ?? {}) } };
  console.log(`bench: ${sections.join(', ')}${quick ? ' (quick sizes)' : ''} on ${results.machine.cpus}× ${results.machine.cpu_model}, node ${results.machine.node}, load ${results.machine.load_avg_at_start.join(' ')}`);
  let failed = 0;
  for (const name of sections) {
    console.log(`\n=== ${name}`);
    const t0 = performance.now();
    try {
      const data = await runSection(name, quick);
      results.sections[name] = { ok: true, ran_at: new Date().toISOString(), seconds: Math.round((performance.now() - t0) / 100) / 10, data };
    } catch (err) {
      failed++;
      const error = err instanceof Error ? err.message : String(err);
      console.error(`  ${name} failed: ${error}`);
      results.sections[name] = { ok: false, ran_at: new Date().toISOString(), seconds: Math.round((performance.now() - t0) / 100) / 10, error };
    }
    console.log(`  (${name}: ${results.sections[name]!.seconds} s)`);
  }
  results.machine = machine(loadAtStart);
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nwrote ${out}`);
  if (!quick) {
    const written = writeReport(results, { repoRoot: join(HERE, '..'), chartsDir: join(RESULTS_DIR, 'charts') });
    console.log(`wrote ${written.join(', ')}`);
  }
  if (failed > 0) process.exitCode = 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
