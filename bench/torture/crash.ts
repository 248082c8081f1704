// Crash trials: a child process submits, syncs and rebuilds against an in-process SQLite server
// and is killed with SIGKILL at a random moment. After each kill the device is reopened and
// checked: every acknowledged command and event is still there, after a full sync the server
// holds no duplicate and no gap, the device's projections equal a fresh rebuild, and the
// server's hash chain verifies.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { driftCheck } from '../../src/projections/index.js';
import type { StartedServer } from '../../src/server/index.js';
import { rng, startSimServer, TENANT, tokenFor } from './converge.js';
import { openWiredDevice } from './device.js';

const HERE = dirname(fileURLToPath(import.meta.url));

export interface TrialStats {
  name: string;
  trials: number;
  faults: number;
  failures: number;
  seconds: number;
  details: string[];
  notes?: string;
}

/** Bundle the child once so each trial starts in ~0.1 s instead of compiling TypeScript again. */
async function bundleChild(): Promise<string> {
  // Two levels below the repository root, like src/store/: the store finds migrations/ relative to its
  // module. Not under node_modules/: where that is a symlink to another checkout, Node would run the
  // bundle from there (its real path) against that checkout's migrations, and checkouts would share it.
  const out = join(HERE, '..', '..', '.tmp', 'torture', 'crash-child.mjs');
  mkdirSync(dirname(out), { recursive: true });
  await build({ entryPoints: [join(HERE, 'crash-child.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', outfile: out, logLevel: 'error' });
  return out;
}

interface ChildRun {
  acked: { commandId: string; eventIds: string[] }[];
  lines: number;
  exitedEarly: string | null;
}

/** Start the child, let it work for `workMs` after it is ready, then SIGKILL it. */
function runAndKill(childJs: string, file: string, server: StartedServer, seed: number, workMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [childJs, file, server.url, tokenFor('crash'), String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const run: ChildRun = { acked: [], lines: 0, exitedEarly: null };
    let buf = '';
    let stderr = '';
    let timer: NodeJS.Timeout | null = null;
    let killed = false;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        run.lines++;
        if (line === 'ready' && !timer) {
          timer = setTimeout(() => {
            killed = true;
            child.kill('SIGKILL');
          }, workMs);
        } else if (line.startsWith('ack ')) {
          const [, commandId, ...eventIds] = line.split(' ');
          run.acked.push({ commandId: commandId!, eventIds });
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      if (!killed) run.exitedEarly = `exited by itself (code ${code}, signal ${signal}): ${stderr.slice(-500)}`;
      resolve(run);
    });
  });
}

async function verify(file: string, server: StartedServer, acked: ChildRun['acked']): Promise<string[]> {
  const problems: string[] = [];
  const device = await openWiredDevice(file, { deviceId: 'dev-crash', serverUrl: server.url, token: tokenFor('crash') });
  try {
    const db = device.store.db;
    const hasCommand = db.prepare('SELECT status FROM commands WHERE command_id = ?').pluck();
    const hasEvent = db.prepare('SELECT 1 FROM pending_events WHERE event_id = ? UNION ALL SELECT 1 FROM events WHERE event_id = ?').pluck();
    for (const a of acked) {
      if (hasCommand.get(a.commandId) === undefined) problems.push(`acknowledged command ${a.commandId} lost`);
      for (const e of a.eventIds) if (hasEvent.get(e, e) === undefined) problems.push(`acknowledged event ${e} lost`);
    }
    // Restart: sync until quiet, then the server, the device and its projections must agree.
    for (let i = 0; i < 10; i++) {
      const rep = await device.engine.syncOnce();
      if (rep.pending === 0 && rep.pushedEvents === 0 && rep.pulledEvents === 0) break;
    }
    const status = db.prepare('SELECT status FROM commands WHERE command_id = ?').pluck();
    for (const a of acked) {
      const s = status.get(a.commandId) as string | undefined;
      if (s === 'pending') problems.push(`command ${a.commandId} still pending after a full sync`);
    }
    const ids = new Set<string>();
    const versions = new Map<string, number>();
    for (let after = 0; ; ) {
      const page = await server.repo.pull(TENANT, after, 5000);
      for (const e of page.events) {
        if (ids.has(e.eventId)) problems.push(`duplicate event ${e.eventId} on the server`);
        ids.add(e.eventId);
        const prev = versions.get(e.streamId) ?? 0;
        if (e.streamVersion !== prev + 1) problems.push(`stream ${e.streamId}: version ${e.streamVersion} after ${prev}`);
        versions.set(e.streamId, e.streamVersion);
      }
      if (!page.hasMore) break;
      after = page.nextPosition;
    }
    const synced = db.prepare("SELECT p.event_id FROM pending_events p JOIN commands c ON c.command_id = p.command_id AND c.attempt = p.attempt WHERE c.status = 'synced'").pluck().all() as string[];
    for (const e of synced) if (!ids.has(e)) problems.push(`event ${e} of a synced command is not on the server`);
    const drift = await driftCheck(device.runner);
    for (const d of drift) if (d.differences.length > 0) problems.push(`projection ${d.projection}: ${d.differences.length} differences from a fresh rebuild`);
    const chain = await server.repo.verifyChain({ tenantId: TENANT });
    if (!chain.ok) problems.push(`hash chain broken: ${JSON.stringify(chain.firstBroken)}`);
  } finally {
    device.close();
  }
  return problems;
}

export async function runCrashTrials(opts: { trials: number; maxSeconds: number; seed?: number; trialsPerDevice?: number }): Promise<TrialStats> {
  const t0 = performance.now();
  const stats: TrialStats = { name: 'crash (SIGKILL during submit/sync/rebuild)', trials: 0, faults: 0, failures: 0, seconds: 0, details: [] };
  const r = rng(opts.seed ?? 1);
  const dir = mkdtempSync(join(tmpdir(), 'torture-crash-'));
  const childJs = await bundleChild();
  const server = await startSimServer(join(dir, 'server.sqlite'), ['crash']);
  try {
    let ackedTotal = 0;
    let deviceNo = 0;
    let file = join(dir, `device-${deviceNo}.sqlite`);
    for (let i = 0; i < opts.trials && (performance.now() - t0) / 1000 < opts.maxSeconds; i++) {
      if (i > 0 && i % (opts.trialsPerDevice ?? 25) === 0) file = join(dir, `device-${++deviceNo}.sqlite`);
      const run = await runAndKill(childJs, file, server, 1000 + i, 20 + r.int(400));
      stats.trials++;
      if (run.exitedEarly) {
        stats.failures++;
        stats.details.push(`trial ${i}: child ${run.exitedEarly}`);
        continue;
      }
      stats.faults++;
      ackedTotal += run.acked.length;
      const problems = await verify(file, server, run.acked);
      if (problems.length > 0) {
        stats.failures++;
        stats.details.push(`trial ${i} (seed ${1000 + i}): ${problems.slice(0, 3).join('; ')}`);
      }
    }
    stats.notes = `${ackedTotal} acknowledged commands checked across ${deviceNo + 1} device files`;
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  stats.seconds = Math.round((performance.now() - t0) / 100) / 10;
  return stats;
}
