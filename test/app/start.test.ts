import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveElectron, serverTokens, startConfig } from '../../src/cli/start.js';
import { configFromEnv, ENV_HELP } from '../../src/server/config.js';

const dir = mkdtempSync(join(tmpdir(), 'orderlog-start-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A require function shaped like Node's, answering as an installed or missing package would. */
function requireLike(resolved: boolean, exported: unknown): NodeJS.Require {
  const req = ((id: string) => {
    if (id !== 'electron') throw new Error(`unexpected ${id}`);
    return exported;
  }) as NodeJS.Require;
  req.resolve = ((id: string) => {
    if (!resolved) throw Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
    return `/node_modules/${id}/index.js`;
  }) as NodeJS.RequireResolve;
  return req;
}

describe('npm start helpers', () => {
  it('says why Electron cannot be used, or where its binary is', () => {
    expect(resolveElectron(requireLike(false, null))).toEqual({ ok: false, reason: 'the electron package is not installed' });
    expect(resolveElectron(requireLike(true, join(dir, 'no-such-binary')))).toEqual({ ok: false, reason: 'the Electron binary was not downloaded' });
    const binary = join(dir, 'electron');
    writeFileSync(binary, '');
    expect(resolveElectron(requireLike(true, binary))).toEqual({ ok: true, binary });
    // In this checkout Electron is an optional dependency that is not installed.
    expect(resolveElectron().ok).toBe(false);
  });

  it('generates one private dev token and reuses it on the next start', () => {
    const first = serverTokens({}, dir);
    expect(first.deviceToken).toMatch(/^[0-9a-f]{48}$/);
    expect(first.tokens).toEqual([{ token: first.deviceToken, tenant: 'dev', user: 'dev', roles: ['device', 'admin'] }]);
    expect(readFileSync(join(dir, 'dev-token'), 'utf8').trim()).toBe(first.deviceToken);
    expect(statSync(join(dir, 'dev-token')).mode & 0o077).toBe(0);
    expect(serverTokens({}, dir).deviceToken).toBe(first.deviceToken);
  });

  it('uses ORDERLOG_TOKENS when set, picking a device token for the local device', () => {
    const tokens = [
      { token: 'admin-token-0123456789', tenant: 't1', user: 'root', roles: ['admin'] },
      { token: 'device-token-0123456789', tenant: 't1', user: 'carol', roles: ['device'] },
    ];
    const r = serverTokens({ ORDERLOG_TOKENS: JSON.stringify(tokens) }, dir);
    expect(r.deviceToken).toBe('device-token-0123456789');
    expect(r.userId).toBe('carol');
    expect(r.tokens).toHaveLength(2);
    expect(() => serverTokens({ ORDERLOG_TOKENS: '[{"token":"short"}]' }, dir)).toThrow(/ORDERLOG_TOKENS is not a valid token list/);
  });

  it('gives each of several devices its own development token and user, kept across runs', () => {
    const two = serverTokens({}, dir, 2);
    expect(two.devices.map((d) => d.userId)).toEqual(['dev', 'dev-2']);
    expect(two.devices[0]!.token).not.toBe(two.devices[1]!.token);
    expect(statSync(join(dir, 'dev-token-2')).mode & 0o077).toBe(0);
    expect(serverTokens({}, dir, 2).devices).toEqual(two.devices);
  });

  it('reads the same variable names as npm run server, and the old one with a deprecation line', () => {
    const base = startConfig({}, [], '/srv');
    expect(base).toMatchObject({ dataDir: '/srv/data', serverDb: '/srv/data/server.sqlite', serverPort: 4710, appPort: 4780, devices: 1, warnings: [] });
    expect(startConfig({ ORDERLOG_PORT: '9000', ORDERLOG_DB: '/x/s.db', ORDERLOG_DATA: '/d' }, [], '/srv')).toMatchObject({ serverPort: 9000, serverDb: '/x/s.db', dataDir: '/d' });
    const old = startConfig({ ORDERLOG_SERVER_PORT: '9100' }, [], '/srv');
    expect(old.serverPort).toBe(9100);
    expect(old.warnings).toEqual([expect.stringMatching(/ORDERLOG_SERVER_PORT is deprecated: use ORDERLOG_PORT/)]);
    expect(startConfig({ ORDERLOG_SERVER_PORT: '9100', ORDERLOG_PORT: '9000' }, [], '/srv')).toMatchObject({ serverPort: 9000, warnings: [expect.stringMatching(/ignored/)] });
    expect(() => startConfig({ ORDERLOG_PORT: 'abc' }, [], '/srv')).toThrow(/ORDERLOG_PORT must be a port number/);
    // npm run server reads the same names: ORDERLOG_DATA places its database as npm start does.
    expect(configFromEnv({ ORDERLOG_DATA: '/d' }, { needTokens: false })).toMatchObject({ backend: 'sqlite', file: join('/d', 'server.sqlite') });
    expect(configFromEnv({ ORDERLOG_DATA: '/d', ORDERLOG_DB: '/x/s.db' }, { needTokens: false })).toMatchObject({ file: '/x/s.db' });
    expect(ENV_HELP).toMatch(/ORDERLOG_DATA/);
  });

  it('takes --devices N (1 to 4) and refuses anything else in plain words', () => {
    expect(startConfig({}, ['--devices', '2']).devices).toBe(2);
    expect(startConfig({}, ['--devices=3']).devices).toBe(3);
    expect(() => startConfig({}, ['--devices', '9'])).toThrow(/--devices takes a number from 1 to 4/);
    expect(() => startConfig({}, ['--device', '2'])).toThrow(/unknown argument "--device"/);
    expect(startConfig({}, ['--help']).help).toBe(true);
  });
});
