"""``POST /api/classify-series``: a whole series in one request.

The request body may be far larger than a single upload (MAX_SERIES_BYTES, not
MAX_CONTENT_LENGTH), so this view raises the limits for its own request only, before the
body is read; a Content-Length over the limit is refused before a byte of it is read.
Parts stay in memory (the app's request class never spools them to disk).
"""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, jsonify, request

from braintumor.api.observability import note_answer, note_uploads
from braintumor.api.service import service
from braintumor.errors import EmptyFilenameError, FileTooLargeError, NoFileError
from braintumor.series import classify_series, series_from_parts
from braintumor.series.archive import MEMBERS_PER_SLICE

log = logging.getLogger(__name__)
bp = Blueprint("series", __name__)

#: Room for the multipart envelope: headers and boundaries of every part.
PART_OVERHEAD = 1024


@bp.post("/api/classify-series")
def classify_series_view() -> Response:
    started = time.perf_counter()
    settings = service().settings
    max_bytes, max_slices = settings.MAX_SERIES_BYTES, settings.MAX_SERIES_SLICES
    max_parts = MEMBERS_PER_SLICE * max_slices
    body_limit = max_bytes + PART_OVERHEAD * (max_parts + 1)
    if request.content_length is not None and request.content_length > body_limit:
        raise FileTooLargeError(
            f"Series exceeds the {max_bytes // (1024 * 1024)} MB limit (MAX_SERIES_BYTES)")
    request.max_content_length = body_limit
    request.max_form_parts = max_parts + 16
    uploads = request.files.getlist("file")
    if not uploads:
        raise NoFileError("No file provided in request")
    if any(not upload.filename for upload in uploads):
        raise EmptyFilenameError("Empty filename")
    parts = [(upload.filename or "", upload.stream.read()) for upload in uploads]
    note_uploads(*(data for _, data in parts))  # for the audit trail's hashes
    volume = series_from_parts(parts, settings)
    del parts, uploads
    result = classify_series(service().classifier, volume, started)
    body = result.to_json()
    note_answer(body)  # the request's log line, metrics and audit line
    summary = body["summary"]
    log.info("classified a series of %d slices: %s, %d answered, %d refused, in %.1f ms",
             len(body["slices"]), summary["class"], summary["slices_answered"],
             summary["slices_refused"], body["processing_time_ms"])
    return jsonify(body)
