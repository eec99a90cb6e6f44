"""Settings: the spec's defaults, overridden by environment variables of the same name.

Settings are read once into a frozen :class:`Settings` and passed down; nothing deeper in
the package reads the environment. A value that cannot be parsed raises
:class:`~braintumor.errors.ConfigError` naming the setting, so start-up fails with one
clear line instead of a traceback halfway through the first request.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TypeVar

from braintumor.classes import DEFAULT_CLASS_NAMES as CLASS_NAMES
from braintumor.config_parsers import (
    int_between,
    one_of,
    parse_bool,
    parse_choice,
    parse_class_names,
    parse_origins,
    parse_path,
    parse_positive_float,
    parse_rate_limit,
    parse_size,
    parse_text,
)
from braintumor.policies import OOD_POLICIES

#: Repository root when running from a checkout (src/braintumor/config.py -> ../../..).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_PATH = PROJECT_ROOT / "models" / "braintumor-cnn.keras"
#: Where `make frontend` builds the web page that the API serves at / and /assets/.
DEFAULT_FRONTEND_DIST = PROJECT_ROOT / "frontend" / "dist"

#: Where the tests, the Makefile and the CLI's defaults find the dataset.
DEFAULT_DATA = Path("../shared/datasets/brain-tumor-mri")

DEFAULT_CLASS_NAMES: dict[int, str] = dict(enumerate(CLASS_NAMES))

#: What may run the model (MODEL_RUNTIME; braintumor.model.runtime).
MODEL_RUNTIMES = ("auto", "onnx", "tensorflow")

#: Scalings a bare model (one without metadata) may declare through INPUT_SCALING.
INPUT_SCALINGS = ("unit", "raw", "symmetric", "caffe", "torch")


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
    #: A standalone master's web UI; empty means http://<master host>:8080.
    SPARK_MASTER_WEBUI: str = ""
    #: Seconds a job on a standalone master waits for its first executor.
    SPARK_EXECUTOR_TIMEOUT: int = 45
    #: Layer whose feature map Grad-CAM explains; empty means "find the last 4-D layer".
    GRADCAM_LAYER: str = ""
    #: What runs the model: "onnx" (ONNX Runtime), "tensorflow", or "auto" (ONNX Runtime
    #: when the model file carries a current ONNX graph, else TensorFlow).
    MODEL_RUNTIME: str = "auto"
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
    #: The Brain Tumor MRI dataset (Training/, Testing/): the CLI's default --data.
    BRAINTUMOR_DATA: Path = DEFAULT_DATA
    #: Log lines as JSON objects ("json"), as text ("text"), or "auto": JSON under gunicorn.
    LOG_FORMAT: str = "auto"
    #: GET /metrics (Prometheus); METRICS_REQUIRE_KEY puts it behind API_KEYS_FILE's keys.
    METRICS_ENABLED: bool = True
    METRICS_REQUIRE_KEY: bool = False
    #: Named, hashed API keys; None leaves the classify endpoints open.
    API_KEYS_FILE: Path | None = None
    #: flask-limiter limit per key (else per client address) on the classify endpoints.
    RATE_LIMIT: str = ""
    RATE_LIMIT_STORAGE: str = "memory://"
    #: Classify requests allowed to wait for the model per worker; more get 503 at once.
    MAX_PENDING: int = 8
    #: One JSON line per classification is appended here; None: no audit trail.
    AUDIT_LOG: Path | None = None
    #: SIGTERM: /readyz answers 503 for DRAIN_SECONDS, then in-flight requests get up to
    #: GRACEFUL_TIMEOUT seconds (drain included) before the workers are stopped.
    GRACEFUL_TIMEOUT: int = 20
    DRAIN_SECONDS: int = 0
    #: Image-size setting came from the environment (so it must match the model).
    IMAGE_SIZE_EXPLICIT: bool = False

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and the CLI use this)."""
        return replace(self, **changes)  # type: ignore[arg-type]  # names checked at run time

    @property
    def class_list(self) -> list[str]:
        """Class names ordered by id."""
        return [self.CLASS_NAMES[i] for i in sorted(self.CLASS_NAMES)]

    def _group(self, cls: type[_G]) -> _G:
        return cls(**{f.name: getattr(self, f.name) for f in fields(cls)})

    @property
    def serving(self) -> ServingSettings:
        return self._group(ServingSettings)

    @property
    def model(self) -> ModelSettings:
        return self._group(ModelSettings)

    @property
    def ood(self) -> OodSettings:
        return self._group(OodSettings)

    @property
    def spark(self) -> SparkSettings:
        return self._group(SparkSettings)

    @property
    def data(self) -> DataSettings:
        return self._group(DataSettings)

    @property
    def operations(self) -> OperationsSettings:
        return self._group(OperationsSettings)


# --- the settings by concern: each part of the service is handed the group it uses -------


@dataclass(frozen=True)
class ServingSettings:
    """The HTTP server, its limits and its answers (api, server)."""

    FLASK_HOST: str
    FLASK_PORT: int
    CORS_ORIGINS: tuple[str, ...]
    MAX_CONTENT_LENGTH: int
    FLASK_ENV: str
    FLASK_DEBUG: bool
    LOG_LEVEL: str
    VISUALIZATION_MAX_SIZE: int
    MAX_IMAGE_PIXELS: int
    WORKERS: int
    THREADS: int
    FRONTEND_DIST: Path
    MAX_SERIES_SLICES: int
    MAX_SERIES_BYTES: int


@dataclass(frozen=True)
class ModelSettings:
    """Which model is served and how a model without metadata is read (model.loaded)."""

    MODEL_PATH: Path
    IMAGE_SIZE: tuple[int, int]
    CLASS_NAMES: dict[int, str]
    GRADCAM_LAYER: str
    INPUT_SCALING: str
    IMAGE_SIZE_EXPLICIT: bool
    MODEL_RUNTIME: str

    @property
    def class_list(self) -> list[str]:
        return [self.CLASS_NAMES[i] for i in sorted(self.CLASS_NAMES)]


@dataclass(frozen=True)
class OodSettings:
    """The not-a-brain-MRI decision (ood)."""

    OOD_POLICY: str
    OOD_THRESHOLD: float | None


@dataclass(frozen=True)
class SparkSettings:
    """The SparkSession of the batch jobs and of SPARK_ENABLED (spark_session.session)."""

    SPARK_APP_NAME: str
    SPARK_MASTER: str
    SPARK_EXECUTOR_MEMORY: str
    SPARK_DRIVER_MEMORY: str
    SPARK_ENABLED: bool
    SPARK_MASTER_WEBUI: str
    SPARK_EXECUTOR_TIMEOUT: int


@dataclass(frozen=True)
class DataSettings:
    """Where the offline commands find the dataset (cli's defaults)."""

    BRAINTUMOR_DATA: Path


@dataclass(frozen=True)
class OperationsSettings:
    """Running as a service: logs, metrics, keys, limits, audit, shutdown (api.operations)."""

    LOG_FORMAT: str
    METRICS_ENABLED: bool
    METRICS_REQUIRE_KEY: bool
    API_KEYS_FILE: Path | None
    RATE_LIMIT: str
    RATE_LIMIT_STORAGE: str
    MAX_PENDING: int
    AUDIT_LOG: Path | None
    GRACEFUL_TIMEOUT: int
    DRAIN_SECONDS: int


GROUPS: dict[str, type] = {"serving": ServingSettings, "model": ModelSettings,
                           "ood": OodSettings, "spark": SparkSettings, "data": DataSettings,
                           "operations": OperationsSettings}
_G = TypeVar("_G", ServingSettings, ModelSettings, OodSettings, SparkSettings, DataSettings,
             OperationsSettings)


@dataclass(frozen=True)
class Setting:
    """One row of :data:`SETTINGS`: an environment variable, how it is read, what it means.

    The default is the :class:`Settings` field's; ``shown`` replaces it in the README's
    table where the value itself would mislead (a path on this machine, "none").
    ``blank`` says what an empty value means: the default (True), or a value to parse
    (False: ``FLASK_DEBUG=`` is false, ``CORS_ORIGINS=`` allows no origin).
    """

    name: str
    parse: Callable[[str, str], object]
    help: str
    shown: str | None = None
    blank: bool = True


#: Every setting, in the order the README's table lists them: the one place that says
#: how each is parsed, what its default is and what it means.
SETTINGS: tuple[Setting, ...] = (
    Setting("MODEL_PATH", parse_path, "any Keras 3 `.keras`/`.h5` 4-class softmax classifier",
            shown="models/braintumor-cnn.keras"),
    Setting("IMAGE_SIZE", parse_size, "input size for a model whose input size is not "
            "fixed (must match a fixed one)", shown="224,224"),
    Setting("CLASS_NAMES", parse_class_names, "comma list, JSON list or JSON object",
            shown=",".join(CLASS_NAMES)),
    Setting("FLASK_HOST", parse_text, "where to listen"),
    Setting("FLASK_PORT", int_between(1, 65535), "where to listen", blank=False),
    Setting("CORS_ORIGINS", lambda name, raw: parse_origins(raw), "comma list or `*`",
            shown="http://localhost:3000", blank=False),
    Setting("MAX_CONTENT_LENGTH", int_between(1024), "largest upload in bytes", blank=False),
    Setting("FLASK_ENV", one_of(("development", "production", "testing")),
            "`development`, `production` or `testing`"),
    Setting("FLASK_DEBUG", parse_bool, "`true` runs Flask's debug server instead of "
            "gunicorn", blank=False),
    Setting("LOG_LEVEL", lambda name, raw: parse_choice(
        name, raw, ("debug", "info", "warning", "error", "critical")).upper(),
            "`DEBUG` also logs each request"),
    Setting("SPARK_APP_NAME", parse_text, "Spark jobs' application name"),
    Setting("SPARK_MASTER", parse_text, "Spark jobs' master"),
    Setting("SPARK_EXECUTOR_MEMORY", parse_text, "Spark jobs' executor memory"),
    Setting("SPARK_DRIVER_MEMORY", parse_text, "Spark jobs' driver memory"),
    Setting("SPARK_ENABLED", parse_bool, "`true`: the server also starts a SparkSession, "
            "reported by `/api/health` ([Spark](#spark))", blank=False),
    Setting("SPARK_MASTER_WEBUI", parse_text, "a standalone master's web UI, asked what the "
            "workers offer when no executor starts", shown="http://<master host>:8080"),
    Setting("SPARK_EXECUTOR_TIMEOUT", int_between(1, 3600), "seconds a job on a `spark://` "
            "master waits for its first executor before it fails", blank=False),
    Setting("GRADCAM_LAYER", parse_text, "layer to explain; default: the last layer with a 4-D "
            "output, also inside a nested backbone", shown="(automatic)", blank=False),
    Setting("MODEL_RUNTIME", one_of(MODEL_RUNTIMES), "what runs the model: `auto` (ONNX "
            "Runtime when the model file carries a current ONNX graph, else TensorFlow), "
            "`onnx` (a `.keras`/`.h5` model without one is converted once, with TensorFlow, "
            "and cached beside it), `tensorflow` ([runtimes](#model-runtimes))"),
    Setting("VISUALIZATION_MAX_SIZE", int_between(224, 4096), "long side of the returned pictures "
            "(never under 224)", blank=False),
    Setting("INPUT_SCALING", one_of(INPUT_SCALINGS), "for a model without metadata: `unit` "
            "(x/255), `raw`, `symmetric` ([-1, 1]), `caffe` (Keras ResNet50 "
            "`preprocess_input`), `torch`"),
    Setting("MAX_IMAGE_PIXELS", int_between(50_176), "largest decoded image, against "
            "decompression bombs", blank=False),
    Setting("WORKERS", int_between(1, 64), "gunicorn worker processes", blank=False),
    Setting("THREADS", int_between(1, 64), "gunicorn threads per worker", blank=False),
    Setting("FRONTEND_DIST", parse_path, "the built web page served at `/` (browsers) and "
            "`/assets/`", shown="frontend/dist"),
    Setting("OOD_POLICY", one_of(OOD_POLICIES), "an image that is not a brain MRI: "
            "`reject` (422 `NOT_BRAIN_MRI`), `warn` (answer, `ood.flagged` true) or `off` "
            "(no check) ([details](#out-of-distribution-inputs))"),
    Setting("OOD_THRESHOLD", parse_positive_float, "overrides the fitted limit of "
            "`ood.score` (a positive number)", shown="(the model's)"),
    Setting("MAX_SERIES_SLICES", int_between(1, 100_000), "most slices one series may have",
            blank=False),
    Setting("MAX_SERIES_BYTES", int_between(1024), "largest series in bytes: the request body, a "
            "zip's expanded members, a NIfTI's data", blank=False),
    Setting("BRAINTUMOR_DATA", parse_path, "the dataset (`Training/`, `Testing/`): the default "
            "`--data` of the offline commands, and the tests' real scans"),
    Setting("LOG_FORMAT", one_of(("auto", "json", "text")), "`json`: one JSON object per "
            "line (a line per request, with its id); `text`; `auto`: JSON under gunicorn, text "
            "for the CLI and the debug server ([Operations](#operations))"),
    Setting("METRICS_ENABLED", parse_bool, "`GET /metrics` in Prometheus' text format",
            blank=False),
    Setting("METRICS_REQUIRE_KEY", parse_bool, "`true`: `/metrics` needs an API key too "
            "(when `API_KEYS_FILE` is set)", blank=False),
    Setting("API_KEYS_FILE", parse_path, "named, hashed API keys (`braintumor keys add`); when "
            "set, the classify endpoints need `Authorization: Bearer KEY`", shown="(none)"),
    Setting("RATE_LIMIT", parse_rate_limit, "requests per key (else per client address) on the "
            "classify endpoints, e.g. `60/minute`; 429 `RATE_LIMITED` beyond", shown="(off)"),
    Setting("RATE_LIMIT_STORAGE", parse_text, "flask-limiter storage: `memory://` counts per "
            "worker process; `redis://host:6379` counts across workers and machines"),
    Setting("MAX_PENDING", int_between(0, 10_000), "classify requests that may wait for the model "
            "per worker; more get 503 `SERVER_BUSY` at once (`0`: no limit)", blank=False),
    Setting("AUDIT_LOG", parse_path, "file that gets one JSON line per classification "
            "(`braintumor audit verify` checks it)", shown="(none)"),
    Setting("GRACEFUL_TIMEOUT", int_between(1, 3600), "seconds from SIGTERM to exit: requests in "
            "flight finish within it", blank=False),
    Setting("DRAIN_SECONDS", int_between(0, 3600), "after SIGTERM, `/readyz` answers 503 this long "
            "while requests are still taken, before the server stops listening", blank=False),
)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from the spec defaults and ``environ`` (default: os.environ)."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for setting in SETTINGS:
        raw = env.get(setting.name)
        if raw is None or (setting.blank and not str(raw).strip()):
            continue
        values[setting.name] = setting.parse(setting.name, str(raw))
    if "IMAGE_SIZE" in values:
        values["IMAGE_SIZE_EXPLICIT"] = True
    return Settings(**values)  # type: ignore[arg-type]


def _shown_default(setting: Setting) -> str:
    if setting.shown is not None:
        return setting.shown
    value = getattr(Settings(), setting.name)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def settings_markdown() -> str:
    """The README's settings table, generated from :data:`SETTINGS`."""
    lines = ["| Setting | Default | Meaning |", "|---|---|---|"]
    for setting in SETTINGS:
        shown = _shown_default(setting)
        shown = shown if shown.startswith("(") else f"`{shown}`"  # "(automatic)" is words
        lines.append(f"| `{setting.name}` | {shown} | {setting.help} |")
    return "\n".join(lines) + "\n"


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
