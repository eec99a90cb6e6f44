/** POST /api/classify-series answers (README, "Series"). */
import type { DicomInfo, Localization, OodVerdict, Visualization } from '../types';

export interface SeriesSlice {
  index: number;
  /** mm along the slice normal; null when the files do not place the slices. */
  position: number | null;
  /** Refused as not a brain MRI: no class, no probabilities. */
  refused: boolean;
  class: string | null;
  class_id: number | null;
  confidence: number | null;
  probabilities: Record<string, number> | null;
  tumour_probability: number | null;
  ood: OodVerdict | null;
}

export interface SeriesSummary {
  class: string;
  class_id: number;
  confidence: number;
  probabilities: Record<string, number>;
  tumour_probability: number | null;
  slices_answered: number;
  slices_refused: number;
  class_counts: Record<string, number>;
  key_slice: number;
  rule: string;
}

export interface SeriesResponse {
  success: true;
  series: {
    source: string;
    slice_count: number;
    modality: string | null;
    orientation: string | null;
    ordered_by: string;
    rows: number;
    columns: number;
    slice_spacing_mm: number | null;
    files_ignored: number;
    warning?: string;
  };
  slices: SeriesSlice[];
  summary: SeriesSummary;
  key_slice: SeriesSlice & { visualization: Visualization; dicom?: DicomInfo; localization?: Localization };
  processing_time_ms: number;
  timestamp: string;
}
