"""Who may classify, how often, and how many at once: API keys, rate limits, admission.

* **API keys** (API_KEYS_FILE): one line per key, ``NAME sha256:HEX [revoked]``. Only the
  SHA-256 of a key is stored (keys are 256-bit random strings made by ``braintumor keys
  add``, so a plain hash is enough: nothing to brute-force). A presented key is hashed and
  compared with *every* stored hash by :func:`hmac.compare_digest`, so the time taken
  says nothing about which key, or which prefix, was close. The file is re-read when it
  changes, so a revocation needs no restart. Keys never reach a log: only their names.
* **Rate limits** (RATE_LIMIT) through flask-limiter, per key name, else per address.
* **Admission** (MAX_PENDING): THREADS classify requests run at once per worker; up to
  MAX_PENDING more wait; any more get 503 SERVER_BUSY at once, so that an overload
  costs the excess clients a retry instead of costing every client its latency.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, g, request
from flask_limiter import Limiter, RateLimitExceeded
from limits.storage import MemoryStorage

from braintumor.api.errors import error_response
from braintumor.api.observability import CLASSIFY_ENDPOINTS
from braintumor.config import Settings
from braintumor.errors import BrainTumorError, ConfigError

log = logging.getLogger(__name__)

KEY_PREFIX = "bt_"
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
_HASH = re.compile(r"sha256:[0-9a-f]{64}")
#: A key is at most this long; longer headers are refused before hashing anything.
MAX_KEY_LENGTH = 256


class ServiceError(BrainTumorError):
    """An error with response headers (WWW-Authenticate, Retry-After)."""

    headers: dict[str, str] = {}  # noqa: RUF012  # replaced per instance

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = dict(headers or {})


class UnauthorizedError(ServiceError):
    code = "UNAUTHORIZED"
    status = 401


class ForbiddenError(ServiceError):
    code = "FORBIDDEN"
    status = 403


class ServerBusyError(ServiceError):
    code = "SERVER_BUSY"
    status = 503


# --- keys ----------------------------------------------------------------------------------


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class KeyEntry:
    name: str
    digest: str
    revoked: bool = False


def parse_key_file(text: str, source: str = "API_KEYS_FILE") -> list[KeyEntry]:
    """``NAME sha256:HEX [revoked]`` per line; blank lines and ``#`` comments skipped."""
    entries: list[KeyEntry] = []
    names: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) not in (2, 3) or (len(words) == 3 and words[2] != "revoked"):
            raise ConfigError(source, f"line {number}: expected NAME sha256:HEX [revoked]")
        name, digest = words[0], words[1].lower()
        if not _NAME.fullmatch(name):
            raise ConfigError(source, f"line {number}: a name is 1-64 of A-Z a-z 0-9 . _ -")
        if not _HASH.fullmatch(digest):
            raise ConfigError(source, f"line {number}: the hash must be sha256: and 64 hex "
                              "digits (the file holds hashes, never keys)")
        if name in names:
            raise ConfigError(source, f"line {number}: the name {name} is used twice")
        names.add(name)
        entries.append(KeyEntry(name, digest, revoked=len(words) == 3))
    return entries


class KeyRing:
    """The keys of API_KEYS_FILE, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._entries: list[KeyEntry] = []
        self._load(strict=True)

    def _file_stamp(self) -> tuple[int, int]:
        stat = self.path.stat()
        return stat.st_mtime_ns, stat.st_size

    def _load(self, strict: bool) -> None:
        try:
            stamp = self._file_stamp()
            entries = parse_key_file(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ConfigError) as exc:
            if strict:
                if isinstance(exc, ConfigError):
                    raise
                raise ConfigError("API_KEYS_FILE", f"cannot read {self.path}: "
                                  f"{type(exc).__name__}") from None
            log.warning("API_KEYS_FILE could not be re-read (%s); keeping the keys loaded "
                        "before", getattr(exc, "message", type(exc).__name__))
            return
        self._entries, self._stamp = entries, stamp

    def _refresh(self) -> None:
        try:
            stamp = self._file_stamp()
        except OSError:
            return
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._load(strict=False)

    def lookup(self, key: str) -> KeyEntry | None:
        """The entry whose hash matches ``key``; every entry is compared (constant time)."""
        self._refresh()
        digest = hash_key(key)
        found = None
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, digest):
                found = entry
        return found

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self._entries]


def add_key(path: Path, name: str) -> str:
    """Append a new key named ``name`` to the file (made if absent); returns the key,
    which exists nowhere else afterwards."""
    if not _NAME.fullmatch(name):
        raise ConfigError("name", "a key name is 1-64 of A-Z a-z 0-9 . _ -")
    existing = parse_key_file(path.read_text(encoding="utf-8")) if path.exists() else []
    if any(entry.name == name for entry in existing):
        raise ConfigError("name", f"a key named {name} exists already")
    key = generate_key()
    header = "" if path.exists() else "# braintumor API keys: NAME sha256:HEX [revoked]\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(f"{header}{name} {hash_key(key)}\n")
    return key


def revoke_key(path: Path, name: str) -> None:
    """Mark the key ``name`` revoked: it then gets 403 FORBIDDEN instead of 401."""
    lines = path.read_text(encoding="utf-8").splitlines()
    parse_key_file("\n".join(lines))
    found = False
    for i, line in enumerate(lines):
        words = line.split("#", 1)[0].split()
        if words and words[0] == name:
            found = True
            if len(words) == 2:
                lines[i] = f"{words[0]} {words[1]} revoked"
    if not found:
        raise ConfigError("name", f"no key named {name}")
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)  # a reader sees the old file or the new one, never half


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


CHALLENGE = {"WWW-Authenticate": 'Bearer realm="braintumor"'}


def authenticate(ring: KeyRing) -> str:
    """The name of the request's valid key, or UnauthorizedError / ForbiddenError."""
    token = bearer_token()
    if token is None:
        raise UnauthorizedError(
            "An API key is required: send the header Authorization: Bearer KEY", CHALLENGE)
    entry = ring.lookup(token) if len(token) <= MAX_KEY_LENGTH else None
    if entry is None:
        raise UnauthorizedError("The API key is not valid", CHALLENGE)
    if entry.revoked:
        raise ForbiddenError("This API key has been revoked")
    return entry.name


# --- admission -----------------------------------------------------------------------------


class Admission:
    """At most ``active`` classify requests at once, ``pending`` more waiting, the rest
    refused at once (``pending`` 0: no limit)."""

    def __init__(self, active: int, pending: int) -> None:
        self.active = active
        self.pending = pending
        self._slots = threading.Semaphore(active)
        self._lock = threading.Lock()
        self.waiting = 0

    def enter(self) -> bool:
        if self._slots.acquire(blocking=False):
            return True
        with self._lock:
            if self.pending and self.waiting >= self.pending:
                return False
            self.waiting += 1
        try:
            self._slots.acquire()
        finally:
            with self._lock:
                self.waiting -= 1
        return True

    def leave(self) -> None:
        self._slots.release()


def gunicorn_threads(settings: Settings) -> int:
    """Threads per worker: THREADS in the model, MAX_PENDING waiting, and two to spare,
    so that the waiting ones are visible to :class:`Admission` (not queued in gunicorn)
    and probes, metrics and refusals are answered while the model is busy."""
    if settings.MAX_PENDING == 0:
        return settings.THREADS
    return settings.THREADS + settings.MAX_PENDING + 2


def _needs_key(settings: Settings) -> Callable[[], bool]:
    def needs() -> bool:
        if request.method == "OPTIONS":  # CORS preflight: browsers send no credentials
            return False
        if request.endpoint in CLASSIFY_ENDPOINTS:
            return True
        return settings.METRICS_REQUIRE_KEY and request.endpoint == "metrics_view"

    return needs


def init_security(app: Flask, settings: Settings) -> Limiter | None:
    """Keys, then the rate limit (which counts per key name), then admission."""
    if settings.API_KEYS_FILE is not None:
        ring = KeyRing(settings.API_KEYS_FILE)
        log.info("API keys required on the classify endpoints (%d keys)", len(ring.names))
        needs_key = _needs_key(settings)

        @app.before_request
        def _authenticate() -> None:
            if needs_key():
                g.api_key_name = authenticate(ring)

    @app.errorhandler(ServiceError)
    def _service_error(exc: ServiceError):
        response, status = error_response(exc.message, exc.code, exc.status)
        response.headers.update(exc.headers)
        return response, status

    limiter = None
    if settings.RATE_LIMIT:
        limiter = _rate_limiter(app, settings)

    if settings.MAX_PENDING:
        admission = Admission(settings.THREADS, settings.MAX_PENDING)
        app.extensions["braintumor.admission"] = admission

        @app.before_request
        def _admit() -> None:
            if request.endpoint not in CLASSIFY_ENDPOINTS or request.method == "OPTIONS":
                return
            if not admission.enter():
                raise ServerBusyError(
                    "The server is busy: too many images are waiting. Please retry shortly.",
                    {"Retry-After": "1"})
            g.admitted = True

        @app.teardown_request
        def _leave(exc: BaseException | None) -> None:
            if g.pop("admitted", False):
                admission.leave()

    return limiter


class QuietMemoryStorage(MemoryStorage):
    """limits' in-memory storage, clearing out expired entries every second, not 10 ms.

    Its clean-up timer is a new thread each time the last one has fired, so at this
    service's pace (a request every 20 ms) nearly every request started a thread: about
    0.5 ms each on two busy cores. Whether an entry has expired is decided from its time
    on every check, not by the clean-up, so limits are counted exactly as before; only
    the memory of expired entries is given back later. (The override names the parent's
    private method: should limits rename it, the parent's own timer simply applies.)
    """

    STORAGE_SCHEME = ["braintumor-memory"]  # noqa: RUF012  # limits' registry reads it

    def _MemoryStorage__schedule_expiry(self) -> None:
        if not self.timer.is_alive():
            self.timer = threading.Timer(
                1.0, self._MemoryStorage__expire_events)  # type: ignore[attr-defined]
            self.timer.daemon = True
            self.timer.start()


def _rate_limiter(app: Flask, settings: Settings) -> Limiter:
    def client() -> str:
        name = g.get("api_key_name")
        return f"key:{name}" if name else f"address:{request.remote_addr or 'unknown'}"

    def exempt() -> bool:
        return request.endpoint not in CLASSIFY_ENDPOINTS or request.method == "OPTIONS"

    storage = settings.RATE_LIMIT_STORAGE
    if storage == "memory://":
        storage = "braintumor-memory://"
    limiter = Limiter(
        key_func=client, app=app, storage_uri=storage,
        application_limits=[settings.RATE_LIMIT], application_limits_exempt_when=exempt,
        headers_enabled=False, strategy="moving-window",
    )

    @app.errorhandler(RateLimitExceeded)
    def _limited(exc: RateLimitExceeded):
        current = limiter.current_limit
        window = exc.limit.limit.get_expiry()  # reset_at is rounded: never past the window
        wait = window
        if current is not None:
            wait = min(window, max(1, math.ceil(current.reset_at - time.time())))
        response, status = error_response(
            f"Too many requests: the limit is {exc.limit.limit}. Retry after {wait} s.",
            "RATE_LIMITED", 429)
        response.headers["Retry-After"] = str(wait)
        return response, status

    return limiter
