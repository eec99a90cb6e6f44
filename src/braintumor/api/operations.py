"""Running the API as a service: one place that wires the operational parts into the app.

Order matters, because Flask runs ``before_request`` hooks in the order they were added:
request id and timing first, so that every later refusal has an id and is counted.
"""

from __future__ import annotations

from flask import Flask

from braintumor.api.observability import REQUEST_ID_HEADER, init_observability
from braintumor.config import Settings
from braintumor.model.loaded import LoadedModel

#: Headers a page on another origin (CORS_ORIGINS) may read from our answers.
EXPOSED_HEADERS = (REQUEST_ID_HEADER, "Retry-After", "WWW-Authenticate")


def init_operations(app: Flask, settings: Settings, model: LoadedModel) -> None:
    metrics = init_observability(app, settings, model)
    app.extensions["braintumor.metrics"] = metrics
