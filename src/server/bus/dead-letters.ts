import { headers, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, type StoredMsg } from '@nats-io/jetstream';
import { z } from 'zod';
import { HEADER, fromSubjectToken, subjectToken, type BusNames } from './messages.js';
import { ensureStreams } from './nats.js';

export const DeadLetter = z.object({
  /** Sequence in the dead-letter stream: what `replay` takes. */
  seq: z.number().int().positive(),
  tenantId: z.string(),
  subject: z.string(),
  reason: z.string(),
  deliveries: z.number().int().nonnegative(),
  eventId: z.string().nullable(),
  streamId: z.string().nullable(),
  streamVersion: z.number().int().nullable(),
  deadAt: z.string(),
});
export type DeadLetter = z.infer<typeof DeadLetter>;

const MAX_LIST = 1000;

/**
 * The dead letters of one deployment: list them (one tenant's, or all), and replay them once the
 * cause is fixed: each is re-published to its original subject (under a fresh message id, so the
 * broker's duplicate window does not drop it) and removed from the dead letters. Workers apply
 * it like any other message, idempotent by event id; replaying in sequence order keeps each
 * stream's order.
 */
export class DeadLetters {
  constructor(
    private readonly nc: NatsConnection,
    private readonly names: BusNames,
  ) {}

  async list(tenantId?: string, limit = MAX_LIST): Promise<DeadLetter[]> {
    return (await this.stored(tenantId, limit)).map(({ msg }) => this.describe(msg));
  }

  /** Replay one dead letter (by `seq`) or every one (of a tenant); returns those replayed. */
  async replay(opts: { seq?: number | undefined; tenantId?: string | undefined }): Promise<DeadLetter[]> {
    const js = jetstream(this.nc);
    const jsm = await jetstreamManager(this.nc);
    const chosen = (await this.stored(opts.tenantId, MAX_LIST)).filter(({ msg }) => opts.seq === undefined || msg.seq === opts.seq);
    const done: DeadLetter[] = [];
    for (const { msg } of chosen) {
      const original = msg.header.get(HEADER.subject) || `${this.names.prefix}${msg.subject.slice(this.names.deadPrefix.length)}`;
      const h = headers();
      for (const [k, v] of msg.header) for (const value of v) if (!k.startsWith('Nats-') && !k.startsWith('Orderlog-Dead') && !k.startsWith('Orderlog-Original')) h.append(k, value);
      const eventId = this.eventIdOf(msg);
      await js.publish(original, msg.data, { msgID: `${eventId ?? 'unknown'}:replay:${msg.seq}`, headers: h });
      await jsm.streams.deleteMessage(this.names.deadStream, msg.seq);
      done.push(this.describe(msg));
    }
    return done;
  }

  private async stored(tenantId: string | undefined, limit: number): Promise<{ msg: StoredMsg }[]> {
    const jsm = await ensureStreams(this.nc, this.names);
    const info = await jsm.streams.info(this.names.deadStream);
    const out: { msg: StoredMsg }[] = [];
    const tenantToken = tenantId === undefined ? null : subjectToken(tenantId);
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && out.length < limit && info.state.messages > 0; seq++) {
      let msg: StoredMsg | null;
      try {
        msg = await jsm.streams.getMessage(this.names.deadStream, { seq });
      } catch {
        msg = null; // deleted (replayed) in between
      }
      if (!msg) continue;
      if (tenantToken !== null && msg.subject.split('.')[1] !== tenantToken) continue;
      out.push({ msg });
    }
    return out;
  }

  private eventIdOf(msg: StoredMsg): string | null {
    try {
      const body = JSON.parse(new TextDecoder().decode(msg.data)) as { eventId?: unknown };
      return typeof body.eventId === 'string' ? body.eventId : null;
    } catch {
      return null;
    }
  }

  private describe(msg: StoredMsg): DeadLetter {
    const version = msg.header.get(HEADER.version);
    return {
      seq: msg.seq,
      tenantId: fromSubjectToken(msg.subject.split('.')[1] ?? ''),
      subject: msg.header.get(HEADER.subject) || msg.subject,
      reason: msg.header.get(HEADER.reason),
      deliveries: Number(msg.header.get(HEADER.deliveries) || 0),
      eventId: this.eventIdOf(msg),
      streamId: msg.header.get(HEADER.streamId) || null,
      streamVersion: version ? Number(version) : null,
      deadAt: msg.time.toISOString(),
    };
  }
}
