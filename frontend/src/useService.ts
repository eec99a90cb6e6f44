import { useEffect, useState } from 'react';
import { fetchHealth, uploadLimits } from './api';
import type { UploadLimits } from './validation';

export type ServiceState = 'checking' | 'online' | 'offline';

/** The service's state for the header, and the upload limits it states (/api/health). */
export function useService(): { state: ServiceState; limits: UploadLimits | null } {
  const [state, setState] = useState<ServiceState>('checking');
  const [limits, setLimits] = useState<UploadLimits | null>(null);

  useEffect(() => {
    const controller = new AbortController();
    fetchHealth(controller.signal)
      .then((health) => {
        setState(health.status === 'healthy' ? 'online' : 'offline');
        setLimits(uploadLimits(health));
      })
      .catch(() => {
        if (!controller.signal.aborted) setState('offline');
      });
    return () => controller.abort();
  }, []);

  return { state, limits };
}
