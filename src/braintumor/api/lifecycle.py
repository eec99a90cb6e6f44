"""Whether the server is draining: shared by the gunicorn arbiter and its workers.

On SIGTERM the arbiter (:mod:`braintumor.server`) sets the flag, keeps listening for
DRAIN_SECONDS so that ``/readyz`` can answer 503 and load balancers stop sending, then
stops the workers gracefully. The flag is one byte of shared memory made before the
fork, so every worker sees the arbiter's write without a file or a message.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

_flag: Any = None  # a RawValue("b") once shared(); None: one process, never draining
_local_draining = False


def share() -> None:
    """Make the flag shared memory; called in the arbiter before any worker is forked."""
    global _flag
    if _flag is None:
        _flag = multiprocessing.RawValue("b", 0)


def start_draining() -> None:
    global _local_draining
    _local_draining = True
    if _flag is not None:
        _flag.value = 1


def draining() -> bool:
    if _flag is not None and _flag.value:
        return True
    return _local_draining


def reset() -> None:
    """Back to serving (tests that drain an in-process app)."""
    global _local_draining
    _local_draining = False
    if _flag is not None:
        _flag.value = 0


# --- gunicorn: the arbiter's SIGTERM, its logger, the metrics folder ------------------------


def draining_arbiter(drain_seconds: int) -> type:
    """gunicorn's Arbiter, but SIGTERM first drains: the flag is set (``/readyz`` 503)
    and the server keeps listening for ``drain_seconds`` so that a load balancer polling
    readiness stops sending; then gunicorn's own graceful stop: no new connections, the
    requests in flight finish (within graceful_timeout), the workers exit."""
    import time

    from gunicorn.arbiter import Arbiter

    class DrainingArbiter(Arbiter):
        def handle_term(self) -> None:
            start_draining()
            if drain_seconds > 0:
                self.log.info("SIGTERM: draining for %d s (/readyz answers 503)",
                              drain_seconds)
                time.sleep(drain_seconds)
            super().handle_term()

    return DrainingArbiter


def json_logger_class() -> type:
    """gunicorn's logger with its error log (start-up, workers, signals) as JSON lines."""
    from gunicorn.glogging import Logger

    from braintumor.api.observability import JsonFormatter

    class JsonLogger(Logger):
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for handler in [*self.error_log.handlers, *self.access_log.handlers]:
                handler.setFormatter(JsonFormatter())

    return JsonLogger


def prepare_metrics_dir(existing: str | None) -> tuple[str, bool]:
    """The folder the workers' metrics go to: PROMETHEUS_MULTIPROC_DIR when set (its old
    files removed: they would be added to this run's), else a new temporary one (True:
    ours, to remove on exit)."""
    import os
    import tempfile

    from braintumor.api.observability import MULTIPROC_ENV, clear_multiprocess_dir

    if existing:
        os.makedirs(existing, exist_ok=True)
        clear_multiprocess_dir(existing)
        path, ours = existing, False
    else:
        path, ours = tempfile.mkdtemp(prefix="braintumor-metrics-"), True
    os.environ[MULTIPROC_ENV] = path
    return path, ours
