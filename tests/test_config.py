"""Settings: the spec's defaults, environment overrides, and one clear error per bad value."""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path

import pytest

from braintumor.config import Settings, describe, load_settings
from braintumor.errors import ConfigError

SPEC_DEFAULTS = {
    "IMAGE_SIZE": (224, 224),
    "CLASS_NAMES": {0: "Glioma", 1: "Meningioma", 2: "No Tumor", 3: "Pituitary"},
    "FLASK_HOST": "0.0.0.0",
    "FLASK_PORT": 5000,
    "CORS_ORIGINS": ("http://localhost:3000",),
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,
    "SPARK_APP_NAME": "BrainTumorClassification-Backend",
    "SPARK_MASTER": "local[*]",
    "SPARK_EXECUTOR_MEMORY": "2g",
    "SPARK_DRIVER_MEMORY": "2g",
    "FLASK_ENV": "development",
    "FLASK_DEBUG": False,
    "LOG_LEVEL": "INFO",
}


@pytest.mark.parametrize(("name", "expected"), SPEC_DEFAULTS.items(), ids=SPEC_DEFAULTS.keys())
def test_spec_defaults(name, expected):
    value = getattr(load_settings({}), name)
    assert value == expected
    assert type(value) is type(expected)


def test_default_model_path():
    path = load_settings({}).MODEL_PATH
    assert isinstance(path, Path)
    assert path.parts[-2:] == ("models", "braintumor-cnn.keras")
    assert path.is_absolute()


def test_load_settings_with_no_variables_equals_the_dataclass_defaults():
    settings = load_settings({})
    assert settings == Settings()
    assert settings.IMAGE_SIZE_EXPLICIT is False
    assert settings.class_list == ["Glioma", "Meningioma", "No Tumor", "Pituitary"]


def test_defaults_are_not_shared_between_instances():
    first, second = load_settings({}), load_settings({})
    first.CLASS_NAMES[0] = "changed"
    assert second.CLASS_NAMES[0] == "Glioma"


def test_explicit_mapping_ignores_os_environ(monkeypatch):
    for f in fields(Settings):
        monkeypatch.delenv(f.name, raising=False)
    monkeypatch.setenv("FLASK_PORT", "6123")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert load_settings({}).FLASK_PORT == 5000
    assert load_settings({}).LOG_LEVEL == "INFO"
    from_env = load_settings()  # None means os.environ
    assert from_env.FLASK_PORT == 6123
    assert from_env.LOG_LEVEL == "DEBUG"


OVERRIDES = [
    ("MODEL_PATH", "/srv/models/other.keras", Path("/srv/models/other.keras")),
    ("IMAGE_SIZE", "128", (128, 128)),
    ("CLASS_NAMES", "a,b", {0: "a", 1: "b"}),
    ("FLASK_HOST", "127.0.0.1", "127.0.0.1"),
    ("FLASK_PORT", "8080", 8080),
    ("CORS_ORIGINS", "https://example.org", ("https://example.org",)),
    ("MAX_CONTENT_LENGTH", "1048576", 1048576),
    ("SPARK_APP_NAME", "Other", "Other"),
    ("SPARK_MASTER", "spark://host:7077", "spark://host:7077"),
    ("SPARK_EXECUTOR_MEMORY", "4g", "4g"),
    ("SPARK_DRIVER_MEMORY", "8g", "8g"),
    ("FLASK_ENV", "production", "production"),
    ("FLASK_DEBUG", "true", True),
    ("LOG_LEVEL", "warning", "WARNING"),
    ("SPARK_ENABLED", "yes", True),
    ("GRADCAM_LAYER", " conv5 ", "conv5"),
    ("VISUALIZATION_MAX_SIZE", "1024", 1024),
    ("INPUT_SCALING", "caffe", "caffe"),
    ("MAX_IMAGE_PIXELS", "1000000", 1_000_000),
    ("WORKERS", "3", 3),
    ("THREADS", "8", 8),
]


@pytest.mark.parametrize(("name", "raw", "expected"), OVERRIDES, ids=[o[0] for o in OVERRIDES])
def test_each_setting_is_overridden_by_its_variable(name, raw, expected):
    settings = load_settings({name: raw})
    assert getattr(settings, name) == expected
    assert getattr(settings, name) != getattr(Settings(), name)
    # and only that setting changes
    for other, value in describe(Settings()).items():
        if other not in (name, "IMAGE_SIZE_EXPLICIT"):
            assert describe(settings)[other] == value, other


def test_model_path_expands_the_home_directory():
    path = load_settings({"MODEL_PATH": "~/m.keras"}).MODEL_PATH
    assert path == Path.home() / "m.keras"


def test_image_size_from_environment_is_marked_explicit():
    assert load_settings({"IMAGE_SIZE": "224"}).IMAGE_SIZE_EXPLICIT is True


@pytest.mark.parametrize("name", ["FLASK_HOST", "SPARK_MASTER", "IMAGE_SIZE", "CLASS_NAMES"])
def test_blank_values_keep_the_default(name):
    assert getattr(load_settings({name: "  "}), name) == getattr(Settings(), name)


BAD_VALUES = [
    ("FLASK_PORT", "abc"),
    ("FLASK_PORT", "70000"),
    ("FLASK_PORT", "0"),
    ("FLASK_PORT", "50.5"),
    ("FLASK_DEBUG", "maybe"),
    ("IMAGE_SIZE", "big"),
    ("IMAGE_SIZE", "224,224,3"),
    ("IMAGE_SIZE", "8"),
    ("CLASS_NAMES", "[]"),
    ("CLASS_NAMES", "{}"),
    ("CLASS_NAMES", '{"0": "a", "2": "b"}'),
    ("CLASS_NAMES", '{"x": "a"}'),
    ("CLASS_NAMES", "a,,b"),
    ("CLASS_NAMES", "42"),
    ("LOG_LEVEL", "loud"),
    ("FLASK_ENV", "staging"),
    ("MAX_CONTENT_LENGTH", "-1"),
    ("MAX_CONTENT_LENGTH", "lots"),
    ("VISUALIZATION_MAX_SIZE", "10"),
    ("INPUT_SCALING", "imagenet"),
    ("SPARK_ENABLED", "perhaps"),
    ("MAX_IMAGE_PIXELS", "100"),
    ("WORKERS", "0"),
    ("THREADS", "1000"),
]


@pytest.mark.parametrize(("name", "raw"), BAD_VALUES, ids=[f"{n}={r}" for n, r in BAD_VALUES])
def test_bad_values_raise_config_error_naming_the_setting(name, raw):
    with pytest.raises(ConfigError) as info:
        load_settings({name: raw})
    assert str(info.value).startswith(f"{name}: ")
    assert info.value.setting == name


@pytest.mark.parametrize(
    "raw", ["224", "224,224", "224x224", "[224, 224]", " 224 , 224 ", "(224,224)"]
)
def test_image_size_forms(raw):
    assert load_settings({"IMAGE_SIZE": raw}).IMAGE_SIZE == (224, 224)


def test_image_size_is_height_then_width():
    assert load_settings({"IMAGE_SIZE": "128,256"}).IMAGE_SIZE == (128, 256)
    assert load_settings({"IMAGE_SIZE": "[96, 64]"}).IMAGE_SIZE == (96, 64)


FOUR = {0: "Glioma", 1: "Meningioma", 2: "No Tumor", 3: "Pituitary"}


@pytest.mark.parametrize(
    "raw",
    [
        '["Glioma", "Meningioma", "No Tumor", "Pituitary"]',
        '{"0": "Glioma", "1": "Meningioma", "2": "No Tumor", "3": "Pituitary"}',
        '{"3": "Pituitary", "2": "No Tumor", "1": "Meningioma", "0": "Glioma"}',
        "Glioma,Meningioma,No Tumor,Pituitary",
        " Glioma , Meningioma ,No Tumor, Pituitary ",
    ],
)
def test_class_names_forms(raw):
    settings = load_settings({"CLASS_NAMES": raw})
    assert settings.CLASS_NAMES == FOUR
    assert settings.class_list == ["Glioma", "Meningioma", "No Tumor", "Pituitary"]


def test_class_names_other_labels_and_count():
    settings = load_settings({"CLASS_NAMES": '["healthy", "tumour"]'})
    assert settings.CLASS_NAMES == {0: "healthy", 1: "tumour"}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("http://a.org,https://b.org", ("http://a.org", "https://b.org")),
        (" http://a.org , https://b.org ,", ("http://a.org", "https://b.org")),
        ('["http://a.org", "https://b.org"]', ("http://a.org", "https://b.org")),
        ("*", ("*",)),
        ("http://localhost:3000", ("http://localhost:3000",)),
    ],
)
def test_cors_origins_forms(raw, expected):
    assert expected == load_settings({"CORS_ORIGINS": raw}).CORS_ORIGINS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        *((v, True) for v in ("1", "true", "TRUE", "Yes", "on", " true ")),
        *((v, False) for v in ("0", "false", "False", "no", "off", "")),
    ],
)
def test_flask_debug_booleans(raw, expected):
    assert load_settings({"FLASK_DEBUG": raw}).FLASK_DEBUG is expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("debug", "DEBUG"), ("Error", "ERROR"), ("INFO", "INFO")]
)
def test_log_level_is_case_insensitive(raw, expected):
    assert expected == load_settings({"LOG_LEVEL": raw}).LOG_LEVEL


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("FLASK_PORT", "1", 1),
        ("FLASK_PORT", "65535", 65535),
        ("MAX_CONTENT_LENGTH", "1024", 1024),
        ("VISUALIZATION_MAX_SIZE", "224", 224),
    ],
)
def test_integer_bounds_are_inclusive(name, raw, expected):
    assert getattr(load_settings({name: raw}), name) == expected


def test_settings_are_frozen_and_with_overrides_copies():
    settings = load_settings({})
    with pytest.raises(AttributeError):
        settings.FLASK_PORT = 1  # type: ignore[misc]
    changed = settings.with_overrides(FLASK_PORT=8000)
    assert changed.FLASK_PORT == 8000
    assert settings.FLASK_PORT == 5000


def test_describe_is_plain_json():
    import json

    described = describe(load_settings({}))
    text = json.dumps(described)  # raises TypeError on a Path or other non-JSON value
    assert json.loads(text)["FLASK_PORT"] == 5000
    assert described["MODEL_PATH"].endswith("models/braintumor-cnn.keras")
    assert described["IMAGE_SIZE"] == [224, 224]
    assert described["CORS_ORIGINS"] == ["http://localhost:3000"]


def test_the_decoders_pixel_limit_is_the_settings_default():
    from braintumor.decoding import DicomFrameDecoder, decode_file, decode_image
    from braintumor.dicom import DicomFrames, decode_dicom
    from braintumor.preprocessing import preprocess_bytes
    from braintumor.spark.preprocess import preprocess_images

    for function in (decode_image, decode_file, DicomFrameDecoder, decode_dicom, DicomFrames,
                     preprocess_bytes, preprocess_images):
        limit = inspect.signature(function).parameters["max_pixels"].default
        assert limit == Settings().MAX_IMAGE_PIXELS == load_settings({}).MAX_IMAGE_PIXELS
