import { headers, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { BusEvent, HEADER, type BusNames } from './messages.js';
import { ensureStreams, isNotFound } from './nats.js';

/** What applying one message did. */
export type ApplyOutcome =
  | { status: 'applied' }
  /** Seen before (by event id): only acknowledge it. */
  | { status: 'duplicate' }
  /** Its predecessor in the stream is not applied yet: retry later. */
  | { status: 'waiting'; lastApplied: number };

/** Where a worker applies events (PostgreSQL: PgWorkerStore). */
export interface WorkerTarget {
  apply(e: BusEvent, workerName: string): Promise<ApplyOutcome>;
}

export interface WorkerLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface WorkerOptions {
  nc: NatsConnection;
  names: BusNames;
  target: WorkerTarget;
  /** This worker's name (recorded with every event it applies). */
  name: string;
  /** Durable consumer shared by every worker of this read model (default `orderlog-read-model`). */
  durable?: string;
  /** Failed deliveries before a message goes to the dead letters (default 5). */
  maxDeliver?: number;
  /** Deliveries a message may wait for its stream's predecessor before it is dead-lettered (default 200). */
  maxWaits?: number;
  /** First retry delay after a failure, doubled per delivery up to 30 s (default 200 ms). */
  backoffMs?: number;
  /** How long a delivered message may stay unacknowledged before the broker redelivers it (default 30 s). */
  ackWaitMs?: number;
  log?: WorkerLog;
}

export interface WorkerStats {
  applied: number;
  duplicates: number;
  /** Negative acknowledgements: failures retried later, and messages waiting for a predecessor. */
  retried: number;
  deadLettered: number;
}

const quiet: WorkerLog = { info: () => undefined, warn: () => undefined };

/**
 * A durable pull consumer that builds a read model from the broker: explicit acknowledgement
 * after the event's transaction committed; a failure is negatively acknowledged with a growing
 * delay, and after `maxDeliver` deliveries the message goes to the dead-letter subject with its
 * reason (and is terminated here). Several workers share one durable consumer; the target is
 * idempotent by event id and applies each stream in version order, so redeliveries, two workers
 * and re-publications never apply an event twice.
 */
export class Worker {
  readonly stats: WorkerStats = { applied: 0, duplicates: 0, retried: 0, deadLettered: 0 };
  private messages: ConsumerMessages | null = null;
  private loop: Promise<void> | null = null;
  private readonly log: WorkerLog;
  private readonly durable: string;

  constructor(private readonly opts: WorkerOptions) {
    this.log = opts.log ?? quiet;
    this.durable = opts.durable ?? 'orderlog-read-model';
  }

  async start(): Promise<this> {
    const { nc, names } = this.opts;
    await ensureStreams(nc, names);
    await ensureConsumer(nc, names, this.durable, this.opts.ackWaitMs ?? 30_000);
    const consumer = await jetstream(nc).consumers.get(names.stream, this.durable);
    this.messages = await consumer.consume({ max_messages: 64 });
    const messages = this.messages;
    this.loop = (async () => {
      for await (const m of messages) await this.handle(m);
    })();
    return this;
  }

  /** Stop taking messages; the one in hand is finished (and acknowledged) first. */
  async stop(): Promise<void> {
    await this.messages?.close();
    await this.loop;
  }

  private async handle(m: JsMsg): Promise<void> {
    const deliveries = m.info.deliveryCount;
    let event: BusEvent;
    try {
      event = BusEvent.parse(JSON.parse(new TextDecoder().decode(m.data)));
    } catch (err) {
      // Unreadable now is unreadable on every redelivery: straight to the dead letters.
      await this.deadLetter(m, `unreadable message: ${(err as Error).message}`);
      return;
    }
    let outcome: ApplyOutcome;
    try {
      outcome = await this.opts.target.apply(event, this.opts.name);
    } catch (err) {
      const reason = `apply failed: ${(err as Error).message}`;
      if (deliveries >= (this.opts.maxDeliver ?? 5)) await this.deadLetter(m, reason);
      else this.retry(m, deliveries, { eventId: event.eventId, reason });
      return;
    }
    if (outcome.status === 'waiting') {
      if (deliveries >= (this.opts.maxWaits ?? 200)) {
        await this.deadLetter(m, `version ${event.streamVersion} of stream ${event.streamId} still waits for version ${outcome.lastApplied + 1}`);
      } else this.retry(m, deliveries, null, 50);
      return;
    }
    m.ack();
    if (outcome.status === 'applied') this.stats.applied++;
    else this.stats.duplicates++;
  }

  private retry(m: JsMsg, deliveries: number, failure: { eventId: string; reason: string } | null, firstMs = this.opts.backoffMs ?? 200): void {
    const delay = Math.min(30_000, firstMs * 2 ** Math.min(deliveries - 1, 10));
    this.stats.retried++;
    if (failure) this.log.warn({ ...failure, deliveries, retryInMs: delay }, 'worker: event not applied; retrying later');
    m.nak(delay);
  }

  /**
   * Publish the message, with its reason, to the dead-letter subject, then terminate it. The
   * dead letter's message id is the original's broker sequence, so a crash between the two steps
   * does not file it twice.
   */
  private async deadLetter(m: JsMsg, reason: string): Promise<void> {
    const { names } = this.opts;
    const h = headers();
    for (const [k, v] of m.headers ?? []) for (const value of v) if (!k.startsWith('Nats-')) h.append(k, value);
    h.set(HEADER.reason, reason.slice(0, 1000));
    h.set(HEADER.deliveries, String(m.info.deliveryCount));
    h.set(HEADER.subject, m.subject);
    h.set(HEADER.sequence, String(m.info.streamSequence));
    const rest = m.subject.slice(names.prefix.length);
    try {
      await jetstream(this.opts.nc).publish(`${names.deadPrefix}${rest}`, m.data, { msgID: `${names.stream}:${m.info.streamSequence}`, headers: h });
    } catch (err) {
      // Not filed: let the broker redeliver it and try again.
      this.retry(m, m.info.deliveryCount, { eventId: m.headers?.get('Nats-Msg-Id') ?? '?', reason: `dead letter not filed: ${(err as Error).message}` });
      return;
    }
    m.term(reason.slice(0, 200));
    this.stats.deadLettered++;
    this.log.warn({ subject: m.subject, sequence: m.info.streamSequence, reason }, 'worker: message moved to the dead letters');
  }
}

/** The durable consumer: explicit acks, every message from the start, redelivery left to the worker's count. */
export async function ensureConsumer(nc: NatsConnection, names: BusNames, durable: string, ackWaitMs: number): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.consumers.info(names.stream, durable);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.consumers.add(names.stream, {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(ackWaitMs),
      // The worker counts deliveries itself (failures go to the dead letters after maxDeliver).
      max_deliver: -1,
      max_ack_pending: 1000,
      filter_subject: `${names.prefix}.>`,
    });
  }
}
