/** Saving the overlay as a PNG, composed as it is shown: heatmap over scan at the chosen opacity. */
import { pngDataUrl, type Visualization } from './types';

function loadImage(src: string): Promise<HTMLImageElement> {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => resolve(image);
    image.onerror = () => reject(new Error('image did not load'));
    image.src = src;
  });
}

/**
 * A PNG data URL of the heatmap drawn over the original at `opacity`; the API's own
 * overlay (alpha 0.4) when the browser cannot draw (no canvas).
 */
export async function composeOverlay(visualization: Visualization, opacity: number): Promise<string> {
  const fallback = pngDataUrl(visualization.heatmap_overlay);
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d');
  if (!context) return fallback;
  try {
    const [original, heatmap] = await Promise.all([
      loadImage(pngDataUrl(visualization.original_image)),
      loadImage(pngDataUrl(visualization.heatmap_only)),
    ]);
    canvas.width = original.naturalWidth;
    canvas.height = original.naturalHeight;
    if (!canvas.width || !canvas.height) return fallback;
    context.drawImage(original, 0, 0);
    context.globalAlpha = opacity;
    context.drawImage(heatmap, 0, 0, canvas.width, canvas.height);
    return canvas.toDataURL('image/png');
  } catch {
    return fallback;
  }
}

export function downloadName(fileName: string, suffix: string): string {
  const base = fileName.replace(/\.[^.]*$/, '').replace(/[^\w.-]+/g, '_') || 'scan';
  return `${base}-${suffix}.png`;
}

export function saveDataUrl(url: string, name: string): void {
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
}
