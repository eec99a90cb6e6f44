import { useId } from 'react';
import { formatArea } from '../format';
import { pngDataUrl, type Localization } from '../types';

/**
 * The outline is shown as soon as an answer has one, with a switch to hide it. A reader
 * looks first for where the model puts the lesion and then checks the tissue under it:
 * the outline is a thin line over a faint tint, so it hides almost nothing, and one
 * click takes it away to read the pixels beneath, as a viewer's annotation toggle does.
 * Hidden by default, the one answer that says where the tumour is would go unseen.
 */
export const OUTLINE_ON_BY_DEFAULT = true;

/** Magenta: a hue the jet heatmap never uses, visible over grey and over jet alike. */
export const OUTLINE_COLOUR = '#ff2bd6';

/** Whether an answer carries an outline worth drawing. */
export function hasOutline(localization: Localization | undefined): localization is Localization {
  return Boolean(localization?.found);
}

interface LayerProps {
  /** The answer's `mask_png`: the upload's size, 255 inside the outline, 0 outside. */
  maskPng: string;
  className: string;
  hidden: boolean;
  alt: string;
}

/**
 * The mask drawn as its contour (and a faint tint inside) in one layer over the scan.
 * The mask has the upload's aspect ratio, as the API's pictures do, so stretched over the
 * same box it lines up with them. An SVG filter turns its grey into the outline: the grey
 * becomes alpha, the alpha is dilated by 1.5 CSS px and the inside taken away (the line,
 * as wide on a phone as on a desktop), and both are flooded with the outline's colour.
 */
export function OutlineLayer({ maskPng, className, hidden, alt }: LayerProps) {
  const id = `outline-${useId().replace(/[^\w-]/g, '')}`;
  return (
    <>
      <svg className="outline-filter" aria-hidden="true" focusable="false" width="0" height="0">
        <filter id={id} colorInterpolationFilters="sRGB" x="-2%" y="-2%" width="104%" height="104%">
          <feColorMatrix
            in="SourceGraphic"
            type="matrix"
            values="0 0 0 0 0  0 0 0 0 0  0 0 0 0 0  1 0 0 0 0"
            result="inside"
          />
          <feMorphology in="inside" operator="dilate" radius="1.5" result="grown" />
          <feComposite in="grown" in2="inside" operator="out" result="edge" />
          <feFlood floodColor={OUTLINE_COLOUR} floodOpacity="0.18" result="tint" />
          <feComposite in="tint" in2="inside" operator="in" result="fill" />
          <feFlood floodColor={OUTLINE_COLOUR} result="ink" />
          <feComposite in="ink" in2="edge" operator="in" result="line" />
          <feMerge>
            <feMergeNode in="fill" />
            <feMergeNode in="line" />
          </feMerge>
        </filter>
      </svg>
      <img
        className={`${className} outline-layer`}
        src={pngDataUrl(maskPng)}
        alt={alt}
        hidden={hidden}
        data-outline=""
        style={{ filter: `url(#${id})` }}
      />
    </>
  );
}

interface SwitchProps {
  on: boolean;
  onChange: (on: boolean) => void;
}

/** The switch that shows or hides the outline. */
export function OutlineSwitch({ on, onChange }: SwitchProps) {
  return (
    <label className="switch">
      <input
        className="switch__input"
        type="checkbox"
        role="switch"
        checked={on}
        onChange={(event) => onChange(event.target.checked)}
      />
      <span className="switch__track" aria-hidden="true" />
      Outline
    </label>
  );
}

/** The outline's legend: its colour and the outlined area. */
export function OutlineArea({ localization }: { localization: Localization }) {
  return (
    <p className="outline-area">
      <span className="outline-area__swatch" aria-hidden="true" />
      Tumour outline by the model: {formatArea(localization)}
    </p>
  );
}
