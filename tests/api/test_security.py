"""API keys, rate limits and admission, as a client meets them."""

from __future__ import annotations

import io
import logging
import threading
import time

import pytest

from braintumor.api import create_app
from braintumor.api.security import (
    Admission,
    KeyRing,
    add_key,
    hash_key,
    parse_key_file,
    revoke_key,
)
from braintumor.errors import ConfigError
from conftest import encode, scan_like


@pytest.fixture(scope="module")
def keyed(tiny_settings, tiny_model, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "keys.txt"
    alice, mallory = add_key(keys, "alice"), add_key(keys, "mallory")
    revoke_key(keys, "mallory")
    settings = tiny_settings.with_overrides(API_KEYS_FILE=keys, RATE_LIMIT="3/minute")
    return create_app(settings, model=tiny_model), keys, alice, mallory


def classify(client, key: str | None = None, scheme: str = "Bearer"):
    headers = {"Authorization": f"{scheme} {key}"} if key is not None else {}
    return client.post("/api/classify", data={"file": (io.BytesIO(encode(scan_like())),
                                                        "scan.png")},
                       content_type="multipart/form-data", headers=headers)


def error(response, code: str, status: int) -> dict:
    assert response.status_code == status, response.get_json()
    body = response.get_json()
    assert body["success"] is False and body["error"]["code"] == code
    assert body["error"]["status"] == status
    return body


def test_the_file_holds_hashes_and_the_key_works(keyed):
    app, keys, alice, _ = keyed
    text = keys.read_text()
    assert alice not in text and hash_key(alice) in text
    assert keys.stat().st_mode & 0o077 == 0  # only the owner reads it
    assert classify(app.test_client(), alice).status_code == 200


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer  ",
                                    "Bearer wrong-key", "Bearer " + "x" * 5000])
def test_no_or_bad_key_is_401_with_a_challenge(keyed, header):
    app = keyed[0]
    headers = {} if header is None else {"Authorization": header}
    response = app.test_client().post(
        "/api/classify", data={"file": (io.BytesIO(b"x"), "a.png")},
        content_type="multipart/form-data", headers=headers)
    error(response, "UNAUTHORIZED", 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_key_is_403(keyed):
    app, _, _, mallory = keyed
    error(classify(app.test_client(), mallory), "FORBIDDEN", 403)


def test_the_series_endpoint_needs_a_key_too(keyed):
    response = keyed[0].test_client().post(
        "/api/classify-series", data={"file": (io.BytesIO(b"x"), "a.dcm")},
        content_type="multipart/form-data")
    error(response, "UNAUTHORIZED", 401)


@pytest.mark.parametrize("path", ["/", "/api/health", "/api/classes", "/livez", "/readyz",
                                  "/metrics", "/api/openapi.json", "/api/docs"])
def test_everything_else_stays_open(keyed, path):
    assert keyed[0].test_client().get(path).status_code == 200


def test_metrics_can_be_put_behind_the_keys(tiny_settings, tiny_model, keyed):
    _, keys, alice, _ = keyed
    app = create_app(tiny_settings.with_overrides(API_KEYS_FILE=keys, METRICS_REQUIRE_KEY=True),
                     model=tiny_model)
    client = app.test_client()
    error(client.get("/metrics"), "UNAUTHORIZED", 401)
    assert client.get("/metrics", headers={"Authorization": f"Bearer {alice}"}
                      ).status_code == 200


def test_a_revocation_applies_without_a_restart(tiny_settings, tiny_model, tmp_path):
    keys = tmp_path / "keys.txt"
    bob = add_key(keys, "bob")
    client = create_app(tiny_settings.with_overrides(API_KEYS_FILE=keys),
                        model=tiny_model).test_client()
    assert classify(client, bob).status_code == 200
    revoke_key(keys, "bob")
    error(classify(client, bob), "FORBIDDEN", 403)


def test_rate_limit_per_key_answers_429_with_retry_after(tiny_settings, tiny_model, keyed):
    _, keys, _, _ = keyed
    app = create_app(tiny_settings.with_overrides(API_KEYS_FILE=keys, RATE_LIMIT="2/minute"),
                     model=tiny_model)
    carol, dave = add_key(keys, "carol"), add_key(keys, "dave")
    client = app.test_client()
    assert [classify(client, carol).status_code for _ in range(2)] == [200, 200]
    response = classify(client, carol)
    error(response, "RATE_LIMITED", 429)
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert classify(client, dave).status_code == 200  # another key has its own count
    assert client.get("/api/health").status_code == 200  # only classify is limited


def test_without_keys_the_limit_is_per_address(tiny_settings, tiny_model):
    app = create_app(tiny_settings.with_overrides(RATE_LIMIT="1/minute"), model=tiny_model)
    client = app.test_client()
    assert classify(client).status_code == 200
    error(classify(client), "RATE_LIMITED", 429)
    other = app.test_client().post(
        "/api/classify", data={"file": (io.BytesIO(encode(scan_like())), "a.png")},
        content_type="multipart/form-data", environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 200


def test_keys_never_reach_the_log(keyed, caplog):
    app, _, alice, mallory = keyed
    with caplog.at_level(logging.DEBUG):
        for key in (alice, mallory, "bt_guess"):
            classify(app.test_client(), key)
    text = caplog.text + " ".join(str(getattr(r, "fields", "")) for r in caplog.records)
    assert alice not in text and mallory not in text and "bt_guess" not in text
    assert "'key': 'alice'" in text  # the name is logged, never the key


@pytest.mark.parametrize("text, message", [
    ("alice secret-key\n", "the hash must be sha256"),
    ("alice\n", "expected NAME sha256:HEX"),
    (f"al ice {hash_key('k')}\n", "expected NAME sha256:HEX"),
    (f"alice {hash_key('a')}\nalice {hash_key('b')}\n", "used twice"),
    (f"alice {hash_key('a')} disabled\n", "expected NAME sha256:HEX"),
])
def test_a_bad_keys_file_stops_start_up_with_one_line(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_key_file(text)


def test_a_missing_keys_file_stops_start_up(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        KeyRing(tmp_path / "absent.txt")


def test_admission_lets_active_run_pending_wait_and_refuses_the_rest():
    admission = Admission(active=1, pending=1)
    assert admission.enter()
    results: list[bool] = []
    waiter = threading.Thread(target=lambda: results.append(admission.enter()))
    waiter.start()
    deadline = time.time() + 5
    while admission.waiting == 0 and time.time() < deadline:
        time.sleep(0.01)
    assert admission.waiting == 1
    assert admission.enter() is False  # one running, one waiting: refused at once
    admission.leave()
    waiter.join(5)
    assert results == [True] and admission.waiting == 0
    admission.leave()


def test_a_window_reopens_on_time_whatever_the_clean_up_timer(tiny_settings, tiny_model):
    """The quiet in-memory storage cleans up once a second; expiry itself is by the clock."""
    from braintumor.api.security import QuietMemoryStorage

    app = create_app(tiny_settings.with_overrides(RATE_LIMIT="1/second"), model=tiny_model)
    (limiter,) = app.extensions["limiter"]  # flask-limiter keeps a set of its instances
    assert isinstance(limiter.storage, QuietMemoryStorage)
    client = app.test_client()
    assert classify(client).status_code == 200
    error(classify(client), "RATE_LIMITED", 429)
    time.sleep(1.1)
    assert classify(client).status_code == 200
