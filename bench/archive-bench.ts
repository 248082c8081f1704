// Archive and restore throughput of one full PostgreSQL events partition (issue 16), next to a raw
// anchor measured in the same run: the same rows read as to_jsonb text and gzip'd to a file with
// nothing else (archive), and a server-side CREATE TABLE AS copy of them (restore).
//   npx tsx bench/archive-bench.ts [events]
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { createGzip } from 'node:zlib';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { archivePartitions, ownerPool, restoreArchive } from '../src/server/store/pg/archive.js';
import { PgRepository } from '../src/server/store/pg/pg-repository.js';
import { round } from './stats.js';

export interface ArchiveBenchResult {
  events: number;
  loadAvg: number;
  archiveEventsPerSec: number;
  archiveMBPerSec: number;
  rawDumpEventsPerSec: number;
  archiveVsRaw: number;
  restoreEventsPerSec: number;
  restoreMBPerSec: number;
  rawCopyEventsPerSec: number;
  restoreVsRaw: number;
  jsonMB: number;
  fileMB: number;
  compression: number;
}

export async function benchArchive(opts: { events?: number; pgUrl?: string } = {}): Promise<ArchiveBenchResult> {
  const events = opts.events ?? 100_000;
  const url = opts.pgUrl ?? process.env.ORDERLOG_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const schema = `ol_bench_archive_${randomBytes(4).toString('hex')}`;
  const dir = mkdtempSync(join(os.tmpdir(), 'ol-archive-bench-'));
  const admin = new pg.Client({ connectionString: url, options: `-c search_path=${schema}` });
  let repo: PgRepository | null = null;
  const owner = ownerPool(url, schema);
  try {
    await (await PgRepository.open({ connectionString: url, schema })).close();
    await admin.connect();
    // One partition holding exactly `events` positions.
    for (const r of (await admin.query<{ name: string }>('SELECT name FROM event_partitions')).rows) await admin.query(`DROP TABLE ${r.name}`);
    await admin.query('DELETE FROM event_partitions');
    await admin.query('UPDATE event_partitioning SET partition_size = $1', [events]);
    await admin.query('SELECT ensure_event_partitions()');
    repo = await PgRepository.open({ connectionString: url, schema });
    const perStream = 50;
    for (let s = 0; s * perStream < events; s++) {
      const n = Math.min(perStream, events - s * perStream);
      const batch = Array.from({ length: n }, (_, i) => ({
        eventId: uuidv7(),
        eventType: 'NoteAdded',
        schemaVersion: 1,
        data: { text: `note ${i} of stream ${s}`, amount: i * 100, tags: ['bench', 'archive'] },
        metadata: { userId: 'bench', correlationId: uuidv7() },
      }));
      const out = await repo.append({ tenantId: `tenant-${s % 4}`, streamId: `stream-${s}`, streamType: 'Note', expectedVersion: 0, events: batch });
      if (out.status !== 'ok') throw new Error('bench append conflicted');
    }
    const part = (await admin.query<{ name: string }>('SELECT name FROM event_partitions ORDER BY lo LIMIT 1')).rows[0]!.name;
    const jsonBytes = Number((await admin.query<{ b: string }>(`SELECT sum(octet_length(to_jsonb(e)::text) + 1)::text AS b FROM ${part} e`)).rows[0]!.b);

    // Raw anchor for archive: the rows' text, gzip'd to a file, nothing checked.
    let t0 = performance.now();
    const out = new PassThrough();
    const rawFile = join(dir, 'raw.ndjson.gz');
    const written = pipeline(out, createGzip({ level: 6 }), createWriteStream(rawFile));
    let after = '0';
    for (;;) {
      const rows = (await admin.query<{ p: string; j: string }>(`SELECT global_position::text AS p, to_jsonb(e)::text AS j FROM ${part} e WHERE global_position > $1 ORDER BY global_position LIMIT 5000`, [after])).rows;
      if (!rows.length) break;
      out.write(rows.map((r) => r.j).join('\n') + '\n');
      after = rows[rows.length - 1]!.p;
    }
    out.end();
    await written;
    const rawDumpMs = performance.now() - t0;

    t0 = performance.now();
    const done = await archivePartitions(owner, schema, { position: events + 1 }, dir);
    const archiveMs = performance.now() - t0;
    if (done.length !== 1 || done[0]!.events !== events) throw new Error(`archived ${JSON.stringify(done)}`);
    const fileBytes = statSync(done[0]!.file).size;

    // Raw anchor for restore: a server-side copy of the same rows (no file, no parsing, no checks).
    await restoreArchive(owner, done[0]!.file);
    t0 = performance.now();
    await admin.query(`CREATE TABLE bench_copy AS SELECT * FROM ${part}`);
    const rawCopyMs = performance.now() - t0;
    await admin.query('DROP TABLE bench_copy');
    await archivePartitions(owner, schema, { position: events + 1 }, dir);
    t0 = performance.now();
    await restoreArchive(owner, done[0]!.file);
    const restoreMs = performance.now() - t0;

    const perSec = (n: number, ms: number) => Math.round(n / (ms / 1000));
    return {
      events,
      loadAvg: round(os.loadavg()[0]!, 2),
      archiveEventsPerSec: perSec(events, archiveMs),
      archiveMBPerSec: round(jsonBytes / 2 ** 20 / (archiveMs / 1000), 1),
      rawDumpEventsPerSec: perSec(events, rawDumpMs),
      archiveVsRaw: round(rawDumpMs / archiveMs, 2),
      restoreEventsPerSec: perSec(events, restoreMs),
      restoreMBPerSec: round(jsonBytes / 2 ** 20 / (restoreMs / 1000), 1),
      rawCopyEventsPerSec: perSec(events, rawCopyMs),
      restoreVsRaw: round(rawCopyMs / restoreMs, 2),
      jsonMB: round(jsonBytes / 2 ** 20, 1),
      fileMB: round(fileBytes / 2 ** 20, 2),
      compression: round(jsonBytes / fileBytes, 1),
    };
  } finally {
    await repo?.close();
    await owner.end();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
    await admin.end().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  console.log(`load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  benchArchive({ events: Number(process.argv[2] ?? 100_000) }).then(
    (r) => console.table([r]),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
