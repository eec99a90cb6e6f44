import { useId, useState, type ChangeEvent, type DragEvent } from 'react';
import { ApiError } from '../apiError';
import { withApiKey } from '../apiKey';
import { hasOutline, OUTLINE_ON_BY_DEFAULT, OutlineArea, OutlineLayer, OutlineSwitch } from '../components/Outline';
import { errorSentence } from '../messages';
import { pngDataUrl } from '../types';
import { classifySeries } from './api';
import { dropEntries, filesOf } from './droppedFiles';
import type { SeriesResponse, SeriesSlice } from './types';
import './series.css';

type State =
  | { kind: 'idle' }
  | { kind: 'busy'; files: number; progress: number }
  | { kind: 'done'; result: SeriesResponse }
  | { kind: 'error'; message: string };

/** Codes whose API message says exactly what is wrong with this series: shown as is. */
const OWN_MESSAGE = new Set(['INVALID_SERIES', 'INVALID_IMAGE', 'FILE_TOO_LARGE', 'NOT_BRAIN_MRI',
  'INVALID_FILE_TYPE']);

function slug(name: string | null): string {
  const known = ['glioma', 'meningioma', 'no-tumor', 'pituitary'];
  const s = (name ?? '').toLowerCase().replace(/[^a-z]+/g, '-');
  return known.includes(s) ? s : 'other';
}

function sliceLabel(slice: SeriesSlice, key: boolean): string {
  const where = slice.position === null ? '' : ` at ${slice.position} mm`;
  const what = slice.refused ? 'refused, not a brain MRI' : `${slice.class} ${slice.confidence}%`;
  return `Slice ${slice.index}${where}: ${what}${key ? ' (key slice)' : ''}`;
}

interface Props {
  /** The request; tests give their own. */
  classify?: typeof classifySeries;
}

/**
 * A whole series in one request: several DICOM files, a folder, a zip or a NIfTI volume.
 * Shows the series answer, a strip of the slices marked by class or refusal, and the key
 * slice with its heatmap (and, for a model that outlines the tumour, its outline). Files dropped on this panel come here, not to the single-image
 * upload.
 */
export function SeriesPanel({ classify = classifySeries }: Props) {
  const id = useId();
  const [state, setState] = useState<State>({ kind: 'idle' });
  const [chosen, setChosen] = useState<number | null>(null);
  const [dragging, setDragging] = useState(false);
  // the key slice's outline, as on the single-image viewer: shown, with a switch to hide it
  const [outlineOn, setOutlineOn] = useState(OUTLINE_ON_BY_DEFAULT);

  async function send(files: File[]) {
    if (files.length === 0) return;
    setChosen(null);
    setOutlineOn(OUTLINE_ON_BY_DEFAULT);
    setState({ kind: 'busy', files: files.length, progress: 0 });
    try {
      // a 401 asks for the service's API key and sends the series again with it
      const result = await withApiKey(() =>
        classify(files, {
          onUploadProgress: (progress) => setState({ kind: 'busy', files: files.length, progress }),
        }),
      );
      setState({ kind: 'done', result });
    } catch (error) {
      const e = error instanceof ApiError ? error : new ApiError('INTERNAL_ERROR', String(error));
      setState({
        kind: 'error',
        message: OWN_MESSAGE.has(e.code) && e.message ? e.message : errorSentence(e.code),
      });
    }
  }

  function onChange(event: ChangeEvent<HTMLInputElement>) {
    const files = Array.from(event.target.files ?? []);
    event.target.value = '';
    void send(files);
  }

  function onDrop(event: DragEvent<HTMLElement>) {
    // handled here: the page's single-image drop (useFileDrop) skips a prevented drop
    event.preventDefault();
    setDragging(false);
    const dropped = dropEntries(event.dataTransfer); // now: the browser empties it after
    filesOf(dropped).then(send, (error: unknown) =>
      setState({ kind: 'error', message: `The dropped folder could not be read: ${String(error)}` }),
    );
  }

  function onDragOver(event: DragEvent<HTMLElement>) {
    event.preventDefault();
    setDragging(true);
  }

  const result = state.kind === 'done' ? state.result : null;
  const picked = result && chosen !== null ? result.slices[chosen] : null;
  const outline = result?.key_slice.localization;
  const outlined = hasOutline(outline);
  return (
    <section
      className={`series${dragging ? ' series--dragging' : ''}`}
      aria-labelledby={`${id}-title`}
      onDrop={onDrop}
      onDragOver={onDragOver}
      onDragLeave={() => setDragging(false)}
    >
      <h2 id={`${id}-title`} className="series__title">
        Classify a whole series
      </h2>
      <p className="series__hint">
        Drop DICOM slices, their folder, a .zip of them or a NIfTI volume (.nii, .nii.gz)
        here, or choose them: every slice is classified and the series gets one answer.
      </p>
      <div className="series__buttons">
        <input id={`${id}-files`} className="visually-hidden" type="file" multiple onChange={onChange} />
        <label htmlFor={`${id}-files`} className="button">
          Choose series files
        </label>
        <input
          id={`${id}-folder`}
          className="visually-hidden"
          type="file"
          multiple
          onChange={onChange}
          {...{ webkitdirectory: '' }}
        />
        <label htmlFor={`${id}-folder`} className="button">
          Choose a series folder
        </label>
      </div>
      {state.kind === 'busy' ? (
        <p role="status" className="series__facts">
          {state.progress < 1
            ? `Uploading ${state.files} file${state.files === 1 ? '' : 's'}… ${Math.round(state.progress * 100)}%`
            : `Classifying ${state.files} file${state.files === 1 ? '' : 's'}…`}
        </p>
      ) : null}
      {state.kind === 'error' ? (
        <div className="alert series__error" role="alert">
          {state.message}
        </div>
      ) : null}
      {result ? (
        <div className="series__result">
          <h3 className="series__class">
            Series: {result.summary.class} <strong>{result.summary.confidence}%</strong>
          </h3>
          <p className="series__facts">
            {result.series.slice_count} {result.series.orientation ?? ''} slices
            {result.series.modality ? ` (${result.series.modality})` : ''}:{' '}
            {result.summary.slices_answered} answered, {result.summary.slices_refused} refused
            {result.summary.tumour_probability !== null
              ? `; tumour probability ${result.summary.tumour_probability}% on the key slice`
              : ''}
            {result.series.files_ignored ? `; ${result.series.files_ignored} files ignored` : ''}
          </p>
          {result.series.warning ? <p className="series__facts">{result.series.warning}</p> : null}
          <ul className="series__legend" aria-hidden="true">
            {['Glioma', 'Meningioma', 'No Tumor', 'Pituitary'].map((name) => (
              <li key={name}>
                <span className={`slice--${slug(name)}`} />
                {name}
              </li>
            ))}
            <li>
              <span className="slice--refused" />
              refused
            </li>
          </ul>
          <ol className="series__strip" aria-label="Slices in series order">
            {result.slices.map((slice) => {
              const key = slice.index === result.key_slice.index;
              return (
                <li key={slice.index}>
                  <button
                    type="button"
                    className={`slice slice--${slice.refused ? 'refused' : slug(slice.class)}${key ? ' slice--key' : ''}`}
                    aria-label={sliceLabel(slice, key)}
                    title={sliceLabel(slice, key)}
                    aria-pressed={chosen === slice.index}
                    onClick={() => setChosen(slice.index === chosen ? null : slice.index)}
                  >
                    {slice.index}
                  </button>
                </li>
              );
            })}
          </ol>
          {picked ? (
            <p className="series__facts" aria-live="polite">
              {sliceLabel(picked, picked.index === result.key_slice.index)}
              {picked.refused && picked.ood ? ` (${picked.ood.reasons.join('; ')})` : ''}
            </p>
          ) : null}
          {outlined ? (
            <div className="series__outline">
              <OutlineSwitch on={outlineOn} onChange={setOutlineOn} />
              <OutlineArea localization={outline} />
            </div>
          ) : outline ? (
            <p className="series__facts">The model outlined no tumour on the key slice.</p>
          ) : null}
          <div className="series__key">
            <figure>
              <div className="series__stack">
                <img
                  className="series__img series__img--overlay"
                  src={pngDataUrl(result.key_slice.visualization.heatmap_overlay)}
                  alt={`Key slice ${result.key_slice.index} with the Grad-CAM heatmap`}
                />
                {outlined ? (
                  <OutlineLayer
                    maskPng={outline.mask_png}
                    className="series__img"
                    hidden={!outlineOn}
                    alt={`Tumour outline by the model on key slice ${result.key_slice.index}`}
                  />
                ) : null}
              </div>
              <figcaption>
                Key slice {result.key_slice.index}: {result.key_slice.class}{' '}
                {result.key_slice.confidence}%
              </figcaption>
            </figure>
            <figure>
              <div className="series__stack">
                <img
                  className="series__img series__img--original"
                  src={pngDataUrl(result.key_slice.visualization.original_image)}
                  alt={`Key slice ${result.key_slice.index} as decoded`}
                />
                {outlined ? (
                  <OutlineLayer
                    maskPng={outline.mask_png}
                    className="series__img"
                    hidden={!outlineOn}
                    alt={`Tumour outline by the model on key slice ${result.key_slice.index} as decoded`}
                  />
                ) : null}
              </div>
              <figcaption>As decoded</figcaption>
            </figure>
          </div>
          <p className="series__rule">Rule: {result.summary.rule}.</p>
        </div>
      ) : null}
    </section>
  );
}
