import { chmodSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * Encryption offered by the platform (Electron's safeStorage in main/). Where there is none
 * (browser mode, or a Linux session without a keyring) the token is kept in a file only its
 * owner can read, never in the SQLite settings table.
 */
export interface SecretCipher {
  encrypt(plain: string): Buffer;
  decrypt(data: Buffer): string;
}

/** The central server's bearer token and the one server it was entered for. */
export interface ServerCredential {
  server: string;
  token: string;
}

const TokenFile = z.object({
  v: z.literal(1),
  server: z.string(),
  encoding: z.enum(['safeStorage', 'plain']),
  token: z.string(),
});

export const FILE_MODE = 0o600;

/**
 * One small JSON file in the device's data dir, replaced atomically, mode 0600 either way. This
 * process owns it: it is read once and then served from memory (safeStorage is not asked to
 * decrypt on every status event).
 */
export class TokenVault {
  private cached: ServerCredential | null | undefined;

  constructor(
    readonly file: string,
    private readonly cipher: SecretCipher | null = null,
  ) {}

  get encrypted(): boolean {
    return this.cipher !== null;
  }

  /** The stored credential, or null when none is stored or it cannot be decrypted here. */
  read(): ServerCredential | null {
    if (this.cached === undefined) this.cached = this.load();
    return this.cached;
  }

  private load(): ServerCredential | null {
    if (!existsSync(this.file)) return null;
    // A copy restored with a looser mode is tightened before it is read.
    if ((statSync(this.file).mode & 0o077) !== 0) chmodSync(this.file, FILE_MODE);
    const parsed = TokenFile.safeParse(JSON.parse(readFileSync(this.file, 'utf8')));
    if (!parsed.success) return null;
    const { server, encoding, token } = parsed.data;
    if (encoding === 'plain') return { server, token };
    // Written by an Electron run with a keyring this process cannot use: the token must be entered again.
    if (!this.cipher) return null;
    try {
      return { server, token: this.cipher.decrypt(Buffer.from(token, 'base64')) };
    } catch {
      return null;
    }
  }

  write(credential: ServerCredential | null): void {
    if (credential === null) {
      rmSync(this.file, { force: true });
      this.cached = null;
      return;
    }
    const body = this.cipher
      ? { v: 1, server: credential.server, encoding: 'safeStorage', token: this.cipher.encrypt(credential.token).toString('base64') }
      : { v: 1, server: credential.server, encoding: 'plain', token: credential.token };
    const tmp = `${this.file}.tmp`;
    rmSync(tmp, { force: true });
    writeFileSync(tmp, `${JSON.stringify(body)}\n`, { mode: FILE_MODE, flag: 'wx' });
    chmodSync(tmp, FILE_MODE);
    renameSync(tmp, this.file);
    this.cached = { ...credential };
  }
}
