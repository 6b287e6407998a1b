// The React binding's unit tests (jsdom). The browser tests proper run in Chromium from the
// Rust test suite (tests/tests/browser.rs).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    environment: 'jsdom',
    include: ['test/**/*.test.js'],
  },
});
