import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { resolveElectron, serverTokens } from '../../src/cli/start.js';

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
});
