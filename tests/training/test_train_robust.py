"""The source-robust recipe end to end on synthetic data (real TensorFlow): head framing,
extra tumour slices under a partial label with their groups kept on one side, balanced
weights from a sources table, the collection augmentation and weight averaging."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_train import make_dataset, synthetic_scan

from braintumor.training.train import TrainConfig, assemble, train


@pytest.fixture(scope="module")
def robust_data(tmp_path_factory):
    base = tmp_path_factory.mktemp("robust")
    data = base / "Training"
    make_dataset(data)
    extra = base / "extra-tumour"
    (extra / "tumour").mkdir(parents=True)
    rows = ["file\tgroup"]
    for i in range(16):
        name = f"tumour/y{i}.png"
        folder = ["glioma", "meningioma", "pituitary"][i % 3]
        synthetic_scan(folder, 50 + i, size=64).save(extra / name)
        rows.append(f"{name}\tg{i // 2:02d}")  # pairs of one group
    (extra / "groups.tsv").write_text("\n".join(rows) + "\n")
    sources = base / "sources.tsv"
    lines = ["file\tsource\tfigshare_index\tfigshare_patient"]
    for path in sorted(p.relative_to(data) for p in data.rglob("*.*")):
        if path.parts[0].startswith("."):
            continue
        source = "figshare" if path.parts[0] != "notumor" else "br35h-no"
        lines.append(f"Training/{path}\t{source}\t\t")
    sources.write_text("\n".join(lines) + "\n")
    return base, data, extra, sources


def _config(base, data, extra, sources, **overrides) -> TrainConfig:
    values = dict(data=str(data), out=str(base / "robust.keras"), run_dir=str(base / "run"),
                  size=32, epochs=2, batch_size=8, cache_dir="", framing="head",
                  extra_tumour=str(extra), extra_val_fraction=0.25, sources=str(sources),
                  augment="source-robust", label_smoothing=0.05, ema=0.9, memory=False)
    values.update(overrides)
    return TrainConfig(**values)


def test_extra_groups_stay_on_one_side_and_carry_the_partial_label(robust_data) -> None:
    run = assemble(_config(*robust_data))
    paths = np.array(run.images.paths)
    extra = ~run.full
    assert extra.sum() == 16 and set(run.images.labels[extra]) == {4}
    groups = {p: f"g{int(p.split('y')[-1].split('.')[0]) // 2:02d}" for p in paths[extra]}
    train_groups = {groups[p] for p in paths[run.train] if p in groups}
    val_groups = {groups[p] for p in paths[run.val] if p in groups}
    assert len(val_groups) == 2 and not train_groups & val_groups
    assert all(p.startswith("extra-tumour/") for p in paths[extra])
    assert {run.collections[i] for i in np.flatnonzero(run.full)} == {"figshare", "br35h-no"}


def test_the_robust_recipe_trains_and_says_how_it_was_made(robust_data) -> None:
    from braintumor.model.loaded import load_model
    from braintumor.model.metadata import read_metadata

    base, *_ = robust_data
    metadata = train(_config(*robust_data))
    meta, _ = read_metadata(base / "robust.keras")
    assert meta["input"]["framing"] == "head"
    metrics = meta["training"]["metrics"]
    assert metrics["extra_tumour_validation_slices"] == 4
    assert 0.0 <= metrics["extra_tumour_validation_called_tumour"] <= 1.0
    assert "memory" not in meta and meta["ood"]["threshold"] > 0
    split = json.loads((base / "run/split.json").read_text())
    assert sum(p.startswith("extra-tumour/") for p in split["val"]) == 4
    assert metadata["training"]["recipe"]["augment"] == "source-robust"
    from braintumor.config import Settings

    served = load_model(Settings(MODEL_PATH=base / "robust.keras"))
    assert served.input_spec.framing == "head" and served.memory is None


def test_parquet_input_refuses_head_framing(robust_data) -> None:
    from braintumor.training.train import load_training_images

    base, data, extra, sources = robust_data
    with pytest.raises(ValueError, match="framing"):
        load_training_images(_config(base, data, extra, sources, parquet=str(base / "x")))




def test_a_step_runs_again_on_the_saved_run(robust_data) -> None:
    """fit-memory on the run folder: its recipe brings the extra slices back, its split
    decides train and validation, and the model gains a memory."""
    from braintumor.cli import main
    from braintumor.model.metadata import read_metadata

    base, *_ = robust_data
    if not (base / "robust.keras").is_file():
        train(_config(*robust_data))
    out = base / "with-memory.keras"
    code = main(["fit-memory", "--model", str(base / "robust.keras"), "--run-dir",
                 str(base / "run"), "--data", str(robust_data[1]), "--out", str(out),
                 "--cache-dir", ""])
    assert code == 0
    meta, _ = read_metadata(out)
    # every image of the run, the extra slices too, but the 4 held out for validation
    assert meta["memory"]["size"] == 16 + 48 - 4
    code = main(["fit-ood", "--model", str(out), "--run-dir", str(base / "run"),
                 "--data", str(robust_data[1]), "--cache-dir", ""])
    assert code == 0
    again, _ = read_metadata(out)
    assert again["ood"]["split"].endswith("split.json") and "memory" in again


def test_a_run_folder_refuses_data_that_is_not_its_own(robust_data, tmp_path) -> None:
    from braintumor.training.run import RunFolder

    base, *_ = robust_data
    if not (base / "run/split.json").is_file():
        train(_config(*robust_data))
    other = tmp_path / "Training"
    make_dataset(other)
    (other / "glioma/gl01.jpg").unlink()
    with pytest.raises(ValueError, match="not in the data"):
        RunFolder(base / "run").data(other)


def test_validate_reports_the_runs_validation_and_held_out_groups(robust_data, capsys) -> None:
    from braintumor.cli import main

    base, *_ = robust_data
    if not (base / "robust.keras").is_file():
        train(_config(*robust_data))
    assert main(["validate", "--model", str(base / "robust.keras"), "--run-dir",
                 str(base / "run"), "--data", str(robust_data[1]), "--cache-dir", ""]) == 0
    printed = capsys.readouterr().out
    report = json.loads(printed[printed.index("{"):])
    split = json.loads((base / "run/split.json").read_text())
    full_val = [p for p in split["val"] if not p.startswith("extra-tumour/")]
    assert report["validation_images"] == len(full_val)
    extra = report["extra_tumour_validation"]
    assert extra["slices"] == 4 and extra["groups"] == 2
    assert 0 <= report["validation_accuracy_head"] <= 1
