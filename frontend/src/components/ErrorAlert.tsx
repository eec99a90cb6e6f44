import { errorSentence } from '../messages';
import type { UploadLimits } from '../validation';

export interface ShownError {
  code: string;
  message: string;
  fileName?: string;
  /** Refused in the browser, before any upload. */
  local?: boolean;
}

interface Props {
  error: ShownError;
  onDismiss: () => void;
  /** The service's limits, when known: a size error then names the limit. */
  limits?: UploadLimits | null;
}

export function ErrorAlert({ error, onDismiss, limits = null }: Props) {
  return (
    <div className="alert" role="alert">
      <svg className="alert__icon" aria-hidden="true" viewBox="0 0 24 24" width="20" height="20">
        <circle cx="12" cy="12" r="10" fill="none" stroke="currentColor" strokeWidth="2" />
        <path d="M12 7v6m0 4h.01" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
      </svg>
      <div className="alert__body">
        <p className="alert__sentence">{errorSentence(error.code, limits)}</p>
        <p className="alert__detail">
          {error.fileName ? <span className="alert__file">{error.fileName}: </span> : null}
          {error.message} <code className="alert__code">{error.code}</code>
        </p>
      </div>
      <button type="button" className="icon-button" onClick={onDismiss} aria-label="Dismiss message">
        <svg aria-hidden="true" viewBox="0 0 24 24" width="16" height="16">
          <path d="M6 6l12 12M18 6 6 18" stroke="currentColor" strokeWidth="2" strokeLinecap="round" />
        </svg>
      </button>
    </div>
  );
}
