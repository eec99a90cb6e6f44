"""Settings: the spec's defaults, overridden by environment variables of the same name.

Settings are read once into a frozen :class:`Settings` and passed down; nothing deeper in
the package reads the environment. A value that cannot be parsed raises
:class:`~braintumor.errors.ConfigError` naming the setting, so start-up fails with one
clear line instead of a traceback halfway through the first request.

Each setting is declared once, as a field of :class:`Settings` made by :func:`setting`:
its type and default, the parser that reads its variable (mypy checks that both agree
with the type), its help for the README's table and its group. :data:`SETTINGS` (what
:func:`load_settings` and :func:`settings_markdown` read) and the groups are derived
from those fields.

The groups: each part of the service is handed the group it uses (``settings.model``,
``settings.spark``...). At run time a group is a frozen dataclass made from the fields
that name it (:data:`GROUPS`), so it holds those values and no others. To the type
checker each group type is :class:`Settings` itself: Python's types cannot say "these
fields of that class" without restating each of them (a Protocol would need a read-only
property per field), so mypy checks what a part reads against :class:`Settings`, and
the group's run-time class, with the tests, against its group.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from copy import copy
from dataclasses import dataclass, field, fields, make_dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

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
from braintumor.imaging import DEFAULT_MAX_PIXELS
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

#: The groups, by the name of the :class:`Settings` property that hands each out.
GROUP_DOCS = {
    "serving": "The HTTP server, its limits and its answers (api, server).",
    "model": "Which model is served and how a model without metadata is read (model).",
    "ood": "The not-a-brain-MRI decision (ood).",
    "spark": "The SparkSession of the batch jobs and of SPARK_ENABLED (spark_session).",
    "data": "Where the offline commands find the dataset (cli's defaults).",
    "operations": "Running as a service: logs, metrics, keys, limits, audit, shutdown.",
}

_T = TypeVar("_T")


@dataclass(frozen=True)
class Setting:
    """One row of :data:`SETTINGS`: an environment variable, how it is read, what it means.

    ``group`` is the :data:`GROUPS` key of the part of the service that uses it.
    ``shown`` replaces the default in the README's table where the value itself would
    mislead (a path on this machine, "none"). ``blank`` says what an empty value means:
    the default (True), or a value to parse (False: ``FLASK_DEBUG=`` is false,
    ``CORS_ORIGINS=`` allows no origin).
    """

    name: str
    parse: Callable[[str, str], object]
    help: str
    group: str
    shown: str | None = None
    blank: bool = True


def setting(default: _T, parse: Callable[[str, str], _T], help: str, group: str, *,
            shown: str | None = None, blank: bool = True) -> _T:
    """A :class:`Settings` field read from its variable by ``parse(name, raw)`` (the rest:
    :class:`Setting`). A mutable default is copied for each instance. (That this returns a
    :func:`dataclasses.field` pyproject tells Ruff: ``extend-immutable-calls``.)"""
    meta = {"parse": parse, "help": help, "group": group, "shown": shown, "blank": blank}
    if type(default).__hash__ is None:  # what dataclasses calls mutable (a dict)
        return field(default_factory=lambda: copy(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Settings:
    """Every setting of the service, with the spec's defaults, in the README's order."""

    MODEL_PATH: Path = setting(
        DEFAULT_MODEL_PATH, parse_path, "any Keras 3 `.keras`/`.h5` 4-class softmax "
        "classifier", "model", shown="models/braintumor-cnn.keras")
    IMAGE_SIZE: tuple[int, int] = setting(
        (224, 224), parse_size, "input size for a model whose input size is not fixed "
        "(must match a fixed one)", "model", shown="224,224")
    CLASS_NAMES: dict[int, str] = setting(
        DEFAULT_CLASS_NAMES, parse_class_names, "comma list, JSON list or JSON object",
        "model", shown=",".join(CLASS_NAMES))
    FLASK_HOST: str = setting("0.0.0.0", parse_text, "where to listen", "serving")
    FLASK_PORT: int = setting(5000, int_between(1, 65535), "where to listen", "serving",
                              blank=False)
    CORS_ORIGINS: tuple[str, ...] = setting(
        ("http://localhost:3000",), lambda name, raw: parse_origins(raw),
        "comma list or `*`", "serving", shown="http://localhost:3000", blank=False)
    MAX_CONTENT_LENGTH: int = setting(16 * 1024 * 1024, int_between(1024),
                                      "largest upload in bytes", "serving", blank=False)
    FLASK_ENV: str = setting("development", one_of(("development", "production", "testing")),
                             "`development`, `production` or `testing`", "serving")
    FLASK_DEBUG: bool = setting(False, parse_bool, "`true` runs Flask's debug server "
                                "instead of gunicorn", "serving", blank=False)
    LOG_LEVEL: str = setting(
        "INFO", lambda name, raw: parse_choice(
            name, raw, ("debug", "info", "warning", "error", "critical")).upper(),
        "`DEBUG` also logs each request", "serving")
    SPARK_APP_NAME: str = setting("BrainTumorClassification-Backend", parse_text,
                                  "Spark jobs' application name", "spark")
    SPARK_MASTER: str = setting("local[*]", parse_text, "Spark jobs' master", "spark")
    SPARK_EXECUTOR_MEMORY: str = setting("2g", parse_text, "Spark jobs' executor memory",
                                         "spark")
    SPARK_DRIVER_MEMORY: str = setting("2g", parse_text, "Spark jobs' driver memory", "spark")
    SPARK_ENABLED: bool = setting(
        False, parse_bool, "`true`: the server also starts a SparkSession, reported by "
        "`/api/health` ([Spark](#spark))", "spark", blank=False)
    SPARK_MASTER_WEBUI: str = setting(
        "", parse_text, "a standalone master's web UI, asked what the workers offer when "
        "no executor starts", "spark", shown="http://<master host>:8080")
    SPARK_EXECUTOR_TIMEOUT: int = setting(
        45, int_between(1, 3600), "seconds a job on a `spark://` master waits for its "
        "first executor before it fails", "spark", blank=False)
    GRADCAM_LAYER: str = setting(
        "", parse_text, "layer to explain; default: the last layer with a 4-D output, "
        "also inside a nested backbone", "model", shown="(automatic)", blank=False)
    MODEL_RUNTIME: str = setting(
        "auto", one_of(MODEL_RUNTIMES), "what runs the model: `auto` (ONNX Runtime when "
        "the model file carries a current ONNX graph, else TensorFlow), `onnx` (a "
        "`.keras`/`.h5` model without one is converted once, with TensorFlow, and cached "
        "beside it), `tensorflow` ([runtimes](#model-runtimes))", "model")
    VISUALIZATION_MAX_SIZE: int = setting(
        512, int_between(224, 4096), "long side of the returned pictures (never under 224)",
        "serving", blank=False)
    INPUT_SCALING: str = setting(
        "unit", one_of(INPUT_SCALINGS), "for a model without metadata: `unit` (x/255), "
        "`raw`, `symmetric` ([-1, 1]), `caffe` (Keras ResNet50 `preprocess_input`), "
        "`torch`", "model")
    MAX_IMAGE_PIXELS: int = setting(
        DEFAULT_MAX_PIXELS, int_between(50_176), "largest decoded image, against "
        "decompression bombs", "serving", blank=False)
    WORKERS: int = setting(1, int_between(1, 64), "gunicorn worker processes", "serving",
                           blank=False)
    THREADS: int = setting(4, int_between(1, 64), "gunicorn threads per worker", "serving",
                           blank=False)
    FRONTEND_DIST: Path = setting(
        DEFAULT_FRONTEND_DIST, parse_path, "the built web page served at `/` (browsers) "
        "and `/assets/`", "serving", shown="frontend/dist")
    OOD_POLICY: str = setting(
        "reject", one_of(OOD_POLICIES), "an image that is not a brain MRI: `reject` (422 "
        "`NOT_BRAIN_MRI`), `warn` (answer, `ood.flagged` true) or `off` (no check) "
        "([details](#out-of-distribution-inputs))", "ood")
    OOD_THRESHOLD: float | None = setting(
        None, parse_positive_float, "overrides the fitted limit of `ood.score` (a positive "
        "number)", "ood", shown="(the model's)")
    MAX_SERIES_SLICES: int = setting(400, int_between(1, 100_000),
                                     "most slices one series may have", "serving",
                                     blank=False)
    MAX_SERIES_BYTES: int = setting(
        512 * 1024 * 1024, int_between(1024), "largest series in bytes: the request body, "
        "a zip's expanded members, a NIfTI's data", "serving", blank=False)
    BRAINTUMOR_DATA: Path = setting(
        DEFAULT_DATA, parse_path, "the dataset (`Training/`, `Testing/`): the default "
        "`--data` of the offline commands, and the tests' real scans", "data")
    LOG_FORMAT: str = setting(
        "auto", one_of(("auto", "json", "text")), "`json`: one JSON object per line (a line "
        "per request, with its id); `text`; `auto`: JSON under gunicorn, text for the CLI "
        "and the debug server ([Operations](#operations))", "operations")
    METRICS_ENABLED: bool = setting(True, parse_bool, "`GET /metrics` in Prometheus' text "
                                    "format", "operations", blank=False)
    METRICS_REQUIRE_KEY: bool = setting(
        False, parse_bool, "`true`: `/metrics` needs an API key too (when `API_KEYS_FILE` "
        "is set)", "operations", blank=False)
    API_KEYS_FILE: Path | None = setting(
        None, parse_path, "named, hashed API keys (`braintumor keys add`); when set, the "
        "classify endpoints need `Authorization: Bearer KEY`", "operations", shown="(none)")
    RATE_LIMIT: str = setting(
        "", parse_rate_limit, "requests per key (else per client address) on the classify "
        "endpoints, e.g. `60/minute`; 429 `RATE_LIMITED` beyond", "operations",
        shown="(off)")
    RATE_LIMIT_STORAGE: str = setting(
        "memory://", parse_text, "flask-limiter storage: `memory://` counts per worker "
        "process; `redis://host:6379` counts across workers and machines", "operations")
    MAX_PENDING: int = setting(
        8, int_between(0, 10_000), "classify requests that may wait for the model per "
        "worker; more get 503 `SERVER_BUSY` at once (`0`: no limit)", "operations",
        blank=False)
    AUDIT_LOG: Path | None = setting(
        None, parse_path, "file that gets one JSON line per classification (`braintumor "
        "audit verify` checks it)", "operations", shown="(none)")
    GRACEFUL_TIMEOUT: int = setting(
        20, int_between(1, 3600), "seconds from SIGTERM to exit: requests in flight finish "
        "within it", "operations", blank=False)
    DRAIN_SECONDS: int = setting(
        0, int_between(0, 3600), "after SIGTERM, `/readyz` answers 503 this long while "
        "requests are still taken, before the server stops listening", "operations",
        blank=False)
    #: Image-size setting came from the environment (so it must match the model); set by
    #: IMAGE_SIZE, not a variable of its own.
    IMAGE_SIZE_EXPLICIT: bool = field(default=False, metadata={"group": "model"})

    def with_overrides(self, **changes: object) -> Settings:
        """A copy with some fields changed (tests and the CLI use this)."""
        return replace(self, **changes)  # type: ignore[arg-type]  # names checked at run time

    @property
    def class_list(self) -> list[str]:
        """Class names ordered by id."""
        return [self.CLASS_NAMES[i] for i in sorted(self.CLASS_NAMES)]

    def _group(self, name: str) -> Any:
        group = GROUPS[name]
        return group(**{f.name: getattr(self, f.name) for f in fields(group)})

    @property
    def serving(self) -> ServingSettings:
        return self._group("serving")

    @property
    def model(self) -> ModelSettings:
        return self._group("model")

    @property
    def ood(self) -> OodSettings:
        return self._group("ood")

    @property
    def spark(self) -> SparkSettings:
        return self._group("spark")

    @property
    def data(self) -> DataSettings:
        return self._group("data")

    @property
    def operations(self) -> OperationsSettings:
        return self._group("operations")


def _group_class(name: str) -> type:
    """The frozen dataclass ``<Name>Settings`` of the fields whose group is ``name``."""
    namespace: dict[str, object] = {"__module__": __name__, "__doc__": GROUP_DOCS[name]}
    if name == "model":
        namespace["class_list"] = Settings.class_list
    return make_dataclass(f"{name.title()}Settings", [
        (f.name, f.type) for f in fields(Settings) if f.metadata["group"] == name],
        frozen=True, namespace=namespace)


#: Each group's run-time class, by the name of its :class:`Settings` property.
GROUPS: dict[str, type] = {name: _group_class(name) for name in GROUP_DOCS}
if TYPE_CHECKING:  # the groups are Settings to mypy (the module's docstring says why)
    ServingSettings: TypeAlias = Settings
    ModelSettings: TypeAlias = Settings
    OodSettings: TypeAlias = Settings
    SparkSettings: TypeAlias = Settings
    DataSettings: TypeAlias = Settings
    OperationsSettings: TypeAlias = Settings
else:
    (ServingSettings, ModelSettings, OodSettings, SparkSettings, DataSettings,
     OperationsSettings) = GROUPS.values()

#: Every setting read from a variable, in the order of the README's table.
SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, **f.metadata) for f in fields(Settings) if "parse" in f.metadata)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from the spec defaults and ``environ`` (default: os.environ)."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for row in SETTINGS:
        raw = env.get(row.name)
        if raw is None or (row.blank and not str(raw).strip()):
            continue
        values[row.name] = row.parse(row.name, str(raw))
    if "IMAGE_SIZE" in values:
        values["IMAGE_SIZE_EXPLICIT"] = True
    return Settings(**values)  # type: ignore[arg-type]


def _shown_default(row: Setting) -> str:
    if row.shown is not None:
        return row.shown
    value = getattr(Settings(), row.name)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def settings_markdown() -> str:
    """The README's settings table, generated from :data:`SETTINGS`."""
    lines = ["| Setting | Default | Meaning |", "|---|---|---|"]
    for row in SETTINGS:
        shown = _shown_default(row)
        shown = shown if shown.startswith("(") else f"`{shown}`"  # "(automatic)" is words
        lines.append(f"| `{row.name}` | {shown} | {row.help} |")
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
