import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { v7 as uuidv7 } from 'uuid';
import { appendOne, appendWork } from '../../../src/server/store/append-flow.js';
import { MissingEventsBudget, normalizeAppend } from '../../../src/server/store/append-logic.js';
import { done, runAsync, runSync, wait, type Op, type PullFrom, type WriteSession, type WriteWork } from '../../../src/server/store/port.js';
import { publicEventJson } from '../../../src/server/store/rows.js';
import { SqliteDialect } from '../../../src/server/store/sqlite/dialect.js';
import type { AppendCommand, AppendOutcome } from '../../../src/server/repository.js';

function note(streamId: string, expectedVersion: AppendCommand['expectedVersion'] = 0): AppendCommand {
  return { tenantId: 'tenant-a', streamId, streamType: 'Note', expectedVersion, events: [{ eventId: uuidv7(), eventType: 'NoteAdded', schemaVersion: 1, data: { text: streamId }, metadata: {} }] };
}

describe('store port: one flow over a synchronous and an asynchronous driver', () => {
  it('runAsync throws a rejected wait into the flow at that point, so the flow can catch it and go on', async () => {
    function* flow(): Op<string[]> {
      const seen: string[] = [];
      try {
        yield* wait(Promise.reject(Object.assign(new Error('refused'), { code: '22P05' })));
        seen.push('not reached');
      } catch (err) {
        seen.push(`caught ${(err as { code: string }).code}`);
      }
      seen.push(yield* wait(Promise.resolve('after')));
      return seen;
    }
    expect(await runAsync(flow())).toEqual(['caught 22P05', 'after']);
  });

  it('runSync runs a flow whose ops are done at once, and refuses one that waits', () => {
    function* flow(): Op<number> {
      return (yield* done(2)) + (yield* done(3));
    }
    expect(runSync(flow())).toBe(5);
    expect(() => runSync(wait(Promise.resolve(1)))).toThrow(/synchronous store dialect yielded/);
  });
});

describe('SQLite dialect: group commit', () => {
  let dir = '';
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a job that fails undoes only its own writes; the jobs queued with it commit', async () => {
    dir = mkdtempSync(join(tmpdir(), 'orderlog-port-'));
    const dialect = new SqliteDialect(join(dir, 'server.db'));
    try {
      // Writes its element, then fails: its savepoint must take the write back.
      const failing: WriteWork<AppendCommand, AppendOutcome> = {
        prepare: (recordedAt) => normalizeAppend(note('failing'), recordedAt),
        streams: (cmd) => [cmd],
        *run(s: WriteSession, cmd, recordedAt) {
          yield* appendOne(s, cmd, recordedAt, new MissingEventsBudget());
          throw new Error('store failure after the write');
        },
      };
      const [first, broken, last] = await Promise.allSettled([
        dialect.writeTransaction(appendWork(note('first'))),
        dialect.writeTransaction(failing),
        dialect.writeTransaction(appendWork(note('last'))),
      ]);
      expect(first).toMatchObject({ status: 'fulfilled', value: { status: 'ok', result: { toVersion: 1 } } });
      expect(broken).toMatchObject({ status: 'rejected', reason: { message: 'store failure after the write' } });
      expect(last).toMatchObject({ status: 'fulfilled', value: { status: 'ok', result: { toVersion: 1 } } });
      expect(dialect.streamRows('tenant-a', 'first', 0, undefined)).toHaveLength(1);
      expect(dialect.streamRows('tenant-a', 'failing', 0, undefined)).toHaveLength(0);
      expect(dialect.streamRows('tenant-a', 'last', 0, undefined)).toHaveLength(1);
      // The undone job leaves no hole in the positions.
      const positions = [first, last].map((r) => (r.status === 'fulfilled' && r.value.status === 'ok' ? r.value.result.events[0]!.globalPosition : 0));
      expect(positions[1]! - positions[0]!).toBe(1);
    } finally {
      dialect.close();
    }
  });
});

describe('SQLite dialect: a pull page built by the database', () => {
  let dir = '';
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('is the text the core builds from the rows, byte for byte, by position and by cursor, other tenants left out', async () => {
    dir = mkdtempSync(join(tmpdir(), 'orderlog-pulljson-'));
    const dialect = new SqliteDialect(join(dir, 'server.db'));
    try {
      // Text JSON escapes: quotes, backslashes, a newline, non-Latin scripts, an emoji, a would-be tag.
      const texts = ['say "hi"', 'back\\slash', 'line\nbreak', 'Ærø · 東京 · Привет', '🧾 receipt', '</script>', ''];
      for (const [i, text] of texts.entries()) {
        const cmd = note(`N-${i}`);
        cmd.events[0]!.data = { text, n: i, nested: { list: [1, 'two', null, true] } };
        cmd.events[0]!.metadata = { source: `device "${i}"` };
        await dialect.writeTransaction(appendWork(cmd));
        await dialect.writeTransaction(appendWork({ ...note(`other-${i}`), tenantId: 'tenant-b' }));
      }
      const froms: PullFrom[] = [{ position: 0 }, { position: 3 }, { position: 1_000 }, { cursor: { txid: '0', position: 0 } }, { cursor: { txid: '0', position: 5 } }];
      for (const from of froms) {
        for (const limit of [1, 3, 100]) {
          const { rows, next } = dialect.pullRows('tenant-a', from, limit);
          const page = dialect.pullJson('tenant-a', from, limit);
          expect(page.json).toBe(rows.map(publicEventJson).join(','));
          expect(page.events).toBe(rows.length);
          expect(page.lastPosition).toBe(rows.length ? Number(rows[rows.length - 1]!.global_position) : null);
          expect(page.next).toEqual(next);
        }
      }
      const all = dialect.pullJson('tenant-a', { position: 0 }, 100);
      expect((JSON.parse(`[${all.json}]`) as { data: { text: string } }[]).map((e) => e.data.text)).toEqual(texts);
    } finally {
      dialect.close();
    }
  });
});
