import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The web explorer (web/): `npm run build:web` writes dist-web/, served by `btmsim serve` or
// any static file server. Relative asset URLs (base './') so the build works from any path.
export default defineConfig({
  root: fileURLToPath(new URL('./web', import.meta.url)),
  base: './',
  publicDir: false,
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  worker: { format: 'es' },
  build: {
    outDir: fileURLToPath(new URL('./dist-web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  // the dev server (`npx vite`) reads scenarios/ and src/ outside web/
  server: { fs: { allow: [fileURLToPath(new URL('.', import.meta.url))] } },
});
