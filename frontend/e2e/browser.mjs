// What every end-to-end file shares: Debian's Chromium and how it is started, where the
// dataset is, and a scan to upload (a real one, or a picture drawn in the page without it).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { REPO } from './server.mjs';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Chromium on a closed network: no GPU, no QUIC, no background traffic. Playwright gives
// every launch a fresh temporary user-data-dir of its own.
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
export const DATA = resolve(REPO, process.env.BRAINTUMOR_DATA || '../shared/datasets/brain-tumor-mri');

/** The first scan of Testing/<folder> in the dataset, or a picture drawn in the page. */
export async function scan(target, folder, seed) {
  const dir = join(DATA, 'Testing', folder);
  if (existsSync(dir)) {
    const name = readdirSync(dir).filter((n) => /\.(png|jpe?g)$/i.test(n)).sort()[0];
    if (name) return { name, mimeType: 'image/jpeg', buffer: readFileSync(join(dir, name)) };
  }
  const base64 = await target.evaluate((s) => {
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 256;
    const g = canvas.getContext('2d');
    g.fillStyle = '#000';
    g.fillRect(0, 0, 256, 256);
    g.fillStyle = '#707070';
    g.beginPath();
    g.ellipse(128, 128, 88, 108, 0, 0, Math.PI * 2);
    g.fill();
    g.fillStyle = '#e0e0e0';
    g.beginPath();
    g.arc(96 + s * 40, 104, 22, 0, Math.PI * 2);
    g.fill();
    return canvas.toDataURL('image/png').split(',')[1];
  }, seed);
  return { name: `generated-${seed}.png`, mimeType: 'image/png', buffer: Buffer.from(base64, 'base64') };
}
