import { useId, useRef, type ChangeEvent } from 'react';
import { formatMegabytes } from '../format';
import { acceptAttribute, type UploadLimits } from '../validation';

interface Props {
  onFile: (file: File) => void;
  busy: boolean;
  /** A file is being dragged over the page. */
  dragging: boolean;
  hasScans: boolean;
  /** What the service takes, once it has said (null: any file may be chosen). */
  limits: UploadLimits | null;
}

/** Choose a file; the page as a whole takes drops and pastes (see useFileDrop and App). */
export function UploadZone({ onFile, busy, dragging, hasScans, limits }: Props) {
  const inputId = useId();
  const hintId = useId();
  const input = useRef<HTMLInputElement>(null);

  function onChange(event: ChangeEvent<HTMLInputElement>) {
    const file = event.target.files?.[0];
    // reset so that choosing the same file again still fires a change
    event.target.value = '';
    if (file) onFile(file);
  }

  return (
    <section
      className={`upload${dragging ? ' upload--dragging' : ''}`}
      aria-labelledby={`${inputId}-title`}
    >
      <h2 id={`${inputId}-title`} className="upload__title">
        {hasScans ? 'Classify another scan' : 'Classify an MRI scan'}
      </h2>
      <p className="upload__hint" id={hintId}>
        Drop an image anywhere on the page, paste it
        <span aria-hidden="true"> (Ctrl+V)</span>, or choose a file.
      </p>
      <input
        ref={input}
        id={inputId}
        className="visually-hidden"
        type="file"
        accept={limits ? acceptAttribute(limits) : undefined}
        aria-describedby={hintId}
        onChange={onChange}
      />
      <label htmlFor={inputId} className="button button--primary upload__button">
        <svg aria-hidden="true" viewBox="0 0 24 24" width="18" height="18">
          <path
            d="M12 16V4m0 0-4.5 4.5M12 4l4.5 4.5M4 15v3a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-3"
            fill="none"
            stroke="currentColor"
            strokeWidth="2"
            strokeLinecap="round"
            strokeLinejoin="round"
          />
        </svg>
        {busy ? 'Choose a different image' : 'Choose MRI image'}
      </label>
      {limits ? (
        <p className="upload__limits">
          {limits.extensions.map((e) => e.toUpperCase()).join(', ')} · up to{' '}
          {formatMegabytes(limits.maxBytes)}
        </p>
      ) : null}
    </section>
  );
}
