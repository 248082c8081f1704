/**
 * The renderer's Content Security Policy: same-origin only, no inline script, no remote
 * anything. The <meta> form also holds under Electron's file:// where no server sets headers;
 * frame-ancestors is only valid as a header, so browser mode and Electron add it there.
 */
export const RENDERER_CSP_META = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

export const RENDERER_CSP = `${RENDERER_CSP_META}; frame-ancestors 'none'`;
