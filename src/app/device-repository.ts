import type Database from 'better-sqlite3';
import { v7 as uuidv7 } from 'uuid';
import type { AuditCheck } from './contract.js';

/** The settings kept in the database. The server token is not among them (see token-vault.ts). */
export interface DeviceSettings {
  deviceId: string;
  serverUrl: string;
  userId: string;
}


/** Device-level rows (settings, audit checks), kept in the device's own database. */
export class DeviceRepository {
  private readonly get;
  private readonly put;
  private readonly auditGet;
  private readonly auditPut;

  constructor(private readonly db: Database.Database) {
    this.get = db.prepare<[string], { value: string }>('SELECT value FROM device_settings WHERE key = ?');
    this.put = db.prepare(
      `INSERT INTO device_settings (key, value, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    );
    this.auditGet = db.prepare<[string], { verified: number; checked_at: string; first_broken_event_id: string | null }>(
      'SELECT verified, checked_at, first_broken_event_id FROM audit_checks WHERE order_id = ?',
    );
    this.auditPut = db.prepare(
      `INSERT INTO audit_checks (order_id, verified, checked_at, first_broken_event_id) VALUES (?, ?, ?, ?)
       ON CONFLICT (order_id) DO UPDATE SET verified = excluded.verified, checked_at = excluded.checked_at,
         first_broken_event_id = excluded.first_broken_event_id`,
    );
  }

  lastAudit(orderId: string): AuditCheck | null {
    const row = this.auditGet.get(orderId);
    return row ? { verified: row.verified === 1, checkedAt: row.checked_at, firstBrokenEventId: row.first_broken_event_id } : null;
  }

  recordAudit(orderId: string, r: AuditCheck): void {
    this.auditPut.run(orderId, r.verified ? 1 : 0, r.checkedAt, r.firstBrokenEventId);
  }

  private read(key: string): string | null {
    return this.get.get(key)?.value ?? null;
  }

  private write(key: string, value: string): void {
    this.put.run(key, value, new Date().toISOString());
  }

  /** The device id is minted on first use and then fixed for the life of the database. */
  deviceId(): string {
    const existing = this.read('deviceId');
    if (existing) return existing;
    const id = `device-${uuidv7()}`;
    this.write('deviceId', id);
    return id;
  }

  /** "Work offline": the person's switch, kept across restarts. */
  workOffline(): boolean {
    return this.read('workOffline') === 'true';
  }

  setWorkOffline(on: boolean): void {
    this.write('workOffline', on ? 'true' : 'false');
  }

  /** Whether settings were ever saved (a first run seeds them; later runs keep what the person chose). */
  hasSettings(): boolean {
    return this.read('serverUrl') !== null;
  }

  load(defaults: Partial<Omit<DeviceSettings, 'deviceId'>> = {}): DeviceSettings {
    return {
      deviceId: this.deviceId(),
      serverUrl: this.read('serverUrl') ?? defaults.serverUrl ?? '',
      userId: this.read('userId') ?? defaults.userId ?? 'field-user',
    };
  }

  save(settings: Omit<DeviceSettings, 'deviceId'>): DeviceSettings {
    this.db.transaction(() => {
      this.write('serverUrl', settings.serverUrl);
      this.write('userId', settings.userId);
    })();
    return this.load();
  }

  /**
   * Earlier versions kept the server token in clear in this table. Hand it over (with the server
   * it was used for) and delete it; secure_delete zeroes the freed page and the WAL is truncated,
   * so no copy lingers in the database files.
   */
  takeLegacyToken(persist: (token: string, server: string) => void): void {
    const token = this.read('token');
    if (token === null) return;
    if (token) persist(token, this.read('serverUrl') ?? '');
    const wasSecure = this.db.pragma('secure_delete', { simple: true }) as number;
    this.db.pragma('secure_delete = ON');
    try {
      this.db.prepare("DELETE FROM device_settings WHERE key = 'token'").run();
    } finally {
      this.db.pragma(`secure_delete = ${wasSecure ? 'ON' : 'OFF'}`);
    }
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }
}
