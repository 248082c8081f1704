import { describe, expect, it } from 'vitest';
import { barChart, fractionOfTarget, linearTicks, targetMet } from '../../bench/charts.js';
import { collectTargets, renderReport } from '../../bench/report.js';
import { parseArgs, type BenchResults } from '../../bench/run.js';

const ok = (data: unknown) => ({ ok: true, ran_at: '2026-01-01T00:00:00.000Z', seconds: 1, data });

const sample: BenchResults = {
  quick: false,
  machine: { cpu_model: 'Test CPU', cpus: 2, total_mem_gib: 8, platform: 'linux x64', kernel: '6.1', node: 'v20.20.2', load_avg_at_start: [3, 2, 1], load_avg_at_end: [3, 2, 1], date: '2026-01-01T00:00:00.000Z' },
  sections: {
    emmett: ok({
      durability: { ours: 'WAL FULL', raw: 'WAL FULL', emmett: 'wal, synchronous=2' },
      params: { singles: 500, batchedEvents: 50000, batchSize: 500, streamLength: 10000, rounds: 3, maxMsPerRun: 15000 },
      single: { raw_per_s: 400, ours_per_s: 340, emmett_per_s: 70, emmett_held_open_per_s: 90, ours_vs_raw: 0.85, ours_vs_emmett: 4.86, emmett_done: 500, emmett_commit_errors: 2 },
      batched: { raw_per_s: 60000, ours_per_s: 48000, emmett_per_s: 12000, ours_vs_raw: 0.8, ours_vs_emmett: 4, emmett_commit_errors: 0 },
      read_10k: { raw_ms: 50, ours_ms: 55, emmett_ms: 200, ours_vs_raw: 0.91, ours_vs_emmett: 3.6 },
      load_10k: { raw_ms: 200, ours_ms: 250, ours_snapshot_ms: 5, emmett_ms: 450, ours_vs_raw: 0.8, ours_vs_emmett: 1.8 },
    }),
    projections: ok({ events: 1_000_000, rebuild_ms: 12_500, rebuild_events_per_s: 80_000, raw_scan_rows_per_s: 300_000, list_first_page_status_p50_ms: 2 }),
    server: ok([
      { ok: true, backend: 'pg', batchSize: 100, connections: 8, events: 20000, eventsPerSec: 25000, p50Ms: 3, p99Ms: 9, pullEventsPerSec: 90000 },
      { ok: true, backend: 'pg', batchSize: 500, connections: 8, events: 40000, eventsPerSec: 18000, rawInsertEventsPerSec: 45000, serverVsRaw: 0.4, p50Ms: 9, p99Ms: 30, pullEventsPerSec: 90000 },
      { ok: false, backend: 'sqlite', batchSize: 1, error: 'boom' },
    ]),
    sync: ok({ events: 100000, pushMs: 8000 }),
    converge: ok({ devices: 5, mismatches: 0, unaccounted_commands: 0, converge_ms: 5000 }),
    archive: ok({ events: 200000, loadAvg: 3.1, archiveEventsPerSec: 9000, archiveVsRaw: 0.4, restoreEventsPerSec: 15000, restoreVsRaw: 0.3 }),
    store: { ok: false, ran_at: '2026-01-01T00:00:00.000Z', seconds: 1, error: 'store exploded' },
  },
};

describe('benchmark report generator', () => {
  it('judges each target in the right direction', () => {
    const byName = Object.fromEntries(collectTargets(sample).map((t) => [t.name, t]));
    expect(byName['single appends ÷ raw']!.met).toBe(true);
    expect(byName['single appends ÷ Emmett']!.met).toBe(false);
    expect(byName['single appends ÷ Emmett']!.explanation).toMatch(/raw better-sqlite3 loop itself is only 5.71× Emmett/);
    expect(byName['batched appends ÷ raw']!.met).toBe(true);
    expect(byName['rebuild 1.00M events (s)']!.met).toBe(false);
    expect(byName['rebuild 1.00M events (s)']!.explanation).toMatch(/Missed by 7.5 s/);
    // PostgreSQL appends are judged against the raw multi-row INSERT of the same run (batches of 500).
    expect(byName['PostgreSQL appends ÷ raw multi-row INSERT (batches of 500)']!.met).toBe(false);
    expect(byName['PostgreSQL appends ÷ raw multi-row INSERT (batches of 500)']!.explanation).toMatch(/0\.4× \(18\.0k ev\/s against 45\.0k ev\/s raw\)/);
    expect(byName['push 100k events (s)']!.met).toBe(true);
    expect(byName['devices disagreeing after sync']!.met).toBe(true);
    // Results of one rebuild against one scan: the ratio is their quotient.
    expect(byName['projection rebuild ÷ raw scan of the same rows']!.actual).toBe(0.267);
  });

  it('judges the rebuild ratio by the median of the runs against their own anchors when the bench gives it', () => {
    const runs = { ...sample, sections: { ...sample.sections, projections: ok({ events: 1_000_000, rebuild_ms: 4_100, rebuild_events_per_s: 243_902, raw_scan_rows_per_s: 330_000, rebuild_vs_raw_scan: 0.702 }) } };
    const ratio = collectTargets(runs).find((t) => t.name === 'projection rebuild ÷ raw scan of the same rows')!;
    // The quotient of the medians (0.739) would pass too; the median of the per-run ratios is what is judged.
    expect(ratio.actual).toBe(0.702);
    expect(ratio.met).toBe(true);
    const missed = { ...sample, sections: { ...sample.sections, projections: ok({ events: 1_000_000, rebuild_ms: 4_100, rebuild_events_per_s: 243_902, raw_scan_rows_per_s: 330_000, rebuild_vs_raw_scan: 0.69 }) } };
    expect(collectTargets(missed).find((t) => t.name === 'projection rebuild ÷ raw scan of the same rows')!.met).toBe(false);
  });

  it('renders markdown with machine, noise warning, tables, failures and links to every chart it draws', () => {
    const { markdown, charts } = renderReport(sample);
    expect(markdown).toContain('| Test CPU | 2 |');
    expect(markdown).toContain('Noisy run');
    expect(markdown).toContain('| single appends (events/s) | 400 | 340 | 70 | 0.85 | 4.86 |');
    expect(markdown).toContain('**missed**');
    expect(markdown).toContain('- **store**: store exploded');
    expect(markdown).toContain('## Archive and restore of a PostgreSQL partition');
    expect(markdown).toMatch(/archiveEventsPerSec.*9,?000/);
    expect(Object.keys(charts).sort()).toEqual(['appends-batched.svg', 'appends-single.svg', 'ratios.svg', 'read-load.svg', 'rebuild.svg', 'server.svg', 'targets.svg']);
    for (const [file, svg] of Object.entries(charts)) {
      expect(markdown).toContain(`(bench/results/charts/${file})`);
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
      expect(svg.trim().endsWith('</svg>')).toBe(true);
      expect(svg).not.toMatch(/NaN|undefined/);
    }
  });

  it('draws bars proportional to the values and escapes labels', () => {
    const svg = barChart({ title: 'a < b & c', bars: [{ label: 'x', value: 50 }, { label: '<y>', value: 100 }] });
    const widths = [...svg.matchAll(/<rect x="\d+" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(widths).toHaveLength(2);
    expect(widths[1]! / widths[0]!).toBeCloseTo(2, 1);
    expect(svg).toContain('a &lt; b &amp; c');
    expect(svg).toContain('&lt;y&gt;');
  });

  it('has round axis ticks and target fractions', () => {
    expect(linearTicks(97)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(fractionOfTarget({ name: 't', actual: 5, target: 10, unit: 's', kind: 'max' })).toBe(2);
    expect(targetMet({ name: 't', actual: 11, target: 10, unit: 's', kind: 'max' })).toBe(false);
  });

  it('selects bench sections from arguments or BENCH_ONLY and refuses unknown ones', () => {
    expect(parseArgs(['store', 'emmett'], {}).sections).toEqual(['store', 'emmett']);
    expect(parseArgs([], { BENCH_ONLY: 'sync' }).sections).toEqual(['sync']);
    expect(parseArgs(['--quick'], {})).toEqual({ sections: ['store', 'emmett', 'projections', 'server', 'sync', 'converge', 'archive', 'boot', 'firstsync', 'scope', 'broker'], quick: true });
    expect(() => parseArgs(['nope'], {})).toThrow(/unknown bench section/);
  });
});
