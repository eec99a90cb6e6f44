import { useId } from 'react';
import { dicomFacts, formatPercent } from '../format';
import type { ClassifyResponse } from '../types';

interface Props {
  result: ClassifyResponse;
  fileName: string;
}

/** Below this top probability the card says the model is unsure. */
export const LOW_CONFIDENCE = 60;

export function ResultCard({ result, fileName }: Props) {
  const headingId = useId();
  const { prediction, processing_time_ms: ms } = result;
  const entries = Object.entries(prediction.probabilities);
  return (
    <section className="card result" aria-labelledby={headingId}>
      <p className="result__eyebrow">Model prediction</p>
      <h2 className="result__class" id={headingId}>
        {prediction.class}
      </h2>
      <p className="result__confidence">
        <strong>{formatPercent(prediction.confidence)}</strong> confidence
      </p>
      {result.ood?.flagged ? (
        <p className="result__caution result__caution--ood" role="alert">
          This image does not look like a brain MRI
          {result.ood.reasons.length ? ` (${result.ood.reasons.join('; ')})` : ''}. Treat this
          answer as meaningless.
        </p>
      ) : null}
      {prediction.confidence < LOW_CONFIDENCE ? (
        <p className="result__caution">Low confidence: the model is unsure between classes.</p>
      ) : null}
      <h3 className="result__subhead">Probabilities</h3>
      <ul className="bars">
        {entries.map(([name, value]) => {
          const top = name === prediction.class;
          return (
            <li key={name} className={`bars__row${top ? ' bars__row--top' : ''}`}>
              <span className="bars__name">{name}</span>
              <span className="bars__value">{formatPercent(value)}</span>
              <span
                className="bars__track"
                role="meter"
                aria-label={`${name} probability`}
                aria-valuemin={0}
                aria-valuemax={100}
                aria-valuenow={value}
                aria-valuetext={formatPercent(value)}
              >
                <span className="bars__fill" style={{ width: `${Math.max(0, Math.min(100, value))}%` }} />
              </span>
            </li>
          );
        })}
      </ul>
      {result.dicom ? (
        <>
          <h3 className="result__subhead">DICOM</h3>
          {result.dicom.warning ? <p className="result__caution">{result.dicom.warning}</p> : null}
          <dl className="facts">
            {dicomFacts(result.dicom).map(([term, value]) => (
              <div key={term} className="facts__row">
                <dt>{term}</dt>
                <dd>{value}</dd>
              </div>
            ))}
          </dl>
        </>
      ) : null}
      <p className="result__meta">
        <span className="result__file" title={fileName}>
          {fileName}
        </span>
        <span aria-hidden="true"> · </span>
        <span>analysed in {Math.round(ms)} ms</span>
      </p>
    </section>
  );
}
