import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { openLocalStore } from '../../src/store/index.js';
import { created } from '../helpers/events.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const WORKER = new URL('../fixtures/append-worker.ts', import.meta.url).pathname;

function runWorker(args: string[]): { done: Promise<string>; child: ReturnType<typeof spawn> } {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const done = new Promise<string>((resolve, reject) =>
    child.on('exit', (code, signal) => (code === 0 || signal === 'SIGKILL' ? resolve(out) : reject(new Error(`worker exited ${code}: ${err}`)))),
  );
  return { done, child };
}

describe('two connections appending to one stream', () => {
  it('exactly one append wins per version, with no gaps', async () => {
    const file = tmp.file('race.sqlite');
    const s = openLocalStore(file);
    s.log.append('O-race', [created('O-race', 1_000_000)], { expectedVersion: 'no_stream' });
    s.close();

    const perWorker = 60;
    // All three open their connections first, then start together: they really race.
    const workers = [1, 2, 3].map(() => runWorker([file, 'O-race', String(perWorker), 'race', 'barrier']));
    await Promise.all(
      workers.map(({ child }) => new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()))),
    );
    for (const { child } of workers) child.stdin!.write('go\n');
    const outputs = await Promise.all(workers.map((w) => w.done));
    const acks = outputs.flatMap((o) => o.split('\n').filter((l) => l.startsWith('ack ')).map((l) => l.split(' ')));
    const lost = outputs.reduce((sum, o) => sum + Number(/done \d+ (\d+)/.exec(o)![1]), 0);

    const check = openLocalStore(file);
    const versions = check.log.readStream('O-race').map((e) => e.streamVersion);
    expect(versions).toEqual(Array.from({ length: 1 + 3 * perWorker }, (_, i) => i + 1));
    // Every acknowledged version is distinct and is stored with the acknowledged event.
    expect(new Set(acks.map((a) => a[2])).size).toBe(acks.length);
    for (const [, eventId, version] of acks) expect(check.log.getEvent(eventId!)?.streamVersion).toBe(Number(version));
    check.close();
    // The workers really raced (with 3 writers some expected versions must have gone stale).
    expect(lost).toBeGreaterThan(0);
  });
});

describe('crash safety', () => {
  it('a process killed with SIGKILL mid-write loses no acknowledged append and leaves no gap', async () => {
    const file = tmp.file('crash.sqlite');
    const s = openLocalStore(file);
    s.log.append('O-crash', [created('O-crash', 1_000_000)], { expectedVersion: 'no_stream' });
    s.close();
    for (let trial = 0; trial < 3; trial++) {
      const { child, done } = runWorker([file, 'O-crash', '100000']);
      const acked: string[] = [];
      let firstAck!: () => void;
      const started = new Promise<void>((r) => (firstAck = r));
      child.stdout!.on('data', (d: Buffer) => {
        for (const line of d.toString().split('\n')) if (line.startsWith('ack ')) acked.push(line.split(' ')[1]!);
        if (acked.length > 0) firstAck();
      });
      // Kill at a different point of the write loop in each trial, once appends are flowing.
      await started;
      await new Promise((r) => setTimeout(r, 50 + trial * 170));
      child.kill('SIGKILL');
      await done;
      const check = openLocalStore(file);
      for (const id of acked) expect(check.log.getEvent(id), `acknowledged ${id}`).not.toBeNull();
      const versions = check.log.readStream('O-crash').map((e) => e.streamVersion);
      expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => i + 1));
      expect(acked.length).toBeGreaterThan(0);
      check.close();
    }
  });
});
