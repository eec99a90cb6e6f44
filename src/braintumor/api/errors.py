"""Every error leaves the API in the spec's shape, from this one place.

``{"success": false, "error": {"message", "code", "status"}, "timestamp"}``. Werkzeug's
HTTP errors (404, 405, 413, malformed requests) are mapped onto the spec's codes, and
anything unexpected becomes INTERNAL_ERROR with a generic message: the traceback goes to
the log, never to the client.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from braintumor.classify import utc_timestamp
from braintumor.errors import ERROR_CODES, BrainTumorError

log = logging.getLogger(__name__)

#: Werkzeug's errors by status -> the spec's codes (statuses from the one table).
_HTTP_CODES = {ERROR_CODES[code]: code for code in (
    "BAD_REQUEST", "NOT_FOUND", "METHOD_NOT_ALLOWED", "FILE_TOO_LARGE", "INVALID_FILE_TYPE")}


def error_response(message: str, code: str, status: int):
    body = {
        "success": False,
        "error": {"message": message, "code": code, "status": status},
        "timestamp": utc_timestamp(),
    }
    return jsonify(body), status


def _http_message(exc: HTTPException) -> str:
    if exc.code == 404:
        return "Endpoint not found"
    if exc.code == 405:
        return "Method not allowed for this endpoint"
    if exc.code == 413 and request.path == "/api/classify-series":
        limit = current_app.extensions["braintumor"].settings.MAX_SERIES_BYTES
        return f"Series exceeds the {limit // (1024 * 1024)} MB limit (MAX_SERIES_BYTES)"
    if exc.code == 413:
        limit = current_app.extensions["braintumor"].settings.MAX_CONTENT_LENGTH
        return f"File exceeds {limit // (1024 * 1024)}MB limit"
    return exc.description or exc.name


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(BrainTumorError)
    def _ours(exc: BrainTumorError):
        if exc.status >= 500:
            log.error("%s: %s", exc.code, exc.message, exc_info=exc.__cause__)
        return error_response(exc.message, exc.code, exc.status)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")
        response, status = error_response(_http_message(exc), code, status)
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        return error_response("Internal server error", "INTERNAL_ERROR", 500)
