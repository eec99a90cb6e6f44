import { describe, expect, it } from 'vitest';
import { imageFile, LIMITS, sizedFile } from './test/fixtures';
import {
  acceptAttribute,
  fileExtension,
  namePastedFile,
  sizeMessage,
  typeMessage,
  validateFile,
} from './validation';

const TYPE_MESSAGE = typeMessage(LIMITS);
const SIZE_MESSAGE = sizeMessage(LIMITS);
const MAX_UPLOAD_BYTES = LIMITS.maxBytes;

describe('validateFile', () => {
  it.each(['a.png', 'b.jpg', 'c.jpeg', 'd.gif', 'e.bmp', 'f.webp', 'G.PNG', 'scan.final.JPeG', 's.dcm', 'S.DICOM'])(
    'accepts %s',
    (name) => {
      expect(validateFile(imageFile(name), LIMITS)).toBeNull();
    },
  );

  it.each(['notes.txt', 'scan.tiff', 'scan.dcm.zip', 'archive.png.zip', 'scan.svg'])('refuses %s', (name) => {
    expect(validateFile(imageFile(name, 10, 'application/octet-stream'), LIMITS)).toEqual({
      code: 'INVALID_FILE_TYPE',
      message: TYPE_MESSAGE,
    });
  });

  it("uses the API's message word for word", () => {
    expect(TYPE_MESSAGE).toBe('File type not allowed. Allowed: png, jpg, jpeg, gif, bmp, webp, dcm, dicom');
    expect(SIZE_MESSAGE).toBe('File exceeds 16MB limit');
  });

  it('lets a name without extension through when its type is an image or unknown (the API decides)', () => {
    expect(validateFile(imageFile('scan', 10, 'image/png'), LIMITS)).toBeNull();
    expect(validateFile(imageFile('scan', 10, ''), LIMITS)).toBeNull();
    expect(validateFile(imageFile('scan', 10, 'text/plain'), LIMITS)?.code).toBe('INVALID_FILE_TYPE');
  });

  it('accepts exactly 16 MB and refuses one byte more', () => {
    expect(validateFile(sizedFile('big.png', MAX_UPLOAD_BYTES), LIMITS)).toBeNull();
    expect(validateFile(sizedFile('big.png', MAX_UPLOAD_BYTES + 1), LIMITS)).toEqual({
      code: 'FILE_TOO_LARGE',
      message: SIZE_MESSAGE,
    });
  });

  it('refuses an empty file as an invalid image', () => {
    expect(validateFile(imageFile('empty.png', 0), LIMITS)?.code).toBe('INVALID_IMAGE');
  });

  it('does not look inside: a text file named .jpg is left to the API', () => {
    const text = new File(['hello, not an image'], 'fake.jpg', { type: 'image/jpeg' });
    expect(validateFile(text, LIMITS)).toBeNull();
  });

  it("checks against the service's own limits, whatever they are", () => {
    const small = { maxBytes: 1024 * 1024, extensions: ['png'], dicomExtensions: [] };
    expect(validateFile(sizedFile('a.png', 2 * 1024 * 1024), small)).toEqual({
      code: 'FILE_TOO_LARGE',
      message: 'File exceeds 1MB limit',
    });
    expect(validateFile(imageFile('a.jpg'), small)).toEqual({
      code: 'INVALID_FILE_TYPE',
      message: 'File type not allowed. Allowed: png',
    });
  });

  it('leaves type and size to the service until it has stated its limits', () => {
    expect(validateFile(imageFile('notes.txt', 10, 'text/plain'), null)).toBeNull();
    expect(validateFile(sizedFile('huge.png', 1e9), null)).toBeNull();
    expect(validateFile(imageFile('empty.png', 0), null)?.code).toBe('INVALID_IMAGE');
  });

  it('lets the file picker offer the extensions and DICOM', () => {
    expect(acceptAttribute(LIMITS)).toBe(
      '.png,.jpg,.jpeg,.gif,.bmp,.webp,.dcm,.dicom,application/dicom',
    );
  });
});

describe('fileExtension and pasted files', () => {
  it('reads the last extension, lower-cased, like the API', () => {
    expect(fileExtension('a/b/Scan.JPG')).toBe('jpg');
    expect(fileExtension('C:\\x\\scan.tar.gz')).toBe('gz');
    expect(fileExtension('scan')).toBe('');
  });

  it('names a pasted image after its type', () => {
    const pasted = new File([new Uint8Array(4)], '', { type: 'image/jpeg' });
    expect(namePastedFile(pasted).name).toBe('pasted-image.jpg');
    const named = imageFile('mine.png');
    expect(namePastedFile(named)).toBe(named);
  });
});
