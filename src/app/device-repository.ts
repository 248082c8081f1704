import type Database from 'better-sqlite3';
import { v7 as uuidv7 } from 'uuid';
import type { Settings } from './contract.js';

export interface DeviceSettings extends Settings {
  deviceId: string;
}

/** Settings of one device, kept in its own database so they travel with its log. */
export class DeviceSettingsStore {
  private readonly get;
  private readonly put;

  constructor(private readonly db: Database.Database) {
    this.get = db.prepare<[string], { value: string }>('SELECT value FROM device_settings WHERE key = ?');
    this.put = db.prepare(
      `INSERT INTO device_settings (key, value, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    );
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

  load(defaults: Partial<Settings> = {}): DeviceSettings {
    return {
      deviceId: this.deviceId(),
      serverUrl: this.read('serverUrl') ?? defaults.serverUrl ?? '',
      token: this.read('token') ?? defaults.token ?? '',
      userId: this.read('userId') ?? defaults.userId ?? 'field-user',
    };
  }

  save(settings: Settings): DeviceSettings {
    this.db.transaction(() => {
      this.write('serverUrl', settings.serverUrl);
      this.write('token', settings.token);
      this.write('userId', settings.userId);
    })();
    return this.load();
  }
}
