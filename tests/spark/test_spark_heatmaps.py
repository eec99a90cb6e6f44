"""The Spark job's heatmap PNGs are /api/classify's overlays, drawn back through the
model's framing (the batch function alone, no Spark session needed)."""

from __future__ import annotations

import base64

import pandas as pd

from conftest import encode
from seg_helpers import clean_scan, pasted, save_seg_model


def test_the_job_writes_the_overlay_the_api_answers_with(tmp_path, monkeypatch):
    from braintumor.classify import Classifier
    from braintumor.config import Settings
    from braintumor.model import load_model
    from braintumor.spark import classify_job as job

    settings = Settings(MODEL_PATH=save_seg_model(tmp_path / "seg.keras"), OOD_POLICY="warn")
    classifier = Classifier(load_model(settings), settings)
    monkeypatch.setattr(job, "shipped_classifier",
                        lambda model_file, settings: (classifier, "seg-test"))
    data = encode(pasted(clean_scan(), (480, 400), (212, 130)))
    batch = pd.DataFrame({"path": ["file:///scans/framed.png"], "content": [data]})
    heatmaps = tmp_path / "heatmaps"
    rows = next(job.classify_batches(iter([batch]), "seg.keras",
                                     settings, str(heatmaps)))
    written = rows.loc[0, "heatmap"]
    assert isinstance(written, str) and rows.loc[0, "error"] is None
    with open(written, "rb") as handle:
        png = handle.read()
    answer = classifier.classify_upload(data, "framed.png").to_json()
    assert png == base64.b64decode(answer["visualization"]["heatmap_overlay"])
