/** The API's answers (see README.md, "API"). */

export interface Prediction {
  class: string;
  class_id: number;
  /** Percentage of the top class, two decimals. */
  confidence: number;
  /** Percentages per class name, adding up to 100. */
  probabilities: Record<string, number>;
}

/** Three base64-encoded PNGs (no data: prefix). */
export interface Visualization {
  heatmap_overlay: string;
  original_image: string;
  heatmap_only: string;
}

/** The not-a-brain-MRI check's verdict; `flagged` answers come back only under OOD_POLICY=warn. */
export interface OodVerdict {
  flagged: boolean;
  score: number | null;
  threshold?: number | null;
  reasons: string[];
}

/** Non-identifying facts of a DICOM upload (README, "DICOM"); never patient data. */
export interface DicomInfo {
  modality: string | null;
  rows: number;
  columns: number;
  /** null when the file does not state it. */
  bits_stored: number | null;
  photometric_interpretation: string;
  number_of_frames: number;
  frame: number;
  window: { center: number | null; width: number | null; source: string } | null;
  transfer_syntax: string;
  /** Present when the modality is not MR (or not stated). */
  warning?: string;
}

/**
 * Where a model with a segmentation output says the tumour is (README, "API"): its
 * outline in the upload's pixels. Other models answer without it.
 */
export interface Localization {
  found: boolean;
  /** The outline's bounding box in upload pixels; null when nothing was found. */
  box: { x: number; y: number; width: number; height: number } | null;
  area_px: number;
  /** Only when the pixel spacing is known (DICOM); null otherwise. */
  area_mm2: number | null;
  /** Base64 grey PNG of the upload's size: 255 inside the outline, 0 outside. */
  mask_png: string;
}

export interface ClassifyResponse {
  success: true;
  prediction: Prediction;
  visualization: Visualization;
  processing_time_ms: number;
  timestamp: string;
  /** Sent by this service on every answer; optional so that other servers of the spec work. */
  ood?: OodVerdict;
  /** Only for DICOM uploads. */
  dicom?: DicomInfo;
  /** Only for a model with a segmentation output. */
  localization?: Localization;
}

export interface ApiErrorBody {
  success: false;
  error: { message: string; code: string; status: number };
  timestamp: string;
}

/** One classified upload, kept in the session history. */
export interface Scan {
  id: number;
  fileName: string;
  fileSize: number;
  result: ClassifyResponse;
  /** When the answer arrived (ms since epoch). */
  receivedAt: number;
}

export function pngDataUrl(base64: string): string {
  return base64.startsWith('data:') ? base64 : `data:image/png;base64,${base64}`;
}
