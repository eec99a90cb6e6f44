"""Request ids and the service's log lines.

* Every response carries ``X-Request-ID``: the client's own when it is 1-64 safe
  characters (so a caller can follow its id through our logs), else a new one; a log
  record written while a request is handled carries the same id.
* Logs are one JSON object per line (``LOG_FORMAT=json``, the default under gunicorn,
  gunicorn's own error and access logs included) or the classic text line, both with
  the request id. What goes into them is decided by their callers
  (:mod:`braintumor.api.observability`): never a file name, a DICOM tag, pixels or a key.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from flask import g, has_request_context

from braintumor.classify import utc_timestamp
from braintumor.config import Settings

REQUEST_ID_HEADER = "X-Request-ID"
#: A client's id is kept when it is this safe: it goes into logs and headers verbatim.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(value: str | None) -> str:
    """The client's id when it is 1-64 characters of ``A-Za-z0-9._:-``, else a new one."""
    if value and _SAFE_ID.fullmatch(value):
        return value
    return new_request_id()


def current_request_id() -> str | None:
    """The id of the request being handled, or None outside a request."""
    if has_request_context():
        return g.get("request_id")
    return None


# --- logging -------------------------------------------------------------------------------


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record logged while a request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id()
        return True


def install_request_id_records() -> None:
    """Every log record made while a request is handled carries its ``request_id``,
    whichever logger or handler (gunicorn's, pytest's) ends up with it. Idempotent."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "_braintumor", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        record.request_id = current_request_id()
        return record

    make._braintumor = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, fields.

    ``fields`` (a dict passed as ``extra={"fields": ...}``) are merged in; tracebacks
    become one ``exc`` string so a line stays a line.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": utc_timestamp_from(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            entry.update(extra)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """The classic one-line text format, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [request_id={request_id}]" if request_id else line


def utc_timestamp_from(seconds: float) -> str:
    from datetime import UTC, datetime

    return utc_timestamp(datetime.fromtimestamp(seconds, UTC))


def make_formatter(json_lines: bool) -> logging.Formatter:
    return JsonFormatter() if json_lines else TextFormatter()


def configure_logging(level: str, json_lines: bool) -> None:
    """Root logging to stderr in the chosen format, every record with its request id."""
    import sys

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(make_formatter(json_lines))
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(level=level, handlers=[handler], force=True)


def json_logs_wanted(settings: Settings, under_gunicorn: bool) -> bool:
    """LOG_FORMAT=auto means JSON under gunicorn (a service), text elsewhere (a person)."""
    if settings.LOG_FORMAT == "auto":
        return under_gunicorn
    return settings.LOG_FORMAT == "json"



def json_logger_class() -> type:
    """gunicorn's logger with its error log (start-up, workers, signals) as JSON lines."""
    from gunicorn.glogging import Logger

    class JsonLogger(Logger):
        def setup(self, cfg: Any) -> None:
            super().setup(cfg)
            for handler in [*self.error_log.handlers, *self.access_log.handlers]:
                handler.setFormatter(JsonFormatter())

    return JsonLogger
