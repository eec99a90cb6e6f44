"""What an operator sees of the running service: request ids, request logs, probes, metrics.

* Every response carries ``X-Request-ID`` (:mod:`braintumor.api.request_log` makes and
  checks ids and formats the log lines).
* One log line per request (``braintumor.request``): id, method, path, status, time,
  model version, the class answered or the refusal's code, the API key's *name*. Never
  a file name, a DICOM tag, pixels or a key: those never reach this module.
* ``/livez`` answers while the process does; ``/readyz`` answers 200 once the model is
  loaded and warmed (the app does not exist before that) and 503 again while draining.
* ``/metrics`` in Prometheus' text format. Under gunicorn every worker writes its
  counters to files in ``PROMETHEUS_MULTIPROC_DIR`` (set by :mod:`braintumor.server`
  before the fork) and a scrape adds them up, so any worker answers for all of them;
  in one process (tests, the debug server) each app has its own registry.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)

from braintumor.api import lifecycle
from braintumor.api.request_log import (
    REQUEST_ID_HEADER,
    accept_request_id,
    install_request_id_records,
    new_request_id,
)
from braintumor.classify import utc_timestamp
from braintumor.config import Settings
from braintumor.model.runtime import ServingModel

#: The endpoints that receive images: authenticated, rate-limited, admitted, audited.
CLASSIFY_ENDPOINTS = frozenset({"api.classify", "series.classify_series_view"})
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

request_log = logging.getLogger("braintumor.request")

#: Latency buckets (seconds): a classify answer takes 20-60 ms here, a series seconds.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0, 60.0)
_MODEL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


# --- metrics -------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


class Metrics:
    """The service's Prometheus metrics, for one app.

    In multiprocess mode the values live in files shared by the workers (prometheus_client
    picks the value class when a metric is made, so it is switched here, after
    :mod:`braintumor.server` has set the folder); otherwise in this app's own registry,
    so that several apps in one process (the tests) do not count into each other.
    """

    def __init__(self, model_version: str, architecture: str) -> None:
        self.multiprocess = multiprocess_dir() is not None
        if self.multiprocess and not getattr(values.ValueClass, "_multiprocess", False):
            values.ValueClass = values.MultiProcessValue()
            values.ValueClass._multiprocess = True
        self.registry = CollectorRegistry(auto_describe=True)
        registry = None if self.multiprocess else self.registry
        self.requests = Counter(
            "braintumor_http_requests", "HTTP requests answered, by endpoint, method, status",
            ["endpoint", "method", "status"], registry=registry)
        self.latency = Histogram(
            "braintumor_http_request_duration_seconds", "Time to answer a request",
            ["endpoint"], buckets=_LATENCY_BUCKETS, registry=registry)
        self.classifications = Counter(
            "braintumor_classifications", "Answers given, by endpoint and class",
            ["endpoint", "class_name"], registry=registry)
        self.refusals = Counter(
            "braintumor_refusals", "Classify requests refused, by endpoint and error code "
            "(NOT_BRAIN_MRI, INVALID_IMAGE, UNAUTHORIZED, RATE_LIMITED, SERVER_BUSY...)",
            ["endpoint", "reason"], registry=registry)
        self.model_pass = Histogram(
            "braintumor_model_pass_seconds", "Time of one model pass (a batch of images)",
            ["kind"], buckets=_MODEL_BUCKETS, registry=registry)
        self.in_flight = Gauge(
            "braintumor_uploads_in_flight", "Classify requests being handled now",
            registry=registry, multiprocess_mode="livesum")
        self.model_info = Gauge(
            "braintumor_model_info", "The served model (value 1; labels say which)",
            ["version", "architecture"], registry=registry, multiprocess_mode="max")
        self.model_info.labels(model_version or "unknown", architecture or "unknown").set(1)

    def render(self) -> bytes:
        if self.multiprocess:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)

    def instrument(self, model: ServingModel) -> None:
        """Time every model pass: the explained one (classify, a series' key slice) and
        the plain one (a series' slices). Wrapping the loaded model's two entry points
        times every caller without the callers knowing. The plain pass keeps its label
        of old, ``predict_features``, so that dashboards built on it go on working."""
        for name, kind in (("explain", "explain"), ("outputs", "predict_features")):
            original = getattr(model, name)
            setattr(model, name, _timed(original, self.model_pass.labels(kind)))


def _timed(function: Callable[..., Any], histogram: Any) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            histogram.observe(time.perf_counter() - started)

    timed.__wrapped__ = function  # type: ignore[attr-defined]
    return timed


def clear_multiprocess_dir(path: str) -> None:
    """Start from zero: files left by an earlier run would be added to this one's."""
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))


def worker_exited(pid: int) -> None:
    """gunicorn's child_exit hook: a dead worker's live gauges stop counting."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)


# --- per request ---------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one classify request came to, for the log line, the metrics and the audit.

    Uploads are hashed as they are noted (only when there is an audit trail) and not
    kept: a series view drops its parts before classifying, and so must this.
    """

    hash_uploads: bool = False
    uploads: int = 0
    sha256: list[str] = field(default_factory=list)
    answer: dict[str, Any] | None = None


def note_uploads(*uploads: bytes) -> None:
    """Called by a classify view once the upload bytes are read (for the audit's hash)."""
    outcome = g.get("outcome")
    if outcome is not None:
        outcome.uploads += len(uploads)
        if outcome.hash_uploads:
            outcome.sha256.extend(hashlib.sha256(data).hexdigest() for data in uploads)


def note_answer(body: dict[str, Any]) -> None:
    """Called by a classify view with its answer: the class for logs, metrics, audit."""
    outcome = g.get("outcome")
    if outcome is not None:
        outcome.answer = body


def answered_class(body: dict[str, Any] | None) -> str | None:
    if not body:
        return None
    block = body.get("prediction") or body.get("summary") or {}
    value = block.get("class")
    return str(value) if value is not None else None


def endpoint_label() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "(unmatched)"


def error_code(response: Response) -> str | None:
    """The spec error code of an error response (its bodies are small: cheap to read)."""
    if response.status_code < 400 or not response.is_json:
        return None
    body = response.get_json(silent=True)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return str(code) if code else None
    return None


AfterHook = Callable[[Response, str | None], None]


def init_observability(app: Flask, settings: Settings, model: ServingModel,
                       after_hooks: list[AfterHook] | None = None,
                       hash_uploads: bool = False) -> Metrics | None:
    """Request ids, the request log line, /livez, /readyz and (METRICS_ENABLED) /metrics.

    ``after_hooks`` run once per response with it and its error code (the audit trail);
    they run before the response is sent, so what they write exists once a client has
    its answer. ``hash_uploads``: keep the SHA-256 of each upload (for the audit trail).
    """
    install_request_id_records()
    meta = model.metadata
    metrics = Metrics(meta.version, meta.architecture) if settings.METRICS_ENABLED else None
    if metrics is not None:
        metrics.instrument(model)
    hooks = list(after_hooks or [])
    model_version = meta.version or None

    @app.before_request
    def _start() -> None:
        g.request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
        g.started = time.perf_counter()
        if request.endpoint in CLASSIFY_ENDPOINTS:
            g.outcome = Outcome(hash_uploads=hash_uploads)
            if metrics is not None:
                metrics.in_flight.inc()
                g.counted_in_flight = True

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id") or new_request_id()
        response.headers[REQUEST_ID_HEADER] = request_id
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        code = error_code(response)
        outcome: Outcome | None = g.get("outcome")
        klass = answered_class(outcome.answer) if outcome is not None else None
        endpoint = endpoint_label()
        status = response.status_code
        if metrics is not None:
            metrics.requests.labels(endpoint, request.method, str(status)).inc()
            metrics.latency.labels(endpoint).observe(seconds)
            if request.endpoint in CLASSIFY_ENDPOINTS:
                if klass is not None and status == 200:
                    metrics.classifications.labels(endpoint, klass).inc()
                elif code is not None:
                    metrics.refusals.labels(endpoint, code).inc()
        for hook in hooks:
            hook(response, code)
        fields: dict[str, Any] = {
            "request_id": request_id, "method": request.method, "path": request.path,
            "status": status, "ms": round(seconds * 1000.0, 2),
        }
        if request.endpoint in CLASSIFY_ENDPOINTS:
            fields.update({"model_version": model_version, "class": klass, "refusal": code,
                           "key": g.get("api_key_name")})
        elif code is not None:
            fields["refusal"] = code
        request_log.info("%s %s %d %.1f ms", request.method, request.path, status,
                         seconds * 1000.0, extra={"fields": fields})
        return response

    @app.teardown_request
    def _teardown(exc: BaseException | None) -> None:
        if metrics is not None and g.pop("counted_in_flight", False):
            metrics.in_flight.dec()

    @app.get("/livez")
    def livez() -> Response:
        """The process answers: nothing else is checked (a restart would not help)."""
        return jsonify({"status": "alive", "timestamp": utc_timestamp()})

    @app.get("/readyz")
    def readyz() -> tuple[Response, int]:
        """Ready once the model is loaded and warmed (the app exists only then) and until
        SIGTERM: a draining server answers 503 so that load balancers stop sending."""
        if lifecycle.draining():
            return jsonify({"status": "draining", "timestamp": utc_timestamp()}), 503
        return jsonify({"status": "ready", "timestamp": utc_timestamp()}), 200

    if metrics is not None:
        @app.get("/metrics")
        def metrics_view() -> Response:
            return Response(metrics.render(), mimetype=None,
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics


# --- gunicorn: the workers' metrics folder ---------------------------------------------------


def prepare_metrics_dir(existing: str | None) -> tuple[str, bool]:
    """The folder the workers' metrics go to: PROMETHEUS_MULTIPROC_DIR when set (its old
    files removed: they would be added to this run's), else a new temporary one (True:
    ours, to remove on exit)."""
    if existing:
        os.makedirs(existing, exist_ok=True)
        clear_multiprocess_dir(existing)
        path, ours = existing, False
    else:
        path, ours = tempfile.mkdtemp(prefix="braintumor-metrics-"), True
    os.environ[MULTIPROC_ENV] = path
    return path, ours
