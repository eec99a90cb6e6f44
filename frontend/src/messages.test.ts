import { describe, expect, it } from 'vitest';
import { errorFromResponse } from './api';
import { ApiError } from './apiError';
import { ERROR_SENTENCES, errorSentence, FALLBACK_SENTENCE } from './messages';
import { LIMITS } from './test/fixtures';

const API_CODES = [
  'NO_FILE',
  'EMPTY_FILENAME',
  'INVALID_FILE_TYPE',
  'INVALID_IMAGE',
  'FILE_TOO_LARGE',
  'INVALID_SERIES',
  'BAD_REQUEST',
  'CLASSIFICATION_ERROR',
  'NOT_BRAIN_MRI',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'INTERNAL_ERROR',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'RATE_LIMITED',
  'SERVER_BUSY',
];

describe('error sentences', () => {
  it.each([...API_CODES, 'NETWORK_ERROR'])('%s has its own sentence', (code) => {
    const sentence = errorSentence(code);
    expect(sentence).not.toBe(FALLBACK_SENTENCE);
    expect(sentence).toMatch(/^[A-Z].{20,}\.$/); // a whole sentence, not a code
    expect(sentence).not.toContain(code);
  });

  it('no two codes share a sentence', () => {
    const sentences = Object.values(ERROR_SENTENCES);
    expect(new Set(sentences).size).toBe(sentences.length);
  });

  it('says what to do for the common ones', () => {
    expect(errorSentence('INVALID_IMAGE')).toMatch(/could not be read as an image/);
    expect(errorSentence('FILE_TOO_LARGE', LIMITS)).toMatch(/smaller than 16 MB\./);
    expect(errorSentence('FILE_TOO_LARGE')).toMatch(/smaller file/); // limit not known yet
    expect(errorSentence('INVALID_FILE_TYPE')).toMatch(/DICOM/);
    expect(errorSentence('NETWORK_ERROR')).toMatch(/could not be reached/);
  });

  it('falls back for a code it does not know', () => {
    expect(errorSentence('SOMETHING_NEW')).toBe(FALLBACK_SENTENCE);
  });
});

describe('errorFromResponse', () => {
  it("keeps the API's code and message", () => {
    const body = JSON.stringify({
      success: false,
      error: { message: 'Image validation failed: cannot identify image', code: 'INVALID_IMAGE', status: 400 },
      timestamp: 'x',
    });
    const error = errorFromResponse(400, body);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.code).toBe('INVALID_IMAGE');
    expect(error.message).toMatch(/cannot identify/);
    expect(error.status).toBe(400);
  });

  it.each([
    [413, 'FILE_TOO_LARGE'],
    [404, 'NOT_FOUND'],
    [405, 'METHOD_NOT_ALLOWED'],
    [502, 'INTERNAL_ERROR'],
    [200, 'BAD_RESPONSE'],
  ])('derives a code from HTTP %i when the body is not ours', (status, code) => {
    expect(errorFromResponse(status, '<html>Bad gateway</html>').code).toBe(code);
  });
});
