/** POST /api/classify-series: several files (DICOM slices, one zip, one NIfTI) in one request. */
import { apiUrl, errorFromResponse } from '../api';
import { ApiError } from '../apiError';
import { authorize } from '../apiKey';
import type { SeriesResponse } from './types';

function isSeriesResponse(body: unknown): body is SeriesResponse {
  const b = body as SeriesResponse | null;
  return (
    b?.success === true &&
    Array.isArray(b.slices) &&
    typeof b.summary?.class === 'string' &&
    typeof b.key_slice?.visualization?.heatmap_overlay === 'string'
  );
}

export interface SeriesOptions {
  /** Fraction of the upload sent, 0..1. */
  onUploadProgress?: (fraction: number) => void;
  timeoutMs?: number;
}

/** Upload the files as one series; resolves with the answer or rejects with an ApiError. */
export function classifySeries(files: File[], options: SeriesOptions = {}): Promise<SeriesResponse> {
  const { onUploadProgress, timeoutMs = 300_000 } = options;
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', apiUrl('/api/classify-series'));
    xhr.setRequestHeader('Accept', 'application/json');
    authorize(xhr); // the API key, once the service has asked for one
    xhr.timeout = timeoutMs;
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onUploadProgress?.(event.loaded / event.total);
    };
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // handled below
      }
      if (xhr.status === 200 && isSeriesResponse(body)) resolve(body);
      else reject(errorFromResponse(xhr.status, xhr.responseText));
    };
    xhr.onerror = () => reject(new ApiError('NETWORK_ERROR', 'The request could not be sent'));
    xhr.ontimeout = () => reject(new ApiError('TIMEOUT', 'The request timed out'));
    const form = new FormData();
    // the part names are the files' own: the server never stores or echoes them
    for (const file of files) form.append('file', file, file.name || 'slice');
    xhr.send(form);
  });
}
