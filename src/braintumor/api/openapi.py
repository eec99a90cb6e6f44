"""The API's OpenAPI 3.1 document, kept here by hand beside the code it describes.

Kept, not generated: the answers are built by plain functions (``to_json``), not by
schema classes a generator could read, and a kept document is the contract the tests hold
the code to, rather than a copy of whatever the code does. Three checks keep it true:
``tests/api/test_openapi.py`` validates real answers of every endpoint against it (one
per status the suite can provoke), ``tests/api/test_schemathesis.py`` fuzzes a live
server from it, and a test compares its paths with the app's URL rules.

Objects allow fields beyond the listed ones (JSON Schema's default), as the spec allows
a response to grow: a client must ignore fields it does not know.
"""

from __future__ import annotations

from typing import Any

from braintumor import __version__
from braintumor.api.openapi_schemas import nullable as _nullable
from braintumor.api.openapi_schemas import ref as _ref
from braintumor.api.openapi_schemas import schemas as _schemas
from braintumor.errors import ERROR_CODES

__all__ = ["ERROR_CODES", "build_document"]

_REQUEST_ID = _ref("headers", "X-Request-ID")


def _json(schema: dict[str, Any], description: str,
          headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description,
            "headers": {"X-Request-ID": _REQUEST_ID, **(headers or {})},
            "content": {"application/json": {"schema": schema}}}


def _error(description: str, codes: list[str],
           headers: dict[str, Any] | None = None) -> dict[str, Any]:
    schema = {"allOf": [_ref("schemas", "Error"), {"properties": {"error": {
        "properties": {"code": {"enum": codes}}}}}]}
    return _json(schema, description + " Codes: " + ", ".join(codes) + ".", headers)


_RETRY_AFTER = {"Retry-After": _ref("headers", "Retry-After")}
_CHALLENGE = {"WWW-Authenticate": _ref("headers", "WWW-Authenticate")}


def _common_errors() -> dict[str, Any]:
    return {
        "404": _error("No such endpoint.", ["NOT_FOUND"]),
        "405": _error("Wrong method for this endpoint.", ["METHOD_NOT_ALLOWED"],
                      {"Allow": {"description": "The methods the endpoint takes",
                                 "schema": {"type": "string"}}}),
        "500": _error("Unexpected failure; details go to the log only.",
                      ["INTERNAL_ERROR"]),
    }


def _classify_errors(series: bool) -> dict[str, Any]:
    bad = ["NO_FILE", "EMPTY_FILENAME", "INVALID_IMAGE", "BAD_REQUEST"]
    if series:
        bad.insert(3, "INVALID_SERIES")
    return {
        "400": _error("The request or its file is not usable.", bad),
        "401": _error("API keys are on (API_KEYS_FILE) and the request has no valid key.",
                      ["UNAUTHORIZED"], _CHALLENGE),
        "403": _error("The key has been revoked.", ["FORBIDDEN"]),
        "404": _error("No such endpoint.", ["NOT_FOUND"]),
        "405": _error("Wrong method for this endpoint.", ["METHOD_NOT_ALLOWED"]),
        "413": _error("The body is over the limit (MAX_CONTENT_LENGTH, or for a series "
                      "MAX_SERIES_BYTES / MAX_SERIES_SLICES).", ["FILE_TOO_LARGE"]),
        "415": _error("Not an accepted file type.", ["INVALID_FILE_TYPE"]),
        "422": _error("No slice looks like a brain MRI, or none of them shows enough brain "
                      "to be assessed: no diagnosis." if series else
                      "The image decoded but is not a brain MRI: no diagnosis.",
                      ["NOT_BRAIN_MRI"]),
        "429": _error("Over RATE_LIMIT for this key (or address).", ["RATE_LIMITED"],
                      _RETRY_AFTER),
        "500": _error("Model inference failed, or an unexpected failure.",
                      ["CLASSIFICATION_ERROR", "INTERNAL_ERROR"]),
        "503": _error("More than MAX_PENDING images are waiting: retry later.",
                      ["SERVER_BUSY"], _RETRY_AFTER),
    }


def _multipart(series: bool) -> dict[str, Any]:
    binary = {"type": "string", "format": "binary"}
    if series:
        properties: dict[str, Any] = {"file": {
            "description": "DICOM slices (several parts), one zip of them, or one NIfTI "
                           "volume (.nii, .nii.gz)",
            "type": "array", "minItems": 1, "items": binary}}
    else:
        properties = {
            "file": {**binary, "description": "png, jpg, jpeg, gif, bmp, webp, dcm, dicom "
                                              "(recognised by content)"},
            "frame": {"type": "string", "pattern": "^[0-9]{1,9}$",
                      "description": "0-based frame of a multi-frame DICOM (default: the "
                                     "middle one)"},
        }
    return {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"], "properties": properties}}}}


def _operation(summary: str, responses: dict[str, Any], tag: str,
               **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "tags": [tag],
            "parameters": [_ref("parameters", "X-Request-ID")],
            "responses": responses, **extra}


def _static_file(summary: str, description: str, tag: str, name: str) -> dict[str, Any]:
    """GET of one file of a static folder, named by the path parameter ``name``."""
    return _operation(
        summary,
        {"200": {"description": description, "headers": {"X-Request-ID": _REQUEST_ID},
                 "content": {"*/*": {"schema": {"type": "string"}}}},
         **_common_errors()}, tag,
        parameters=[_ref("parameters", "X-Request-ID"),
                    {"name": name, "in": "path", "required": True,
                     "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]+$"}}])


def build_document() -> dict[str, Any]:
    """The whole document (a new dict each call: callers may change theirs)."""
    schemas = _schemas()
    string = {"type": "string"}
    health = {
        "type": "object", "required": ["status", "timestamp", "services", "details"],
        "properties": {
            "status": {"enum": ["healthy", "degraded"]},
            "timestamp": _ref("schemas", "Timestamp"),
            "services": {"type": "object", "required": ["model", "spark"], "properties": {
                "model": {"type": "object", "required": ["status", "loaded"], "properties": {
                    "status": string, "loaded": {"type": "boolean"}}},
                "spark": {"type": "object", "required": ["status", "active"], "properties": {
                    "status": {"enum": ["disabled", "starting", "up", "down"]},
                    "active": {"type": "boolean"}, "error": string}}}},
            "details": {"type": "object", "required": ["model_path", "num_classes",
                                                       "image_size"], "properties": {
                "model_path": string, "num_classes": {"type": "integer"},
                "image_size": {"type": "array", "items": {"type": "integer"}},
                "spark_version": _nullable(string), "model_version": _nullable(string),
                "temperature": _nullable({"type": "number"}),
                "gradcam_layer": _nullable(string), "ood_policy": string,
                "model_runtime": {"enum": ["onnxruntime", "tensorflow"]},
                # pyspark is the [spark] extra, not needed by the server
                "spark_installed": {"type": "boolean"},
                "ood_threshold": _nullable({"type": "number"})}},
        },
    }
    classes = {"type": "object", "required": ["success", "classes", "total_classes"],
               "properties": {
                   "success": {"const": True},
                   "classes": {"type": "array", "items": {
                       "type": "object", "required": ["id", "name", "description"],
                       "properties": {"id": {"type": "integer"}, "name": string,
                                      "description": string}}},
                   "total_classes": {"type": "integer"}}}
    info = {"type": "object", "required": ["name", "version", "endpoints"], "properties": {
        "name": string, "version": string,
        "endpoints": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["method", "description"],
            "properties": {"method": string, "description": string}}}}}
    keyed: list[dict[str, list[str]]] = [{"bearerAuth": []}, {}]
    html = {"text/html": {"schema": string}}
    paths: dict[str, Any] = {
        "/": {"get": _operation(
            "API name, version and endpoints (a browser asking for HTML gets the web page)",
            {"200": {"description": "JSON for API clients; the page for browsers",
                     "headers": {"X-Request-ID": _REQUEST_ID},
                     "content": {"application/json": {"schema": info}, **html}},
             **_common_errors()}, "service")},
        "/api/health": {"get": _operation(
            "Service health: the model, Spark, and details of what is served",
            {"200": _json(health, "Health"), **_common_errors()}, "service")},
        "/api/classes": {"get": _operation(
            "The classes with ids and descriptions",
            {"200": _json(classes, "The classes"), **_common_errors()}, "service")},
        "/api/classify": {"post": _operation(
            "Classify one MRI slice (image or DICOM) and explain it with Grad-CAM; a "
            "model with a segmentation output also says where the tumour is",
            {"200": _json(_ref("schemas", "ClassifyResponse"), "The prediction"),
             **_classify_errors(series=False)}, "classify",
            requestBody=_multipart(series=False), security=keyed)},
        "/api/classify-series": {"post": _operation(
            "Classify a whole series: every slice, the series, the key slice explained",
            {"200": _json(_ref("schemas", "SeriesResponse"), "The series' answer"),
             **_classify_errors(series=True)}, "classify",
            requestBody=_multipart(series=True), security=keyed)},
        "/livez": {"get": _operation(
            "Liveness: the process answers",
            {"200": _json(_ref("schemas", "Probe"), "Alive"), **_common_errors()},
            "operations")},
        "/readyz": {"get": _operation(
            "Readiness: the model is loaded and warmed, and the server is not draining",
            {"200": _json(_ref("schemas", "Probe"), "Ready"),
             "503": _json(_ref("schemas", "Probe"), "Draining after SIGTERM: send no more"),
             **_common_errors()}, "operations")},
        "/metrics": {"get": _operation(
            "Prometheus metrics (all workers added up); off with METRICS_ENABLED=false",
            {"200": {"description": "Prometheus text exposition format 0.0.4",
                     "headers": {"X-Request-ID": _REQUEST_ID},
                     "content": {"text/plain": {"schema": string}}},
             "401": _error("METRICS_REQUIRE_KEY=true and no valid key.", ["UNAUTHORIZED"],
                           _CHALLENGE),
             "403": _error("The key has been revoked.", ["FORBIDDEN"]),
             **_common_errors()}, "operations", security=keyed)},
        "/api/openapi.json": {"get": _operation(
            "This document", {"200": _json({"type": "object"}, "OpenAPI 3.1"),
                              **_common_errors()}, "operations")},
        "/api/docs": {"get": _operation(
            "This document, browsable (Swagger UI, served locally)",
            {"200": {"description": "The docs page", "headers": {"X-Request-ID": _REQUEST_ID},
                     "content": html}, **_common_errors()}, "operations")},
        "/api/docs/{name}": {"get": _static_file(
            "The docs page's script, styles and icon (Swagger UI's own files)",
            "A file of Swagger UI", "operations", "name")},
        "/assets/{filename}": {"get": _static_file(
            "The web page's scripts, styles and icons (frontend/dist/assets)",
            "A file of the built page", "web page", "filename")},
    }
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "Brain Tumor Classification API",
            "version": __version__,
            "description": (
                "Brain-MRI tumour classification with Grad-CAM explanations. Research "
                "software, not a medical device. Every error has the shape "
                "`{success: false, error: {message, code, status}, timestamp}`; every "
                "response carries `X-Request-ID`."),
        },
        "tags": [{"name": "classify"}, {"name": "service"}, {"name": "operations"},
                 {"name": "web page"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {
                "type": "http", "scheme": "bearer",
                "description": "Only when the server has API_KEYS_FILE: "
                               "`Authorization: Bearer KEY`"}},
            "parameters": {"X-Request-ID": {
                "name": "X-Request-ID", "in": "header", "required": False,
                "description": "Your id for this request: kept when it is 1-64 of "
                               "A-Z a-z 0-9 . _ : -, else replaced by a new one",
                "schema": {"type": "string"}}},
            "headers": {
                "X-Request-ID": {"description": "The request's id (the client's, or new)",
                                 "required": True, "schema": {
                                     "type": "string",
                                     "pattern": "^[A-Za-z0-9._:-]{1,64}$"}},
                "Retry-After": {"description": "Seconds to wait before retrying",
                                "required": True,
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}},
                "WWW-Authenticate": {"description": "The Bearer challenge", "required": True,
                                     "schema": {"type": "string"}},
            },
        },
    }
