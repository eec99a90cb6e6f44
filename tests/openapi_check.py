"""Hold a real response to the OpenAPI document: status listed, content type, headers, body."""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from braintumor.api.openapi import build_document

DOCUMENT = build_document()


def _operation(path: str, method: str) -> dict[str, Any]:
    """The path's operation for ``method``; for another method (a 405) any of its
    operations, each of which documents the 405."""
    for template, item in DOCUMENT["paths"].items():
        pattern = "^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            return item.get(method.lower()) or next(iter(item.values()))
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


def _validate(instance: Any, schema: dict[str, Any]) -> None:
    root = {"components": DOCUMENT["components"], "allOf": [schema]}
    Draft202012Validator(root, format_checker=FormatChecker()).validate(instance)


def check_response(path: str, method: str, status: int, headers: Any, body: bytes) -> None:
    """Raise AssertionError / ValidationError when the response breaks the document.

    ``headers`` is any mapping with case-insensitive ``get`` (Flask's or requests')."""
    operation = _operation(path, method)
    spec = operation["responses"].get(str(status))
    assert spec is not None, f"{method} {path}: status {status} is not documented"
    for name, header in spec.get("headers", {}).items():
        if "$ref" in header:
            header = DOCUMENT["components"]["headers"][header["$ref"].rsplit("/", 1)[1]]
        value = headers.get(name)
        if header.get("required"):
            assert value is not None, f"{method} {path} {status}: no {name} header"
        if value is not None:
            _validate(value, header["schema"])
    content = spec.get("content", {})
    media = (headers.get("Content-Type") or "").split(";")[0].strip()
    if "*/*" in content:
        return
    assert media in content, f"{method} {path} {status}: {media} not documented"
    if media == "application/json":
        _validate(json.loads(body), content[media]["schema"])
