"""Spark on a real standalone cluster on this machine: a master and two workers (one core,
3 GB each) from pyspark's own ``spark-class`` (:class:`LocalStandaloneCluster`), and the
CLI's jobs sent to ``spark://`` exactly as a user with a cluster would (SPARK_MASTER).

The executors run Pythons that lack everything (a packed environment on
``spark.archives``) or braintumor alone (the CLI ships it in both cases). A worker is
killed in the middle of a job; an executor no worker can hold fails in one line. Rows
must equal the local mode's or the API's answers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO, dataset_dir

from .helpers import CLEAN_IMAGES, python_without_package, relative
from .packed_env import packed_environment

pytestmark = pytest.mark.slow

PROB_COLUMNS = ["prob_glioma", "prob_meningioma", "prob_no_tumor", "prob_pituitary"]


def _start_cluster(base: Path):
    from braintumor.spark_session.standalone import LocalStandaloneCluster, spark_class

    try:
        spark_class()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    return LocalStandaloneCluster(workers=2, cores=1, memory="3g", base=base).start()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A master and two one-core workers, stopped after this module's tests."""
    started = _start_cluster(tmp_path_factory.mktemp("standalone"))
    yield started
    started.stop()
    for work in started.base.glob("work*"):  # the unpacked environments: gigabytes
        shutil.rmtree(work, ignore_errors=True)


def _cli_env(master: str, webui: str = "", **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYSPARK_PYTHON", "PYSPARK_SUBMIT_ARGS", "SPARK_CONF_DIR")}
    env.update({"SPARK_MASTER": master, "SPARK_EXECUTOR_MEMORY": "1g",
                "SPARK_DRIVER_MEMORY": "1g", "SPARK_MASTER_WEBUI": webui,
                "TF_CPP_MIN_LOG_LEVEL": "2", **settings})
    return env


def _spark_cli(*args: str, env: dict[str, str], cwd: Path | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "braintumor.cli", "spark", *args], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


def _rows(path: Path, root: Path) -> pd.DataFrame:
    rows = pd.read_parquet(path)
    rows["path"] = [relative(p, root) for p in rows["path"]]
    return rows.sort_values("path").reset_index(drop=True)


def test_classify_with_a_packed_environment(cluster, tiny_ood_model_path, messy_tree,
                                           tmp_path):
    """Executors whose Python has nothing: a packed environment with TensorFlow, Keras
    and the rest (about 2 GB unpacked) on spark.archives, run as
    ./environment/bin/python, and the package from the CLI's zip. A corrupt file and a
    letter named .jpg are one error row each, never a failed job."""
    archive = packed_environment(tmp_path, ["braintumor.spark.classify_job", "tensorflow",
                                            "keras", "h5py", "pandas", "pyarrow"])
    bare = subprocess.run([str(tmp_path / "env" / "bin" / "python"), "-c", "import braintumor"],
                          capture_output=True)
    assert bare.returncode != 0  # the environment holds the dependencies alone
    shutil.rmtree(tmp_path / "env")  # only the archive reaches the executors
    finished = len(cluster.status().get("completedapps", []))
    env = _cli_env(cluster.master_url, cluster.webui_url,
                   PYSPARK_PYTHON="./environment/bin/python",
                   MODEL_PATH=str(tiny_ood_model_path))
    done = _spark_cli("classify", "--input", str(messy_tree), "--output",
                      str(tmp_path / "cluster"), "--conf",
                      f"spark.archives={archive}#environment", env=env)
    archive.unlink()
    assert done.returncode == 0, done.stderr[-3000:]
    # the progress ends with the count
    files = len(CLEAN_IMAGES) + 3  # the messy tree adds two broken files and an unsorted one
    assert f"classify: done, {files} files in" in done.stderr
    # the job ran on the cluster, and every worker unpacked the environment
    assert len(cluster.status().get("completedapps", [])) == finished + 1
    unpacked = list(cluster.base.glob("work*/app-*/*/environment/bin/python"))
    assert len({path.parents[4] for path in unpacked}) == 2, unpacked

    local_env = _cli_env("local[2]", MODEL_PATH=str(tiny_ood_model_path))
    done = _spark_cli("classify", "--input", str(messy_tree), "--output",
                      str(tmp_path / "local"), env=local_env)
    assert done.returncode == 0, done.stderr[-3000:]
    on_cluster = _rows(tmp_path / "cluster", messy_tree)
    local = _rows(tmp_path / "local", messy_tree)
    assert len(on_cluster) == files and on_cluster["path"].is_unique
    broken = on_cluster.loc[on_cluster["error"].notna(), "path"]
    assert sorted(broken) == ["meningioma/corrupt.png", "notumor/letter.jpg"]
    pd.testing.assert_frame_equal(on_cluster, local, check_exact=False, atol=1e-6)


def test_preprocess_ships_the_package_and_equals_local(cluster, clean_tree, tmp_path):
    """The executors' Python has the dependencies but not braintumor: the CLI ships it."""
    python = python_without_package(tmp_path / "bare")
    env = _cli_env(cluster.master_url, cluster.webui_url, PYSPARK_PYTHON=str(python))
    done = _spark_cli("preprocess", "--input", str(clean_tree), "--output",
                      str(tmp_path / "cluster"), "--size", "64", env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"preprocess: done, {len(CLEAN_IMAGES)} files in" in done.stderr

    done = _spark_cli("preprocess", "--input", str(clean_tree), "--output",
                      str(tmp_path / "local"), "--size", "64", env=_cli_env("local[2]"))
    assert done.returncode == 0, done.stderr[-3000:]
    on_cluster = _rows(tmp_path / "cluster", clean_tree)
    local = _rows(tmp_path / "local", clean_tree)
    assert sorted(on_cluster["path"]) == sorted(CLEAN_IMAGES)
    assert on_cluster["error"].isna().all()
    pd.testing.assert_frame_equal(on_cluster, local)


def test_an_executor_no_worker_can_hold_fails_within_a_minute(cluster, tiny_model_path,
                                                            clean_tree, tmp_path):
    """4 GB executors on 3 GB workers: Spark alone would wait for ever."""
    env = _cli_env(cluster.master_url, cluster.webui_url, MODEL_PATH=str(tiny_model_path),
                   SPARK_EXECUTOR_MEMORY="4g", SPARK_EXECUTOR_TIMEOUT="10")
    started = time.monotonic()
    done = _spark_cli("classify", "--input", str(clean_tree), "--output",
                      str(tmp_path / "out"), env=env, timeout=120)
    assert time.monotonic() - started < 60
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    last = errors[0]
    assert last.startswith("error: no executor started on spark://127.0.0.1:"), last
    assert "asks 4g of memory (SPARK_EXECUTOR_MEMORY)" in last
    assert "2 live workers offer at most 3072 MB and 1 core free" in last
    assert not (tmp_path / "out").exists()


def test_a_killed_worker_loses_no_row_and_duplicates_none(tmp_path_factory, tmp_path):
    """96 real scans, the default model, 12 tasks on two one-core workers; the second
    worker (with its executor and Python workers) is SIGKILLed once two tasks have
    committed. The job finishes on the other; every file has one row, the API's answer."""
    from braintumor.api import create_app
    from braintumor.config import Settings

    testing = dataset_dir() / "Testing"
    images = tmp_path / "scans"
    for folder in sorted(p for p in testing.iterdir() if p.is_dir()):
        for scan in sorted(folder.glob("*.jpg"))[:24]:
            (images / folder.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(scan, images / folder.name / scan.name)
    files = sorted(str(p.relative_to(images)) for p in images.rglob("*.jpg"))
    assert len(files) == 96

    model = REPO / "models" / "braintumor-cnn.keras"
    out = tmp_path / "out"
    with _start_cluster(tmp_path_factory.mktemp("killed")) as doomed:
        env = _cli_env(doomed.master_url, doomed.webui_url, MODEL_PATH=str(model))
        job = subprocess.Popen([sys.executable, "-m", "braintumor.cli", "spark", "classify",
                                "--input", str(images), "--output", str(out),
                                "--partitions", "12"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        committed: list[Path] = []
        deadline = time.monotonic() + 240
        while job.poll() is None and time.monotonic() < deadline:
            committed = list(out.glob("_temporary/0/task_*"))
            if len(committed) >= 2:
                doomed.kill_worker(2)
                break
            time.sleep(0.05)
        killed_while_running = job.poll() is None
        _, stderr = job.communicate(timeout=300)
        assert job.returncode == 0, stderr[-3000:]
        assert killed_while_running and 2 <= len(committed) < 12, len(committed)
        assert "Lost executor" in stderr  # the driver saw it go, mid-job

    rows = _rows(out, images)
    assert list(rows["path"]) == files  # every file once: none lost, none twice
    app = create_app(Settings(MODEL_PATH=model))
    client = app.test_client()
    for row in rows.itertuples():
        with (images / row.path).open("rb") as handle:
            answer = client.post("/api/classify", data={"file": (handle, "scan.jpg")})
        body = answer.get_json()
        if answer.status_code == 422:  # refused as not a brain MRI, by both
            assert str(row.error).startswith("not a brain MRI: "), row.path
            continue
        assert answer.status_code == 200 and pd.isna(row.error), (row.path, body)
        assert row._2 == body["prediction"]["class"], row.path  # the "class" column
        percent = np.array(list(body["prediction"]["probabilities"].values())) / 100
        got = np.array([getattr(row, column) for column in PROB_COLUMNS])
        np.testing.assert_allclose(got, percent, atol=1.01e-4, err_msg=row.path)


def test_the_cluster_command_starts_a_cluster_until_it_is_stopped(tmp_path):
    """`braintumor spark cluster`: one JSON line with the master to use, then the cluster
    runs until SIGTERM, which stops the master and the workers it started."""
    import json
    import signal
    import socket

    from braintumor.spark_session.standalone import master_status

    command = subprocess.Popen(
        [sys.executable, "-m", "braintumor.cli", "spark", "cluster", "--workers", "2",
         "--memory", "1g"], env=_cli_env(""), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        line = command.stdout.readline()
        started = json.loads(line)
        assert started["SPARK_MASTER"].startswith("spark://127.0.0.1:")
        workers = master_status(started["SPARK_MASTER_WEBUI"])["workers"]
        assert [w["state"] for w in workers] == ["ALIVE", "ALIVE"]
        assert {w["cores"] for w in workers} == {1} and {w["memory"] for w in workers} == {1024}
    finally:
        command.send_signal(signal.SIGTERM)
        assert command.wait(timeout=60) == 0, command.stderr.read()[-2000:]
    host, port = started["SPARK_MASTER"].removeprefix("spark://").split(":")
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2):
        pass  # the master is gone
