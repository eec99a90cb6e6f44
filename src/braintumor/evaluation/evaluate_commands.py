"""``braintumor evaluate-series``, ``fit-series-threshold`` and ``evaluate-localisation``:
whole volumes as the series endpoint answers them (and the volume threshold a model
carries, chosen on them), and whether the heatmaps fall on the tumour."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from braintumor.classify import Classifier
from braintumor.errors import ConfigError
from braintumor.model import load_model

#: What ``--derived`` adds (training.volumes.derived_volumes).
DERIVED_HELP = ("also send versions made from the chosen cases: the healthy heads "
                "skull-stripped (and that z-scored), the tumour volumes z-scored, their "
                "label-free hemispheres mirrored into healthy whole brains (reported apart)")


def _classifier(args: argparse.Namespace) -> Classifier:
    settings = args.settings  # loaded once by main()
    model = load_model(settings.model, path=Path(args.model) if args.model else None)
    return Classifier(model, settings)


def _volumes_folder(args: argparse.Namespace) -> Path:
    """The FOLDER argument: a volumes folder, with its manifest.tsv."""
    folder = Path(args.folder)
    if not (folder / "manifest.tsv").is_file():
        raise ConfigError("FOLDER", f"no manifest.tsv in {folder}")
    return folder


def cmd_evaluate_series(args: argparse.Namespace) -> int:
    from braintumor.evaluation.series_eval import evaluate_series, summary_of

    folder = _volumes_folder(args)
    classifier = _classifier(args)
    try:
        report = evaluate_series(classifier, args.settings, folder, Path(args.out),
                                 cases=args.cases, model_path=classifier.model.path,
                                 derived=args.derived)
    except (ValueError, FileNotFoundError) as exc:
        raise ConfigError("evaluate-series", str(exc)) from None
    print(json.dumps(summary_of(report), indent=2))
    return 0


def cmd_evaluate_localisation(args: argparse.Namespace) -> int:
    from braintumor.evaluation.localisation import evaluate_localisation, summary_of

    for name, path in (("--masks", args.masks), ("--data", args.data)):
        if not Path(path).is_dir():
            raise ConfigError(name, f"no folder at {path}")
    classifier = _classifier(args)
    try:
        report = evaluate_localisation(classifier, args.settings, Path(args.run_dir),
                                       Path(args.masks), Path(args.data), Path(args.out),
                                       limit=args.limit)
    except (ValueError, FileNotFoundError) as exc:
        raise ConfigError("evaluate-localisation", str(exc)) from None
    print(json.dumps(summary_of(report), indent=2))
    return 0


def cmd_fit_series_threshold(args: argparse.Namespace) -> int:
    from braintumor.evaluation.series_threshold import fit_series_threshold

    folder = _volumes_folder(args)
    classifier = _classifier(args)
    try:
        written = fit_series_threshold(classifier, args.settings, folder, classifier.model.path,
                                       Path(args.out) if args.out else None,
                                       derived=args.derived)
    except (ValueError, FileNotFoundError) as exc:
        raise ConfigError("fit-series-threshold", str(exc)) from None
    print(json.dumps(written, indent=2))
    return 0


def add_parser(sub: argparse._SubParsersAction, data: Path | None = None) -> None:
    """Register ``evaluate-series`` and ``evaluate-localisation`` on the main command's
    sub-parsers; ``data`` is the dataset folder (BRAINTUMOR_DATA) the defaults sit by."""
    from braintumor.evaluation.series_eval import CASE_CHOICES

    data = Path(data) if data is not None else Path("../shared/datasets/brain-tumor-mri")
    p = sub.add_parser("evaluate-series",
                       help="whole volumes with label maps through the series endpoint: "
                            "per-series and per-slice figures, a plot per volume")
    p.add_argument("folder", help="a volumes folder with manifest.tsv")
    p.add_argument("--cases", default="test", choices=CASE_CHOICES,
                   help="the cases training.volumes.case_split puts on this side "
                        "(default test; all: each side reported apart)")
    p.add_argument("--model", default=None, help="the model (default: MODEL_PATH)")
    p.add_argument("--out", default="reports/series")
    p.add_argument("--derived", action="store_true", help=DERIVED_HELP)
    p.set_defaults(func=cmd_evaluate_series)

    p = sub.add_parser("fit-series-threshold",
                       help="choose the model's volume slice threshold on the validation "
                            "volumes and write it into its metadata")
    p.add_argument("folder", help="a volumes folder with manifest.tsv")
    p.add_argument("--model", default=None, help="the model (default: MODEL_PATH)")
    p.add_argument("--out", default=None, help="write a copy here instead of in place")
    p.add_argument("--derived", action="store_true", help=DERIVED_HELP)
    p.set_defaults(func=cmd_fit_series_threshold)

    p = sub.add_parser("evaluate-localisation",
                       help="pointing game, energy in mask and outline Dice on a training "
                            "run's validation slices with expert masks")
    p.add_argument("--model", default=None, help="the model (default: MODEL_PATH)")
    p.add_argument("--run-dir", required=True,
                   help="the model's training run folder: its split.json names the "
                        "validation slices (the ones it did not train on)")
    p.add_argument("--masks", default=f"{data.parent}/figshare-masks/training")
    p.add_argument("--data", default=f"{data}/Training")
    p.add_argument("--out", default="reports/localisation")
    p.add_argument("--limit", type=int, default=None,
                   help="at most this many slices per class (a quick look)")
    p.set_defaults(func=cmd_evaluate_localisation)
