/**
 * The checks the API makes before it reads an image, made in the browser first so a wrong
 * file is refused at once. The messages are the API's own, word for word.
 */

export const ALLOWED_EXTENSIONS = ['png', 'jpg', 'jpeg', 'gif', 'bmp', 'webp', 'dcm', 'dicom'] as const;
export const ALLOWED_MIME_TYPES = [
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/bmp',
  'image/webp',
  'application/dicom',
];
/** The API's MAX_CONTENT_LENGTH default: 16 MB. */
export const MAX_UPLOAD_BYTES = 16 * 1024 * 1024;

export const TYPE_MESSAGE = `File type not allowed. Allowed: ${ALLOWED_EXTENSIONS.join(', ')}`;
export const SIZE_MESSAGE = `File exceeds ${MAX_UPLOAD_BYTES / (1024 * 1024)}MB limit`;
export const EMPTY_MESSAGE = 'Image validation failed: the file is empty';

/** What the `accept` attribute of the file picker lists. */
export const ACCEPT_ATTRIBUTE = [
  ...ALLOWED_EXTENSIONS.map((ext) => `.${ext}`),
  ...ALLOWED_MIME_TYPES,
].join(',');

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

/**
 * null when the API would accept the file as far as name and size go; its content is
 * checked by the API (a text file named .jpg passes here and comes back INVALID_IMAGE).
 */
export function validateFile(file: File): ValidationError | null {
  const ext = fileExtension(file.name);
  if (ext) {
    if (!(ALLOWED_EXTENSIONS as readonly string[]).includes(ext)) {
      return { code: 'INVALID_FILE_TYPE', message: TYPE_MESSAGE };
    }
  } else if (file.type && !ALLOWED_MIME_TYPES.includes(file.type)) {
    // no extension: the API lets content decide, but a declared non-image type is clear
    return { code: 'INVALID_FILE_TYPE', message: TYPE_MESSAGE };
  }
  if (file.size > MAX_UPLOAD_BYTES) {
    return { code: 'FILE_TOO_LARGE', message: SIZE_MESSAGE };
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

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
