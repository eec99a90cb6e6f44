"""Not-a-brain-MRI through the API and the CLI: reject (default), warn and off."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from test_endpoints import assert_error, post

from conftest import encode, scan_like


def noise() -> bytes:
    rng = np.random.default_rng(3)
    return encode(Image.fromarray(rng.integers(0, 256, (224, 224), dtype=np.uint8)))


def black() -> bytes:
    return encode(Image.new("L", (224, 224)))


def colour_photo() -> bytes:
    y, x = np.mgrid[0:240, 0:320]
    photo = np.stack([x * 255 / 319, y * 255 / 239, 255 - x * 255 / 319], -1)
    return encode(Image.fromarray(photo.astype(np.uint8), "RGB"), "JPEG")


def grey_pattern() -> bytes:
    """Passes every input check; only the fitted distances refuse it."""
    y, x = np.mgrid[0:224, 0:224].astype(np.float32)
    return encode(Image.fromarray(((x + y) / 446 * 255).astype(np.uint8)))


@pytest.fixture(scope="module")
def ood_model(tiny_ood_model_path):
    from braintumor.config import Settings
    from braintumor.model import load_model

    return load_model(Settings(MODEL_PATH=tiny_ood_model_path))


def client_for(model, policy: str | None):
    from braintumor.api import create_app
    from braintumor.config import Settings

    extra = {} if policy is None else {"OOD_POLICY": policy}
    return create_app(Settings(MODEL_PATH=model.path, **extra), model=model).test_client()


@pytest.mark.parametrize(("make", "says"), [
    (noise, "like noise"),
    (black, "blank"),
    (colour_photo, "in colour"),
    (grey_pattern, "score"),
], ids=["noise", "black", "colour-photo", "grey-pattern"])
def test_reject_is_the_default_and_answers_not_brain_mri(ood_model, make, says):
    body = assert_error(post(client_for(ood_model, None), make(), "upload.png"),
                        "NOT_BRAIN_MRI", 422)
    message = body["error"]["message"]
    assert message.startswith("This image does not look like a brain MRI, so it was not "
                              "classified: ")
    assert says in message and message.endswith("Please upload a grayscale brain MRI slice.")
    assert set(body) == {"success", "error", "timestamp"}  # no diagnosis, no ood block


def test_an_abdominal_mr_dicom_is_refused(ood_model):
    """pydicom's examples_overlay.dcm: an MR of the abdomen (a real scan, 12-bit), which
    passes every pixel check; its Body Part Examined says what it is."""
    from dicom_helpers import example_file

    body = assert_error(post(client_for(ood_model, None), example_file("examples_overlay.dcm"),
                             "scan.dcm"), "NOT_BRAIN_MRI", 422)
    assert "shows the abdomen, not the head" in body["error"]["message"]


def test_a_scan_is_classified_with_its_ood_block(ood_model):
    response = post(client_for(ood_model, "reject"), encode(scan_like(seed=77)))
    assert response.status_code == 200
    ood = response.get_json()["ood"]
    assert ood["flagged"] is False and ood["reasons"] == []
    assert isinstance(ood["score"], float) and 0 <= ood["score"] <= ood["threshold"]
    assert ood["threshold"] == pytest.approx(ood_model.metadata.ood["threshold"], abs=1e-4)


def test_warn_answers_and_flags(ood_model):
    client = client_for(ood_model, "warn")
    body = post(client, grey_pattern()).get_json()
    assert body["success"] is True and body["prediction"]["class"]
    assert body["ood"]["flagged"] is True
    assert body["ood"]["score"] > body["ood"]["threshold"]
    assert body["ood"]["reasons"] and all(isinstance(r, str) for r in body["ood"]["reasons"])
    flagged = post(client, noise()).get_json()["ood"]
    assert flagged["flagged"] is True and "like noise" in flagged["reasons"][0]
    assert post(client, encode(scan_like(seed=78))).get_json()["ood"]["flagged"] is False


def test_off_checks_nothing_and_says_so(ood_model):
    body = post(client_for(ood_model, "off"), noise()).get_json()
    assert body["success"] is True
    assert body["ood"] == {"flagged": False, "score": None, "threshold": None,
                           "reasons": ["check disabled (OOD_POLICY=off)"]}


def test_model_without_statistics_still_classifies(client):
    """The suite's bare tiny model: input checks only, which the block says."""
    body = post(client, encode(scan_like())).get_json()
    assert body["success"] is True
    assert body["ood"]["flagged"] is False and body["ood"]["score"] is None
    assert "no OOD statistics" in body["ood"]["reasons"][0]
    assert_error(post(client, black()), "NOT_BRAIN_MRI", 422)


def test_cli_reject_prints_the_error_json_and_exits_non_zero(tiny_ood_model_path, tmp_path,
                                                             monkeypatch, capsys):
    from braintumor.cli import main

    monkeypatch.setenv("MODEL_PATH", str(tiny_ood_model_path))
    image = tmp_path / "noise.png"
    image.write_bytes(noise())
    assert main(["classify", str(image), "--compact"]) == 2
    captured = capsys.readouterr()
    body = json.loads(captured.out)
    assert body["success"] is False
    assert body["error"]["code"] == "NOT_BRAIN_MRI" and body["error"]["status"] == 422
    err = captured.err.strip()
    assert err.startswith("error: This image does not look like a brain MRI") and "\n" not in err

    monkeypatch.setenv("OOD_POLICY", "warn")
    assert main(["classify", str(image), "--compact"]) == 0
    assert json.loads(capsys.readouterr().out)["ood"]["flagged"] is True


@pytest.mark.parametrize(("name", "value", "says"), [
    ("OOD_POLICY", "maybe", "expected one of reject, warn, off"),
    ("OOD_THRESHOLD", "abc", "expected a number"),
    ("OOD_THRESHOLD", "-1", "must be a positive number"),
    ("OOD_THRESHOLD", "inf", "must be a positive number"),
])
def test_bad_ood_settings_name_the_setting(name, value, says):
    from braintumor.config import load_settings
    from braintumor.errors import ConfigError

    with pytest.raises(ConfigError, match=f"^{name}: {says}"):
        load_settings({name: value})


def test_ood_settings_parse():
    from braintumor.config import load_settings

    assert load_settings({}).OOD_POLICY == "reject"
    assert load_settings({}).OOD_THRESHOLD is None
    settings = load_settings({"OOD_POLICY": " Warn ", "OOD_THRESHOLD": "2.5"})
    assert settings.OOD_POLICY == "warn" and settings.OOD_THRESHOLD == 2.5


def test_threshold_setting_overrides_the_fitted_one(ood_model):
    from braintumor.api import create_app
    from braintumor.config import Settings

    settings = Settings(MODEL_PATH=ood_model.path, OOD_THRESHOLD=1e12)
    client = create_app(settings, model=ood_model).test_client()
    body = post(client, grey_pattern()).get_json()
    assert body["success"] is True and body["ood"]["threshold"] == 1e12
