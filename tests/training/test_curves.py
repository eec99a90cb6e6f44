"""The learning curve reads Keras' CSV history, also one written by a resumed run."""

from __future__ import annotations

import math

from PIL import Image

from braintumor.training.curves import plot_learning_curve, read_history

HEADER = "epoch,accuracy,loss,val_accuracy,val_loss\n"


def test_a_resumed_run_keeps_the_last_row_of_each_epoch(tmp_path):
    csv = tmp_path / "train.history.csv"
    # epoch 1 was interrupted and run again after a resume; its second row counts
    csv.write_text(HEADER + "0,0.5,1.2,0.4,1.5\n1,0.6,1.0,0.1,9.0\n1,0.7,0.9,0.6,1.1\n"
                   "2,0.8,0.7,0.7,1.0\n")
    history = read_history(csv)
    assert history["epoch"] == [0, 1, 2]
    assert history["val_accuracy"] == [0.4, 0.6, 0.7]
    assert not any(math.isnan(v) for v in history["val_loss"])


def test_plot_writes_a_png(tmp_path):
    csv = tmp_path / "train.history.csv"
    csv.write_text(HEADER + "".join(f"{e},{0.5 + e / 20},{1 / (e + 1)},{0.4 + e / 25},"
                                    f"{1.5 / (e + 1) + (e > 5) * 0.1 * e}\n" for e in range(10)))
    out = plot_learning_curve(csv, tmp_path / "curve" / "learning_curve.png", "test run")
    with Image.open(out) as picture:
        assert picture.format == "PNG"
        assert picture.size[0] > picture.size[1] > 200
