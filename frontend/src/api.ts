/** The page's calls: POST /api/classify with upload progress, and GET /api/health. */
import { ApiError } from './apiError';
import { authorize } from './apiKey';
import type { ApiErrorBody, ClassifyResponse } from './types';
import type { UploadLimits } from './validation';

/** Same origin by default; VITE_API_BASE points a separately hosted page at the API. */
export const API_BASE = (import.meta.env.VITE_API_BASE ?? '').trim().replace(/\/+$/, '');

export function apiUrl(path: string): string {
  return `${API_BASE}${path}`;
}

const CODE_FOR_STATUS: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'FILE_TOO_LARGE',
  415: 'INVALID_FILE_TYPE',
  429: 'RATE_LIMITED',
  503: 'SERVER_BUSY',
};

function isErrorBody(body: unknown): body is ApiErrorBody {
  const error = (body as ApiErrorBody | null)?.error;
  return typeof error === 'object' && error !== null && typeof error.code === 'string';
}

function isClassifyResponse(body: unknown): body is ClassifyResponse {
  const b = body as ClassifyResponse | null;
  return (
    b?.success === true &&
    typeof b.prediction?.class === 'string' &&
    typeof b.prediction.probabilities === 'object' &&
    typeof b.visualization?.heatmap_only === 'string' &&
    typeof b.visualization.original_image === 'string' &&
    typeof b.visualization.heatmap_overlay === 'string'
  );
}

/** The error an answer stands for: the API's own, or one derived from the HTTP status. */
export function errorFromResponse(status: number, text: string): ApiError {
  let body: unknown = null;
  try {
    body = JSON.parse(text);
  } catch {
    // a proxy's HTML error page, say
  }
  if (isErrorBody(body)) {
    return new ApiError(body.error.code, body.error.message, body.error.status ?? status);
  }
  if (status >= 200 && status < 300) {
    return new ApiError('BAD_RESPONSE', 'The answer is not a classification', status);
  }
  const code = CODE_FOR_STATUS[status] ?? (status >= 500 ? 'INTERNAL_ERROR' : 'BAD_RESPONSE');
  return new ApiError(code, `HTTP ${status}`, status);
}

export interface ClassifyOptions {
  /** Fraction of the upload sent, 0..1. */
  onUploadProgress?: (fraction: number) => void;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** Upload one image; resolves with the API's answer or rejects with an ApiError. */
export function classifyImage(file: File, options: ClassifyOptions = {}): Promise<ClassifyResponse> {
  const { onUploadProgress, signal, timeoutMs = 120_000 } = options;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new ApiError('ABORTED', 'Cancelled'));
      return;
    }
    const xhr = new XMLHttpRequest();
    xhr.open('POST', apiUrl('/api/classify'));
    xhr.setRequestHeader('Accept', 'application/json');
    authorize(xhr); // the API key, once the service has asked for one
    xhr.timeout = timeoutMs;
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onUploadProgress?.(event.loaded / event.total);
    };
    xhr.upload.onload = () => onUploadProgress?.(1);
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // handled below
      }
      if (xhr.status === 200 && isClassifyResponse(body)) resolve(body);
      else reject(errorFromResponse(xhr.status, xhr.responseText));
    };
    xhr.onerror = () => reject(new ApiError('NETWORK_ERROR', 'The request could not be sent'));
    xhr.ontimeout = () => reject(new ApiError('TIMEOUT', 'The request timed out'));
    xhr.onabort = () => reject(new ApiError('ABORTED', 'Cancelled'));
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

export interface Health {
  status: string;
  details?: { model_version?: string | null };
  /** What /api/classify takes (absent from services that predate it). */
  upload?: { max_bytes: number; extensions: string[]; dicom_extensions: string[] };
}

/** The upload limits a health answer states, or null when it states none. */
export function uploadLimits(health: Health): UploadLimits | null {
  const upload = health.upload;
  if (!upload || typeof upload.max_bytes !== 'number' || !Array.isArray(upload.extensions)) {
    return null;
  }
  return {
    maxBytes: upload.max_bytes,
    extensions: upload.extensions,
    dicomExtensions: upload.dicom_extensions ?? [],
  };
}

/** GET /api/health, for the service indicator in the header. */
export async function fetchHealth(signal?: AbortSignal): Promise<Health> {
  const response = await fetch(apiUrl('/api/health'), {
    headers: { Accept: 'application/json' },
    signal,
  });
  if (!response.ok) throw errorFromResponse(response.status, await response.text());
  return (await response.json()) as Health;
}
