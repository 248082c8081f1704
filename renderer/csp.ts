/**
 * The page's own CSP (a <meta> tag, so it also holds under Electron's file:// where no server
 * sets headers). frame-ancestors is not allowed in a meta tag; browser mode sends it as a header.
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
