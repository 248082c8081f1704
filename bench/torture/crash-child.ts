// The process the crash trials kill: it submits commands, syncs and rebuilds projections at
// random, forever, and prints "ack <commandId> <eventId>..." only after a submit has committed.
//   node crash-child.mjs <device file> <server url> <token> <seed>
import { writeSync } from 'node:fs';
import { randomCommand, rng, type SimDevice } from './converge.js';
import { openWiredDevice } from './device.js';

const [file, serverUrl, token, seedText] = process.argv.slice(2);
if (!file || !serverUrl || !token || !seedText) throw new Error('usage: crash-child <file> <serverUrl> <token> <seed>');
const r = rng(Number(seedText));
const device = await openWiredDevice(file, { deviceId: 'dev-crash', serverUrl, token });
const clock = { now: Date.now() };
const sim = { name: `c${seedText}`, clock } as SimDevice;
const shared = Array.from({ length: 8 }, (_, i) => `O-crash-${i}`);
const own: string[] = [];
writeSync(1, 'ready\n');

for (let seq = 0; ; seq++) {
  const roll = r.next();
  if (roll < 0.75) {
    // The shared orders may not exist yet on this device: creating them is part of the workload.
    const missing = shared.find((id) => !device.outbox.effectiveState(id).exists);
    const cmd = missing && r.chance(0.5)
      ? { type: 'CreateOrder' as const, orderId: missing, customerId: 'C-1', items: [{ sku: 'SKU-1', quantity: 2, unitPrice: 5000 }], currency: 'USD' }
      : randomCommand(r, sim, shared, own, seq);
    const res = device.outbox.submit(cmd, { userId: 'crash' });
    // Written synchronously after the commit: a line on stdout means the command is durable.
    if (res.ok) writeSync(1, `ack ${res.commandId} ${res.events.map((e) => e.eventId).join(' ')}\n`);
  } else if (roll < 0.95) {
    await device.engine.syncOnce();
    writeSync(1, 'synced\n');
  } else {
    await device.runner.rebuild();
    writeSync(1, 'rebuilt\n');
  }
}
