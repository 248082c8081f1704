// Two torture parts over an in-process SQLite server:
//  - load: many concurrent HTTP clients appending for a bounded time, some requests resent as if
//    the response was lost; afterwards every acknowledged event is on the server exactly once;
//  - convergence: N devices, random conflicting commands, random partitions; all converge.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { checkConvergence, openSimDevice, randomCommand, rng, startSimServer, syncUntilQuiet, TENANT, tokenFor } from './converge.js';
import type { TrialStats } from './crash.js';

export async function runLoad(opts: { clients: number; seconds: number; batch?: number; seed?: number }): Promise<TrialStats> {
  const t0 = performance.now();
  const stats: TrialStats = { name: `load (${opts.clients} concurrent clients, ${opts.seconds} s)`, trials: 0, faults: 0, failures: 0, seconds: 0, details: [] };
  const dir = mkdtempSync(join(tmpdir(), 'torture-load-'));
  const users = Array.from({ length: opts.clients }, (_, i) => `load${i}`);
  const server = await startSimServer(join(dir, 'server.sqlite'), users);
  const r = rng(opts.seed ?? 5);
  const acked = new Map<string, string[]>(); // stream → acknowledged event ids in order
  const fail = (what: string) => {
    stats.failures++;
    if (stats.details.length < 20) stats.details.push(what);
  };
  try {
    const deadline = performance.now() + opts.seconds * 1000;
    const client = async (c: number) => {
      const streamId = `O-load-${c}`;
      const ids: string[] = [];
      acked.set(streamId, ids);
      let version = 0;
      while (performance.now() < deadline) {
        const n = opts.batch ?? 5;
        const events = Array.from({ length: n }, (_, k) => ({
          eventId: uuidv7(),
          eventType: version + k === 0 ? 'OrderCreated' : 'PaymentReceived',
          schemaVersion: version + k === 0 ? 2 : 1,
          data: version + k === 0 ? { orderId: streamId, customerId: 'C', items: [{ sku: 'S', quantity: 1, unitPrice: 10_000_000 }], total: 10_000_000, currency: 'USD' } : { paymentId: `P-${version + k}`, amount: 1 },
          metadata: {},
        }));
        const body = JSON.stringify({ streamType: 'Order', expectedVersion: version === 0 ? 'no_stream' : version, events });
        const post = () => fetch(`${server.url}/sync/streams/${streamId}/append`, { method: 'POST', headers: { authorization: `Bearer ${tokenFor(users[c]!)}`, 'content-type': 'application/json' }, body });
        const res = await post();
        stats.trials++;
        if (res.status !== 201) {
          fail(`client ${c}: append → ${res.status} ${(await res.text()).slice(0, 200)}`);
          return;
        }
        await res.text();
        ids.push(...events.map((e) => e.eventId));
        version += n;
        // "The response was lost": resend the same request; it must be answered as a duplicate.
        if (r.chance(0.1)) {
          stats.faults++;
          const again = await post();
          const body2 = (await again.json()) as { duplicate?: boolean };
          if (again.status !== 201 || body2.duplicate !== true) fail(`client ${c}: resent append → ${again.status}, duplicate=${String(body2.duplicate)}`);
        }
      }
    };
    await Promise.all(users.map((_, c) => client(c)));
    let total = 0;
    for (const [streamId, ids] of acked) {
      const events = await server.repo.readStream(TENANT, streamId);
      total += events.length;
      const got = events.map((e) => e.eventId);
      if (got.length !== ids.length || got.some((id, i) => id !== ids[i])) fail(`${streamId}: server has ${got.length} events, ${ids.length} acknowledged (or in another order)`);
      if (events.some((e, i) => e.streamVersion !== i + 1)) fail(`${streamId}: versions are not 1..n`);
    }
    stats.notes = `${total} events acknowledged and found exactly once, ${Math.round(total / opts.seconds)} events/s`;
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  stats.seconds = Math.round((performance.now() - t0) / 100) / 10;
  return stats;
}

/** One convergence run: devices work and sync in random partitions, then all sync and must agree. */
async function convergenceRun(seed: number, devicesCount: number, steps: number): Promise<{ problems: string[]; partitions: number }> {
  const r = rng(seed);
  const dir = mkdtempSync(join(tmpdir(), 'torture-conv-'));
  const names = Array.from({ length: devicesCount }, (_, i) => `d${i}`);
  const server = await startSimServer(join(dir, 'server.sqlite'), names);
  const devices = names.map((n) => openSimDevice(dir, n, server.url, Date.parse('2025-01-01T00:00:00Z')));
  let partitions = 0;
  try {
    const shared = ['O-s-0', 'O-s-1', 'O-s-2'];
    const owns = devices.map(() => [] as string[]);
    for (let step = 0; step < steps; step++) {
      // A random partition: only some devices reach the server in this step.
      const online = devices.filter(() => r.chance(0.4));
      if (online.length < devices.length) partitions++;
      for (const [i, d] of devices.entries()) {
        d.clock.now += 60_000;
        const cmd = !d.outbox.effectiveState(shared[i % shared.length]!).exists && r.chance(0.5)
          ? { type: 'CreateOrder' as const, orderId: shared[i % shared.length]!, customerId: 'C', items: [{ sku: 'S', quantity: 1, unitPrice: 3000 }], currency: 'USD' }
          : randomCommand(r, d, shared, owns[i]!, step);
        d.outbox.submit(cmd, { userId: d.name });
      }
      await Promise.all(online.map((d) => d.engine.syncOnce()));
    }
    for (let pass = 0; pass < 5; pass++) {
      const reps = await Promise.all(devices.map((d) => syncUntilQuiet(d)));
      if (reps.every((x) => x.pushed === 0 && x.pulled === 0)) break;
    }
    const check = await checkConvergence(server, devices);
    const problems = [...check.mismatches];
    if (check.unaccounted > 0) problems.push(`${check.unaccounted} commands neither synced nor in a conflict inbox`);
    const chain = await server.repo.verifyChain({ tenantId: TENANT });
    if (!chain.ok) problems.push('hash chain broken');
    return { problems, partitions };
  } finally {
    for (const d of devices) d.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function runConvergence(opts: { runs: number; devices?: number; steps?: number; maxSeconds: number; seed?: number }): Promise<TrialStats> {
  const t0 = performance.now();
  const stats: TrialStats = { name: `convergence (${opts.devices ?? 5} devices, conflicts, partitions)`, trials: 0, faults: 0, failures: 0, seconds: 0, details: [] };
  for (let i = 0; i < opts.runs && (performance.now() - t0) / 1000 < opts.maxSeconds; i++) {
    const seed = (opts.seed ?? 500) + i;
    const { problems, partitions } = await convergenceRun(seed, opts.devices ?? 5, opts.steps ?? 8);
    stats.trials++;
    stats.faults += partitions;
    if (problems.length > 0) {
      stats.failures++;
      if (stats.details.length < 20) stats.details.push(`seed ${seed}: ${problems.slice(0, 3).join('; ')}`);
    }
  }
  stats.seconds = Math.round((performance.now() - t0) / 100) / 10;
  return stats;
}
