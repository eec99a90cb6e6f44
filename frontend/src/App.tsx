import { useEffect } from 'react';
import { ErrorAlert } from './components/ErrorAlert';
import { GradCamViewer } from './components/GradCamViewer';
import { History } from './components/History';
import { KeyPrompt } from './components/KeyPrompt';
import { Progress } from './components/Progress';
import { ResultCard } from './components/ResultCard';
import { UploadZone } from './components/UploadZone';
import { SeriesPanel } from './series/SeriesPanel';
import { useClassifier } from './useClassifier';
import { pastedFile, useFileDrop } from './useFileDrop';
import { useService } from './useService';
import { namePastedFile } from './validation';

/** The page: the service's state, the upload, the viewer, the answer and the history. */
export function App() {
  const service = useService();
  const { scans, selectedId, selected, busy, error, announcement, classify, select, clear, dismissError } =
    useClassifier(service.limits);

  const dragging = useFileDrop(classify);

  useEffect(() => {
    function onPaste(event: ClipboardEvent) {
      const file = pastedFile(event);
      if (!file) return;
      event.preventDefault();
      void classify(namePastedFile(file));
    }
    window.addEventListener('paste', onPaste);
    return () => window.removeEventListener('paste', onPaste);
  }, [classify]);

  return (
    <div className="app">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <div className="brand">
          <svg className="brand__mark" aria-hidden="true" viewBox="0 0 32 32" width="28" height="28">
            <rect x="1" y="1" width="30" height="30" rx="8" fill="none" stroke="currentColor" strokeWidth="2" />
            <path
              d="M16 7c-4.5 0-8 3.4-8 8.2 0 3 1.3 5.3 3.4 6.8V25h9.2v-3c2.1-1.5 3.4-3.8 3.4-6.8C24 10.4 20.5 7 16 7Z"
              fill="none"
              stroke="currentColor"
              strokeWidth="1.8"
            />
            <circle cx="18.5" cy="13.5" r="2.6" fill="#ff6b4a" />
          </svg>
          <div>
            <h1 className="brand__name">Brain MRI classifier</h1>
            <p className="brand__tag">Tumour type and Grad-CAM explanation from one MRI slice</p>
          </div>
        </div>
        <p className={`service service--${service.state}`} role="status">
          <span className="service__dot" aria-hidden="true" />
          {service.state === 'checking'
            ? 'Connecting…'
            : service.state === 'online'
              ? 'Service online'
              : 'Service unreachable'}
        </p>
      </header>

      <p className="notice" role="note">
        <strong>Research software, not a medical device.</strong> Results are not a diagnosis and must not
        be used for clinical decisions.
      </p>

      <main
        id="main"
        className={`layout${selected || busy ? ' layout--has-scan' : ''}`}
        aria-busy={busy ? 'true' : 'false'}
      >
        <div className="layout__upload">
          <UploadZone
            onFile={classify}
            busy={busy !== null}
            dragging={dragging}
            hasScans={scans.length > 0}
            limits={service.limits}
          />
          {error ? <ErrorAlert error={error} onDismiss={dismissError} limits={service.limits} /> : null}
        </div>

        <section
          className={`stage${selected || busy ? '' : ' stage--empty'}`}
          aria-label="Image viewer"
        >
          {busy ? (
            <Progress previewUrl={busy.previewUrl} fileName={busy.fileName} uploaded={busy.uploaded} />
          ) : selected ? (
            <GradCamViewer
              key={selected.id}
              visualization={selected.result.visualization}
              fileName={selected.fileName}
              predictedClass={selected.result.prediction.class}
              localization={selected.result.localization}
            />
          ) : (
            <div className="stage__empty">
              <svg aria-hidden="true" viewBox="0 0 64 64" width="56" height="56">
                <ellipse cx="32" cy="32" rx="20" ry="25" fill="none" stroke="currentColor" strokeWidth="2" />
                <path d="M32 9v46M19 22c5 3 8 3 13 0m0 0c5 3 8 3 13 0M19 40c5-3 8-3 13 0m0 0c5-3 8-3 13 0" fill="none" stroke="currentColor" strokeWidth="1.5" opacity=".6" />
              </svg>
              <p className="stage__title">No scan loaded</p>
              <p className="stage__text">Drop, paste or choose an axial MRI slice to see the model’s prediction and where it looked.</p>
            </div>
          )}
          {dragging ? (
            <div className="drop-overlay" aria-hidden="true">
              <p>Drop the image to classify it</p>
            </div>
          ) : null}
        </section>

        <div className="layout__result">
          {selected ? <ResultCard result={selected.result} fileName={selected.fileName} /> : null}
        </div>

        <div className="layout__history">
          {scans.length > 0 ? (
            <History
              scans={scans}
              selectedId={selectedId}
              onSelect={select}
              onClear={clear}
            />
          ) : null}
        </div>

        <div className="layout__series">
          <SeriesPanel />
        </div>
      </main>

      <KeyPrompt />

      <p className="visually-hidden" aria-live="polite">
        {announcement}
      </p>

      <footer className="footer">
        Four classes: glioma, meningioma, pituitary tumour, no tumour. Grad-CAM shows which regions drove the
        prediction, not where a tumour is.
      </footer>
    </div>
  );
}
