"""Spark on a real standalone cluster on this machine: a master and two workers (one core,
3 GB each) started from pyspark's own ``spark-class`` on loopback ports, and the CLI's
jobs sent to ``spark://`` exactly as a user with a cluster would (SPARK_MASTER).

The fixture stops exactly the processes it started. The rows must equal the local
mode's (which the rest of the Spark tests hold to the API's answers).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _status(ui_port: int) -> dict:
    """The master's JSON status page (workers, applications), or {} while it starts."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as answer:
            return json.load(answer)
    except OSError:
        return {}


def _alive_workers(ui_port: int) -> int:
    return sum(1 for w in _status(ui_port).get("workers", []) if w.get("state") == "ALIVE")


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    """(master URL, its web UI port): a master and two one-core workers, stopped after."""
    import pyspark

    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    if not spark_class.is_file():
        pytest.skip("pyspark ships no spark-class")
    base = tmp_path_factory.mktemp("standalone")
    port, ui = _free_port(), _free_port()
    env = {**os.environ, "SPARK_HOME": str(spark_class.parent.parent),
           "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(base / "logs"),
           "SPARK_WORKER_DIR": str(base / "work")}
    started: list[subprocess.Popen] = []

    def launch(*args: str, log: str) -> None:
        out = (base / log).open("wb")
        started.append(subprocess.Popen([str(spark_class), *args], env=env, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True))

    master = f"spark://127.0.0.1:{port}"
    try:
        launch("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port",
               str(port), "--webui-port", str(ui), log="master.log")
        for n in (1, 2):
            launch("org.apache.spark.deploy.worker.Worker", "--cores", "1", "--memory", "3g",
                   "--work-dir", str(base / f"work{n}"), "--webui-port",
                   str(_free_port()), "--host", "127.0.0.1", master, log=f"worker{n}.log")
        deadline = time.monotonic() + 90
        while _alive_workers(ui) < 2:
            if time.monotonic() > deadline:
                logs = "\n".join((base / f).read_text()[-800:] for f in
                                 ("master.log", "worker1.log", "worker2.log"))
                pytest.fail(f"the standalone cluster did not come up:\n{logs}")
            time.sleep(1)
        yield master, ui
    finally:
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _classify(master: str, model: Path, images: Path, out: Path) -> pd.DataFrame:
    env = {key: value for key, value in os.environ.items() if key != "PYSPARK_PYTHON"}
    env.update(SPARK_MASTER=master, MODEL_PATH=str(model), SPARK_EXECUTOR_MEMORY="1g",
               SPARK_DRIVER_MEMORY="1g")
    done = subprocess.run([sys.executable, "-m", "braintumor.cli", "spark", "classify",
                           "--input", str(images), "--output", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return pd.read_parquet(out).sort_values("path").reset_index(drop=True)


@pytest.mark.slow
def test_classify_on_a_standalone_cluster_equals_local(standalone, tiny_ood_model_path,
                                                      clean_tree, tmp_path):
    master, ui = standalone
    cluster = _classify(master, tiny_ood_model_path, clean_tree, tmp_path / "cluster")
    # the job ran on the cluster: the master lists it as a finished application
    assert len(_status(ui).get("completedapps", [])) == 1
    local = _classify("local[2]", tiny_ood_model_path, clean_tree, tmp_path / "local")
    assert len(cluster) == len(local) > 0
    pd.testing.assert_frame_equal(
        cluster.drop(columns=["heatmap"], errors="ignore"),
        local.drop(columns=["heatmap"], errors="ignore"), check_exact=False, atol=1e-5)
