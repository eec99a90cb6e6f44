"""Settings' fields drive loading, the groups and the README: they cannot drift apart."""

from __future__ import annotations

import pickle
from dataclasses import FrozenInstanceError, fields
from pathlib import Path

import pytest

from braintumor import config
from braintumor.classes import DEFAULT_CLASS_NAMES
from braintumor.config import GROUPS, SETTINGS, Settings, load_settings, settings_markdown
from braintumor.errors import ConfigError

README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN = "<!-- settings table: generated from braintumor.config.SETTINGS -->\n"
END = "<!-- end of settings table -->"


def test_readme_table_is_the_generated_one():
    text = README.read_text()
    assert BEGIN in text and END in text
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert documented == settings_markdown(), (
        "README's settings table differs from braintumor.config.SETTINGS; paste the output "
        "of: python -c 'from braintumor.config import settings_markdown as m; print(m())'")


def test_every_setting_is_in_the_table_once_and_in_one_group():
    derived = {"IMAGE_SIZE_EXPLICIT"}  # set by IMAGE_SIZE, not an environment variable
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    assert set(names) == {f.name for f in fields(Settings)} - derived
    grouped = [f.name for group in GROUPS.values() for f in fields(group)]
    assert sorted(grouped) == sorted([*names, *derived])
    assert [s.name for s in SETTINGS] == [f.name for f in fields(Settings) if f.name in names]
    assert {s.group for s in SETTINGS} == set(GROUPS)


def test_each_group_is_a_frozen_class_of_its_fields_only():
    settings = load_settings({"SPARK_MASTER": "local[2]"})
    for name, group in GROUPS.items():
        part = getattr(settings, name)
        assert type(part) is group is getattr(config, group.__name__)
        assert group.__name__ == f"{name.title()}Settings" and group.__doc__
        assert {f.name for f in fields(part)} == {
            f.name for f in fields(Settings) if f.metadata["group"] == name}
        assert pickle.loads(pickle.dumps(part)) == part  # Spark ships them to its workers
    assert not hasattr(settings.spark, "MODEL_PATH")
    with pytest.raises(FrozenInstanceError):
        settings.spark.SPARK_MASTER = "local[1]"


@pytest.mark.parametrize("name", [s.name for s in SETTINGS])
def test_each_setting_is_read_from_its_variable(name):
    """A value given in the environment reaches its field (through the table's parser)."""
    samples = {"IMAGE_SIZE": "160", "CLASS_NAMES": "a,b", "CORS_ORIGINS": "*",
               "FLASK_ENV": "production", "FLASK_DEBUG": "true", "SPARK_ENABLED": "yes",
               "LOG_LEVEL": "debug", "INPUT_SCALING": "caffe", "OOD_POLICY": "warn",
               "OOD_THRESHOLD": "2.5", "LOG_FORMAT": "json", "METRICS_ENABLED": "false",
               "RATE_LIMIT": "5/minute", "MODEL_RUNTIME": "onnx"}
    default = getattr(Settings(), name)
    raw = samples.get(name)
    if raw is None:
        raw = "/somewhere/else" if isinstance(default, Path) else (
            str(default + 1) if isinstance(default, int) else "other-value")
    assert getattr(load_settings({name: raw}), name) != default


def test_groups_carry_the_values_of_their_fields():
    settings = load_settings({"MODEL_PATH": "/m.keras", "FLASK_PORT": "8080",
                              "OOD_POLICY": "off", "SPARK_MASTER": "local[2]",
                              "BRAINTUMOR_DATA": "/data"})
    assert settings.model.MODEL_PATH.as_posix() == "/m.keras"
    assert settings.model.class_list == list(DEFAULT_CLASS_NAMES)
    assert settings.serving.FLASK_PORT == 8080
    assert settings.ood.OOD_POLICY == "off"
    assert settings.spark.SPARK_MASTER == "local[2]"
    assert settings.data.BRAINTUMOR_DATA.as_posix() == "/data"


def test_a_bad_value_still_names_its_setting():
    with pytest.raises(ConfigError, match="LOG_LEVEL"):
        load_settings({"LOG_LEVEL": "loud"})
