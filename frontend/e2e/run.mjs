// Runs the end-to-end tests with Node's test runner and ends with one summary line,
// "N passed, M failed"; the exit status is non-zero when anything failed or nothing ran.
//   node e2e/run.mjs            (npm run e2e; `make frontend-test` runs it after the build)
// Environment: CHROMIUM (default /usr/bin/chromium), BRAINTUMOR_DATA (real scans),
// E2E_MODEL_PATH (develop against another model; unset, the server uses its default model).
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const files = readdirSync(here)
  .filter((name) => name.endsWith('.e2e.mjs'))
  .sort()
  .map((name) => join(here, name));

let passed = 0;
let failed = 0;
let skipped = 0;
const tests = run({ files, concurrency: false, timeout: 15 * 60 * 1000 });
tests.on('test:pass', (event) => {
  if (event.details?.type === 'suite') return;
  if (event.skip || event.todo) skipped += 1;
  else passed += 1;
});
tests.on('test:fail', (event) => {
  if (event.details?.type !== 'suite') failed += 1;
});

const reporter = tests.compose(new spec());
reporter.on('data', (chunk) => process.stdout.write(chunk));
reporter.on('end', () => {
  const extra = skipped ? `, ${skipped} skipped` : '';
  console.log(`\ne2e: ${passed} passed, ${failed} failed${extra}`);
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
});
