import { useCallback, useRef, useState } from 'react';
import { classifyImage } from './api';
import { ApiError } from './apiError';
import { withApiKey } from './apiKey';
import type { ShownError } from './components/ErrorAlert';
import { formatPercent } from './format';
import type { Scan } from './types';
import { validateFile, type UploadLimits } from './validation';

/** The session keeps this many scans; the oldest go first. */
export const HISTORY_LIMIT = 24;

/** The upload in progress: what the viewer shows until the answer comes. */
export interface Busy {
  fileName: string;
  previewUrl: string;
  uploaded: number;
}

export interface Classifier {
  scans: Scan[];
  selectedId: number | null;
  selected: Scan | null;
  busy: Busy | null;
  error: ShownError | null;
  /** The sentence for screen readers about the last upload. */
  announcement: string;
  classify: (file: File) => Promise<void>;
  select: (id: number) => void;
  clear: () => void;
  dismissError: () => void;
}

/**
 * The upload flow: check the file against the service's ``limits``, upload it with
 * progress, keep the answer in the session's history, or say what went wrong. A new
 * upload cancels the one in flight.
 */
export function useClassifier(limits: UploadLimits | null): Classifier {
  const [scans, setScans] = useState<Scan[]>([]);
  const [selectedId, setSelectedId] = useState<number | null>(null);
  const [busy, setBusy] = useState<Busy | null>(null);
  const [error, setError] = useState<ShownError | null>(null);
  const [announcement, setAnnouncement] = useState('');
  const nextId = useRef(1);
  const inFlight = useRef<AbortController | null>(null);

  const classify = useCallback(
    async (file: File) => {
      const refused = validateFile(file, limits);
      if (refused) {
        setError({ ...refused, fileName: file.name, local: true });
        setAnnouncement('');
        return;
      }
      inFlight.current?.abort();
      const controller = new AbortController();
      inFlight.current = controller;
      const previewUrl = URL.createObjectURL(file);
      setError(null);
      setBusy({ fileName: file.name, previewUrl, uploaded: 0 });
      setAnnouncement(`Classifying ${file.name}…`);
      try {
        // a 401 asks for the service's API key and sends the file again with it
        const result = await withApiKey(() =>
          classifyImage(file, {
            signal: controller.signal,
            onUploadProgress: (uploaded) =>
              setBusy((current) => (current && current.previewUrl === previewUrl ? { ...current, uploaded } : current)),
          }),
        );
        const scan: Scan = {
          id: nextId.current++,
          fileName: file.name,
          fileSize: file.size,
          result,
          receivedAt: Date.now(),
        };
        setScans((current) => [scan, ...current].slice(0, HISTORY_LIMIT));
        setSelectedId(scan.id);
        setAnnouncement(
          `${file.name}: ${result.prediction.class}, ${formatPercent(result.prediction.confidence)} confidence.`,
        );
      } catch (caught) {
        if (caught instanceof ApiError && caught.code === 'ABORTED') return;
        const failure =
          caught instanceof ApiError ? caught : new ApiError('INTERNAL_ERROR', String(caught));
        setError({ code: failure.code, message: failure.message, fileName: file.name });
        setAnnouncement('');
      } finally {
        URL.revokeObjectURL(previewUrl);
        if (inFlight.current === controller) {
          inFlight.current = null;
          setBusy(null);
        }
      }
    },
    [limits],
  );

  const clear = useCallback(() => {
    setScans([]);
    setSelectedId(null);
  }, []);
  const dismissError = useCallback(() => setError(null), []);

  return {
    scans,
    selectedId,
    selected: scans.find((scan) => scan.id === selectedId) ?? null,
    busy,
    error,
    announcement,
    classify,
    select: setSelectedId,
    clear,
    dismissError,
  };
}
