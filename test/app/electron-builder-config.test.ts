import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = join(import.meta.dirname, '..', '..');
const config = parse(readFileSync(join(root, 'electron-builder.yml'), 'utf8')) as Record<string, unknown>;
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { main: string; scripts: Record<string, string> };

const targets = (platform: string) => ((config[platform] as { target: unknown[] }).target ?? []).map((t) => (typeof t === 'string' ? t : (t as { target: string }).target));

describe('electron-builder.yml', () => {
  it('names the app and writes to release/', () => {
    expect(config.appId).toMatch(/^[a-z0-9.-]+\.[a-z0-9.-]+$/);
    expect(config.productName).toBe('Orderlog');
    expect((config.directories as { output: string }).output).toBe('release/');
  });

  it('packs the compiled main process and the built renderer, and points at the real entry', () => {
    const files = config.files as string[];
    expect(files).toContain('dist/**');
    expect(files).toContain('dist-renderer/**');
    expect((config.extraMetadata as { main: string }).main).toBe(pkg.main);
    expect(pkg.main).toBe('dist/main/main.js');
  });

  it('keeps better-sqlite3 out of the asar archive and rebuilds it for Electron', () => {
    expect(config.asar).toBe(true);
    expect(config.asarUnpack).toContain('**/node_modules/better-sqlite3/**');
    expect(config.npmRebuild).toBe(true);
  });

  it('targets Linux AppImage + deb, Windows nsis, macOS dmg', () => {
    expect(targets('linux').sort()).toEqual(['AppImage', 'deb']);
    expect(targets('win')).toEqual(['nsis']);
    expect(targets('mac')).toEqual(['dmg']);
  });

  it('has an `npm run dist` that builds first, then packages with this file', () => {
    expect(pkg.scripts.dist).toMatch(/npm run build/);
    expect(pkg.scripts.dist).toMatch(/electron-builder --config electron-builder\.yml/);
  });

  it('flips the Electron fuses that close the runtime to tampering (names as electron-builder 26 spells them)', () => {
    expect(config.electronFuses).toEqual({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      onlyLoadAppFromAsar: true,
      enableEmbeddedAsarIntegrityValidation: true,
      enableCookieEncryption: true,
    });
    const schema = JSON.parse(readFileSync(join(root, 'node_modules', 'app-builder-lib', 'scheme.json'), 'utf8')) as {
      definitions: { FuseOptionsV1: { properties: Record<string, { type: string }>; additionalProperties: boolean } };
    };
    const fuses = schema.definitions.FuseOptionsV1;
    expect(fuses.additionalProperties).toBe(false);
    for (const key of Object.keys(config.electronFuses as object)) expect(fuses.properties[key]?.type, key).toBe('boolean');
  });

  it('contains only keys electron-builder knows (a typo would be silently ignored otherwise)', () => {
    const schemaPath = join(root, 'node_modules', 'app-builder-lib', 'scheme.json');
    const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as { properties: Record<string, unknown> };
    const known = new Set(Object.keys(schema.properties));
    expect(known.has('asarUnpack')).toBe(true);
    expect(Object.keys(config).filter((k) => !known.has(k))).toEqual([]);
  });
});
