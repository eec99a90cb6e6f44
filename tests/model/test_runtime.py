"""Which runtime serves a model (braintumor.model.runtime), and serving without TensorFlow.

A model file with a current ONNX graph is served by ONNX Runtime; one without by
TensorFlow, or (MODEL_RUNTIME=onnx) converted at load into a cache beside it, never into
the file; a head whose Grad-CAM is not CAM by TensorFlow. In a process where
``import tensorflow`` / ``import keras`` fail, as in the package's base install, the app
factory starts, classifies a picture with an exported model and never loads TensorFlow,
and a model that needs TensorFlow stops start-up naming the extra to install.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from braintumor.config import DEFAULT_MODEL_PATH, Settings
from braintumor.errors import ModelLoadError
from braintumor.model.loaded import LoadedModel
from braintumor.model.metadata import ModelMetadata, write_metadata
from braintumor.model.onnx_archive import onnx_state
from braintumor.model.onnx_runtime import OnnxModel
from braintumor.model.runtime import (
    CACHE_DIR,
    cache_paths,
    load_serving_model,
    onnx_threads,
    runtime_of,
)
from braintumor.preprocessing import InputSpec, to_model_input
from conftest import REPO, encode, scan_like, scan_like_pixels

CLASS_NAMES = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]


@pytest.fixture(scope="module")
def exported_tiny(tiny_ood_model_path, tmp_path_factory) -> Path:
    """The tiny model (OOD statistics included) with its ONNX graph in the file."""
    from braintumor.model.onnx_export import export_model_file

    path = tmp_path_factory.mktemp("runtime") / "tiny.keras"
    shutil.copy(tiny_ood_model_path, path)
    export_model_file(path)
    return path


def copy_of(path: Path, folder: Path, name: str | None = None) -> Path:
    target = folder / (name or path.name)
    shutil.copy(path, target)
    return target


def test_the_threads_share_the_cores_among_the_workers():
    assert onnx_threads(4, cores=16) == 4
    assert onnx_threads(3, cores=2) == 1
    assert onnx_threads(1, cores=8) == 8


def test_auto_serves_a_current_graph_on_onnx_runtime(exported_tiny):
    model = load_serving_model(Settings(MODEL_PATH=exported_tiny), threads=2)
    assert isinstance(model, OnnxModel) and runtime_of(model) == "onnxruntime"
    assert model.threads == 2 and model.explains
    assert model.graph.layer_name == "features"


def test_auto_serves_a_model_without_a_graph_on_tensorflow(tiny_model_path, tmp_path):
    path = copy_of(tiny_model_path, tmp_path)
    model = load_serving_model(Settings(MODEL_PATH=path))
    assert isinstance(model, LoadedModel) and runtime_of(model) == "tensorflow"
    assert not (tmp_path / CACHE_DIR).exists()  # auto converts nothing


def test_tensorflow_is_served_when_asked_for(exported_tiny):
    settings = Settings(MODEL_PATH=exported_tiny, MODEL_RUNTIME="tensorflow")
    assert isinstance(load_serving_model(settings), LoadedModel)


def test_a_stale_graph_is_not_served(exported_tiny):
    """Another Grad-CAM layer than the graph exposes: the graph is not current."""
    import keras

    first_conv = keras.saving.load_model(exported_tiny, compile=False).layers[1].name
    settings = Settings(MODEL_PATH=exported_tiny, GRADCAM_LAYER=first_conv)
    assert not onnx_state(exported_tiny, gradcam_layer=first_conv).current
    assert isinstance(load_serving_model(settings), LoadedModel)


def test_onnx_converts_at_load_into_a_cache_beside_the_model(tiny_model_path, tmp_path):
    path = copy_of(tiny_model_path, tmp_path)
    before = path.read_bytes()
    settings = Settings(MODEL_PATH=path, MODEL_RUNTIME="onnx")
    converted = load_serving_model(settings)
    assert isinstance(converted, OnnxModel)
    assert path.read_bytes() == before  # the user's file is never written
    cached = sorted(p.name for p in (tmp_path / CACHE_DIR).iterdir())
    assert len(cached) == 2 and all(name.startswith("tiny.keras.") for name in cached)
    # later starts read the cache, under auto too, and answer as the Keras model does
    again = load_serving_model(Settings(MODEL_PATH=path))
    assert isinstance(again, OnnxModel)
    keras_model = load_serving_model(Settings(MODEL_PATH=path, MODEL_RUNTIME="tensorflow"))
    x = to_model_input(scan_like_pixels(4), again.input_spec)
    np.testing.assert_allclose(again.explain(x).probabilities,
                               keras_model.explain(x).probabilities, atol=1e-4)
    # new weights: the cache is another file, the old one is not served
    import keras

    network = keras.saving.load_model(path, compile=False)
    network.set_weights([w * 0.5 for w in network.get_weights()])
    network.save(path)
    write_metadata(path, converted.metadata)
    assert isinstance(load_serving_model(Settings(MODEL_PATH=path)), LoadedModel)


def _two_dense(path: Path) -> Path:
    import keras

    keras.utils.set_random_seed(2)
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(12, activation="relu")(x)
    outputs = keras.layers.Dense(4, activation="softmax")(x)
    keras.Model(inputs, outputs).save(path)
    write_metadata(path, ModelMetadata(class_names=CLASS_NAMES,
                                       input=InputSpec((32, 32), 1, "unit"),
                                       gradcam_layer="features"))
    return path


def test_a_head_that_is_not_cam_is_explained_by_tensorflow(tmp_path):
    from braintumor.model.onnx_export import export_model_file

    path = _two_dense(tmp_path / "two-dense.keras")
    export_model_file(path)
    assert onnx_state(path).current
    assert isinstance(load_serving_model(Settings(MODEL_PATH=path)), LoadedModel)
    with pytest.raises(ModelLoadError, match="Grad-CAM needs TensorFlow") as caught:
        load_serving_model(Settings(MODEL_PATH=path, MODEL_RUNTIME="onnx"))
    assert caught.value.setting == "MODEL_RUNTIME"


def test_the_settings_are_checked_against_the_graph(exported_tiny):
    with pytest.raises(ModelLoadError, match="IMAGE_SIZE"):
        load_serving_model(Settings(MODEL_PATH=exported_tiny, IMAGE_SIZE=(64, 64),
                                    IMAGE_SIZE_EXPLICIT=True))
    with pytest.raises(ModelLoadError, match="classes"):
        load_serving_model(Settings(MODEL_PATH=exported_tiny,
                                    CLASS_NAMES={0: "a", 1: "b", 2: "c"}))


def test_health_says_which_runtime_serves(exported_tiny, tiny_model):
    from braintumor.api import create_app

    onnx_app = create_app(Settings(MODEL_PATH=exported_tiny))
    body = onnx_app.test_client().get("/api/health").get_json()
    assert body["details"]["model_runtime"] == "onnxruntime"
    tf_app = create_app(Settings(MODEL_PATH=tiny_model.path), model=tiny_model)
    assert tf_app.test_client().get("/api/health").get_json()["details"][
        "model_runtime"] == "tensorflow"


def test_a_series_gets_the_same_answer_from_either_runtime(exported_tiny):
    """POST /api/classify-series served by ONNX Runtime answers as TensorFlow does."""
    import io

    from braintumor.api import create_app
    from series_helpers import series_files, synthetic_pictures

    files = series_files(synthetic_pictures(5, seed=40))
    answers = {}
    for runtime in ("onnx", "tensorflow"):
        client = create_app(Settings(MODEL_PATH=exported_tiny, MODEL_RUNTIME=runtime)
                            ).test_client()
        form = {"file": [(io.BytesIO(data), f"s{i}.dcm") for i, data in enumerate(files)]}
        response = client.post("/api/classify-series", data=form,
                               content_type="multipart/form-data")
        assert response.status_code == 200, response.get_json()
        answers[runtime] = response.get_json()
    onnx, tensorflow = answers["onnx"], answers["tensorflow"]
    assert onnx["summary"]["key_slice"] == tensorflow["summary"]["key_slice"]
    assert onnx["summary"]["class_counts"] == tensorflow["summary"]["class_counts"]
    for ours, theirs in zip(onnx["slices"], tensorflow["slices"], strict=True):
        assert ours["class"] == theirs["class"]
        assert ours["tumour_probability"] == pytest.approx(theirs["tumour_probability"],
                                                           abs=0.011)  # two decimals


def test_export_onnx_command_stores_the_graph(tiny_model_path, tmp_path, capsys):
    from braintumor.cli import main

    path = copy_of(tiny_model_path, tmp_path)
    copy = tmp_path / "copy.keras"
    assert main(["export-onnx", "--model", str(path), "--out", str(copy)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"] == str(copy) and printed["grad_cam"].startswith("CAM")
    assert onnx_state(copy).current and not onnx_state(path).present
    assert main(["export-onnx", "--model", str(path)]) == 0
    assert onnx_state(path).current


def test_a_sidecar_copy_carries_the_onnx_graph(tmp_path):
    """A .h5 model's graph is m.onnx and m.onnx.npz: a copy of the model takes both."""
    from braintumor.model.archive import write_entries

    model = tmp_path / "m.h5"
    model.write_bytes(b"weights")
    (tmp_path / "m.onnx").write_bytes(b"graph")
    (tmp_path / "m.onnx.npz").write_bytes(b"manifest")
    out = tmp_path / "copy" / "c.h5"
    out.parent.mkdir()
    write_entries(model, {"braintumor.json": b"{}"}, out)
    assert (out.parent / "c.onnx").read_bytes() == b"graph"
    assert (out.parent / "c.onnx.npz").read_bytes() == b"manifest"
    assert (out.parent / "c.json").read_bytes() == b"{}"


def test_whether_serving_needs_tensorflow(exported_tiny, tiny_model_path, tmp_path):
    """What `make run` asks before serving with the base install."""
    from braintumor.model.runtime import needs_tensorflow

    assert not needs_tensorflow(Settings(MODEL_PATH=exported_tiny))
    assert needs_tensorflow(Settings(MODEL_PATH=exported_tiny, MODEL_RUNTIME="tensorflow"))
    assert needs_tensorflow(Settings(MODEL_PATH=copy_of(tiny_model_path, tmp_path)))
    assert not needs_tensorflow(Settings(MODEL_PATH=tmp_path / "missing.keras"))


def test_a_cache_path_is_keyed_by_the_checksum(tmp_path):
    graph, manifest = cache_paths(tmp_path / "m.keras", "ab" * 32)
    assert graph.parent == manifest.parent == tmp_path / CACHE_DIR
    assert graph.name == "m.keras.abababababababab.onnx"
    assert manifest.name == graph.name + ".npz"


# --- serving where TensorFlow is not installed ---------------------------------------------

#: Runs with ``import tensorflow`` (keras, tf2onnx, onnx, h5py) and Spark's packages
#: (pyspark, pandas, pyarrow) raising ImportError, as in the base install: the app
#: factory, one classification, the health answer, SPARK_ENABLED's report, and the modules
#: the process loaded.
WITHOUT_TENSORFLOW = """
import json, sys, time

BLOCKED = ("tensorflow", "keras", "tf_keras", "tf2onnx", "onnx", "h5py", "pyspark", "pandas",
           "pyarrow")


class NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"No module named {name!r} (blocked: the base install)")
        return None


sys.meta_path.insert(0, NoTensorFlow())
import braintumor.cli  # the `braintumor serve` command's module and all it imports
from braintumor.api import create_app
from braintumor.config import Settings
from braintumor.errors import ModelLoadError

model_path, picture, bare = sys.argv[1:4]
client = create_app(Settings(MODEL_PATH=model_path)).test_client()
with open(picture, "rb") as f:
    answer = client.post("/api/classify", data={"file": (f, "scan.png")})
health = client.get("/api/health").get_json()
with_spark = create_app(Settings(MODEL_PATH=model_path, SPARK_ENABLED=True)).test_client()
spark = with_spark.get("/api/health").get_json()["services"]["spark"]
for _ in range(100):  # Spark starts in the background: its report comes within moments
    if spark["status"] != "starting":
        break
    time.sleep(0.1)
    spark = with_spark.get("/api/health").get_json()["services"]["spark"]
try:
    create_app(Settings(MODEL_PATH=bare))
    refusal = ""
except ModelLoadError as exc:
    refusal = exc.message
loaded = sorted({name.split(".")[0] for name in sys.modules} & set(BLOCKED))
print(json.dumps({"status": answer.status_code, "body": answer.get_json(),
                  "runtime": health["details"]["model_runtime"], "refusal": refusal,
                  "spark": health["services"]["spark"], "spark_enabled": spark,
                  "spark_installed": health["details"]["spark_installed"],
                  "loaded": loaded}))
"""


def run_without_tensorflow(model: Path, bare: Path, tmp_path: Path) -> dict:
    picture = tmp_path / "scan.png"
    picture.write_bytes(encode(scan_like((120, 110), seed=3)))
    done = subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW, str(model), str(picture),
                           str(bare)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_service_starts_and_answers_without_tensorflow(exported_tiny, tiny_model_path,
                                                            tmp_path):
    bare = copy_of(tiny_model_path, tmp_path, "no-graph.keras")
    result = run_without_tensorflow(exported_tiny, bare, tmp_path)
    assert result["loaded"] == []  # no TensorFlow, Keras, tf2onnx, onnx, h5py nor Spark
    assert result["spark"] == {"status": "disabled", "active": False}
    assert result["spark_installed"] is False
    enabled = result["spark_enabled"]  # SPARK_ENABLED without Spark: degraded, and why
    assert enabled["status"] == "down" and "pip install .[spark]" in enabled["error"]
    assert result["status"] == 200, result["body"]
    body = result["body"]
    assert body["success"] and body["prediction"]["class"] in CLASS_NAMES
    assert set(body["visualization"]) >= {"heatmap_overlay", "original_image",
                                          "heatmap_only"}
    assert result["runtime"] == "onnxruntime"
    assert "pip install .[train]" in result["refusal"]


@pytest.mark.skipif(not (DEFAULT_MODEL_PATH.is_file() and onnx_state(DEFAULT_MODEL_PATH).current),
                    reason="the default model carries no current ONNX graph yet")
def test_the_default_model_is_served_without_tensorflow(tiny_model_path, tmp_path):
    bare = copy_of(tiny_model_path, tmp_path, "no-graph.keras")
    result = run_without_tensorflow(DEFAULT_MODEL_PATH, bare, tmp_path)
    assert result["loaded"] == [] and result["runtime"] == "onnxruntime"
    assert result["status"] in (200, 422), result["body"]


def test_the_model_archive_keeps_the_graph_beside_our_entries(exported_tiny):
    with zipfile.ZipFile(exported_tiny) as archive:
        names = set(archive.namelist())
    assert {"braintumor.onnx", "braintumor-onnx.npz", "braintumor.json",
            "braintumor-ood.npz"} <= names
