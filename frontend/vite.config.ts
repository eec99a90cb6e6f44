/// <reference types="vitest/config" />
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// `npm run dev` serves the page on :5173 and forwards /api to the Flask server
// (`make run`, or BRAINTUMOR_API=http://host:port); the build goes to dist/, which Flask serves.
export default defineConfig({
  plugins: [react()],
  server: {
    proxy: { '/api': process.env.BRAINTUMOR_API ?? 'http://127.0.0.1:5000' },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 600,
  },
  test: {
    environment: 'jsdom',
    globals: true,
    setupFiles: ['./src/test/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    css: false,
    pool: 'threads',
    maxWorkers: 2,
  },
});
