import { z } from 'zod';
import { ServerEvent } from '../../protocol/envelope.js';

/**
 * What travels on the broker: subjects, stream names, headers and the message body. The relay,
 * the workers and the dead-letter tools all take their names from here.
 */

/** Names of one deployment's broker objects, derived from one subject prefix. */
export interface BusNames {
  /** Subject prefix of the events: `<prefix>.<tenant>.<streamType>.<eventType>`. */
  prefix: string;
  /** JetStream stream holding the events. */
  stream: string;
  /** Dead letters: `<prefix>_dead.<tenant>.<streamType>.<eventType>`, in their own stream. */
  deadPrefix: string;
  deadStream: string;
}

export const BusPrefix = z.string().regex(/^[a-z][a-z0-9_-]{0,40}$/, 'lower-case letters, digits, _ and - (a NATS subject token)');

export function busNames(prefix = 'orderlog'): BusNames {
  BusPrefix.parse(prefix);
  const upper = prefix.toUpperCase().replaceAll('-', '_');
  return { prefix, stream: `${upper}_EVENTS`, deadPrefix: `${prefix}_dead`, deadStream: `${upper}_DEAD_LETTERS` };
}

/**
 * One subject token from a free-form name: NATS tokens may not hold `.`, `*`, `>` or white space,
 * so anything outside [A-Za-z0-9_-] is written `~xx` (its UTF-8 bytes in hex), reversibly.
 */
export function subjectToken(name: string): string {
  return [...Buffer.from(name, 'utf8')]
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9_-]/.test(c) ? c : `~${b.toString(16).padStart(2, '0')}`;
    })
    .join('');
}

export function fromSubjectToken(token: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    if (token[i] === '~') {
      bytes.push(parseInt(token.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(token.charCodeAt(i));
  }
  return Buffer.from(bytes).toString('utf8');
}

export function eventSubject(prefix: string, e: { tenantId: string; streamType: string; eventType: string }): string {
  return `${prefix}.${subjectToken(e.tenantId)}.${subjectToken(e.streamType)}.${subjectToken(e.eventType)}`;
}

/** Every subject of one tenant under a prefix (the dead-letter listing filters by it). */
export function tenantSubjects(prefix: string, tenantId: string): string {
  return `${prefix}.${subjectToken(tenantId)}.>`;
}

export const HEADER = {
  position: 'Orderlog-Position',
  version: 'Orderlog-Stream-Version',
  streamId: 'Orderlog-Stream-Id',
  correlationId: 'Orderlog-Correlation-Id',
  /** Dead letters: why, after how many deliveries, from which subject and broker sequence. */
  reason: 'Orderlog-Dead-Reason',
  deliveries: 'Orderlog-Dead-Deliveries',
  subject: 'Orderlog-Original-Subject',
  sequence: 'Orderlog-Original-Sequence',
} as const;

/** The message body: the event as the server stores it, with its tenant. */
export const BusEvent = ServerEvent.extend({ tenantId: z.string().min(1).max(100) });
export type BusEvent = z.infer<typeof BusEvent>;
