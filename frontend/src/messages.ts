/**
 * A human sentence for every error code the API can answer with (braintumor.errors.ERROR_CODES,
 * checked by tests/test_error_codes.py), and for the page's own failures.
 */
import { formatMegabytes } from './format';
import type { UploadLimits } from './validation';

export const ERROR_SENTENCES: Record<string, string> = {
  NO_FILE: 'No image reached the server. Please choose a scan and try again.',
  EMPTY_FILENAME: 'The file has no name, so the server could not accept it. Rename it and try again.',
  INVALID_FILE_TYPE:
    'This type of file is not supported. Please use a PNG, JPEG, GIF, BMP or WebP image, or a DICOM file.',
  INVALID_IMAGE:
    'This file could not be read as an image. It may be damaged, empty, or not a picture at all.',
  FILE_TOO_LARGE: 'This image is too large for the service. Please choose a smaller file.',
  INVALID_SERIES:
    'These files do not make one series. Please send the slices of a single series, one zip of them, or one NIfTI volume.',
  CLASSIFICATION_ERROR:
    'The model could not analyse this image. Please try again, or try a different scan.',
  NOT_BRAIN_MRI:
    'This picture does not look like a brain MRI scan, so no diagnosis was made. Please upload a grayscale brain MRI slice.',
  NOT_FOUND:
    'The classification service was not found at this address. Check the API address the page uses.',
  METHOD_NOT_ALLOWED:
    'The classification service refused this kind of request. The page and the server may not be the same version.',
  BAD_REQUEST: 'The server could not understand the upload. Please try again.',
  UNAUTHORIZED: 'This service needs an API key, and none was accepted. Ask its operator for a key.',
  FORBIDDEN: 'This API key has been revoked. Ask the service operator for a new one.',
  RATE_LIMITED: 'Too many scans in a short time for this key. Please wait a moment and try again.',
  SERVER_BUSY: 'The service is busy with other scans right now. Please try again in a few seconds.',
  INTERNAL_ERROR: 'Something went wrong on the server. Please try again in a moment.',
  NETWORK_ERROR:
    'The classification service could not be reached. Check your connection and that the server is running.',
  TIMEOUT: 'The server took too long to answer. Please try again in a moment.',
  BAD_RESPONSE:
    'The server answered with something that is not a classification. Check the API address the page uses.',
};

export const FALLBACK_SENTENCE = 'Something unexpected went wrong. Please try again.';

/** The sentence for ``code``; with the service's ``limits`` a size error names its limit. */
export function errorSentence(code: string, limits: UploadLimits | null = null): string {
  if (code === 'FILE_TOO_LARGE' && limits) {
    return `This image is too large. Please choose a file smaller than ${formatMegabytes(limits.maxBytes)}.`;
  }
  return ERROR_SENTENCES[code] ?? FALLBACK_SENTENCE;
}
