import type { Health } from '../api';
import type { ClassifyResponse, Localization } from '../types';
import type { UploadLimits } from '../validation';

/** What this service's /api/health states (the defaults: 16 MB, the spec's extensions). */
export const HEALTH: Health = {
  status: 'healthy',
  upload: {
    max_bytes: 16 * 1024 * 1024,
    extensions: ['png', 'jpg', 'jpeg', 'gif', 'bmp', 'webp', 'dcm', 'dicom'],
    dicom_extensions: ['dcm', 'dicom'],
  },
};

export const LIMITS: UploadLimits = {
  maxBytes: 16 * 1024 * 1024,
  extensions: ['png', 'jpg', 'jpeg', 'gif', 'bmp', 'webp', 'dcm', 'dicom'],
  dicomExtensions: ['dcm', 'dicom'],
};

// 1x1 PNGs are enough: the tests look at which picture is shown, not at its pixels
const PIXEL = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

export function makeResult(overrides: Partial<ClassifyResponse['prediction']> = {}): ClassifyResponse {
  return {
    success: true,
    prediction: {
      class: 'Glioma',
      class_id: 0,
      confidence: 94.5,
      probabilities: { Glioma: 94.5, Meningioma: 3.2, 'No Tumor': 1.8, Pituitary: 0.5 },
      ...overrides,
    },
    visualization: { heatmap_overlay: `${PIXEL}`, original_image: `${PIXEL}`, heatmap_only: `${PIXEL}` },
    processing_time_ms: 31.2,
    timestamp: '2026-01-15T10:30:00.000Z',
  };
}

/** A mask PNG that is not the scan's (the tests tell the outline's layer by its source). */
export const MASK = 'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAAAAABX3VL4AAAADklEQVR4nGP8z8DEwAAABQ0BA7hKXG8AAAAASUVORK5CYII=';

/** A localization block as the API sends it: found, with mm² unless overridden. */
export function makeLocalization(overrides: Partial<Localization> = {}): Localization {
  return {
    found: true,
    box: { x: 212, y: 148, width: 41, height: 37 },
    area_px: 1187,
    area_mm2: 961.47,
    mask_png: MASK,
    ...overrides,
  };
}

/** The empty outline of a healthy slice. */
export const NO_OUTLINE: Localization = { found: false, box: null, area_px: 0, area_mm2: null, mask_png: MASK };

export function imageFile(name = 'scan.png', bytes = 128, type = 'image/png'): File {
  return new File([new Uint8Array(bytes)], name, { type });
}

/** A file that says it is `size` bytes without allocating them. */
export function sizedFile(name: string, size: number, type = 'image/png'): File {
  const file = new File([new Uint8Array(8)], name, { type });
  Object.defineProperty(file, 'size', { value: size });
  return file;
}
