"""braintumor.errors.ERROR_CODES is the one table of error codes: the exception classes,
the README's table, the OpenAPI document and the page's messages all list exactly it."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import braintumor
from braintumor.api.openapi import build_document
from braintumor.errors import ERROR_CODES, BrainTumorError

ROOT = Path(__file__).resolve().parents[1]

#: Codes of errors that only command-line tools raise, never an answer of the API.
COMMAND_LINE_ONLY = {"DICOMWEB_ERROR"}  # `braintumor dicomweb`: a PACS exchange failed
#: The page's own codes, for failures that never reached the API.
PAGE_ONLY = {"NETWORK_ERROR", "TIMEOUT", "BAD_RESPONSE"}


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_error_class_has_its_code_and_status_in_the_table():
    """Every module is imported first, so the answer does not depend on which modules
    the tests before this one happened to load."""
    for module in pkgutil.walk_packages(braintumor.__path__, "braintumor."):
        if not module.name.endswith(".__main__"):
            importlib.import_module(module.name)
    classes = {cls.code: cls.status for cls in [BrainTumorError, *_subclasses(BrainTumorError)]}
    assert "DICOMWEB_ERROR" in classes and "SERVER_BUSY" in classes  # every module was seen
    for code in set(classes) - COMMAND_LINE_ONLY:
        assert ERROR_CODES.get(code) == classes[code], code


def test_the_readme_table_lists_the_codes_with_their_statuses():
    text = (ROOT / "README.md").read_text()
    table = text.split("| Code | HTTP | When |\n", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| (\d{3}) \|", table, re.MULTILINE)
    assert len(rows) == len(table.splitlines()) - 1  # every row but the rule was read
    assert len(rows) == len(set(rows))
    assert {code: int(status) for code, status in rows} == ERROR_CODES


def _response_codes(document):
    """(code, status) of every error response of every operation."""
    for item in document["paths"].values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                for part in (schema or {}).get("allOf", [])[1:]:
                    for code in part["properties"]["error"]["properties"]["code"]["enum"]:
                        yield code, int(status)


def test_the_openapi_document_lists_the_codes_with_their_statuses():
    document = build_document()
    error = document["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["properties"]["code"]["enum"] == list(ERROR_CODES)
    answered = set(_response_codes(document))
    assert {code for code, _ in answered} == set(ERROR_CODES)
    assert all(ERROR_CODES[code] == status for code, status in answered), answered


def test_the_page_has_a_sentence_for_exactly_the_codes():
    source = (ROOT / "frontend/src/messages.ts").read_text()
    block = source.split("ERROR_SENTENCES: Record<string, string> = {", 1)[1].split("\n};", 1)[0]
    keys = re.findall(r"^  ([A-Z_]+):", block, re.MULTILINE)
    assert len(keys) == len(set(keys))
    assert set(keys) - PAGE_ONLY == set(ERROR_CODES)


def test_the_page_derives_codes_from_statuses_as_the_table_does():
    source = (ROOT / "frontend/src/api.ts").read_text()
    block = source.split("CODE_FOR_STATUS: Record<number, string> = {", 1)[1].split("};", 1)[0]
    pairs = re.findall(r"(\d{3}): '([A-Z_]+)'", block)
    assert pairs
    assert all(ERROR_CODES[code] == int(status) for status, code in pairs), pairs
