"""Settings: the spec's defaults, overridden by environment variables of the same name.

Settings are read once into a frozen :class:`Settings` and passed down; nothing deeper in
the package reads the environment. A value that cannot be parsed raises
:class:`~braintumor.errors.ConfigError` naming the setting, so start-up fails with one
clear line instead of a traceback halfway through the first request.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from braintumor.errors import ConfigError

#: Repository root when running from a checkout (src/braintumor/config.py -> ../../..).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_PATH = PROJECT_ROOT / "models" / "braintumor-cnn.keras"
#: Where `make frontend` builds the web page that the API serves at / and /assets/.
DEFAULT_FRONTEND_DIST = PROJECT_ROOT / "frontend" / "dist"

DEFAULT_CLASS_NAMES: dict[int, str] = {
    0: "Glioma",
    1: "Meningioma",
    2: "No Tumor",
    3: "Pituitary",
}

#: Scalings a bare model (one without metadata) may declare through INPUT_SCALING.
INPUT_SCALINGS = ("unit", "raw", "symmetric", "caffe", "torch")
#: What to do with an image that is not a brain MRI (braintumor.ood.detector).
OOD_POLICIES = ("reject", "warn", "off")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """Every setting of the service, with the spec's defaults."""

    MODEL_PATH: Path = DEFAULT_MODEL_PATH
    IMAGE_SIZE: tuple[int, int] = (224, 224)
    CLASS_NAMES: dict[int, str] = field(default_factory=lambda: dict(DEFAULT_CLASS_NAMES))
    FLASK_HOST: str = "0.0.0.0"
    FLASK_PORT: int = 5000
    CORS_ORIGINS: tuple[str, ...] = ("http://localhost:3000",)
    MAX_CONTENT_LENGTH: int = 16 * 1024 * 1024
    FLASK_ENV: str = "development"
    FLASK_DEBUG: bool = False
    LOG_LEVEL: str = "INFO"
    SPARK_APP_NAME: str = "BrainTumorClassification-Backend"
    SPARK_MASTER: str = "local[*]"
    SPARK_EXECUTOR_MEMORY: str = "2g"
    SPARK_DRIVER_MEMORY: str = "2g"
    SPARK_ENABLED: bool = False
    #: Layer whose feature map Grad-CAM explains; empty means "find the last 4-D layer".
    GRADCAM_LAYER: str = ""
    #: Long side of the returned visualisations, in pixels (never below 224).
    VISUALIZATION_MAX_SIZE: int = 512
    #: Input scaling for a model that carries no metadata of its own.
    INPUT_SCALING: str = "unit"
    #: Largest decoded image accepted, in pixels; guards against decompression bombs.
    MAX_IMAGE_PIXELS: int = 64_000_000
    #: gunicorn worker processes and threads per worker.
    WORKERS: int = 1
    THREADS: int = 4
    #: The built web page (index.html and assets/); served at / to browsers when present.
    FRONTEND_DIST: Path = DEFAULT_FRONTEND_DIST
    #: Not-a-brain-MRI images: "reject" (422 NOT_BRAIN_MRI), "warn" (answer, flagged), "off".
    OOD_POLICY: str = "reject"
    #: Feature-distance limit overriding the model's fitted one; None keeps the fitted one.
    OOD_THRESHOLD: float | None = None
    #: Most slices one series may have (POST /api/classify-series, classify-series, dicomweb).
    MAX_SERIES_SLICES: int = 400
    #: Largest series in bytes: the request body, a zip's expanded members, a NIfTI's data.
    MAX_SERIES_BYTES: int = 512 * 1024 * 1024
    #: Image-size setting came from the environment (so it must match the model).
    IMAGE_SIZE_EXPLICIT: bool = False

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and the CLI use this)."""
        return replace(self, **changes)

    @property
    def class_list(self) -> list[str]:
        """Class names ordered by id."""
        return [self.CLASS_NAMES[i] for i in sorted(self.CLASS_NAMES)]


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(name, f"expected true or false, got {raw!r}")


def _parse_int(name: str, raw: str, minimum: int, maximum: int | None = None) -> int:
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(name, f"expected a whole number, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(name, f"must be {bound}, got {value}")
    return value


def _parse_positive_float(name: str, raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(name, f"expected a number, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ConfigError(name, f"must be a positive number, got {raw!r}")
    return value


def _parse_size(name: str, raw: str) -> tuple[int, int]:
    """'224', '224,224', '224x224' or '[224, 224]' -> (224, 224)."""
    text = raw.strip().strip("[]()").replace("x", ",").replace(" ", "")
    parts = [p for p in text.split(",") if p]
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        raise ConfigError(name, f"expected HEIGHT,WIDTH, got {raw!r}")
    height, width = (_parse_int(name, p, 16, 4096) for p in parts)
    return height, width


def _parse_class_names(name: str, raw: str) -> dict[int, str]:
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


def _parse_origins(raw: str) -> tuple[str, ...]:
    text = raw.strip()
    if text.startswith("["):
        try:
            return tuple(str(o) for o in json.loads(text))
        except json.JSONDecodeError:
            pass
    return tuple(o.strip() for o in text.split(",") if o.strip())


def _parse_choice(name: str, raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise ConfigError(name, f"expected one of {', '.join(choices)}, got {raw!r}")
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from the spec defaults and ``environ`` (default: os.environ)."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}

    def raw(name: str) -> str | None:
        value = env.get(name)
        return None if value is None else str(value)

    if (v := raw("MODEL_PATH")) is not None and v.strip():
        values["MODEL_PATH"] = Path(v.strip()).expanduser()
    if (v := raw("IMAGE_SIZE")) is not None and v.strip():
        values["IMAGE_SIZE"] = _parse_size("IMAGE_SIZE", v)
        values["IMAGE_SIZE_EXPLICIT"] = True
    if (v := raw("CLASS_NAMES")) is not None and v.strip():
        values["CLASS_NAMES"] = _parse_class_names("CLASS_NAMES", v)
    if (v := raw("FLASK_HOST")) is not None and v.strip():
        values["FLASK_HOST"] = v.strip()
    if (v := raw("FLASK_PORT")) is not None:
        values["FLASK_PORT"] = _parse_int("FLASK_PORT", v, 1, 65535)
    if (v := raw("CORS_ORIGINS")) is not None:
        values["CORS_ORIGINS"] = _parse_origins(v)
    if (v := raw("MAX_CONTENT_LENGTH")) is not None:
        values["MAX_CONTENT_LENGTH"] = _parse_int("MAX_CONTENT_LENGTH", v, 1024)
    if (v := raw("FLASK_ENV")) is not None and v.strip():
        values["FLASK_ENV"] = _parse_choice(
            "FLASK_ENV", v, ("development", "production", "testing")
        )
    if (v := raw("FLASK_DEBUG")) is not None:
        values["FLASK_DEBUG"] = _parse_bool("FLASK_DEBUG", v)
    if (v := raw("LOG_LEVEL")) is not None and v.strip():
        values["LOG_LEVEL"] = _parse_choice(
            "LOG_LEVEL", v, ("debug", "info", "warning", "error", "critical")
        ).upper()
    for name in ("SPARK_APP_NAME", "SPARK_MASTER", "SPARK_EXECUTOR_MEMORY", "SPARK_DRIVER_MEMORY"):
        if (v := raw(name)) is not None and v.strip():
            values[name] = v.strip()
    if (v := raw("SPARK_ENABLED")) is not None:
        values["SPARK_ENABLED"] = _parse_bool("SPARK_ENABLED", v)
    if (v := raw("GRADCAM_LAYER")) is not None:
        values["GRADCAM_LAYER"] = v.strip()
    if (v := raw("VISUALIZATION_MAX_SIZE")) is not None:
        values["VISUALIZATION_MAX_SIZE"] = _parse_int("VISUALIZATION_MAX_SIZE", v, 224, 4096)
    if (v := raw("INPUT_SCALING")) is not None and v.strip():
        values["INPUT_SCALING"] = _parse_choice("INPUT_SCALING", v, INPUT_SCALINGS)
    if (v := raw("MAX_IMAGE_PIXELS")) is not None:
        values["MAX_IMAGE_PIXELS"] = _parse_int("MAX_IMAGE_PIXELS", v, 50_176)
    if (v := raw("WORKERS")) is not None:
        values["WORKERS"] = _parse_int("WORKERS", v, 1, 64)
    if (v := raw("THREADS")) is not None:
        values["THREADS"] = _parse_int("THREADS", v, 1, 64)
    if (v := raw("FRONTEND_DIST")) is not None and v.strip():
        values["FRONTEND_DIST"] = Path(v.strip()).expanduser()
    if (v := raw("OOD_POLICY")) is not None and v.strip():
        values["OOD_POLICY"] = _parse_choice("OOD_POLICY", v, OOD_POLICIES)
    if (v := raw("OOD_THRESHOLD")) is not None and v.strip():
        values["OOD_THRESHOLD"] = _parse_positive_float("OOD_THRESHOLD", v)
    if (v := raw("MAX_SERIES_SLICES")) is not None:
        values["MAX_SERIES_SLICES"] = _parse_int("MAX_SERIES_SLICES", v, 1, 100_000)
    if (v := raw("MAX_SERIES_BYTES")) is not None:
        values["MAX_SERIES_BYTES"] = _parse_int("MAX_SERIES_BYTES", v, 1024)

    settings = Settings(**values)  # type: ignore[arg-type]
    return settings


def describe(settings: Settings) -> dict[str, object]:
    """Settings as plain JSON-able values (for `braintumor config` and logs)."""
    out: dict[str, object] = {}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out
