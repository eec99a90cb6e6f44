"""`spark-submit src/braintumor/spark/submit.py classify ...` as on a cluster, on local[2].

The package reaches the Python workers the way the README tells a cluster to ship it:
a zip on ``--py-files``. The workers (and the driver) run a Python that has the
dependencies but not ``braintumor``: a bare virtualenv whose site-packages points at
this one's. Its ``.pth`` files, the editable install among them, are not read from there,
so the job can only import the package from the shipped zip.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO

from .helpers import CLEAN_IMAGES, python_without_package, relative

SUBMIT = REPO / "src" / "braintumor" / "spark" / "submit.py"
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
PROB_COLUMNS = ["prob_glioma", "prob_meningioma", "prob_no_tumor", "prob_pituitary"]


def package_zip(target: Path) -> Path:
    """src/braintumor as a zip that --py-files puts on every worker's sys.path."""
    source = REPO / "src"
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted((source / "braintumor").rglob("*.py")):
            archive.write(path, path.relative_to(source).as_posix())
    return target


def test_spark_submit_classifies_with_the_shipped_package(clean_tree, tiny_model_path,
                                                          tmp_path):
    python = python_without_package(tmp_path / "env")
    probe = subprocess.run([str(python), "-c", "import pyspark, pandas, pyarrow, PIL"],
                           capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr
    if subprocess.run([str(python), "-c", "import braintumor"],
                      capture_output=True).returncode == 0:  # a non-editable install
        pytest.skip("braintumor is installed into site-packages: the zip would not be used")
    out = tmp_path / "out.parquet"
    env = {**os.environ, "PYSPARK_PYTHON": str(python), "TF_CPP_MIN_LOG_LEVEL": "2"}
    for name in ("PYSPARK_DRIVER_PYTHON", "PYSPARK_SUBMIT_ARGS", "PYSPARK_GATEWAY_PORT",
                 "PYTHONPATH", "SPARK_CONF_DIR"):
        env.pop(name, None)
    command = [str(SPARK_SUBMIT), "--master", "local[2]", "--driver-memory", "1g",
               "--conf", "spark.ui.enabled=false",
               "--py-files", str(package_zip(tmp_path / "braintumor.zip")),
               str(SUBMIT), "classify", "--input", str(clean_tree), "--output", str(out),
               "--model", str(tiny_model_path)]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-5000:]
    # spark-submit merges the driver's stderr (its log lines) into stdout
    summary = json.loads(next(line for line in done.stdout.splitlines()
                              if line.startswith('{"output"')))
    assert summary == {"output": str(out), "images": len(CLEAN_IMAGES), "errors": 0,
                       "ood_flagged": 0}

    rows = pd.read_parquet(out)
    assert sorted(relative(p, clean_tree) for p in rows["path"]) == sorted(CLEAN_IMAGES)
    assert rows["error"].isna().all() and set(rows["model_version"]) == {"tiny-test"}
    probs = rows[PROB_COLUMNS].to_numpy(dtype=np.float64)
    assert ((probs > 0) & (probs < 1)).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(rows["class_id"].to_numpy(), probs.argmax(axis=1))
    np.testing.assert_allclose(rows["confidence"], probs.max(axis=1))
