import { hostname } from 'node:os';
import pino from 'pino';
import { z } from 'zod';
import { DeadLetters } from './bus/dead-letters.js';
import { BusPrefix, busNames } from './bus/messages.js';
import { connectBus } from './bus/nats.js';
import { Worker } from './bus/worker.js';
import { PgWorkerStore } from './store/pg/worker-store.js';

const USAGE = `orderlog worker: builds the order dashboard read model in PostgreSQL from the broker

Usage:
  npm run worker [-- run]          consume events (a durable pull consumer shared by every worker)
  npm run worker -- dead-letters [--tenant T]
                                   list the dead letters (JSON)
  npm run worker -- replay [--seq N] [--tenant T]
                                   re-publish dead letters (one, a tenant's, or all) to their subjects
  npm run worker -- --help

Environment variables:
  ORDERLOG_NATS_URL            NATS server with JetStream (required), e.g. nats://127.0.0.1:4222
  ORDERLOG_NATS_PREFIX         Subject prefix of the events (default orderlog)
  ORDERLOG_WORKER_DATABASE_URL PostgreSQL of the read model (default ORDERLOG_DATABASE_URL)
  ORDERLOG_WORKER_SCHEMA       Its schema (default orderlog_worker; created and migrated at start).
                               The server reads it with ORDERLOG_QUERY_SCHEMA
  ORDERLOG_WORKER_NAME         This worker's name, recorded with each event it applies (default host-pid)
  ORDERLOG_WORKER_DURABLE      Durable consumer name shared by the workers (default orderlog-read-model)
  ORDERLOG_WORKER_MAX_DELIVER  Failed deliveries before a message goes to the dead letters (default 5)
  ORDERLOG_LOG_LEVEL           pino level (default info)
`;

const Env = z.object({
  ORDERLOG_NATS_URL: z.string().min(1, 'required'),
  ORDERLOG_NATS_PREFIX: BusPrefix.default('orderlog'),
  ORDERLOG_WORKER_DATABASE_URL: z.string().min(1).optional(),
  ORDERLOG_DATABASE_URL: z.string().min(1).optional(),
  ORDERLOG_WORKER_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'lower-case letters, digits and _').default('orderlog_worker'),
  ORDERLOG_WORKER_NAME: z.string().min(1).max(200).default(`${hostname()}-${process.pid}`),
  ORDERLOG_WORKER_DURABLE: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).default('orderlog-read-model'),
  ORDERLOG_WORKER_MAX_DELIVER: z.coerce.number().int().min(1).max(1000).default(5),
  ORDERLOG_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

class UsageError extends Error {}

function config() {
  const parsed = Env.safeParse(process.env);
  if (!parsed.success) throw new UsageError(`invalid configuration:\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

function argValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function run(): Promise<void> {
  const cfg = config();
  const url = cfg.ORDERLOG_WORKER_DATABASE_URL ?? cfg.ORDERLOG_DATABASE_URL;
  if (!url) throw new UsageError('invalid configuration: ORDERLOG_WORKER_DATABASE_URL (or ORDERLOG_DATABASE_URL) is required');
  const log = pino({ level: cfg.ORDERLOG_LOG_LEVEL });
  const store = await PgWorkerStore.open(url, cfg.ORDERLOG_WORKER_SCHEMA);
  const nc = await connectBus(cfg.ORDERLOG_NATS_URL, `orderlog-worker-${cfg.ORDERLOG_WORKER_NAME}`);
  const worker = await new Worker({
    nc,
    names: busNames(cfg.ORDERLOG_NATS_PREFIX),
    target: store,
    name: cfg.ORDERLOG_WORKER_NAME,
    durable: cfg.ORDERLOG_WORKER_DURABLE,
    maxDeliver: cfg.ORDERLOG_WORKER_MAX_DELIVER,
    log,
  }).start();
  // One plain line on stdout so scripts (and tests) know it consumes.
  process.stdout.write(`orderlog worker ${cfg.ORDERLOG_WORKER_NAME} consuming into schema ${cfg.ORDERLOG_WORKER_SCHEMA}\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void (async () => {
      await worker.stop();
      await nc.drain().catch(() => undefined);
      await store.close();
      process.stdout.write(`orderlog worker stopped ${JSON.stringify(worker.stats)}\n`);
      process.exit(0);
    })();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function withDeadLetters<T>(work: (d: DeadLetters) => Promise<T>): Promise<T> {
  const cfg = config();
  const nc = await connectBus(cfg.ORDERLOG_NATS_URL, 'orderlog-dead-letters');
  try {
    return await work(new DeadLetters(nc, busNames(cfg.ORDERLOG_NATS_PREFIX)));
  } finally {
    await nc.drain().catch(() => undefined);
  }
}

async function main(args: string[]): Promise<number | null> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  const command = args[0] ?? 'run';
  const tenantId = argValue(args, '--tenant');
  if (command === 'run') {
    await run();
    return null;
  }
  if (command === 'dead-letters') {
    const list = await withDeadLetters((d) => d.list(tenantId));
    process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    return 0;
  }
  if (command === 'replay') {
    const seqText = argValue(args, '--seq');
    const seq = seqText === undefined ? undefined : Number(seqText);
    if (seq !== undefined && !(Number.isInteger(seq) && seq > 0)) throw new UsageError(`--seq needs a positive whole number, got ${JSON.stringify(seqText)}`);
    const replayed = await withDeadLetters((d) => d.replay({ seq, tenantId }));
    process.stdout.write(`${JSON.stringify(replayed, null, 2)}\nreplayed ${replayed.length} dead letter(s)\n`);
    return 0;
  }
  process.stderr.write(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== null) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) process.stderr.write(`orderlog worker: ${err.message}\n`);
    else process.stderr.write(`orderlog worker failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
