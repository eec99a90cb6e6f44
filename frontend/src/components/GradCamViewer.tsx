import { useId, useState } from 'react';
import { composeOverlay, downloadName, saveDataUrl } from '../download';
import { pngDataUrl, type Localization, type Visualization } from '../types';
import { hasOutline, OUTLINE_ON_BY_DEFAULT, OutlineArea, OutlineLayer, OutlineSwitch } from './Outline';

export type View = 'overlay' | 'heatmap' | 'original';

export const VIEWS: { value: View; label: string }[] = [
  { value: 'overlay', label: 'Overlay' },
  { value: 'heatmap', label: 'Heatmap' },
  { value: 'original', label: 'Original' },
];

/** The API blends its own overlay at alpha 0.4; the slider starts there. */
export const DEFAULT_OPACITY = 0.4;

interface Props {
  visualization: Visualization;
  fileName: string;
  predictedClass: string;
  /** The answer's tumour outline, for a model with a segmentation output. */
  localization?: Localization;
}

/**
 * The Grad-CAM pictures: scan, heatmap or both, with opacity, legend and download; and,
 * when the model outlined a tumour, that outline over them with a switch to hide it.
 */
export function GradCamViewer({ visualization, fileName, predictedClass, localization }: Props) {
  const [view, setView] = useState<View>('overlay');
  const [opacity, setOpacity] = useState(DEFAULT_OPACITY);
  const [outlineOn, setOutlineOn] = useState(OUTLINE_ON_BY_DEFAULT);
  const outlined = hasOutline(localization);
  const showOutline = outlined && outlineOn;
  const [saving, setSaving] = useState(false);
  const name = useId();
  const sliderId = useId();
  const percent = Math.round(opacity * 100);

  const showOriginal = view !== 'heatmap';
  const showHeatmap = view !== 'original';
  const heatmapOpacity = view === 'overlay' ? opacity : 1;
  const description =
    (view === 'overlay'
      ? `Scan ${fileName} with the Grad-CAM heatmap for ${predictedClass} at ${percent}% opacity`
      : view === 'heatmap'
        ? `Grad-CAM heatmap for ${predictedClass} of ${fileName}`
        : `Original scan ${fileName}`) + (showOutline ? ", with the model's tumour outline" : '');

  async function download() {
    setSaving(true);
    try {
      saveDataUrl(await composeOverlay(visualization, opacity), downloadName(fileName, 'gradcam-overlay'));
    } finally {
      setSaving(false);
    }
  }

  return (
    <div className="viewer">
      <div className="viewer__toolbar">
        <fieldset className="segmented">
          <legend className="visually-hidden">View</legend>
          {VIEWS.map((option) => (
            <label
              key={option.value}
              className={`segmented__option${view === option.value ? ' segmented__option--on' : ''}`}
            >
              <input
                className="visually-hidden"
                type="radio"
                name={name}
                value={option.value}
                checked={view === option.value}
                onChange={() => setView(option.value)}
              />
              {option.label}
            </label>
          ))}
        </fieldset>
        {outlined ? <OutlineSwitch on={outlineOn} onChange={setOutlineOn} /> : null}
        <button type="button" className="button button--ghost" onClick={download} disabled={saving}>
          <svg aria-hidden="true" viewBox="0 0 24 24" width="16" height="16">
            <path
              d="M12 4v11m0 0-4.5-4.5M12 15l4.5-4.5M4 17v1a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2v-1"
              fill="none"
              stroke="currentColor"
              strokeWidth="2"
              strokeLinecap="round"
              strokeLinejoin="round"
            />
          </svg>
          Download overlay <span className="muted-inline">PNG</span>
        </button>
      </div>

      <figure className="viewer__figure" role="group" aria-label={description} data-view={view}>
        <div className="viewer__stack">
          <img
            className="viewer__img viewer__img--original"
            src={pngDataUrl(visualization.original_image)}
            alt={`Original scan ${fileName}`}
            hidden={!showOriginal}
          />
          <img
            className="viewer__img viewer__img--heatmap"
            src={pngDataUrl(visualization.heatmap_only)}
            alt={`Grad-CAM heatmap for ${predictedClass}`}
            hidden={!showHeatmap}
            style={{ opacity: heatmapOpacity }}
          />
          {outlined ? (
            <OutlineLayer
              maskPng={localization.mask_png}
              className="viewer__img viewer__img--outline"
              hidden={!showOutline}
              alt={`Tumour outline by the model on ${fileName}`}
            />
          ) : null}
        </div>
      </figure>

      <div className="viewer__controls">
        <div className={`opacity${view === 'overlay' ? '' : ' opacity--off'}`}>
          <div className="opacity__label">
            <label htmlFor={sliderId}>Heatmap opacity</label>
            <output htmlFor={sliderId}>{percent}%</output>
          </div>
          <input
            id={sliderId}
            className="opacity__slider"
            type="range"
            min={0}
            max={100}
            step={5}
            value={percent}
            disabled={view !== 'overlay'}
            aria-valuetext={`${percent}%`}
            onChange={(event) => setOpacity(Number(event.target.value) / 100)}
          />
        </div>
        <div className="legend">
          <div className="legend__bar" aria-hidden="true" />
          <div className="legend__ends" aria-hidden="true">
            <span>Least</span>
            <span>Most</span>
          </div>
          <p className="legend__text">
            <span className="legend__swatch legend__swatch--red" aria-hidden="true" />
            {'Red = where the model looked most, '}
            <span className="nowrap">
              <span className="legend__swatch legend__swatch--blue" aria-hidden="true" />
              {'blue = least.'}
            </span>
          </p>
        </div>
        {outlined ? (
          <OutlineArea localization={localization} />
        ) : localization ? (
          <p className="viewer__note">The model outlined no tumour on this slice.</p>
        ) : null}
      </div>
    </div>
  );
}
