import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { exportReplica, importReplica, openLocalStore, ReplicaImportError, schemaFingerprint, type LocalStore } from '../../src/store/index.js';
import { created, paid } from '../helpers/events.js';
import { tempDir } from '../helpers/tmp.js';

const tmp = tempDir('replica-');
afterAll(() => tmp.cleanup());

const LOCAL = new Set(['commands', 'pending_events', 'sync_state', 'kept_streams', 'evicted_streams', 'device_settings', 'audit_checks', 'projection_rebuilds']);

function storeWith(name: string, streams: number): LocalStore {
  const store = openLocalStore(tmp.file(name), { durability: 'normal' });
  for (let i = 0; i < streams; i++) {
    store.log.append(`S-${i}`, [created(`S-${i}`)], { expectedVersion: 0, streamType: 'Order' });
  }
  return store;
}

const rows = (db: Database.Database, table: string) => db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all();

describe('importReplica', () => {
  const source = storeWith('source.sqlite', 30);
  const file = tmp.file('replica.sqlite');
  exportReplica(source.db, file, { exclude: LOCAL, open: (f) => new Database(f) });
  afterAll(() => source.close());

  it('copies the log as it is and keeps the append-only triggers', () => {
    const target = openLocalStore(tmp.file('target.sqlite'), { durability: 'normal' });
    try {
      const { rows: copied } = importReplica(target.db, file, { exclude: LOCAL });
      expect(copied.events).toBe(30);
      expect(rows(target.db, 'events')).toEqual(rows(source.db, 'events'));
      expect(() => target.db.exec("UPDATE events SET data = '{}' WHERE position = 1")).toThrow(/append-only/);
      expect(() => target.db.exec('DELETE FROM events WHERE position = 1')).toThrow(/append-only/);
      // The log goes on from the copy.
      target.log.append('S-0', [paid(5)], { expectedVersion: 1, streamType: 'Order' });
      expect(target.log.headPosition()).toBe(31);
      // Taken in with a rollback journal (no other connection was open), then back to WAL.
      expect(target.db.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      target.close();
    }
  });

  it('copies through the WAL while another connection has the file open', () => {
    const target = openLocalStore(tmp.file('shared.sqlite'), { durability: 'normal' });
    const reader = new Database(tmp.file('shared.sqlite'), { readonly: true });
    try {
      expect(reader.prepare('SELECT COUNT(*) FROM events').pluck().get()).toBe(0);
      importReplica(target.db, file, { exclude: LOCAL });
      expect(target.db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(reader.prepare('SELECT COUNT(*) FROM events').pluck().get()).toBe(30);
    } finally {
      reader.close();
      target.close();
    }
  });

  it('changes nothing when the caller refuses inside the transaction', () => {
    const target = storeWith('refused.sqlite', 2);
    try {
      const before = rows(target.db, 'events');
      const triggers = target.db.prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name").pluck().all();
      expect(() =>
        importReplica(target.db, file, {
          exclude: LOCAL,
          before: () => {
            throw new ReplicaImportError('not blank');
          },
        }),
      ).toThrow(/not blank/);
      expect(rows(target.db, 'events')).toEqual(before);
      expect(target.db.prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY name").pluck().all()).toEqual(triggers);
      expect(target.db.prepare('PRAGMA database_list').all()).toHaveLength(1);
    } finally {
      target.close();
    }
  });

  it('refuses a file of another schema, and a file that is not a database, before changing anything', () => {
    const target = openLocalStore(tmp.file('other.sqlite'), { durability: 'normal' });
    const other = tmp.file('other-schema.sqlite');
    const db = new Database(other);
    db.exec('CREATE TABLE events (position INTEGER PRIMARY KEY)');
    db.close();
    const junk = tmp.file('junk.sqlite');
    writeFileSync(junk, Buffer.alloc(8192, 1));
    try {
      expect(schemaFingerprint(target.db)).toBe(schemaFingerprint(source.db));
      expect(() => importReplica(target.db, other, { exclude: LOCAL })).toThrow(ReplicaImportError);
      expect(() => importReplica(target.db, junk, { exclude: LOCAL })).toThrow(ReplicaImportError);
      expect(target.log.headPosition()).toBe(0);
      expect(target.db.prepare('PRAGMA database_list').all()).toHaveLength(1);
    } finally {
      target.close();
    }
  });
});
