"""The audit trail: one JSON line per classification in AUDIT_LOG.

A line says who asked (the API key's name), when, which request, which model answered,
what was sent (the SHA-256 of each upload, never its name or pixels) and what was
answered (class, probabilities, the not-a-brain-MRI decision) or refused (the error
code). It is written before the response is sent, with one ``write`` on a file opened
``O_APPEND``: no buffer to lose, so a crash loses no line of an answered request, and
the workers of one server append whole lines to the same file without a lock.

``braintumor audit verify FILE`` checks a trail: every line JSON with exactly these
fields and types, hashes that are hashes, whole lines.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Response, g, request

from braintumor.api.observability import CLASSIFY_ENDPOINTS, Outcome
from braintumor.classify import utc_timestamp

#: The fields of a line and their JSON types; nothing else may appear (no patient data).
FIELDS: dict[str, tuple[type, ...]] = {
    "time": (str,),
    "request_id": (str,),
    "endpoint": (str,),
    "status": (int,),
    "key": (str, type(None)),
    "model_version": (str, type(None)),
    "sha256": (list,),
    "class": (str, type(None)),
    "probabilities": (dict, type(None)),
    "ood": (dict, type(None)),
    "refusal": (str, type(None)),
}
_HEX = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


class AuditLog:
    """Appends audit lines to one file (shared by every worker of the server)."""

    def __init__(self, path: Path, model_version: str | None) -> None:
        self.path = path
        self.model_version = model_version
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode("utf-8"))

    def after_response(self, response: Response, code: str | None) -> None:
        """The hook :func:`~braintumor.api.observability.init_observability` calls: a line
        for each classify request whose upload was read (not for a 401 or a 429)."""
        outcome: Outcome | None = g.get("outcome")
        if request.endpoint not in CLASSIFY_ENDPOINTS or outcome is None:
            return
        if not outcome.uploads:  # refused before the upload was read
            return
        self.write(entry_for(outcome, response.status_code, code, self.model_version))


def _ood(body: dict[str, Any]) -> dict[str, Any] | None:
    if "ood" in body and isinstance(body["ood"], dict):
        ood = body["ood"]
        return {"flagged": ood.get("flagged"), "score": ood.get("score"),
                "threshold": ood.get("threshold")}
    summary = body.get("summary")
    if isinstance(summary, dict):  # a series: how many slices the check refused
        return {"slices_answered": summary.get("slices_answered"),
                "slices_refused": summary.get("slices_refused")}
    return None


def entry_for(outcome: Outcome, status: int, code: str | None,
              model_version: str | None) -> dict[str, Any]:
    body = outcome.answer or {}
    block = body.get("prediction") or body.get("summary") or {}
    refused_by_ood = code == "NOT_BRAIN_MRI"
    return {
        "time": utc_timestamp(),
        "request_id": g.get("request_id") or "",
        "endpoint": request.path,
        "status": status,
        "key": g.get("api_key_name"),
        "model_version": model_version,
        "sha256": list(outcome.sha256),
        "class": block.get("class") if status == 200 else None,
        "probabilities": block.get("probabilities") if status == 200 else None,
        "ood": _ood(body) if status == 200 else ({"flagged": True} if refused_by_ood else None),
        "refusal": code,
    }


@dataclass
class Verification:
    lines: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_lines(lines: Iterable[str]) -> Verification:
    """Check every line of a trail; problems name the line number, never its content."""
    result = Verification()
    for number, line in enumerate(lines, 1):
        result.lines = number
        if not line.endswith("\n"):
            result.problems.append(f"line {number}: not terminated (a torn write)")
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            result.problems.append(f"line {number}: not JSON")
            continue
        if not isinstance(entry, dict):
            result.problems.append(f"line {number}: not a JSON object")
            continue
        extra = sorted(set(entry) - set(FIELDS))
        missing = sorted(set(FIELDS) - set(entry))
        if extra:
            result.problems.append(f"line {number}: unexpected fields {', '.join(extra)}")
        if missing:
            result.problems.append(f"line {number}: missing fields {', '.join(missing)}")
        for name, types in FIELDS.items():
            if name in entry and (not isinstance(entry[name], types)
                                  or (isinstance(entry[name], bool) and bool not in types)):
                result.problems.append(f"line {number}: {name} has the wrong type")
        if isinstance(entry.get("time"), str) and not _TIME.fullmatch(entry["time"]):
            result.problems.append(f"line {number}: time is not ISO-8601 UTC")
        hashes = entry.get("sha256")
        if isinstance(hashes, list) and (not hashes or not all(
                isinstance(h, str) and _HEX.fullmatch(h) for h in hashes)):
            result.problems.append(f"line {number}: sha256 must list 64-digit hex hashes")
        if entry.get("status") == 200 and entry.get("class") is None:
            result.problems.append(f"line {number}: an answer without a class")
    return result


def verify_file(path: Path) -> Verification:
    with open(path, encoding="utf-8", newline="") as handle:
        return verify_lines(handle)
