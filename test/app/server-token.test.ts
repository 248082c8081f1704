import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openDevice, TOKEN_FILE, type Device } from '../../src/app/device.js';
import { createHandlers } from '../../src/app/handlers.js';
import type { SecretCipher } from '../../src/app/token-vault.js';
import type { SyncClient } from '../../src/sync/index.js';

const TOKEN = 'device-token-5d1c8e0b7a4f';
const NEW_TOKEN = 'device-token-for-new-server-9e2b';
const SERVER = 'http://127.0.0.1:9';
const OTHER = 'http://127.0.0.1:19';

/** AES-GCM with a process key: a faithful stand-in for Electron's safeStorage (opaque bytes back). */
function testCipher(): SecretCipher {
  const key = randomBytes(32);
  return {
    encrypt(plain) {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
      return Buffer.concat([iv, c.getAuthTag(), body]);
    },
    decrypt(data) {
      const d = createDecipheriv('aes-256-gcm', key, data.subarray(0, 12));
      d.setAuthTag(data.subarray(12, 28));
      return Buffer.concat([d.update(data.subarray(28)), d.final()]).toString('utf8');
    },
  };
}

const dirs: string[] = [];
const devices: Device[] = [];
afterEach(async () => {
  for (const d of devices.splice(0)) await d.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Every (url, token) pair the device built a sync client with: what would go on the wire. */
async function open(opts: Partial<Parameters<typeof openDevice>[0]> = {}, dir = mkdtempSync(join(tmpdir(), 'orderlog-token-'))) {
  if (!dirs.includes(dir)) dirs.push(dir);
  const clients: { url: string; token: string }[] = [];
  const device = await openDevice({
    dataDir: dir,
    autoSync: false,
    sync: {
      createClient: (url, token) => {
        clients.push({ url, token });
        return { push: () => Promise.reject(new Error('offline')), pull: () => Promise.reject(new Error('offline')) } as unknown as SyncClient;
      },
    },
    ...opts,
  });
  devices.push(device);
  return { device, dir, clients, h: createHandlers(device) };
}

const dbBytes = (dir: string) =>
  readdirSync(dir)
    .filter((f) => f.startsWith('device.sqlite'))
    .map((f) => readFileSync(join(dir, f)).toString('latin1'))
    .join('');

describe('the server token is write-only and bound to its server', () => {
  it('getSettings says whether a token is set and for which server, never its value', async () => {
    const { h } = await open({ serverUrl: SERVER, token: TOKEN, userId: 'maria' });
    const view = await h.getSettings({});
    expect(view).toEqual({ deviceId: expect.any(String), serverUrl: SERVER, userId: 'maria', tokenSet: true, tokenServer: SERVER });
    expect(JSON.stringify(view)).not.toContain(TOKEN);
  });

  it('refuses a new server URL without a new token, and changes nothing', async () => {
    const { h, device, dir, clients } = await open({ serverUrl: SERVER, token: TOKEN });
    const before = { view: await h.getSettings({}), file: readFileSync(join(dir, TOKEN_FILE), 'utf8'), clients: clients.length };
    await expect(h.saveSettings({ serverUrl: OTHER, userId: 'eve' })).rejects.toMatchObject({
      code: 'BAD_INPUT',
      issues: [{ path: 'token', message: `enter the access token for ${OTHER}: the token saved for ${SERVER} is never sent to another server` }],
    });
    await expect(h.saveSettings({ serverUrl: OTHER, token: '', userId: 'eve' })).rejects.toMatchObject({ code: 'BAD_INPUT' });
    expect(await h.getSettings({})).toEqual(before.view);
    expect(readFileSync(join(dir, TOKEN_FILE), 'utf8')).toBe(before.file);
    expect(clients.length).toBe(before.clients);
    expect(device.syncStatus().serverUrl).toBe(SERVER);
    expect(clients.some((c) => c.url === OTHER)).toBe(false);
  });

  it('keeps the token when the URL stays, replaces it with a new one, drops it for offline-only', async () => {
    const { h, clients } = await open({ serverUrl: SERVER, token: TOKEN });
    expect(await h.saveSettings({ serverUrl: SERVER, userId: 'renamed' })).toMatchObject({ userId: 'renamed', tokenSet: true, tokenServer: SERVER });
    expect(clients.at(-1)).toEqual({ url: SERVER, token: TOKEN });

    expect(await h.saveSettings({ serverUrl: OTHER, token: NEW_TOKEN, userId: 'renamed' })).toMatchObject({ serverUrl: OTHER, tokenSet: true, tokenServer: OTHER });
    expect(clients.at(-1)).toEqual({ url: OTHER, token: NEW_TOKEN });
    // The old token never went to the new server.
    expect(clients.filter((c) => c.url === OTHER).map((c) => c.token)).toEqual([NEW_TOKEN]);

    await expect(h.saveSettings({ serverUrl: '', token: 'x', userId: 'renamed' })).rejects.toMatchObject({ code: 'BAD_INPUT', issues: [{ path: 'token' }] });
    expect(await h.saveSettings({ serverUrl: '', userId: 'renamed' })).toMatchObject({ serverUrl: '', tokenSet: false, tokenServer: null });
    expect(await h.saveSettings({ serverUrl: OTHER, token: NEW_TOKEN, userId: 'renamed' })).toMatchObject({ tokenSet: true });
  });

  it('lets the user name change without a token, on a device that has none', async () => {
    const { h, clients } = await open({ serverUrl: SERVER });
    expect(await h.saveSettings({ serverUrl: SERVER, userId: 'renamed' })).toMatchObject({ serverUrl: SERVER, userId: 'renamed', tokenSet: false });
    expect(clients.at(-1)).toEqual({ url: SERVER, token: '' });
    await expect(h.saveSettings({ serverUrl: OTHER, userId: 'renamed' })).rejects.toMatchObject({ code: 'BAD_INPUT', issues: [{ path: 'token', message: `enter the access token for ${OTHER}` }] });
  });

  it('sends no token to a URL that was set some other way than with it', async () => {
    // A token in the vault for SERVER, but the stored URL points elsewhere (e.g. an old database).
    const { dir } = await open({ serverUrl: SERVER, token: TOKEN });
    await devices.pop()!.close();
    const db = new Database(join(dir, 'device.sqlite'));
    db.prepare("UPDATE device_settings SET value = ? WHERE key = 'serverUrl'").run(OTHER);
    db.close();
    const again = await open({}, dir);
    expect(again.clients).toEqual([{ url: OTHER, token: '' }]);
    expect(await again.h.getSettings({})).toMatchObject({ serverUrl: OTHER, tokenSet: true, tokenServer: SERVER });
    expect(again.device.serverCredential()).toBeNull();
  });
});

describe('the server token at rest', () => {
  it('without platform encryption: a 0600 file in the data dir, not in the database', async () => {
    const { dir, device } = await open({ serverUrl: SERVER, token: TOKEN });
    const file = join(dir, TOKEN_FILE);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ v: 1, server: SERVER, encoding: 'plain', token: TOKEN });
    await device.close();
    expect(dbBytes(dir)).not.toContain(TOKEN);
    // A copy restored with a looser mode is tightened when read.
    chmodSync(file, 0o644);
    const again = await open({}, dir);
    expect(again.device.settingsView().tokenSet).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('with platform encryption (safeStorage): the file holds only ciphertext, still 0600', async () => {
    const cipher = testCipher();
    const { dir, device, clients } = await open({ serverUrl: SERVER, token: TOKEN, tokenCipher: cipher });
    const file = join(dir, TOKEN_FILE);
    const text = readFileSync(file, 'utf8');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(text)).toMatchObject({ v: 1, server: SERVER, encoding: 'safeStorage' });
    expect(text).not.toContain(TOKEN);
    expect(clients.at(-1)).toEqual({ url: SERVER, token: TOKEN });
    await device.close();
    expect(dbBytes(dir)).not.toContain(TOKEN);
    // Without the key (browser mode on the same folder) the token cannot be read: it must be entered again.
    const plain = await open({}, dir);
    expect(plain.device.settingsView()).toMatchObject({ tokenSet: false });
    expect(plain.clients.at(-1)).toEqual({ url: SERVER, token: '' });
  });

  it('moves a token kept in clear in the settings table (earlier versions) into the vault, leaving no copy in the database', async () => {
    const { dir } = await open({ serverUrl: SERVER });
    await devices.pop()!.close();
    rmSync(join(dir, TOKEN_FILE), { force: true });
    const db = new Database(join(dir, 'device.sqlite'));
    db.prepare("INSERT INTO device_settings (key, value, updated_at) VALUES ('token', ?, ?)").run(TOKEN, new Date().toISOString());
    db.close();
    expect(dbBytes(dir)).toContain(TOKEN);

    const cipher = testCipher();
    const migrated = await open({ tokenCipher: cipher }, dir);
    expect(migrated.clients).toEqual([{ url: SERVER, token: TOKEN }]);
    expect(migrated.device.settingsView()).toMatchObject({ tokenSet: true, tokenServer: SERVER });
    expect(readFileSync(join(dir, TOKEN_FILE), 'utf8')).not.toContain(TOKEN);
    await devices.pop()!.close();
    const check = new Database(join(dir, 'device.sqlite'), { readonly: true });
    expect(check.prepare("SELECT count(*) AS n FROM device_settings WHERE key = 'token'").get()).toEqual({ n: 0 });
    check.close();
    expect(dbBytes(dir)).not.toContain(TOKEN);
  });

  it('writes nothing when no token was ever given', async () => {
    const { dir, device } = await open({ serverUrl: SERVER });
    expect(existsSync(join(dir, TOKEN_FILE))).toBe(false);
    expect(device.settingsView()).toMatchObject({ tokenSet: false, tokenServer: null });
  });
});
