"""The series limits are settings like any other: parsed, validated, named on error."""

from __future__ import annotations

import pytest

from braintumor.config import load_settings
from braintumor.errors import ConfigError


def test_defaults_and_overrides():
    settings = load_settings({})
    assert settings.MAX_SERIES_SLICES == 400
    assert settings.MAX_SERIES_BYTES == 512 * 1024 * 1024
    settings = load_settings({"MAX_SERIES_SLICES": "24", "MAX_SERIES_BYTES": "1048576"})
    assert (settings.MAX_SERIES_SLICES, settings.MAX_SERIES_BYTES) == (24, 1048576)


@pytest.mark.parametrize(("name", "value"), [("MAX_SERIES_SLICES", "0"),
                                             ("MAX_SERIES_SLICES", "many"),
                                             ("MAX_SERIES_BYTES", "12")])
def test_bad_values_name_the_setting(name, value):
    with pytest.raises(ConfigError, match=f"^{name}: "):
        load_settings({name: value})
