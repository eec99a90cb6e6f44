/** The page's error for a failed call: its own module, so that api.ts and apiKey.ts share it. */

/** A failed classification: `code` is the API's error code, or NETWORK_ERROR and friends. */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(code: string, message: string, status = 0) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}
