"""Application factory."""

from __future__ import annotations

import io
import logging
import time

from flask import Flask, Request
from flask_cors import CORS

from braintumor.api.classify_routes import bp
from braintumor.api.errors import register_error_handlers
from braintumor.api.frontend import bp as frontend_bp
from braintumor.api.operations import EXPOSED_HEADERS, init_operations
from braintumor.api.series_routes import bp as series_bp
from braintumor.api.service import Service
from braintumor.api.spark_status import start_spark
from braintumor.classify import Classifier
from braintumor.config import Settings, load_settings
from braintumor.model.runtime import ServingModel, load_serving_model, onnx_threads

#: Room for the multipart envelope around a file of exactly MAX_CONTENT_LENGTH bytes.
MULTIPART_OVERHEAD = 64 * 1024


class InMemoryRequest(Request):
    """Multipart file parts are buffered in memory, never spooled to a temp file.

    Werkzeug spools parts over 500 KB to disk by default; the body size is already
    capped by MAX_CONTENT_LENGTH, so memory is bounded and no upload touches the disk.
    """

    def _get_file_stream(self, total_content_length, content_type, filename=None,
                         content_length=None):
        return io.BytesIO()


def create_app(settings: Settings | None = None, model: ServingModel | None = None) -> Flask:
    """Build the app; loads MODEL_PATH unless a loaded ``model`` is given (tests do), on
    the runtime MODEL_RUNTIME picks, ONNX Runtime with the cores shared by WORKERS."""
    started = time.time()
    settings = settings or load_settings()
    logging.getLogger("braintumor").setLevel(settings.LOG_LEVEL)
    model = model or load_serving_model(settings.model,
                                        threads=onnx_threads(settings.WORKERS))

    app = Flask(__name__, static_folder=None)
    app.request_class = InMemoryRequest
    app.config.update(
        MAX_CONTENT_LENGTH=settings.MAX_CONTENT_LENGTH + MULTIPART_OVERHEAD,
        # multipart parts stay in memory up to the body limit: uploads never touch disk
        MAX_FORM_MEMORY_SIZE=settings.MAX_CONTENT_LENGTH + MULTIPART_OVERHEAD,
        JSON_SORT_KEYS=False,
        DEBUG=settings.FLASK_DEBUG,
        ENV=settings.FLASK_ENV,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["braintumor"] = Service(
        settings=settings, classifier=Classifier(model, settings), started_at=started,
    )
    CORS(app, resources={r"/*": {"origins": list(settings.CORS_ORIGINS)}},
         expose_headers=list(EXPOSED_HEADERS))
    app.register_blueprint(bp)
    app.register_blueprint(series_bp)  # POST /api/classify-series
    app.register_blueprint(frontend_bp)  # the web page's /assets/ (frontend/dist)
    register_error_handlers(app)
    # request ids, logs, probes, metrics, keys, limits, audit, OpenAPI: operations.py
    init_operations(app, settings, model)
    start_spark(app, settings)  # SPARK_ENABLED: in the background, never blocking
    return app
