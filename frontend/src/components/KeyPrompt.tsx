import { useEffect, useId, useRef, useState, useSyncExternalStore, type FormEvent } from 'react';
import { currentKeyRequest, subscribeKeyRequests } from '../apiKey';
import './KeyPrompt.css';

/**
 * The dialog that asks for an API key when the service answers 401 (or 403: revoked).
 * The key goes to memory only (apiKey.ts); the field is a password field that the
 * browser is asked not to remember.
 */
export function KeyPrompt() {
  const request = useSyncExternalStore(subscribeKeyRequests, currentKeyRequest);
  const [value, setValue] = useState('');
  const input = useRef<HTMLInputElement>(null);
  const id = useId();

  useEffect(() => {
    if (request) {
      setValue('');
      input.current?.focus();
    }
  }, [request]);

  if (!request) return null;

  function submit(event: FormEvent) {
    event.preventDefault();
    request?.answer(value);
  }

  const revoked = request.code === 'FORBIDDEN';
  return (
    <div className="key-prompt" role="dialog" aria-modal="true" aria-labelledby={`${id}-title`}>
      <form className="key-prompt__box" onSubmit={submit}>
        <h2 id={`${id}-title`}>{revoked ? 'This API key was revoked' : 'API key needed'}</h2>
        <p>
          {request.reason} The key is kept in this tab&apos;s memory only and is forgotten when the page
          closes.
        </p>
        <label htmlFor={`${id}-key`}>API key</label>
        <input
          ref={input}
          id={`${id}-key`}
          type="password"
          autoComplete="off"
          spellCheck={false}
          value={value}
          onChange={(event) => setValue(event.target.value)}
          onKeyDown={(event) => {
            if (event.key === 'Escape') request.answer(null);
          }}
        />
        <div className="key-prompt__actions">
          <button type="button" className="button button--ghost" onClick={() => request.answer(null)}>
            Cancel
          </button>
          <button type="submit" className="button button--primary" disabled={!value.trim()}>
            Use key
          </button>
        </div>
      </form>
    </div>
  );
}
