// The real API server for the end-to-end tests: `.venv/bin/braintumor serve` (gunicorn)
// on a free port of 127.0.0.1, serving frontend/dist and the default model.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FRONTEND = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO = resolve(FRONTEND, '..');

function freePort() {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolvePort(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Start the server and wait until /api/health answers; `stop()` ends it. `settings` are
 * extra environment settings of the server (e.g. OOD_POLICY).
 */
export async function startServer({ timeoutMs = 240_000, settings = {} } = {}) {
  const bin = process.env.BRAINTUMOR_BIN ?? join(REPO, '.venv', 'bin', 'braintumor');
  if (!existsSync(bin)) throw new Error(`${bin} not found: run \`make test\` (or \`make run\`) once to create .venv`);
  if (!existsSync(join(FRONTEND, 'dist', 'index.html'))) {
    throw new Error('frontend/dist is not built: run `npm run build` (or `make frontend`) first');
  }
  const port = await freePort();
  const env = { ...process.env, FLASK_HOST: '127.0.0.1', FLASK_PORT: String(port), FLASK_DEBUG: 'false' };
  env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  // the default model unless a developer points the tests elsewhere on purpose
  delete env.MODEL_PATH;
  delete env.FRONTEND_DIST;
  if (process.env.E2E_MODEL_PATH) env.MODEL_PATH = process.env.E2E_MODEL_PATH;
  delete env.OOD_POLICY;
  Object.assign(env, settings);

  const child = spawn(bin, ['serve'], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  const exit = new Promise((r) => child.on('exit', (code, signal) => r((exited = { code, signal }))));

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`the server stopped (exit ${exited.code}) before it was healthy:\n${output}`);
    try {
      const response = await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(5_000) });
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server was not healthy after ${timeoutMs / 1000}s:\n${output}`);
    }
    await sleep(500);
  }

  return {
    url,
    output: () => output,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exit;
      clearTimeout(timer);
    },
  };
}
