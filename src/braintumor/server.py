"""Running the API: gunicorn in production, Flask's own server with FLASK_DEBUG=true.

Settings are parsed and the model file is checked in the parent process first, so a bad
value stops start-up with one line before any worker is forked. The model itself is
loaded inside each worker after the fork (gunicorn's ``preload_app`` stays off): a
TensorFlow runtime initialised before a fork is not safe to use in the child.
"""

from __future__ import annotations

import logging
import os
import shutil

from gunicorn.app.base import BaseApplication
from gunicorn.errors import AppImportError

from braintumor.api import create_app, lifecycle
from braintumor.api.observability import MULTIPROC_ENV, prepare_metrics_dir, worker_exited
from braintumor.api.request_log import configure_logging, json_logger_class, json_logs_wanted
from braintumor.api.security import gunicorn_threads
from braintumor.config import Settings, load_settings
from braintumor.errors import BrainTumorError, ModelLoadError

log = logging.getLogger(__name__)


def _check_before_fork(settings: Settings) -> None:
    if not settings.MODEL_PATH.is_file():
        raise ModelLoadError("MODEL_PATH", f"no model file at {settings.MODEL_PATH}")


def _gunicorn_application(settings: Settings) -> BaseApplication:
    class Application(BaseApplication):
        """gunicorn configured from Settings instead of a command line."""

        def load_config(self) -> None:
            options = {
                "bind": f"{settings.FLASK_HOST}:{settings.FLASK_PORT}",
                "workers": settings.WORKERS,
                # THREADS in the model, plus MAX_PENDING waiting (api.security.Admission)
                "threads": gunicorn_threads(settings),
                "worker_class": "gthread",
                "preload_app": False,
                "timeout": 120,
                # SIGTERM: DRAIN_SECONDS of 503 on /readyz, then the rest for requests
                "graceful_timeout": max(1, settings.GRACEFUL_TIMEOUT - settings.DRAIN_SECONDS),
                "child_exit": lambda server, worker: worker_exited(worker.pid),
                "loglevel": settings.LOG_LEVEL.lower(),
                "accesslog": "-" if settings.LOG_LEVEL == "DEBUG" else None,
                # bound the damage of a slow or hostile client on the request line
                "limit_request_line": 8190,
                # gunicorn 27's control socket is one fixed path per user: two servers on
                # one machine (tests beside `make run`) would fight over it
                "control_socket_disable": True,
            }
            if json_logs_wanted(settings, under_gunicorn=True):
                options["logger_class"] = json_logger_class()
            for key, value in options.items():
                if key in self.cfg.settings:
                    self.cfg.set(key, value)

        def load(self):
            try:
                return create_app(settings)
            except BrainTumorError as exc:
                # gunicorn prints an AppImportError as one line and halts the arbiter
                raise AppImportError(f"error: {exc.message}") from None

        def run(self) -> None:
            lifecycle.draining_arbiter(settings.DRAIN_SECONDS)(self).run()

    return Application()


def serve(settings: Settings | None = None, port: int | None = None,
          host: str | None = None) -> int:
    """Start the server in the foreground with the caller's ``settings`` (the CLI loads
    them once; None: from the environment); returns the exit code."""
    settings = settings or load_settings()
    overrides: dict[str, object] = {}
    if port is not None:
        overrides["FLASK_PORT"] = port
    if host is not None:
        overrides["FLASK_HOST"] = host
    settings = settings.with_overrides(**overrides)
    configure_logging(settings.LOG_LEVEL,
                      json_logs_wanted(settings, under_gunicorn=not settings.FLASK_DEBUG))
    _check_before_fork(settings)
    log.info("serving %s on http://%s:%d (%s)", settings.MODEL_PATH.name, settings.FLASK_HOST,
             settings.FLASK_PORT, "Flask debug server" if settings.FLASK_DEBUG else "gunicorn")
    if settings.FLASK_DEBUG:
        create_app(settings).run(host=settings.FLASK_HOST, port=settings.FLASK_PORT,
                                 debug=True, use_reloader=False, threaded=True)
        return 0
    # before the fork: the workers share the metrics folder and the draining flag
    metrics_dir, ours = prepare_metrics_dir(os.environ.get(MULTIPROC_ENV))
    lifecycle.share()
    try:
        _gunicorn_application(settings).run()
    finally:
        if ours:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0
