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


# --- gunicorn: the arbiter's SIGTERM --------------------------------------------------------


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
