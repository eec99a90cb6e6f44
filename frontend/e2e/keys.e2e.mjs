// End to end, a service that wants API keys (API_KEYS_FILE): the page asks for the key on
// the first 401, sends the scan again with it, asks again for a wrong one, and says so
// when the key has been revoked (403). The keys are made by `braintumor keys`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, DATA, scan } from './browser.mjs';
import { REPO, startServer } from './server.mjs';

const BIN = process.env.BRAINTUMOR_BIN ?? join(REPO, '.venv', 'bin', 'braintumor');

let folder;
let keysFile;
let key;
let server;
let browser;
let page;
const pageErrors = [];

function keys(...args) {
  const env = { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' };
  return execFileSync(BIN, ['keys', ...args, '--file', keysFile], { env, encoding: 'utf8' }).trim();
}

const dialog = () => page.getByRole('dialog');
const keyField = () => dialog().getByLabel('API key');

async function upload(seed) {
  await page.getByLabel('Choose MRI image').setInputFiles(await scan(page, 'glioma', seed));
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: apt-get install chromium (make frontend-test does)`);
  folder = mkdtempSync(join(tmpdir(), 'braintumor-e2e-keys-'));
  keysFile = join(folder, 'keys.txt');
  key = keys('add', 'e2e-reader');
  assert.match(key, /^bt_\S{20,}$/);
  // drawn pictures stand in for scans without the dataset: answered and flagged (warn)
  const settings = { API_KEYS_FILE: keysFile };
  if (!existsSync(join(DATA, 'Testing'))) settings.OOD_POLICY = 'warn';
  server = await startServer({ settings });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  page.setDefaultTimeout(60_000);
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(server.url);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (folder) rmSync(folder, { recursive: true, force: true });
});

test('the first upload asks for the key; a wrong one is asked again; the right one is used', async () => {
  await upload(0);
  await dialog().waitFor();
  assert.equal((await dialog().getByRole('heading').textContent()).trim(), 'API key needed');
  assert.equal(await keyField().getAttribute('type'), 'password');

  await keyField().fill('bt_not-a-key-of-this-service');
  const refused = page.waitForResponse((response) => response.url().endsWith('/api/classify'));
  await dialog().getByRole('button', { name: 'Use key' }).click();
  // the service answers 401 again: the dialog comes back for another try
  assert.equal((await refused).status(), 401);
  await dialog().waitFor();
  await keyField().fill(key);
  await dialog().getByRole('button', { name: 'Use key' }).click();

  const heading = page.locator('.result__class');
  await heading.waitFor({ timeout: 120_000 });
  assert.ok(['Glioma', 'Meningioma', 'No Tumor', 'Pituitary'].includes((await heading.textContent()).trim()));
  assert.equal(await dialog().count(), 0);
});

test('the key is kept for the next upload, until it is revoked', async () => {
  const answered = page.waitForResponse((response) => response.url().endsWith('/api/classify'));
  await upload(1);
  assert.equal((await answered).status(), 200); // no dialog: the key from memory
  assert.equal(await dialog().count(), 0);

  keys('revoke', 'e2e-reader');
  await upload(2);
  await dialog().waitFor();
  assert.equal((await dialog().getByRole('heading').textContent()).trim(), 'This API key was revoked');
  await dialog().getByRole('button', { name: 'Cancel' }).click();
  const alert = page.locator('div.alert[role=alert]');
  await alert.waitFor();
  assert.ok((await alert.textContent()).length > 0);
  assert.equal(await dialog().count(), 0);
});

test('no script errors on the page', () => {
  assert.deepEqual(pageErrors, []);
});
