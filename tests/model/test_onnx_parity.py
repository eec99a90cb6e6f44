"""The ONNX graph on ONNX Runtime gives the Keras model's answers, without TensorFlow.

The shipped default model on 50 Testing scans (BRAINTUMOR_DATA) and a tiny random
``compact-seg`` model: probabilities within 1e-4, Grad-CAM maps within 1e-3 of their
peak, outlines within 1e-4, features within 1e-4 of their scale, the same
not-a-brain-MRI decisions and scores; a head that is not global pooling then one dense
layer says it needs TensorFlow; the serving module loads no TensorFlow.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from braintumor.config import DEFAULT_MODEL_PATH, Settings
from braintumor.model.archive import write_entries
from braintumor.model.memory import MEMORY_ARCHIVE_ENTRY, FeatureMemory
from braintumor.model.metadata import ModelMetadata, write_metadata
from braintumor.model.onnx_archive import OnnxState, onnx_state
from braintumor.model.onnx_runtime import GradCamUnavailable, load_onnx_model, memory_vote
from braintumor.preprocessing import InputSpec, preprocess_bytes, to_model_input
from conftest import REPO, dataset_dir, encode, scan_like_pixels

CLASS_NAMES = ["Glioma", "Meningioma", "No Tumor", "Pituitary"]
FOLDERS = ["glioma", "meningioma", "notumor", "pituitary"]
SEG_SIZE = 64


def assert_parity(keras_model, onnx_model, x: np.ndarray, explain: bool = True) -> dict:
    """Every answer of the two runtimes on ``x`` agrees; returns the largest differences."""
    figures = {}
    for head_only in (False, True):
        ours, theirs = onnx_model.outputs(x, head_only), keras_model.outputs(x, head_only)
        np.testing.assert_allclose(ours.logits, theirs.logits, atol=1e-4)
        np.testing.assert_allclose(ours.probabilities, theirs.probabilities, atol=1e-4)
        figures[f"{'head' if head_only else 'served'} probabilities"] = float(
            np.abs(ours.probabilities - theirs.probabilities).max())
        figures["features (relative)"] = assert_features(ours.features, theirs.features)
    if not explain:
        return figures
    ours, theirs = onnx_model.explain(x), keras_model.explain(x)
    np.testing.assert_allclose(ours.probabilities, theirs.probabilities, atol=1e-4)
    np.testing.assert_allclose(ours.logits, theirs.logits, atol=1e-4)
    assert (ours.probabilities.argmax(1) == theirs.probabilities.argmax(1)).all()
    assert ours.cam.shape == theirs.cam.shape
    peak = np.maximum(theirs.cam.max(axis=(1, 2)), 1e-12)
    cam_error = np.abs(ours.cam - theirs.cam).max(axis=(1, 2)) / peak
    assert cam_error.max() <= 1e-3, cam_error
    assert_features(ours.features, theirs.features)
    figures["probabilities"] = float(np.abs(ours.probabilities - theirs.probabilities).max())
    figures["cam (of peak)"] = float(cam_error.max())
    if theirs.outline is None:
        assert ours.outline is None
    else:
        assert ours.outline is not None and ours.outline.shape == theirs.outline.shape
        np.testing.assert_allclose(ours.outline, theirs.outline, atol=1e-4)
        figures["outline"] = float(np.abs(ours.outline - theirs.outline).max())
    return figures


def assert_features(ours: np.ndarray, theirs: np.ndarray) -> float:
    scale = np.maximum(np.abs(theirs).max(axis=1), 1e-12)
    error = np.abs(ours - theirs).max(axis=1) / scale
    assert error.max() <= 1e-4, error
    return float(error.max())


def exported(path: Path) -> Path:
    from braintumor.model.onnx_export import export_model_file

    export_model_file(path)
    return path


# --- the shipped default model on real scans --------------------------------------------


@pytest.fixture(scope="module")
def default_pair(tmp_path_factory):
    from braintumor.model import load_model

    path = tmp_path_factory.mktemp("onnx-default") / "default.keras"
    shutil.copy(DEFAULT_MODEL_PATH, path)
    exported(path)
    return load_model(Settings(MODEL_PATH=path)), load_onnx_model(path)


def non_scans(size: tuple[int, int]) -> list[bytes]:
    """Pictures that are no brain MRI: noise, stripes, a gradient, a flat grey."""
    from PIL import Image

    rng = np.random.default_rng(7)
    height, width = size
    noise = rng.integers(0, 256, (height, width), dtype=np.uint8)
    stripes = np.tile((np.arange(width) // 8 % 2 * 255).astype(np.uint8), (height, 1))
    gradient = np.tile(np.linspace(0, 255, width).astype(np.uint8), (height, 1))
    flat = np.full((height, width), 128, np.uint8)
    return [encode(Image.fromarray(p, "L")) for p in (noise, stripes, gradient, flat)]


@pytest.mark.dataset
def test_the_default_model_on_50_testing_scans(default_pair):
    from braintumor.ood import OodDetector

    keras_model, onnx_model = default_pair
    assert onnx_model.explains and onnx_model.memory is not None
    assert onnx_model.memory.flip == keras_model.memory.flip
    testing = dataset_dir() / "Testing"
    paths = []
    for folder in FOLDERS:
        found = sorted((testing / folder).glob("*.jpg"))
        paths += found[::max(1, len(found) // 13)][:13]
    paths = paths[:50]
    assert len(paths) == 50
    spec = keras_model.input_spec
    x = np.concatenate([preprocess_bytes(p.read_bytes(), spec) for p in paths])
    figures = assert_parity(keras_model, onnx_model, x)
    print("default model, 50 Testing scans:", figures)

    # the not-a-brain-MRI check reads the features: the same scores and decisions, on the
    # scans and on pictures that are none
    others = np.concatenate([preprocess_bytes(data, spec) for data in non_scans(spec.size)])
    batch = np.concatenate([x, others])
    detector = OodDetector.for_model(keras_model)
    assert detector.fits, "the default model has OOD statistics"
    decisions = []
    for model in (keras_model, onnx_model):
        answer = model.outputs(batch)
        decisions.append(detector.decide_batch([[] for _ in batch], answer.probabilities,
                                               answer.features))
    keras_scores = np.array([d.score for d in decisions[0]])
    onnx_scores = np.array([d.score for d in decisions[1]])
    np.testing.assert_allclose(onnx_scores, keras_scores, rtol=1e-4)
    print("OOD scores, largest relative difference:",
          float(np.max(np.abs(onnx_scores - keras_scores) / keras_scores)),
          "flagged:", sum(d.flagged for d in decisions[1]), "of", len(batch))
    assert [d.flagged for d in decisions[0]] == [d.flagged for d in decisions[1]]
    assert any(d.flagged for d in decisions[0][50:]) and not any(
        d.flagged for d in decisions[0][:50])


def test_the_default_model_s_graph_is_current_and_cam(default_pair):
    _, onnx_model = default_pair
    assert onnx_state(onnx_model.path) == OnnxState(True, True)
    assert onnx_model.manifest["cam"]["exact"]
    assert onnx_model.graph.layer_name == default_pair[0].metadata.gradcam_layer == "gated"
    assert onnx_model.feature_dims == default_pair[0].feature_dims


# --- a tiny segmenting model ------------------------------------------------------------


def save_compact_seg(path: Path, seed: int = 3) -> Path:
    import keras

    from braintumor.training.architectures import compact_seg_cnn

    keras.utils.set_random_seed(seed)
    spec = InputSpec((SEG_SIZE, SEG_SIZE), 1, "unit", "head")
    model = compact_seg_cnn(spec, len(CLASS_NAMES), width=8)
    model.save(path)
    write_metadata(path, ModelMetadata(
        class_names=CLASS_NAMES, input=spec, temperature=1.3, gradcam_layer="gated",
        segmentation_layer="segmentation", architecture="compact-seg", version="onnx-test"))
    return path


@pytest.fixture(scope="module")
def seg_path(tmp_path_factory) -> Path:
    return exported(save_compact_seg(tmp_path_factory.mktemp("onnx-seg") / "seg.keras"))


def seg_inputs() -> np.ndarray:
    spec = InputSpec((SEG_SIZE, SEG_SIZE), 1, "unit")
    rng = np.random.default_rng(11)
    scans = to_model_input(scan_like_pixels(12, size=SEG_SIZE), spec)
    noise = rng.uniform(0, 1, (4, SEG_SIZE, SEG_SIZE, 1)).astype(np.float32)
    return np.concatenate([scans, noise])


def test_a_compact_seg_model_s_answers_cam_and_outline(seg_path):
    from braintumor.model import load_model

    keras_model = load_model(Settings(MODEL_PATH=seg_path))
    onnx_model = load_onnx_model(seg_path)
    assert onnx_model.segments and onnx_model.explains
    assert (onnx_model.graph.layer_name, onnx_model.graph.segmentation_name) == (
        keras_model.graph.layer_name, keras_model.graph.segmentation_name)
    assert onnx_model.manifest["cam"]["offset"] == 64  # after the 64 pooled `features`
    figures = assert_parity(keras_model, onnx_model, seg_inputs())
    print("compact-seg:", figures)
    ours = onnx_model.outputs_of_pixels(scan_like_pixels(5, size=SEG_SIZE), batch_size=2)
    theirs = keras_model.outputs_of_pixels(scan_like_pixels(5, size=SEG_SIZE))
    np.testing.assert_allclose(ours.probabilities, theirs.probabilities, atol=1e-4)


@pytest.mark.parametrize("flip", [False, True])
def test_a_memory_s_vote_with_and_without_mirror_images(seg_path, tmp_path, flip):
    """The NumPy vote gives the compiled TensorFlow vote's answers (head_class too)."""
    from braintumor.model import load_model

    path = tmp_path / "seg-memory.keras"
    keras_model = load_model(Settings(MODEL_PATH=seg_path))
    pixels = scan_like_pixels(40, size=SEG_SIZE, seed=300)
    plain = keras_model.outputs_of_pixels(pixels, head_only=True)
    features = plain.features
    if flip:
        from braintumor.model.memory import with_mirror

        mirror = keras_model.outputs_of_pixels(pixels[:, :, ::-1], head_only=True)
        features = np.asarray(with_mirror(features, plain.probabilities, mirror.features,
                                          mirror.probabilities)[0])
    memory = FeatureMemory.build(features, np.arange(40) % 4, 4, k=5, tau=0.05, mix=0.2,
                                 flip=flip, head_class=2)
    write_entries(seg_path, {MEMORY_ARCHIVE_ENTRY: memory.to_npz()}, path)
    assert onnx_state(path).current  # the memory is outside the graph
    keras_model, onnx_model = load_model(Settings(MODEL_PATH=path)), load_onnx_model(path)
    assert onnx_model.memory is not None and onnx_model.memory.flip == flip
    assert_parity(keras_model, onnx_model, seg_inputs())


def test_the_numpy_vote_is_the_tensorflow_vote_ties_included():
    rng = np.random.default_rng(5)
    bank = rng.normal(size=(60, 8)).astype(np.float32)
    bank[30:40] = bank[0]  # equal similarities: top_k keeps the lower indices
    labels = np.arange(60) % 4
    queries = np.concatenate([bank[:1], rng.normal(size=(9, 8)).astype(np.float32)])
    heads = rng.dirichlet(np.ones(4), size=10).astype(np.float32)
    for head_class in (-1, 2):
        memory = FeatureMemory.build(bank, labels, 4, k=10, tau=0.02, mix=0.1,
                                     head_class=head_class)
        np.testing.assert_allclose(memory_vote(memory, queries, heads),
                                   memory.vote_numpy(queries, heads), atol=1e-6)


# --- heads whose Grad-CAM is not CAM ----------------------------------------------------


def small_model(head: str):
    import keras

    keras.utils.set_random_seed(2)
    inputs = keras.Input((32, 32, 1), name="image")
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu",
                            name="features")(x)
    if head == "two-dense":
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dense(12, activation="relu")(x)
    elif head == "flatten":
        x = keras.layers.Flatten()(x)
    elif head == "max-pool":
        x = keras.layers.GlobalMaxPooling2D()(x)
    else:  # "cam": pooling, dropout, dense
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dropout(0.3)(x)
    outputs = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs)


def nested_model():
    """Sequential([backbone, pooling, dense]): the structure of most users' models."""
    import keras

    keras.utils.set_random_seed(4)
    backbone = keras.Sequential([
        keras.Input((32, 32, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.Conv2D(16, 3, activation="relu", name="last_conv")], name="backbone")
    return keras.Sequential([keras.Input((32, 32, 1)), backbone,
                             keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(4, activation="softmax")])


@pytest.mark.parametrize(("build", "layer", "exact"), [
    (lambda: small_model("cam"), "features", True),
    (lambda: small_model("two-dense"), "features", False),
    (lambda: small_model("flatten"), "features", False),
    (lambda: small_model("max-pool"), "features", False),
    (nested_model, "", True),
])
def test_which_heads_are_cam(build, layer, exact):
    from braintumor.model.cam import cam_head

    head = cam_head(build(), layer)
    assert head.exact == exact, head.reason
    assert bool(head.reason) != exact


def test_compact_seg_s_cam_is_only_at_its_gated_layer():
    from braintumor.model.cam import cam_head
    from braintumor.training.architectures import compact_seg_cnn

    model = compact_seg_cnn(InputSpec((SEG_SIZE, SEG_SIZE), 1, "unit", "head"), 4, width=8)
    gated = cam_head(model, "gated")
    assert gated.exact and gated.offset == 64 and gated.kernel is not None
    np.testing.assert_array_equal(gated.kernel,
                                  np.asarray(model.get_layer("predictions").kernel)[64:80])
    # `features` reaches the logits through its pooling and through the decoder too
    assert not cam_head(model, "features").exact


@pytest.mark.parametrize("head", ["two-dense", "cam"])
def test_a_head_that_is_not_cam_needs_the_tensorflow_path(tmp_path, head):
    from braintumor.model import load_model

    path = tmp_path / f"{head}.keras"
    small_model(head).save(path)
    metadata = ModelMetadata(class_names=CLASS_NAMES, input=InputSpec((32, 32), 1, "unit"),
                             gradcam_layer="features")
    write_metadata(path, metadata)
    exported(path)
    keras_model = load_model(Settings(MODEL_PATH=path))
    onnx_model = load_onnx_model(path)
    x = to_model_input(scan_like_pixels(6), metadata.input)
    assert onnx_model.explains == (head == "cam")
    assert_parity(keras_model, onnx_model, x, explain=onnx_model.explains)
    if head == "two-dense":
        assert "before the dense layer" in onnx_model.cam_reason
        with pytest.raises(GradCamUnavailable, match="needs TensorFlow"):
            onnx_model.explain(x)


# --- the graph belongs to its weights; serving loads no TensorFlow ----------------------


def test_a_graph_from_other_weights_or_layers_is_not_current(seg_path, tmp_path):
    from braintumor.errors import ModelLoadError
    from braintumor.model.archive import read_archive_entry
    from braintumor.model.onnx_archive import ONNX_ARCHIVE_ENTRY, ONNX_MANIFEST_ENTRY

    bare = save_compact_seg(tmp_path / "bare.keras")
    assert onnx_state(bare) == OnnxState(False, False, "the model file has no braintumor.onnx")
    other = save_compact_seg(tmp_path / "other.keras", seed=9)  # other weights
    entries = {name: read_archive_entry(seg_path, name)
               for name in (ONNX_ARCHIVE_ENTRY, ONNX_MANIFEST_ENTRY)}
    write_entries(other, entries)  # type: ignore[arg-type]
    state = onnx_state(other)
    assert state.present and not state.current and "other weights" in state.reason
    with pytest.raises(ModelLoadError, match="other weights"):
        load_onnx_model(other)
    assert onnx_state(seg_path, gradcam_layer="gated").current
    assert not onnx_state(seg_path, gradcam_layer="features").current
    assert not onnx_state(seg_path, segmentation_layer="").current
    with pytest.raises(ModelLoadError, match="Grad-CAM layer"):
        load_onnx_model(seg_path, gradcam_layer="features")


SERVE_ONE = """
import sys
import numpy as np
from braintumor.model.onnx_runtime import load_onnx_model
model = load_onnx_model(sys.argv[1], threads=1)
spec = model.input_spec
explanation = model.explain(np.zeros((1, *spec.size, spec.channels), np.float32))
assert explanation.outline is not None
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(" ".join(name for name in loaded if name in ("tensorflow", "keras", "tf2onnx", "onnx")))
"""


def test_the_serving_module_loads_no_tensorflow(seg_path):
    answer = subprocess.run([sys.executable, "-c", SERVE_ONE, str(seg_path)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip() == ""
