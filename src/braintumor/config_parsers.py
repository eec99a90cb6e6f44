"""Environment variables' text -> setting values, or one ConfigError line naming them.

Each parser takes the setting's name (for the message) and the raw text; the table in
:mod:`braintumor.config` says which parser reads which variable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from braintumor.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(name, f"expected true or false, got {raw!r}")


def parse_int(name: str, raw: str, minimum: int, maximum: int | None = None) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(name, f"expected a whole number, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(name, f"must be {bound}, got {value}")
    return value


def parse_positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(name, f"expected a number, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(name, f"must be a positive number, got {raw!r}")
    return value


def parse_size(name: str, raw: str) -> tuple[int, int]:
    """'224', '224,224', '224x224' or '[224, 224]' -> (224, 224)."""
    text = raw.strip().strip("[]()").replace("x", ",").replace(" ", "")
    parts = [p for p in text.split(",") if p]
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        raise ConfigError(name, f"expected HEIGHT,WIDTH, got {raw!r}")
    height, width = (parse_int(name, p, 16, 4096) for p in parts)
    return height, width


def parse_class_names(name: str, raw: str) -> dict[int, str]:
    """A JSON object {"0": "Glioma", ...}, a JSON list, or a comma-separated list."""
    text = raw.strip()
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = [p.strip() for p in text.split(",")]
    if isinstance(parsed, list):
        parsed = dict(enumerate(parsed))
    if not isinstance(parsed, dict) or not parsed:
        raise ConfigError(name, f"expected a list of class names, got {raw!r}")
    try:
        names = {int(k): str(v).strip() for k, v in parsed.items()}
    except (TypeError, ValueError):
        raise ConfigError(name, f"class ids must be whole numbers, got {raw!r}") from None
    if sorted(names) != list(range(len(names))) or not all(names.values()):
        raise ConfigError(name, "ids must run 0..N-1 and every name must be non-empty")
    return names


def parse_origins(raw: str) -> tuple[str, ...]:
    text = raw.strip()
    if text.startswith("["):
        try:
            return tuple(str(o) for o in json.loads(text))
        except json.JSONDecodeError:
            pass
    return tuple(o.strip() for o in text.split(",") if o.strip())


def parse_choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(name, f"expected one of {', '.join(choices)}, got {raw!r}")
    return value


def parse_rate_limit(name: str, raw: str) -> str:
    """A flask-limiter limit string (``60/minute``, ``10 per second;100/hour``), checked
    at start-up so a typo is one line there, not an exception on the first request."""
    from limits import parse_many

    text = raw.strip()
    try:
        parse_many(text)
    except ValueError:
        raise ConfigError(name, f"expected a limit like 60/minute, got {raw!r}") from None
    return text


def parse_path(name: str, raw: str) -> Path:
    return Path(raw.strip()).expanduser()


def parse_text(name: str, raw: str) -> str:
    return raw.strip()


def int_between(minimum: int, maximum: int | None = None) -> Callable[[str, str], int]:
    return lambda name, raw: parse_int(name, raw, minimum, maximum)


def one_of(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    return lambda name, raw: parse_choice(name, raw, choices)
