import { describe, expect, it } from 'vitest';
import { busNames, eventSubject, fromSubjectToken, subjectToken } from '../../../src/server/bus/messages.js';
import { waves } from '../../../src/server/bus/relay.js';

describe('broker subjects', () => {
  it('writes any tenant or type as one subject token, reversibly', () => {
    for (const name of ['tenant-a', 'acme.eu', 'a b*c>d', 'Zürich~1', '']) {
      const token = subjectToken(name);
      expect(token).toMatch(/^[A-Za-z0-9_~-]*$/);
      expect(fromSubjectToken(token)).toBe(name);
    }
    expect(eventSubject('orderlog', { tenantId: 'acme.eu', streamType: 'Order', eventType: 'OrderCreated' })).toBe('orderlog.acme~2eeu.Order.OrderCreated');
  });

  it('derives the stream names from the prefix and refuses a prefix that is not one token', () => {
    expect(busNames('orderlog')).toEqual({ prefix: 'orderlog', stream: 'ORDERLOG_EVENTS', deadPrefix: 'orderlog_dead', deadStream: 'ORDERLOG_DEAD_LETTERS' });
    expect(() => busNames('a.b')).toThrow();
    expect(() => busNames('')).toThrow();
  });
});

describe('relay waves', () => {
  it("put each stream's n-th event of a page in wave n, keeping commit order inside a wave", () => {
    const e = (tenantId: string, streamId: string, n: number) => ({ tenantId, streamId, n });
    const page = [e('t', 'A', 1), e('t', 'B', 1), e('t', 'A', 2), e('u', 'A', 1), e('t', 'A', 3), e('t', 'B', 2)];
    expect(waves(page).map((w) => w.map((x) => `${x.tenantId}/${x.streamId}${x.n}`))).toEqual([
      ['t/A1', 't/B1', 'u/A1'],
      ['t/A2', 't/B2'],
      ['t/A3'],
    ]);
    expect(waves([])).toEqual([]);
  });
});
