"""The server's SparkSession: started in the background, reported by /api/health.

With ``SPARK_ENABLED=true`` the app starts one SparkSession per server process in a
daemon thread when it is created. Starting Spark launches a JVM (seconds, or a minute
on a busy machine); doing it in the request path or before the app is ready would stall
every request behind it, and a Spark that cannot start must not take classification
down with it. So /api/health reports ``starting``, then ``up`` or ``down`` with the
reason, and a ``down`` only degrades the service's status.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from flask import Flask

from braintumor.config import Settings
from braintumor.spark_session.commands import first_line
from braintumor.spark_session.session import build_session, spark_installed

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

EXTENSION_KEY = "braintumor.spark"


class SparkStatus:
    """State of the server's SparkSession: disabled, starting, up or down."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = "disabled" if not settings.SPARK_ENABLED else "starting"
        self.error: str | None = None
        self.version: str | None = None
        self.session: SparkSession | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: pyspark is the [spark] extra: the server runs without it
        self.installed = spark_installed()

    def start(self) -> None:
        """Begin starting Spark in a daemon thread (no-op when disabled or started)."""
        if self.state == "disabled" or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="spark-start", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the start attempt has finished; True when it has (tests, scripts)."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            session = build_session(self.settings.spark)
            version = session.version
        except Exception as exc:  # any failure is reported, none raised
            reason = (f"cannot start Spark on SPARK_MASTER={self.settings.SPARK_MASTER!r}: "
                      f"{first_line(exc)}")
            with self._lock:
                self.state, self.error = "down", reason
            # the JVM's own explanation, if any, is just above in the server's stderr
            log.error("%s", reason)
            return
        with self._lock:
            self.session, self.version, self.state = session, version, "up"
        log.info("Spark %s up on %s", version, session.sparkContext.master)

    def service(self) -> dict[str, Any]:
        """The ``services.spark`` entry of /api/health."""
        with self._lock:
            entry: dict[str, Any] = {"status": self.state, "active": self.state == "up"}
            if self.state == "down":
                entry["error"] = self.error
            return entry


def start_spark(app: Flask, settings: Settings) -> SparkStatus:
    """Attach a :class:`SparkStatus` to ``app`` and start Spark when enabled."""
    status = SparkStatus(settings)
    app.extensions[EXTENSION_KEY] = status
    status.start()
    return status


def spark_status(app: Flask) -> SparkStatus:
    """The app's :class:`SparkStatus` (a disabled one for an app built without it)."""
    status = app.extensions.get(EXTENSION_KEY)
    if status is None:
        status = app.extensions[EXTENSION_KEY] = SparkStatus(
            app.extensions["braintumor"].settings.with_overrides(SPARK_ENABLED=False))
    return status
