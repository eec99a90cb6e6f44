"""Running the API as a service: one place that wires the operational parts into the app.

Order matters, because Flask runs ``before_request`` hooks in the order they were added:
request id and timing first (so that every later refusal has an id and is counted), then
the API key (the rate limit counts per key name), then the rate limit, then admission
(only requests that may be served wait for the model).
"""

from __future__ import annotations

import json
from pathlib import Path

import swagger_ui
from flask import Flask, Response, abort, send_from_directory

from braintumor.api.audit import AuditLog
from braintumor.api.observability import AfterHook, init_observability
from braintumor.api.openapi import build_document
from braintumor.api.request_log import REQUEST_ID_HEADER
from braintumor.api.security import init_security
from braintumor.config import Settings
from braintumor.model.runtime import ServingModel

#: Headers a page on another origin (CORS_ORIGINS) may read from our answers.
EXPOSED_HEADERS = (REQUEST_ID_HEADER, "Retry-After", "WWW-Authenticate")

#: Swagger UI 5 (OpenAPI 3.1), shipped inside the swagger-ui-py wheel: served from here,
#: so the docs page works offline and loads nothing from a CDN.
SWAGGER_DIR = Path(swagger_ui.__file__).parent / "static"
SWAGGER_FILES = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"})

DOCS_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Brain Tumor Classification API: docs</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/api/docs/swagger-ui.css">
<link rel="icon" type="image/png" href="/api/docs/favicon-32x32.png"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script>
</body></html>
"""
DOCS_INIT = ('window.ui = SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#swagger-ui", '
             'deepLinking: true});\n')
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'")


def init_operations(app: Flask, settings: Settings, model: ServingModel) -> None:
    hooks: list[AfterHook] = []
    if settings.AUDIT_LOG is not None:
        audit = AuditLog(settings.AUDIT_LOG, model.metadata.version or None)
        app.extensions["braintumor.audit"] = audit
        hooks.append(audit.after_response)
    metrics = init_observability(app, settings, model, hooks,
                                 hash_uploads=settings.AUDIT_LOG is not None)
    app.extensions["braintumor.metrics"] = metrics
    init_security(app, settings)
    document = json.dumps(build_document()).encode("utf-8")

    @app.get("/api/openapi.json")
    def openapi_document() -> Response:
        return Response(document, mimetype="application/json")

    @app.get("/api/docs")
    def docs() -> Response:
        response = Response(DOCS_PAGE, mimetype="text/html")
        response.headers["Content-Security-Policy"] = DOCS_CSP
        return response

    @app.get("/api/docs/init.js")
    def docs_init() -> Response:
        return Response(DOCS_INIT, mimetype="text/javascript")

    @app.get("/api/docs/<name>")
    def docs_asset(name: str) -> Response:
        if name not in SWAGGER_FILES:
            abort(404)
        return send_from_directory(SWAGGER_DIR, name, max_age=24 * 3600)
