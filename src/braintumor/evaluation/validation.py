"""Validation figures of a trained run: what model selection may look at.

Testing is for the model card's final figures only; choosing between recipes, epochs or
vote settings must use the run's own validation data. This module gives the figures the
recipes are compared on, from the run folder alone: accuracy on the fully labelled
validation images (the network's head, and what the service answers), and the held-out
extra tumour groups answered as uploads are (not-a-brain-MRI policy included).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from braintumor.classify import Classifier
from braintumor.config import Settings
from braintumor.evaluation.external import evaluate_tumour_folder, recipe_held_out
from braintumor.model.loaded import load_model
from braintumor.training.run import RunFolder


def validate_run(model_path: Path, run_dir: Path, settings: Settings,
                 data_dir: Path | None = None, cache_dir: Path | None = None) -> dict:
    """The validation figures of ``model_path`` on the run in ``run_dir``.

    ``settings`` are the service's settings (the OOD policy decides refusals).
    """
    run = RunFolder(run_dir)
    config = run.load_config()
    data = run.data(data_dir, cache_dir)
    model = load_model(settings.model, path=Path(model_path))
    val = data.val[data.full[data.val]]
    labels = data.images.labels[val]
    outputs = model.outputs_of_pixels(data.images.pixels[val])
    report: dict = {
        "model": str(model_path),
        "run": str(run_dir),
        "validation_images": len(val),
        "validation_accuracy_head": float(np.mean(outputs.logits.argmax(1) == labels)),
        "validation_accuracy_served": float(np.mean(outputs.probabilities.argmax(1) == labels)),
    }
    if config.extra_tumour:
        folder = Path(config.extra_tumour)
        groups, _ = recipe_held_out({"recipe": asdict(config)}, folder)
        report["extra_tumour_validation"] = evaluate_tumour_folder(
            Classifier(model, settings), folder, groups)
    return report
