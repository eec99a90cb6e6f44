// End to end: Debian's headless Chromium (playwright-core) against the real Flask server
// (`braintumor serve`, gunicorn, the default model) serving the built page.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, DATA, scan } from './browser.mjs';
import { FRONTEND, REPO, startServer } from './server.mjs';

const SHOTS = join(FRONTEND, 'e2e', 'screenshots');
const CLASSES = ['Glioma', 'Meningioma', 'No Tumor', 'Pituitary'];
const TYPE_MESSAGE = 'File type not allowed. Allowed: png, jpg, jpeg, gif, bmp, webp, dcm, dicom';
const INVALID_IMAGE_SENTENCE = 'This file could not be read as an image.';

let server;
let browser;
let context;
let page;
const pageErrors = [];

function watch(target) {
  target.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`));
  target.on('console', (message) => {
    // a refused upload is logged by Chromium as a failed resource load: expected here
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
      pageErrors.push(`console: ${message.text()}`);
    }
  });
}

/**
 * ``file`` (a scan) as a 12-bit MR DICOM with its own window, written by pydicom in the
 * project's virtualenv with the test suite's DICOM helper: what a scanner would export.
 */
function asDicom(file) {
  const python = join(REPO, '.venv', 'bin', 'python');
  const script = [
    'import io, sys',
    `sys.path.insert(0, ${JSON.stringify(join(REPO, 'tests'))})`,
    'import numpy as np',
    'from PIL import Image',
    'from dicom_helpers import make_dicom',
    'grey = np.asarray(Image.open(io.BytesIO(sys.stdin.buffer.read())).convert("L"))',
    'data = make_dicom(grey.astype(np.uint16) * 16 + 8, bits_stored=12, window=(2048.0, 4096.0))',
    'sys.stdout.buffer.write(data)',
  ].join('\n');
  const buffer = execFileSync(python, ['-c', script], { input: file.buffer });
  return { name: file.name.replace(/\.\w+$/, '.dcm'), mimeType: 'application/dicom', buffer };
}

const fileInput = (target) => target.getByLabel('Choose MRI image');
// the error message, not the not-a-brain-MRI caution a flagged answer carries (also an alert)
const errorAlert = (target) => target.locator('div.alert[role=alert]');
const resultClass = (target) => target.locator('.result__class');
const heatmap = (target) => target.locator('img.viewer__img--heatmap');
const original = (target) => target.locator('img.viewer__img--original');
const viewOption = (target, name) => target.locator('.segmented label').filter({ hasText: new RegExp(`^${name}$`) });
const opacityOf = (locator) => locator.evaluate((el) => getComputedStyle(el).opacity);

async function waitForResult(target, previous = null) {
  await target.waitForFunction(
    (before) => {
      const heading = document.querySelector('.result__class');
      return heading && !document.querySelector('[role=progressbar]') && heading.textContent !== before;
    },
    previous,
    { timeout: 120_000 },
  );
  return (await resultClass(target).textContent()).trim();
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: apt-get install chromium (make frontend-test does)`);
  if (existsSync(join(DATA, 'Testing'))) {
    server = await startServer();
  } else {
    // Without the dataset, pictures drawn in the page stand in for scans; the default
    // policy would rightly refuse them as not a brain MRI, so they are answered and flagged.
    console.log(`# no dataset at ${DATA}: drawn pictures instead of scans, OOD_POLICY=warn`);
    server = await startServer({ settings: { OOD_POLICY: 'warn' } });
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.setDefaultTimeout(60_000);
  watch(page);
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('GET / is the page for a browser and the JSON for curl and API clients', async () => {
  for (const accept of ['*/*', 'application/json']) {
    const response = await fetch(`${server.url}/`, { headers: { Accept: accept } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type'), /application\/json/);
    assert.equal((await response.json()).name, 'Brain Tumor Classification API');
  }
  const response = await page.goto(server.url);
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-type'], /text\/html/);
  assert.equal(await page.title(), 'Brain MRI classifier');
  await page.getByRole('note').filter({ hasText: 'Research software, not a medical device.' }).waitFor();
  await page.getByText('Service online').waitFor();
  await page.getByText('No scan loaded').waitFor();
  await page.screenshot({ path: join(SHOTS, 'desktop-empty.png') });
});

test('a real scan is classified: progress, class, confidence, four bars and the heatmap', async () => {
  // hold the real answer back a moment so that the progress view can be seen
  let answered;
  await page.route('**/api/classify', async (route) => {
    const answer = await route.fetch();
    answered = await answer.json();
    await new Promise((r) => setTimeout(r, 1200));
    await route.fulfill({ response: answer });
  });
  const file = await scan(page, 'glioma', 0);
  await fileInput(page).setInputFiles(file);
  await page.getByRole('progressbar', { name: `Classifying ${file.name}` }).waitFor();
  await page.getByAltText(`Preview of ${file.name}`).waitFor();
  const predicted = await waitForResult(page);
  await page.unroute('**/api/classify');

  assert.ok(CLASSES.includes(predicted), `unexpected class ${predicted}`);
  console.log(`# ${file.name}: ${predicted}`);
  const confidence = await page.locator('.result__confidence strong').textContent();
  assert.match(confidence, /^\d{1,3}\.\d%$/);
  const values = await page.getByRole('meter').evaluateAll((meters) =>
    meters.map((m) => Number(m.getAttribute('aria-valuenow'))),
  );
  assert.equal(values.length, 4);
  assert.ok(Math.abs(values.reduce((a, b) => a + b, 0) - 100) < 0.05, `probabilities ${values}`);

  await heatmap(page).waitFor({ state: 'visible' });
  const size = await heatmap(page).evaluate((img) => [img.naturalWidth, img.naturalHeight, img.src.slice(0, 22)]);
  assert.ok(size[0] >= 224 || size[1] >= 224, `heatmap ${size}`);
  assert.equal(size[2], 'data:image/png;base64,');
  assert.equal(await opacityOf(heatmap(page)), '0.4');
  // a segmenting model's outline is drawn from the start, with its switch; the default
  // model has none (E2E_MODEL_PATH=a compact-seg model shows it)
  const outlined = Boolean(answered.localization?.found);
  const outlineSwitch = page.locator('.stage').getByRole('switch', { name: 'Outline' });
  assert.equal(await outlineSwitch.count(), outlined ? 1 : 0);
  if (outlined) {
    assert.ok(await outlineSwitch.isChecked());
    assert.ok(await page.locator('img.viewer__img--outline').isVisible());
  }
  await page.screenshot({ path: join(SHOTS, 'desktop-result.png') });
});

test('the view switch and the opacity slider', async () => {
  await viewOption(page, 'Heatmap').click();
  assert.ok(await page.getByRole('radio', { name: 'Heatmap' }).isChecked());
  assert.ok(await original(page).isHidden());
  assert.equal(await opacityOf(heatmap(page)), '1');
  assert.ok(await page.getByRole('slider', { name: /heatmap opacity/i }).isDisabled());
  await page.screenshot({ path: join(SHOTS, 'desktop-heatmap.png') });

  // the keyboard moves through the radio group
  await page.getByRole('radio', { name: 'Heatmap' }).focus();
  await page.keyboard.press('ArrowRight');
  assert.ok(await page.getByRole('radio', { name: 'Original' }).isChecked());
  assert.ok(await heatmap(page).isHidden());
  assert.ok(await original(page).isVisible());

  await viewOption(page, 'Overlay').click();
  const slider = page.getByRole('slider', { name: /heatmap opacity/i });
  await slider.fill('80');
  assert.equal(await opacityOf(heatmap(page)), '0.8');
  await slider.focus();
  await page.keyboard.press('ArrowLeft');
  assert.equal(await opacityOf(heatmap(page)), '0.75');
  assert.equal((await page.locator('.opacity output').textContent()).trim(), '75%');
  assert.ok(await original(page).isVisible());
});

test('the overlay downloads as a PNG', async () => {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: /download overlay/i }).click(),
  ]);
  assert.match(download.suggestedFilename(), /-gradcam-overlay\.png$/);
  const saved = join(tmpdir(), `braintumor-e2e-${process.pid}.png`);
  await download.saveAs(saved);
  try {
    assert.deepEqual([...readFileSync(saved).subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10]);
  } finally {
    rmSync(saved, { force: true });
  }
});

test('a text file named .jpg gets the INVALID_IMAGE sentence', async () => {
  await fileInput(page).setInputFiles({
    name: 'notes.jpg',
    mimeType: 'image/jpeg',
    buffer: Buffer.from('These are notes, not a picture.\n'),
  });
  const alert = errorAlert(page);
  await alert.waitFor();
  const text = await alert.textContent();
  assert.ok(text.includes(INVALID_IMAGE_SENTENCE), text);
  assert.ok(text.includes('INVALID_IMAGE'), text);
  assert.ok(text.includes('notes.jpg'), text);
  await page.screenshot({ path: join(SHOTS, 'desktop-error.png') });
});

test('a file type the API refuses is stopped in the browser', async () => {
  const sent = [];
  const onRequest = (request) => request.url().includes('/api/classify') && sent.push(request.url());
  page.on('request', onRequest);
  await fileInput(page).setInputFiles({ name: 'report.txt', mimeType: 'text/plain', buffer: Buffer.from('x') });
  await errorAlert(page).filter({ hasText: TYPE_MESSAGE }).waitFor();
  page.off('request', onRequest);
  assert.deepEqual(sent, []);
  await page.getByRole('button', { name: 'Dismiss message' }).click();
  assert.equal(await errorAlert(page).count(), 0);
});

test('the session history flips back to an earlier scan', async () => {
  const first = await resultClass(page).textContent();
  const file = await scan(page, 'pituitary', 1);
  await fileInput(page).setInputFiles(file);
  await page.getByRole('list', { name: /this session/i }).getByRole('button').nth(1).waitFor();
  await page.waitForFunction(() => !document.querySelector('[role=progressbar]'));
  const thumbs = page.getByRole('list', { name: /this session/i }).getByRole('button');
  assert.equal(await thumbs.count(), 2);
  assert.match(await thumbs.nth(0).getAttribute('aria-label'), new RegExp(`^Scan 2: ${file.name}`));
  await thumbs.nth(1).click();
  assert.equal(await thumbs.nth(1).getAttribute('aria-current'), 'true');
  assert.equal(await resultClass(page).textContent(), first);
  await page.keyboard.press('ArrowLeft');
  assert.equal(await thumbs.nth(0).getAttribute('aria-current'), 'true');
});

test('a DICOM file is classified like its JPEG, with what was decoded', async () => {
  const jpeg = await scan(page, 'meningioma', 2);
  const form = new FormData();
  form.append('file', new Blob([jpeg.buffer]), jpeg.name);
  const direct = await (await fetch(`${server.url}/api/classify`, { method: 'POST', body: form })).json();
  const file = asDicom(jpeg);
  assert.deepEqual([...file.buffer.subarray(128, 132)], [...Buffer.from('DICM')]);
  await fileInput(page).setInputFiles(file);
  // only a DICOM answer has the facts list, so its appearance is this answer arriving
  const facts = page.locator('dl.facts');
  await facts.waitFor({ timeout: 120_000 });
  const predicted = (await resultClass(page).textContent()).trim();
  assert.equal(predicted, direct.prediction.class, `the JPEG was ${direct.prediction.class}`);
  console.log(`# ${file.name}: ${predicted}`);
  const text = await facts.textContent();
  for (const fact of ['MR', '12 bits', 'centre 2048, width 4096 (from the file)']) {
    assert.ok(text.includes(fact), `${fact} not in ${text}`);
  }
  await original(page).waitFor({ state: 'attached' });
  const size = await heatmap(page).evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  assert.ok(size[0] >= 224 || size[1] >= 224, `heatmap ${size}`);
  await page.screenshot({ path: join(SHOTS, 'desktop-dicom.png'), fullPage: true });
});

/**
 * Six slices as one zipped 12-bit MR series (Testing scans, or drawn slices without the
 * dataset), written by the test suite's series helper in the project's virtualenv.
 */
function seriesZip() {
  const python = join(REPO, '.venv', 'bin', 'python');
  const script = [
    'import sys',
    `sys.path.insert(0, ${JSON.stringify(join(REPO, 'tests'))})`,
    'from pathlib import Path',
    'from PIL import Image',
    'from series_helpers import series_files, synthetic_pictures, zip_of',
    `root = Path(${JSON.stringify(join(DATA, 'Testing'))})`,
    'folders = ["glioma", "notumor", "meningioma", "notumor", "pituitary", "notumor"]',
    'if root.is_dir():',
    '    pictures = [Image.open(sorted((root / f).glob("*.jpg"))[30 + i]).convert("L").resize((256, 256)) for i, f in enumerate(folders)]',
    'else:',
    '    pictures = synthetic_pictures(6, size=(256, 256))',
    'files = series_files(pictures, spacing=5.0)',
    'sys.stdout.buffer.write(zip_of({f"series/IM{i:04d}": d for i, d in enumerate(files)}))',
  ].join('\n');
  return { name: 'series.zip', mimeType: 'application/zip', buffer: execFileSync(python, ['-c', script]) };
}

/** The API's own answer for the zip, straight from /api/classify-series. */
async function seriesAnswer(zip) {
  const form = new FormData();
  form.append('file', new Blob([zip.buffer]), zip.name);
  const direct = await (await fetch(`${server.url}/api/classify-series`, { method: 'POST', body: form })).json();
  assert.equal(direct.success, true, JSON.stringify(direct.error));
  return direct;
}

test('a zipped series: every slice in the strip, the series answer, the key slice', async () => {
  const zip = seriesZip();
  const direct = await seriesAnswer(zip);
  await page.getByLabel('Choose series files').setInputFiles(zip);
  const heading = page.locator('.series__class');
  await heading.waitFor({ timeout: 120_000 });
  assert.ok((await heading.textContent()).includes(`Series: ${direct.summary.class}`));
  const strip = page.locator('.series__strip button');
  assert.equal(await strip.count(), 6);
  const keyIndex = direct.key_slice.index;
  assert.ok((await strip.nth(keyIndex).getAttribute('class')).includes('slice--key'));
  for (const [i, slice] of direct.slices.entries()) {
    const label = await strip.nth(i).getAttribute('aria-label');
    assert.ok(label.includes(slice.refused ? 'refused' : slice.class), `${label} vs ${slice.class}`);
  }
  const overlay = page.locator('img.series__img--overlay');
  await overlay.waitFor();
  const size = await overlay.evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  assert.ok(size[0] >= 224, `key slice overlay ${size}`);
  const keyOutlined = Boolean(direct.key_slice.localization?.found);
  assert.equal(await page.locator('.series').getByRole('switch', { name: 'Outline' }).count(), keyOutlined ? 1 : 0);
  console.log(`# series: ${direct.summary.class}, key slice ${keyIndex}`);
  await heading.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(SHOTS, 'desktop-series.png'), fullPage: true });
});

/** The zip's slices as a folder, half of them in a sub-folder, as a PACS export looks. */
function seriesFolder(zip) {
  const python = join(REPO, '.venv', 'bin', 'python');
  const root = mkdtempSync(join(tmpdir(), 'braintumor-e2e-folder-'));
  const script = [
    'import io, sys, zipfile',
    'from pathlib import Path',
    'root = Path(sys.argv[1])',
    'zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read())).extractall(root)',
    '(root / "series" / "more").mkdir()',
    'for path in sorted((root / "series").glob("IM*"))[3:]:',
    '    path.rename(root / "series" / "more" / path.name)',
  ].join('\n');
  execFileSync(python, ['-c', script, root], { input: zip.buffer });
  return root;
}

test('a series folder dropped on the panel (Chromium drag and drop): walked, same answer', async () => {
  const zip = seriesZip();
  const direct = await seriesAnswer(zip);
  const root = seriesFolder(zip);
  try {
    await page.reload();
    const panel = page.getByRole('region', { name: 'Classify a whole series' });
    await panel.scrollIntoViewIfNeeded();
    const box = await panel.boundingBox();
    const [x, y] = [box.x + box.width / 2, box.y + box.height / 2];
    // the browser's own drag and drop of a folder, as from a file manager
    const cdp = await page.context().newCDPSession(page);
    const data = { items: [], files: [join(root, 'series')], dragOperationsMask: 1 };
    for (const type of ['dragEnter', 'dragOver', 'drop']) {
      await cdp.send('Input.dispatchDragEvent', { type, x, y, data });
    }
    await cdp.detach();
    const heading = page.locator('.series__class');
    await heading.waitFor({ timeout: 120_000 });
    assert.ok((await heading.textContent()).includes(`Series: ${direct.summary.class}`));
    assert.equal(await page.locator('.series__strip button').count(), 6);
    const key = page.locator('.series__strip button').nth(direct.key_slice.index);
    assert.ok((await key.getAttribute('class')).includes('slice--key'));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('phone width (375 px): everything fits and works', async () => {
  const phone = await browser.newContext({ viewport: { width: 375, height: 812 }, deviceScaleFactor: 2 });
  const small = await phone.newPage();
  small.setDefaultTimeout(60_000);
  watch(small);
  try {
    await small.goto(server.url);
    await small.getByText('Service online').waitFor();
    await small.screenshot({ path: join(SHOTS, 'phone-empty.png') });
    await fileInput(small).setInputFiles(await scan(small, 'glioma', 0));
    const predicted = await waitForResult(small);
    assert.ok(CLASSES.includes(predicted));
    await heatmap(small).waitFor({ state: 'visible' });
    const widths = await small.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(widths[0] <= widths[1], `page is ${widths[0]} px wide in a ${widths[1]} px window`);
    const box = await heatmap(small).boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 375, `heatmap at ${JSON.stringify(box)}`);
    await small.screenshot({ path: join(SHOTS, 'phone-result.png'), fullPage: true });
  } finally {
    await phone.close();
  }
});

test('no script errors on the page', () => {
  assert.deepEqual(pageErrors, []);
});
