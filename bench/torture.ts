// `npm run torture` (full) / `npm run torture -- --short` (CI): crash trials, convergence, bad
// input and load, each bounded in count and time. Prints a table of trials run, faults injected
// and failures found, writes bench/results/torture.json (full run) and exits non-zero on failure.
//   npm run torture -- --only=crash,fuzz      parts: crash, converge, fuzz, load
//   npm run torture -- --max-seconds=600      cap each part's time (trial counts stay as targets)
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBadInput } from './torture/bad-input.js';
import { runCrashTrials, type TrialStats } from './torture/crash.js';
import { runConvergence, runLoad } from './torture/load-and-converge.js';

export const PARTS = ['crash', 'converge', 'fuzz', 'load'] as const;
export type Part = (typeof PARTS)[number];

export interface TortureOptions {
  short: boolean;
  only?: Part[];
  /** Cap on each part's running time (the counts stay the targets; a part stops early at the cap). */
  maxSecondsPerPart?: number;
}

/** Counts and time bounds: full run as the issue states, short run for CI (under a minute). */
export const SIZES = {
  full: { crashTrials: 1000, crashSeconds: 3600, convergenceRuns: 200, convergenceSeconds: 1200, fuzzRequests: 10_000, hugeBodies: 20, fuzzSeconds: 600, loadClients: 32, loadSeconds: 30 },
  short: { crashTrials: 3, crashSeconds: 20, convergenceRuns: 2, convergenceSeconds: 15, fuzzRequests: 300, hugeBodies: 2, fuzzSeconds: 15, loadClients: 8, loadSeconds: 2 },
};

export async function runTorture(opts: TortureOptions): Promise<TrialStats[]> {
  const sizes = opts.short ? SIZES.short : SIZES.full;
  const cap = (seconds: number) => Math.min(seconds, opts.maxSecondsPerPart ?? Infinity);
  const s = { ...sizes, crashSeconds: cap(sizes.crashSeconds), convergenceSeconds: cap(sizes.convergenceSeconds), fuzzSeconds: cap(sizes.fuzzSeconds), loadSeconds: cap(sizes.loadSeconds) };
  const want = (p: Part) => !opts.only || opts.only.includes(p);
  const out: TrialStats[] = [];
  if (want('crash')) out.push(await runCrashTrials({ trials: s.crashTrials, maxSeconds: s.crashSeconds }));
  if (want('converge')) out.push(await runConvergence({ runs: s.convergenceRuns, maxSeconds: s.convergenceSeconds }));
  if (want('fuzz')) out.push(await runBadInput({ requests: s.fuzzRequests, hugeBodies: s.hugeBodies, maxSeconds: s.fuzzSeconds }));
  if (want('load')) out.push(await runLoad({ clients: s.loadClients, seconds: s.loadSeconds }));
  return out;
}

export function parseTortureArgs(argv: string[]): TortureOptions {
  const only = argv.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',').filter(Boolean);
  const bad = only?.filter((p) => !(PARTS as readonly string[]).includes(p)) ?? [];
  if (bad.length > 0) throw new Error(`unknown torture part(s): ${bad.join(', ')}; choose from ${PARTS.join(', ')}`);
  const max = argv.find((a) => a.startsWith('--max-seconds='))?.slice('--max-seconds='.length);
  if (max !== undefined && !(Number(max) > 0)) throw new Error(`--max-seconds needs a positive number of seconds, got ${JSON.stringify(max)}`);
  return { short: argv.includes('--short'), ...(only ? { only: only as Part[] } : {}), ...(max ? { maxSecondsPerPart: Number(max) } : {}) };
}

async function main(): Promise<void> {
  const opts = parseTortureArgs(process.argv.slice(2));
  console.log(`torture (${opts.short ? 'short' : 'full'})${opts.only ? `: ${opts.only.join(', ')}` : ''} on ${os.cpus().length} cores, node ${process.version}`);
  const results = await runTorture(opts);
  console.table(results.map((r) => ({ part: r.name, trials: r.trials, faults_injected: r.faults, failures: r.failures, seconds: r.seconds })));
  for (const r of results) {
    if (r.notes) console.log(`  ${r.name}: ${r.notes}`);
    for (const d of r.details) console.log(`  FAIL ${r.name}: ${d}`);
  }
  if (!opts.short) {
    const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'torture.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, planned: SIZES.full, maxSecondsPerPart: opts.maxSecondsPerPart ?? null, results }, null, 2) + '\n');
  }
  if (results.some((r) => r.failures > 0)) process.exitCode = 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
