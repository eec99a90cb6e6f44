/**
 * The checks the API makes before it reads an image, made in the browser first so a wrong
 * file is refused at once. The limits are the service's own, read from /api/health
 * (`upload`), and the messages are the API's, word for word. Until the service has said
 * what it takes (or when an older one does not say), files go to it unchecked and its
 * answer says what is wrong.
 */
import { formatMegabytes } from './format';

/** What /api/classify takes, as /api/health states it. */
export interface UploadLimits {
  maxBytes: number;
  extensions: string[];
  dicomExtensions: string[];
}

/** A non-DICOM file without an extension may still declare an image type. */
const DICOM_MIME_TYPE = 'application/dicom';

export const EMPTY_MESSAGE = 'Image validation failed: the file is empty';

/** The API's INVALID_FILE_TYPE message. */
export function typeMessage(limits: UploadLimits): string {
  return `File type not allowed. Allowed: ${limits.extensions.join(', ')}`;
}

/** The API's FILE_TOO_LARGE message ("File exceeds 16MB limit"). */
export function sizeMessage(limits: UploadLimits): string {
  return `File exceeds ${formatMegabytes(limits.maxBytes).replace(' ', '')} limit`;
}

/** What the `accept` attribute of the file picker lists: the extensions, and DICOM's type. */
export function acceptAttribute(limits: UploadLimits): string {
  return [...limits.extensions.map((ext) => `.${ext}`), DICOM_MIME_TYPE].join(',');
}

export interface ValidationError {
  code: 'INVALID_FILE_TYPE' | 'FILE_TOO_LARGE' | 'INVALID_IMAGE';
  message: string;
}

/** Lower-case extension without the dot, '' when there is none (as the API reads it). */
export function fileExtension(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  const dot = base.lastIndexOf('.');
  return dot >= 0 ? base.slice(dot + 1).toLowerCase() : '';
}

function declaresAnotherType(file: File): boolean {
  return Boolean(file.type) && !file.type.startsWith('image/') && file.type !== DICOM_MIME_TYPE;
}

/**
 * null when the API would accept the file as far as name and size go; its content is
 * checked by the API (a text file named .jpg passes here and comes back INVALID_IMAGE).
 * Without ``limits`` only an empty file is refused here.
 */
export function validateFile(file: File, limits: UploadLimits | null): ValidationError | null {
  if (limits) {
    const ext = fileExtension(file.name);
    // no extension: the API lets content decide, but a declared non-image type is clear
    if (ext ? !limits.extensions.includes(ext) : declaresAnotherType(file)) {
      return { code: 'INVALID_FILE_TYPE', message: typeMessage(limits) };
    }
    if (file.size > limits.maxBytes) {
      return { code: 'FILE_TOO_LARGE', message: sizeMessage(limits) };
    }
  }
  if (file.size === 0) {
    return { code: 'INVALID_IMAGE', message: EMPTY_MESSAGE };
  }
  return null;
}

const EXTENSION_FOR_TYPE: Record<string, string> = {
  'image/png': 'png',
  'image/jpeg': 'jpg',
  'image/gif': 'gif',
  'image/bmp': 'bmp',
  'image/webp': 'webp',
};

/** A pasted image often has no useful name; give it one with the right extension. */
export function namePastedFile(file: File): File {
  if (file.name && fileExtension(file.name)) return file;
  const ext = EXTENSION_FOR_TYPE[file.type] ?? 'png';
  return new File([file], `pasted-image.${ext}`, { type: file.type || 'image/png' });
}
