/**
 * The API key, when the service asks for one (API_KEYS_FILE): asked for on a 401, kept in
 * this module's memory only (never localStorage, sessionStorage or a cookie), so it is
 * gone when the tab closes or reloads, and sent as `Authorization: Bearer KEY`.
 */
import { ApiError } from './apiError';

let apiKey: string | null = null;

export interface KeyRequest {
  /** Why the page asks: the service's own sentence (no key, a wrong one, a revoked one). */
  reason: string;
  code: string;
  answer: (key: string | null) => void;
}

let pending: KeyRequest | null = null;
const listeners = new Set<() => void>();

function changed(): void {
  for (const listener of listeners) listener();
}

export function getApiKey(): string | null {
  return apiKey;
}

export function setApiKey(key: string | null): void {
  apiKey = key && key.trim() ? key.trim() : null;
}

/** Adds the key, when there is one, to a request about to be sent. */
export function authorize(xhr: XMLHttpRequest): void {
  if (apiKey) xhr.setRequestHeader('Authorization', `Bearer ${apiKey}`);
}

/** The key question shown now, for the prompt component (useSyncExternalStore). */
export function currentKeyRequest(): KeyRequest | null {
  return pending;
}

export function subscribeKeyRequests(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Ask the person for a key; resolves with it, or null when they cancel. */
export function askForKey(code: string, reason: string): Promise<string | null> {
  pending?.answer(null); // one question at a time: an older one is cancelled
  return new Promise((resolve) => {
    const request: KeyRequest = {
      code,
      reason,
      answer: (key) => {
        if (pending === request) {
          pending = null;
          changed();
        }
        resolve(key && key.trim() ? key.trim() : null);
      },
    };
    pending = request;
    changed();
  });
}

const NEEDS_KEY = new Set(['UNAUTHORIZED', 'FORBIDDEN']);

/**
 * Send a request; when the service answers 401 or 403, ask for a key and send it again
 * with the key, until it is accepted or the person cancels (then the error stands).
 */
export async function withApiKey<T>(send: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await send();
    } catch (caught) {
      if (!(caught instanceof ApiError) || !NEEDS_KEY.has(caught.code)) throw caught;
      const key = await askForKey(caught.code, caught.message);
      if (key === null) throw caught;
      setApiKey(key);
    }
  }
}
