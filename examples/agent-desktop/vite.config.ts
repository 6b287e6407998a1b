import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  // The package is linked from ../../web, which has React of its own for its tests: one
  // React for the whole page.
  resolve: { dedupe: ['react', 'react-dom'] },
  // The package holds a wasm file and a SharedWorker: bundled from source, not pre-bundled.
  optimizeDeps: { exclude: ['genesys-notify-web'] },
  worker: { format: 'es' },
  build: { target: 'es2022' },
});
