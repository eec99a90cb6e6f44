/** How numbers, sizes and DICOM facts read on the page: one place, so every view agrees. */
import type { DicomInfo, Localization } from './types';

/** A percentage the API sent (two decimals) as the page shows it: one decimal. */
export function formatPercent(value: number): string {
  return `${value.toFixed(1)}%`;
}

const WHOLE = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
const TENTHS = new Intl.NumberFormat('en', { minimumFractionDigits: 1, maximumFractionDigits: 1 });

/** An outline's area: in mm² with the pixels beside it when the spacing is known, else pixels. */
export function formatArea(localization: Pick<Localization, 'area_px' | 'area_mm2'>): string {
  const pixels = `${WHOLE.format(localization.area_px)} px`;
  return localization.area_mm2 === null ? pixels : `${TENTHS.format(localization.area_mm2)} mm² (${pixels})`;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** A limit in whole megabytes, as the API states it ("16 MB"). */
export function formatMegabytes(bytes: number): string {
  return `${Math.floor(bytes / (1024 * 1024))} MB`;
}

const WINDOW_SOURCES: Record<string, string> = {
  file: 'from the file',
  voi_lut: "the file's VOI LUT",
  fallback: "from the image's own values",
};

/** One line per fact a reader of the scan wants to check: what was decoded and how. */
export function dicomFacts(dicom: DicomInfo): [string, string][] {
  const bits = dicom.bits_stored === null ? '' : `, ${dicom.bits_stored} bits`;
  const facts: [string, string][] = [
    ['Modality', dicom.modality ?? 'not stated'],
    ['Size', `${dicom.columns} × ${dicom.rows} px${bits}`],
  ];
  if (dicom.number_of_frames > 1) {
    facts.push(['Frame', `${dicom.frame + 1} of ${dicom.number_of_frames}`]);
  }
  const { window } = dicom;
  if (window) {
    const source = WINDOW_SOURCES[window.source] ?? window.source;
    facts.push([
      'Window',
      window.center === null || window.width === null
        ? source
        : `centre ${window.center}, width ${window.width} (${source})`,
    ]);
  }
  facts.push(['Encoding', `${dicom.photometric_interpretation}, ${dicom.transfer_syntax}`]);
  return facts;
}
