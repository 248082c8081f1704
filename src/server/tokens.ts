import { readFileSync } from 'node:fs';
import { z } from 'zod';

export const Role = z.enum(['device', 'admin']);
export type Role = z.infer<typeof Role>;

export const TokenEntry = z.strictObject({
  token: z.string().min(16, 'tokens must be at least 16 characters'),
  tenant: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,99}$/, 'tenant: letters, digits and . _ : @ - only'),
  user: z.string().min(1).max(200),
  roles: z.array(Role).min(1),
});
export type TokenEntry = z.infer<typeof TokenEntry>;
export const TokenList = z.array(TokenEntry);

export class TokenConfigError extends Error {
  override name = 'TokenConfigError';
}

/** Parse and check a token list (JSON text); duplicate tokens are a configuration error. */
export function parseTokens(json: string, source: string): TokenEntry[] {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new TokenConfigError(`${source} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = TokenList.safeParse(raw);
  if (!parsed.success) throw new TokenConfigError(`${source} is not a valid token list:\n${z.prettifyError(parsed.error)}`);
  const seen = new Set<string>();
  for (const t of parsed.data) {
    if (seen.has(t.token)) throw new TokenConfigError(`${source} lists the same token twice`);
    seen.add(t.token);
  }
  return parsed.data;
}

/** Tokens from ORDERLOG_TOKENS (JSON) and/or ORDERLOG_TOKENS_FILE (path to JSON). */
export function loadTokensFromEnv(env: NodeJS.ProcessEnv): TokenEntry[] {
  const tokens: TokenEntry[] = [];
  if (env.ORDERLOG_TOKENS) tokens.push(...parseTokens(env.ORDERLOG_TOKENS, 'ORDERLOG_TOKENS'));
  if (env.ORDERLOG_TOKENS_FILE) {
    let text: string;
    try {
      text = readFileSync(env.ORDERLOG_TOKENS_FILE, 'utf8');
    } catch (err) {
      throw new TokenConfigError(`cannot read ORDERLOG_TOKENS_FILE ${env.ORDERLOG_TOKENS_FILE}: ${(err as Error).message}`);
    }
    tokens.push(...parseTokens(text, `ORDERLOG_TOKENS_FILE ${env.ORDERLOG_TOKENS_FILE}`));
  }
  if (tokens.length === 0 && env.ORDERLOG_DEV_TOKEN) {
    // Local development only: any length is accepted, the tenant is fixed.
    tokens.push({ token: env.ORDERLOG_DEV_TOKEN, tenant: 'dev', user: 'dev', roles: ['device', 'admin'] });
  }
  if (tokens.length === 0) {
    throw new TokenConfigError(
      'no access tokens configured: set ORDERLOG_TOKENS (JSON array of {token, tenant, user, roles}) or ORDERLOG_TOKENS_FILE, ' +
        'or ORDERLOG_DEV_TOKEN for a single local development token (tenant "dev")',
    );
  }
  return tokens;
}
