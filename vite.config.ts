import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';
import { RENDERER_CSP_META } from './src/app/csp.js';

/** The CSP goes into the built page only: Vite's dev server needs inline scripts for hot reload. */
function cspMeta(): Plugin {
  return {
    name: 'orderlog-csp-meta',
    apply: 'build',
    transformIndexHtml: (html) => html.replace('<head>', `<head>\n    <meta http-equiv="Content-Security-Policy" content="${RENDERER_CSP_META}" />`),
  };
}

export default defineConfig({
  root: 'renderer',
  // Relative asset URLs: Electron loads the page from file://.
  base: './',
  plugins: [react(), cspMeta()],
  build: {
    outDir: '../dist-renderer',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
  },
  server: { host: '127.0.0.1' },
});
