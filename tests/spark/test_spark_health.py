"""/api/health with SPARK_ENABLED: the real SparkSession, up or failing to start."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from braintumor.api import create_app
from braintumor.api.spark_status import SparkStatus, spark_status
from conftest import REPO, encode, scan_like

from .helpers import SPARK_SETTINGS


def test_enabled_spark_reports_up_with_its_version(spark, spark_settings, tiny_model):
    settings = spark_settings.with_overrides(SPARK_ENABLED=True)
    app = create_app(settings, model=tiny_model)
    assert spark_status(app).wait(120)
    body = app.test_client().get("/api/health").get_json()
    assert body["status"] == "healthy"
    assert body["services"]["spark"] == {"status": "up", "active": True}
    assert body["details"]["spark_version"] == spark.version


def test_disabled_spark_stays_disabled_and_healthy(app):
    body = app.test_client().get("/api/health").get_json()
    assert body["status"] == "healthy"
    assert body["services"]["spark"] == {"status": "disabled", "active": False}
    assert body["details"]["spark_version"] is None


def test_status_is_starting_until_the_session_is_up(spark_settings):
    status = SparkStatus(spark_settings.with_overrides(SPARK_ENABLED=True))
    assert status.service() == {"status": "starting", "active": False}


# Only one SparkContext can live in a process and the test session already holds one, so
# a Spark that cannot start is tried in a fresh interpreter: the real start-up, failing.
_FAILING_SERVER = textwrap.dedent("""
    import json, sys, time
    from braintumor.api import create_app
    from braintumor.api.spark_status import spark_status
    from braintumor.config import Settings
    from braintumor.model import load_model

    settings = Settings(MODEL_PATH=sys.argv[1], SPARK_ENABLED=True, SPARK_MASTER="bogus://x",
                        SPARK_DRIVER_MEMORY="512m")
    app = create_app(settings, model=load_model(settings))
    client = app.test_client()
    started = time.perf_counter()
    first = client.get("/api/health").get_json()
    first_seconds = time.perf_counter() - started
    finished = spark_status(app).wait(150)
    health = client.get("/api/health").get_json()
    with open(sys.argv[2], "rb") as handle:
        answer = client.post("/api/classify", data={"file": (handle, "scan.png")})
    print(json.dumps({"first": first, "first_seconds": first_seconds, "finished": finished,
                      "health": health, "classify_status": answer.status_code,
                      "classify": answer.get_json()}))
""")


def test_spark_that_cannot_start_degrades_but_classification_works(tiny_model_path,
                                                                    tmp_path):
    scan = tmp_path / "scan.png"
    scan.write_bytes(encode(scan_like()))
    assert SPARK_SETTINGS["SPARK_MASTER"] != "bogus://x"
    done = subprocess.run(
        [sys.executable, "-c", _FAILING_SERVER, str(tiny_model_path), str(scan)],
        capture_output=True, text=True, timeout=240, cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["first"]["services"]["spark"] == {"status": "starting", "active": False}
    assert result["first_seconds"] < 5  # answered while the JVM was still starting
    assert result["finished"]
    health = result["health"]
    assert health["status"] == "degraded"
    spark = health["services"]["spark"]
    assert spark["status"] == "down" and spark["active"] is False
    assert "bogus://x" in spark["error"], spark["error"]
    assert health["services"]["model"] == {"status": "up", "loaded": True}
    assert result["classify_status"] == 200 and result["classify"]["success"] is True
