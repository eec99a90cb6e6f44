import { useId, useRef, type KeyboardEvent } from 'react';
import { formatPercent } from '../format';
import { pngDataUrl, type Scan } from '../types';

interface Props {
  scans: Scan[];
  selectedId: number | null;
  onSelect: (id: number) => void;
  onClear: () => void;
}

/** This session's scans, newest first; arrow keys flip through them. */
export function History({ scans, selectedId, onSelect, onClear }: Props) {
  const headingId = useId();
  const list = useRef<HTMLOListElement>(null);

  function onKeyDown(event: KeyboardEvent<HTMLOListElement>) {
    const step = { ArrowLeft: -1, ArrowUp: -1, ArrowRight: 1, ArrowDown: 1 }[event.key];
    const home = event.key === 'Home' ? 0 : event.key === 'End' ? scans.length - 1 : null;
    if (step === undefined && home === null) return;
    event.preventDefault();
    const current = scans.findIndex((s) => s.id === selectedId);
    const next = home ?? Math.max(0, Math.min(scans.length - 1, current + (step ?? 0)));
    onSelect(scans[next].id);
    list.current?.querySelectorAll('button')[next]?.focus();
  }

  return (
    <section className="card history" aria-labelledby={headingId}>
      <div className="history__head">
        <h2 className="history__title" id={headingId}>
          This session <span className="history__count">{scans.length}</span>
        </h2>
        <button type="button" className="text-button" onClick={onClear}>
          Clear
        </button>
      </div>
      <ol className="history__list" ref={list} onKeyDown={onKeyDown} aria-labelledby={headingId}>
        {scans.map((scan, index) => {
          const { prediction, visualization } = scan.result;
          const selected = scan.id === selectedId;
          return (
            <li key={scan.id}>
              <button
                type="button"
                className={`thumb${selected ? ' thumb--on' : ''}`}
                aria-current={selected ? 'true' : undefined}
                aria-label={`Scan ${scans.length - index}: ${scan.fileName}, ${prediction.class} ${formatPercent(prediction.confidence)}`}
                onClick={() => onSelect(scan.id)}
              >
                <img src={pngDataUrl(visualization.heatmap_overlay)} alt="" className="thumb__img" />
                <span className="thumb__class">{prediction.class}</span>
                <span className="thumb__conf">{formatPercent(prediction.confidence)}</span>
              </button>
            </li>
          );
        })}
      </ol>
    </section>
  );
}
