// @ts-check
import { defineConfig } from 'astro/config';
import react from '@astrojs/react';
import tailwindcss from '@tailwindcss/vite';

// Static output: `npm run build` writes plain files to dist/, which `devplane serve` serves.
// Pages are directories (dist/agents/index.html) so /agents needs no rewriting.
export default defineConfig({
  output: 'static',
  trailingSlash: 'ignore',
  build: { format: 'directory', assets: '_astro' },
  integrations: [react()],
  vite: {
    plugins: [tailwindcss()],
    server: {
      // `npm run dev` talks to a devplane on 127.0.0.1:8080 (override with DEVPLANE_URL).
      proxy: {
        '/api': process.env.DEVPLANE_URL ?? 'http://127.0.0.1:8080',
        '/ws': { target: (process.env.DEVPLANE_URL ?? 'http://127.0.0.1:8080').replace(/^http/, 'ws'), ws: true },
      },
    },
  },
  devToolbar: { enabled: false },
});
