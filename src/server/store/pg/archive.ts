import pg from 'pg';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { PassThrough } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { z } from 'zod';
import { GENESIS_HASH, computeEventHash } from '../../hash.js';
import { toServerEvent, type EventRow } from '../rows.js';
import { LOCK_CLASS_POSITION_PULL, checkSchemaName, lockKey, schemaPool } from './migrate.js';
import { SQL } from './sql.js';

/**
 * Archival of cold events partitions (issue 16). A file is gzip'd NDJSON: a header line (format,
 * schema, partition range, the events table's columns), one line per event (PostgreSQL's own
 * to_jsonb text of the row, so every byte that the hash covers survives), and a closing manifest
 * line (counts, positions, per-tenant ranges, per-stream hash-chain anchors, the rows' SHA-256).
 * The same manifest sits beside it as `<file>.manifest.json` with the file's own SHA-256.
 */
const FORMAT = 'orderlog-events-archive';
const PAGE = 5000;
const DIGITS = /^[0-9]+$/;

export const ArchiveHeader = z.object({
  format: z.literal(FORMAT),
  formatVersion: z.literal(1),
  schema: z.string(),
  partition: z.object({ name: z.string(), lo: z.number().int(), hi: z.number().int() }),
  columns: z.array(z.object({ name: z.string(), type: z.string() })),
  createdAt: z.string(),
});
export type ArchiveHeader = z.infer<typeof ArchiveHeader>;

export const ArchiveManifest = z.object({
  events: z.number().int().nonnegative(),
  firstPosition: z.number().int().nullable(),
  lastPosition: z.number().int().nullable(),
  rowsSha256: z.string().length(64),
  tenants: z.array(z.object({ tenantId: z.string(), events: z.number().int(), firstPosition: z.number().int(), lastPosition: z.number().int() })),
  /** Per stream: the link before its first archived event and its last archived one. */
  anchors: z.array(
    z.object({ tenantId: z.string(), streamId: z.string(), firstVersion: z.number().int(), lastVersion: z.number().int(), previousHash: z.string(), lastHash: z.string() }),
  ),
});
export type ArchiveManifest = z.infer<typeof ArchiveManifest>;

const ManifestLine = z.object({ manifest: ArchiveManifest });
const SidecarManifest = z.object({ file: z.string(), fileSha256: z.string().length(64), header: ArchiveHeader, manifest: ArchiveManifest });

/** An archive file that is not what it claims (corrupt, truncated, edited, or another store's). */
export class ArchiveError extends Error {
  override name = 'ArchiveError';
}

export type ArchiveCutoff = { position: number } | { date: Date };

export interface ArchivedPartition {
  partition: string;
  file: string;
  events: number;
  bytes: number;
  firstPosition: number | null;
  lastPosition: number | null;
}

const q = (name: string): string => pg.escapeIdentifier(name);
const bound = (v: string): string => {
  if (!DIGITS.test(v)) throw new ArchiveError(`partition bound ${JSON.stringify(v)} is not a position`);
  return v;
};

/** Parse `--before`: a whole number is a position (events below it), anything else a date. */
export function parseCutoff(text: string): ArchiveCutoff {
  if (DIGITS.test(text)) return { position: Number(text) };
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) throw new ArchiveError(`--before ${JSON.stringify(text)} is neither a position nor a date (e.g. 2026-01-01)`);
  return { date };
}

interface StreamTrack {
  tenantId: string;
  streamId: string;
  firstVersion: number;
  lastVersion: number;
  previousHash: string;
  lastHash: string;
}

/**
 * Fold the rows of a file (or of a partition being written) into its manifest: counts,
 * positions, tenants, and every stream's hash chain recomputed from `previousHash`, which
 * `previousOf` supplies for a stream's first archived event (GENESIS at version 1).
 */
class ManifestBuilder {
  private readonly sha = createHash('sha256');
  private events = 0;
  private first: number | null = null;
  private last: number | null = null;
  private readonly tenants = new Map<string, { tenantId: string; events: number; firstPosition: number; lastPosition: number }>();
  private readonly streams = new Map<string, StreamTrack>();

  constructor(
    private readonly lo: number,
    private readonly hi: number,
    private readonly previousOf: (tenantId: string, streamId: string, version: number) => Promise<string> | string,
  ) {}

  async add(line: string): Promise<void> {
    const row = JSON.parse(line) as EventRow & { created_at: string };
    const position = Number(row.global_position);
    if (!(position >= this.lo && position < this.hi)) throw new ArchiveError(`position ${position} lies outside the partition [${this.lo}, ${this.hi})`);
    if (this.last !== null && position <= this.last) throw new ArchiveError(`position ${position} follows ${this.last}: rows out of order`);
    this.sha.update(line).update('\n');
    this.events++;
    this.first ??= position;
    this.last = position;
    const t = this.tenants.get(row.tenant_id) ?? { tenantId: row.tenant_id, events: 0, firstPosition: position, lastPosition: position };
    t.events++;
    t.lastPosition = position;
    this.tenants.set(row.tenant_id, t);
    const key = `${row.tenant_id}\u0000${row.aggregate_id}`;
    let s = this.streams.get(key);
    if (!s) {
      const previousHash = row.version === 1 ? GENESIS_HASH : await this.previousOf(row.tenant_id, row.aggregate_id, row.version - 1);
      s = { tenantId: row.tenant_id, streamId: row.aggregate_id, firstVersion: row.version, lastVersion: row.version - 1, previousHash, lastHash: previousHash };
      this.streams.set(key, s);
    }
    if (row.version !== s.lastVersion + 1) throw new ArchiveError(`stream ${row.tenant_id}/${row.aggregate_id}: version ${row.version} follows ${s.lastVersion}`);
    // The hash covers recordedAt as the store wrote it (an ISO string in ms); to_jsonb prints +00:00.
    const e = toServerEvent({ ...row, created_at: new Date(row.created_at).toISOString() });
    const expected = computeEventHash(s.lastHash, e);
    if (expected !== row.hash) throw new ArchiveError(`stream ${row.tenant_id}/${row.aggregate_id} v${row.version}: the hash chain is broken (stored ${row.hash}, computed ${expected})`);
    s.lastVersion = row.version;
    s.lastHash = row.hash;
  }

  manifest(): ArchiveManifest {
    return {
      events: this.events,
      firstPosition: this.first,
      lastPosition: this.last,
      rowsSha256: this.sha.digest('hex'),
      tenants: [...this.tenants.values()],
      anchors: [...this.streams.values()],
    };
  }
}

type PreviousOf = (tenantId: string, streamId: string, version: number) => Promise<string> | string;

/**
 * Read and check a whole archive file: header, every row (each stream's chain recomputed from
 * `previousOf`, the link before its first row in the file), manifest. `onRows` sees the row
 * lines in pages, in the same single pass.
 */
export async function readArchive(
  file: string,
  opts: { previousOf: PreviousOf; onRows?: (lines: string[]) => Promise<void> },
): Promise<{ header: ArchiveHeader; manifest: ArchiveManifest; fileSha256: string }> {
  const fileSha = createHash('sha256');
  const raw = createReadStream(file);
  raw.on('data', (chunk) => fileSha.update(chunk));
  const gunzip = createGunzip();
  const lines = createInterface({ input: raw.pipe(gunzip), crlfDelay: Infinity });
  let header: ArchiveHeader | null = null;
  let manifest: ArchiveManifest | null = null;
  let builder: ManifestBuilder | null = null;
  let page: string[] = [];
  try {
    for await (const line of lines) {
      if (manifest) throw new ArchiveError(`${file}: data after the manifest line`);
      if (!header) {
        const parsed = ArchiveHeader.safeParse(JSON.parse(line));
        if (!parsed.success) throw new ArchiveError(`${file} is not an orderlog events archive (bad header)`);
        header = parsed.data;
        builder = new ManifestBuilder(header.partition.lo, header.partition.hi, opts.previousOf);
        continue;
      }
      if (line.startsWith('{"manifest"')) {
        const parsed = ManifestLine.safeParse(JSON.parse(line));
        if (!parsed.success) throw new ArchiveError(`${file}: the manifest line is malformed`);
        manifest = parsed.data.manifest;
        continue;
      }
      page.push(line);
      if (page.length >= PAGE) {
        await flush();
      }
    }
  } catch (err) {
    if (err instanceof ArchiveError) throw err;
    throw new ArchiveError(`${file} cannot be read as an archive: ${(err as Error).message}`);
  }
  if (!header || !manifest || !builder) throw new ArchiveError(`${file} is truncated: ${header ? 'no manifest line' : 'empty'}`);
  await flush();
  const found = builder.manifest();
  const want = manifest;
  const mismatch =
    found.events !== want.events ? `${found.events} events, manifest says ${want.events}` : found.rowsSha256 !== want.rowsSha256 ? 'the rows checksum differs from the manifest' : null;
  if (mismatch) throw new ArchiveError(`${file} does not match its manifest: ${mismatch}`);
  if (JSON.stringify(found.tenants) !== JSON.stringify(want.tenants)) throw new ArchiveError(`${file}: the tenants' ranges differ from the manifest`);
  for (const a of found.anchors) {
    const w = want.anchors.find((x) => x.tenantId === a.tenantId && x.streamId === a.streamId);
    if (!w || w.lastHash !== a.lastHash || w.lastVersion !== a.lastVersion || w.previousHash !== a.previousHash) throw new ArchiveError(`${file}: stream ${a.tenantId}/${a.streamId} does not end where the manifest says`);
  }
  return { header, manifest: want, fileSha256: fileSha.digest('hex') };

  async function flush(): Promise<void> {
    if (!page.length) return;
    const lines = page;
    page = [];
    await opts.onRows?.(lines);
    for (const l of lines) await builder!.add(l);
  }
}

/** The owner's pool for archive and restore (DDL: detach, drop, create, attach). */
export function ownerPool(connectionString: string, schema: string): pg.Pool {
  checkSchemaName(schema);
  return schemaPool(connectionString, schema, 2);
}

/** The hash of a stream's event at a version: in an older archive's anchors, or still stored. */
function storedLink(client: pg.PoolClient): PreviousOf {
  return async (tenantId, streamId, version) => {
    const a = await client.query<{ hash: string }>(SQL.archive.anchorBefore, [tenantId, streamId, version]);
    const l = a.rows[0] ?? (await client.query<{ hash: string }>(SQL.archive.liveHashAt, [tenantId, streamId, version])).rows[0];
    if (!l) throw new ArchiveError(`stream ${tenantId}/${streamId}: version ${version} is neither stored nor in an archive`);
    return l.hash;
  };
}

async function inTransaction<T>(client: pg.PoolClient, run: () => Promise<T>): Promise<T> {
  await client.query(SQL.begin);
  try {
    const value = await run();
    await client.query(SQL.commit);
    return value;
  } catch (err) {
    await client.query(SQL.rollback).catch(() => undefined);
    throw err;
  }
}

/**
 * Archive every live partition that lies wholly before the cutoff and that no append can still
 * write to, oldest first (archived partitions always form a prefix of the positions). Each one:
 * written to `<dir>/<schema>.<partition>.ndjson.gz`, read back and checked, and only then
 * detached and dropped, in one transaction with its bookkeeping.
 */
export async function archivePartitions(pool: pg.Pool, schema: string, cutoff: ArchiveCutoff, dir: string): Promise<ArchivedPartition[]> {
  await mkdir(dir, { recursive: true });
  const client = await pool.connect();
  const done: ArchivedPartition[] = [];
  try {
    const columns = (await client.query<{ name: string; type: string }>(SQL.archive.eventColumns)).rows;
    const live = (await client.query<{ name: string; lo: string; hi: string }>(SQL.archive.livePartitions)).rows;
    const drain = [LOCK_CLASS_POSITION_PULL, lockKey(schema)];
    for (const p of live) {
      const lo = Number(bound(p.lo));
      const hi = Number(bound(p.hi));
      if ('position' in cutoff && hi > cutoff.position) break;
      const table = q(p.name);
      const archived = await inTransaction(client, async () => {
        // Every append holds the drain lock shared from before it draws positions until it ends:
        // once we hold it exclusively (as a position pull does), each drawn position is committed
        // or rolled back, and the SHARE lock keeps the partition as it is.
        await client.query(SQL.archive.drainExclusive, drain);
        try {
          await client.query(SQL.archive.lockShare(table));
        } finally {
          await client.query(SQL.archive.drainEnd, drain);
        }
        const head = Number((await client.query<{ head: string | null }>(SQL.archive.sequenceHead)).rows[0]?.head ?? 0);
        if (head < hi - 1) return null; // still being filled
        const stats = (await client.query<{ newest: Date | null; n: string }>(SQL.archive.maxCreated(table))).rows[0]!;
        if ('date' in cutoff && stats.newest !== null && stats.newest >= cutoff.date) return null;
        const file = resolve(dir, `${schema}.${p.name}.ndjson.gz`);
        const header: ArchiveHeader = { format: FORMAT, formatVersion: 1, schema, partition: { name: p.name, lo, hi }, columns, createdAt: new Date().toISOString() };
        const builder = new ManifestBuilder(lo, hi, storedLink(client));
        const tmp = `${file}.partial`;
        const out = new PassThrough();
        const written = pipeline(out, createGzip({ level: 6 }), createWriteStream(tmp));
        out.write(`${JSON.stringify(header)}\n`);
        let after = '0';
        for (;;) {
          const rows = (await client.query<{ p: string; j: string }>(SQL.archive.page(table), [after, PAGE])).rows;
          if (!rows.length) break;
          for (const r of rows) {
            await builder.add(r.j);
            if (!out.write(`${r.j}\n`)) await new Promise((res) => out.once('drain', res));
          }
          after = rows[rows.length - 1]!.p;
        }
        const manifest = builder.manifest();
        if (manifest.events !== Number(stats.n)) throw new ArchiveError(`${p.name}: read ${manifest.events} events, the partition holds ${stats.n}`);
        out.end(`${JSON.stringify({ manifest })}\n`);
        await written;
        // Read back what is on disk before anything is dropped.
        const check = await readArchive(tmp, { previousOf: storedLink(client) });
        if (check.manifest.rowsSha256 !== manifest.rowsSha256 || check.manifest.events !== manifest.events) throw new ArchiveError(`${tmp}: read back differs from what was written`);
        await rename(tmp, file);
        await writeFile(`${file}.manifest.json`, `${JSON.stringify({ file: basename(file), fileSha256: check.fileSha256, header, manifest }, null, 2)}\n`);
        await client.query(SQL.archive.lockExclusive);
        await client.query(SQL.archive.detach(table));
        await client.query(SQL.archive.drop(table));
        await client.query(SQL.archive.markArchived, [p.name, file, check.fileSha256]);
        const a = manifest.anchors;
        await client.query(SQL.archive.insertAnchors, [p.name, a.map((x) => x.tenantId), a.map((x) => x.streamId), a.map((x) => x.firstVersion), a.map((x) => x.lastVersion), a.map((x) => x.lastHash)]);
        const t = manifest.tenants;
        await client.query(SQL.archive.insertTenants, [p.name, t.map((x) => x.tenantId), t.map((x) => x.firstPosition), t.map((x) => x.lastPosition), t.map((x) => x.events)]);
        const bytes = (await stat(file)).size;
        return { partition: p.name, file, events: manifest.events, bytes, firstPosition: manifest.firstPosition, lastPosition: manifest.lastPosition };
      });
      if (!archived) break; // archived partitions stay a prefix: stop at the first one that must stay
      done.push(archived);
    }
  } finally {
    client.release();
  }
  return done;
}

/**
 * Put an archived partition back: the file is read and checked in full, must be the one this
 * store archived (its SHA-256 is recorded), and the newest archived partition (restores go
 * newest first, so archived partitions stay a prefix). Rows, range check, ATTACH and the
 * bookkeeping commit together.
 */
export async function restoreArchive(pool: pg.Pool, file: string): Promise<{ partition: string; events: number }> {
  const side = await readSidecar(file).catch((err: unknown) => {
    throw new ArchiveError(`${file}.manifest.json cannot be read: ${(err as Error).message}`);
  });
  const header = side.header;
  const client = await pool.connect();
  try {
    return await inTransaction(client, async () => {
      await client.query(SQL.archive.lockExclusive);
      const rec = (await client.query<{ name: string; lo: string; hi: string; state: string; archive_file: string | null; archive_sha256: string | null }>(SQL.archive.partitionByName, [header.partition.name])).rows[0];
      if (!rec || rec.state !== 'archived') throw new ArchiveError(`${file}: partition ${header.partition.name} is not archived in this store (${rec ? 'it is live' : 'unknown here'})`);
      if (rec.archive_sha256 !== side.fileSha256 || Number(rec.lo) !== header.partition.lo || Number(rec.hi) !== header.partition.hi) {
        throw new ArchiveError(`${file} is not the file this store archived for ${rec.name} (recorded ${rec.archive_file}, checksum ${rec.archive_sha256})`);
      }
      const newest = (await client.query<{ name: string; archive_file: string }>(SQL.archive.newestArchived)).rows[0]!;
      if (newest.name !== rec.name) throw new ArchiveError(`restore the newest archive first: ${newest.archive_file}`);
      const now = new Set((await client.query<{ name: string }>(SQL.archive.eventColumns)).rows.map((c) => c.name));
      // Columns added after the archive was written take their defaults.
      const kept = header.columns.filter((c) => now.has(c.name));
      const cols = kept.map((c) => q(c.name)).join(', ');
      const values = kept.map((c) => (c.type === 'jsonb' ? `r->${pg.escapeLiteral(c.name)}` : `p.${q(c.name)}`)).join(', ');
      const table = q(rec.name);
      const lo = bound(rec.lo);
      const hi = bound(rec.hi);
      await client.query(SQL.archive.createLike(table));
      // One pass: rows go in as they are checked; any mismatch (checksum, chain, counts) rolls everything back.
      const checked = await readArchive(file, {
        previousOf: storedLink(client),
        onRows: async (lines) => void (await client.query(SQL.archive.insertRows(table, cols, values), [`[${lines.join(',')}]`])),
      });
      if (checked.fileSha256 !== rec.archive_sha256 || JSON.stringify(checked.header) !== JSON.stringify(header)) throw new ArchiveError(`${file} differs from its manifest file`);
      const manifest = checked.manifest;
      await client.query(SQL.archive.rangeCheck(table, q(`${rec.name}_range`)).replace('$LO', lo).replace('$HI', hi));
      await client.query(SQL.archive.attach(table).replace('$LO', lo).replace('$HI', hi));
      const n = Number((await client.query<{ n: string }>(SQL.archive.countRows(table))).rows[0]!.n);
      if (n !== manifest.events) throw new ArchiveError(`${file}: restored ${n} events, the manifest says ${manifest.events}`);
      await client.query(SQL.archive.markLive, [rec.name]);
      await client.query(SQL.archive.dropAnchors, [rec.name]);
      await client.query(SQL.archive.dropTenants, [rec.name]);
      return { partition: rec.name, events: n };
    });
  } finally {
    client.release();
  }
}

/** Check a sidecar manifest against its archive (used by tools and tests). */
export async function readSidecar(file: string): Promise<z.infer<typeof SidecarManifest>> {
  const { readFile } = await import('node:fs/promises');
  return SidecarManifest.parse(JSON.parse(await readFile(`${file}.manifest.json`, 'utf8')));
}

export const archiveFileName = (dir: string, schema: string, partition: string): string => join(dir, `${schema}.${partition}.ndjson.gz`);
export const removeArchive = async (file: string): Promise<void> => {
  await rm(file, { force: true });
  await rm(`${file}.manifest.json`, { force: true });
};
