"""The ``braintumor`` command line: serve, classify, train, evaluate, info.

Each sub-command is a thin caller of the package's modules. Errors of the project's own
hierarchy end as one line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from braintumor.classify import Classifier, utc_timestamp
from braintumor.command_line import run_command
from braintumor.config import Settings, describe
from braintumor.errors import ConfigError, NotBrainMRIError
from braintumor.model import load_model, load_serving_model, onnx_threads
from braintumor.model.metadata import read_metadata
from braintumor.server import serve
from braintumor.spark.spark_command import add_parser as add_spark_parser


def _cmd_serve(args: argparse.Namespace) -> int:
    return serve(args.settings, port=args.port, host=args.host)


def _cmd_classify(args: argparse.Namespace) -> int:
    settings = args.settings
    classifier = Classifier(load_serving_model(settings.model, threads=onnx_threads()),
                            settings)
    path = Path(args.image)
    if not path.is_file():
        raise ConfigError("IMAGE", f"no file at {path}")
    try:
        result = classifier.classify_upload(path.read_bytes(), path.name, frame=args.frame)
    except NotBrainMRIError as exc:  # the API's error JSON on stdout, the line on stderr
        print(json.dumps({"success": False, "error": {"message": exc.message, "code": exc.code,
                                                      "status": exc.status},
                          "timestamp": utc_timestamp()}, indent=None if args.compact else 2))
        raise
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for key, png in result.pngs.items():
            (out / f"{path.stem}_{key}.png").write_bytes(png)
    print(json.dumps(result.to_json(), indent=None if args.compact else 2))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from braintumor.training.train import TrainConfig, train  # TensorFlow: this command only

    config = TrainConfig(
        data=args.data, out=args.out, run_dir=args.run_dir, architecture=args.arch,
        size=args.size, channels=args.channels, scaling=args.scaling, weights=args.weights,
        epochs=args.epochs, fine_tune_epochs=args.fine_tune_epochs,
        batch_size=args.batch_size, learning_rate=args.lr, val_fraction=args.val_fraction,
        patience=args.patience, seed=args.seed, cache_dir=args.cache_dir,
        parquet=args.parquet or "", framing=args.framing, width=args.width,
        extra_tumour=args.extra_tumour or "", extra_val_fraction=args.extra_val_fraction,
        sources=args.sources or "", augment=args.augment,
        label_smoothing=args.label_smoothing, ema=args.ema, memory=not args.no_memory,
        memory_scope=args.memory_scope, masks=args.masks or "", volumes=args.volumes or "",
        outline_weight=args.outline_weight, init_weights=args.init_weights or "",
        volume_collections=args.volume_collections, backbone_from=args.backbone_from or "",
        mirror_hemispheres=args.mirror_hemispheres,
    )
    metadata = train(config)
    print(json.dumps(metadata["training"]["metrics"], indent=2))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from braintumor.evaluation.run import evaluate  # TensorFlow, matplotlib: only here

    report = evaluate(Path(args.model), Path(args.data), Path(args.out),
                      hard_subset=Path(args.hard_subset) if args.hard_subset else None,
                      ood=not args.no_ood,
                      sources=Path(args.sources) if args.sources else None,
                      extra_tumour=Path(args.extra_tumour) if args.extra_tumour else None,
                      held_out_of=Path(args.held_out_of) if args.held_out_of else None,
                      settings=args.settings)
    print(json.dumps(report["summary"], indent=2))
    return 0


def _refit_run(step: str, args: argparse.Namespace) -> dict | None:
    """A refit on a run folder that holds its recipe (config.json), or None for an older
    run folder (or none), which the step's own file-level function handles."""
    from braintumor.training.run import RunFolder  # TensorFlow (Keras' metrics): only here

    if not args.run_dir or not RunFolder(args.run_dir).has_recipe():
        return None
    from braintumor.training.train import refit  # TensorFlow: only here

    return refit(step, Path(args.model), Path(args.run_dir), args.settings.model,
                 data_dir=Path(args.data),
                 out=Path(args.out) if args.out else None,
                 cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                 quantile=getattr(args, "quantile", None))


def _cmd_validate(args: argparse.Namespace) -> int:
    from braintumor.evaluation.validation import validate_run  # TensorFlow: only here

    try:
        report = validate_run(Path(args.model), Path(args.run_dir), args.settings,
                              data_dir=Path(args.data) if args.data else None,
                              cache_dir=Path(args.cache_dir) if args.cache_dir else None)
    except (ValueError, FileNotFoundError) as exc:
        raise ConfigError("validate", str(exc)) from None
    print(json.dumps(report, indent=2))
    return 0


def _cmd_fit_ood(args: argparse.Namespace) -> int:
    from braintumor.training.ood_fit import fit_model_file  # TensorFlow: only here

    try:
        described = _refit_run("fit-ood", args)
        if described is not None:
            print(json.dumps(described, indent=2))
            return 0
        description = fit_model_file(
            Path(args.model), Path(args.data),
            run_dir=Path(args.run_dir) if args.run_dir else None,
            out=Path(args.out) if args.out else None,
            cache_dir=Path(args.cache_dir) if args.cache_dir else None, quantile=args.quantile,
            settings=args.settings.model)
    except (ValueError, FileNotFoundError) as exc:
        raise ConfigError("fit-ood", str(exc)) from None
    print(json.dumps(description, indent=2))
    return 0


def _cmd_fit_memory(args: argparse.Namespace) -> int:
    from braintumor.training.fit_memory import fit_memory_file  # TensorFlow: only here

    try:
        described = _refit_run("fit-memory", args)
        if described is not None:
            print(json.dumps({k: v for k, v in described.items() if k != "grid"}, indent=2))
            return 0
        description = fit_memory_file(
            Path(args.model), Path(args.data), Path(args.run_dir), args.settings.model,
            out=Path(args.out) if args.out else None,
            cache_dir=Path(args.cache_dir) if args.cache_dir else None)
    except (ValueError, FileNotFoundError) as exc:
        raise ConfigError("fit-memory", str(exc)) from None
    print(json.dumps({k: v for k, v in description.items() if k != "grid"}, indent=2))
    return 0


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    # TensorFlow, tf2onnx: this command only (pip install .[train])
    from braintumor.model.runtime import TRAIN_EXTRA, tensorflow_available

    if not tensorflow_available():
        raise ConfigError("export-onnx", f"exporting needs TensorFlow: {TRAIN_EXTRA}")
    from braintumor.model.onnx_export import export_onnx, store_onnx

    settings = args.settings
    model_path = Path(args.model)
    model = load_model(settings.model, path=model_path, warm_up=False)
    try:
        export = export_onnx(model)
    except (RuntimeError, ValueError) as exc:
        raise ConfigError("export-onnx", str(exc).split("\n")[0]) from None
    written = store_onnx(model_path, export, Path(args.out) if args.out else None)
    cam = export.manifest["cam"]
    print(json.dumps({"model": str(written), "onnx_bytes": len(export.graph),
                      "outputs": export.manifest["outputs"],
                      "grad_cam": "CAM (ONNX Runtime)" if cam["exact"]
                      else f"needs TensorFlow: {cam['reason']}",
                      "check_error": export.manifest.get("check_error"),
                      "export_seconds": export.manifest["export_seconds"]}, indent=2))
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    settings = args.settings
    model_path = Path(args.model or settings.MODEL_PATH)
    raw = read_metadata(model_path) if model_path.is_file() else None
    print(json.dumps({"settings": describe(settings),
                      "model_metadata": raw[0] if raw else None}, indent=2))
    return 0


def _add_refit_arguments(p: argparse.ArgumentParser, run_dir_required: bool, data: Path
                         ) -> None:
    """What fit-ood and fit-memory share: the model to refit, its training data and run."""
    p.add_argument("--model", default="models/braintumor-cnn.keras")
    p.add_argument("--data", default=f"{data}/Training")
    p.add_argument("--run-dir", required=run_dir_required, default=None,
                   help="the training run folder: its split.json gives the train/val lists "
                        "(with its config.json, the run's own recipe assembles the data)")
    p.add_argument("--out", default=None, help="write a copy here (default: the model, in place)")
    p.add_argument("--cache-dir", default=".cache")


def build_parser(settings: Settings | None = None) -> argparse.ArgumentParser:
    """The command line; ``settings`` give the defaults that come from the environment
    (BRAINTUMOR_DATA for every --data)."""
    data = (settings or Settings()).BRAINTUMOR_DATA
    parser = argparse.ArgumentParser(prog="braintumor", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="start the API server (gunicorn; Flask's own with "
                                     "FLASK_DEBUG=true)")
    p.add_argument("--port", type=int, default=None, help="overrides FLASK_PORT")
    p.add_argument("--host", default=None, help="overrides FLASK_HOST")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("classify", help="classify one image; prints the API's JSON")
    p.add_argument("image")
    p.add_argument("--out", help="folder for the three visualisation PNGs")
    p.add_argument("--compact", action="store_true", help="one-line JSON")
    p.add_argument("--frame", type=int, default=None,
                   help="frame of a multi-frame DICOM, 0-based (default: the middle one)")
    p.set_defaults(func=_cmd_classify)

    from braintumor.series.series_command import add_parser as add_series_parser

    add_series_parser(sub)  # classify-series
    from braintumor.dicomweb.dicomweb_command import add_parser as add_dicomweb_parser

    add_dicomweb_parser(sub)  # dicomweb classify | watch
    from braintumor.api.ops_cli import add_parser as add_ops_parser

    add_ops_parser(sub)  # keys add | revoke | list, audit verify

    p = sub.add_parser("train", help="train a model on a class-per-folder dataset")
    p.add_argument("--data", default=f"{data}/Training")
    p.add_argument("--out", default="models/braintumor-cnn.keras")
    p.add_argument("--run-dir", default="runs/default",
                   help="checkpoints and history; re-run to resume")
    p.add_argument("--arch", default="compact", choices=["compact", "compact-seg", "resnet50"])
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--channels", type=int, default=None)
    p.add_argument("--scaling", default=None,
                   choices=["unit", "raw", "symmetric", "caffe", "torch"])
    p.add_argument("--weights", default="none", choices=["none", "imagenet"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--fine-tune-epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--patience", type=int, default=8)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--cache-dir", default=".cache")
    p.add_argument("--parquet", default=None,
                   help="train on the output of `braintumor spark preprocess` (any URI "
                        "Spark reads) instead of --data")
    p.add_argument("--framing", default="stretch", choices=["stretch", "head"],
                   help="stretch the whole picture, or crop to the head, keep the aspect "
                        "ratio and normalise intensity inside the head")
    p.add_argument("--width", type=int, default=32, help="compact network's first-stage width")
    p.add_argument("--extra-tumour", default=None,
                   help="folder of tumour slices of unknown type with groups.tsv "
                        "(br35h-tumour), trained on with a partial label")
    p.add_argument("--extra-val-fraction", type=float, default=0.25,
                   help="share of the extra folder's groups held out for validation")
    p.add_argument("--sources", default=None,
                   help="the dataset's sources.tsv: balance the collections inside each class")
    p.add_argument("--augment", default="basic", choices=["basic", "source-robust"])
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--ema", type=float, default=0.0,
                   help="momentum of an exponential moving average of the weights (0: off)")
    p.add_argument("--no-memory", action="store_true",
                   help="ship the network's head alone, without the nearest-neighbour vote")
    p.add_argument("--memory-scope", default="all", choices=["all", "tumour-type"],
                   help="what the vote decides: every class, or only the tumour type (the "
                        "head keeps the probability of No Tumor)")
    p.add_argument("--masks", default=None,
                   help="expert tumour outlines (figshare-masks/training) for an "
                        "architecture with an outline (compact-seg)")
    p.add_argument("--volumes", default=None,
                   help="3D volumes with manifest.tsv: their train cases' slices join "
                        "training, their validation cases' the validation split")
    p.add_argument("--outline-weight", type=float, default=1.0,
                   help="weight of the outline loss against the classification loss")
    p.add_argument("--init-weights", default=None,
                   help="start from an earlier run's weights (its *.best.weights.h5, same "
                        "architecture) instead of a random initialisation")
    p.add_argument("--backbone-from", default=None,
                   help="a trained classifier (.keras) whose backbone is copied in and "
                        "frozen and whose head starts the new one (compact-seg)")
    p.add_argument("--volume-collections", default="one", choices=["one", "per-variant"],
                   help="the volumes' slices in the collection-balanced weights: one "
                        "collection, or whole heads, skull-stripped heads and tumour "
                        "volumes apart")
    p.add_argument("--mirror-hemispheres", action="store_true",
                   help="also train on the tumour volumes' hemispheres mirrored into whole "
                        "brains, their label-free slices as No Tumor")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a model on a labelled folder")
    p.add_argument("--model", default="models/braintumor-cnn.keras")
    p.add_argument("--data", default=f"{data}/Testing")
    p.add_argument("--hard-subset", default=f"{data}/hard_test_subset.txt")
    p.add_argument("--out", default="reports/latest")
    p.add_argument("--sources", default=f"{data}/sources.tsv",
                   help="the dataset's file -> collection table: figures by collection and "
                        "the collection probe (skipped when the file is missing)")
    p.add_argument("--extra-tumour", default=None,
                   help="folder of tumour slices from outside the dataset (with groups.tsv), "
                        "answered as uploads; only the groups a model held out count")
    p.add_argument("--held-out-of", default=None,
                   help="count the extra groups that this other model's training held out "
                        "(compare two models on the same slices)")
    p.add_argument("--no-ood", action="store_true",
                   help="skip the not-a-brain-MRI measurement (Testing against the OOD set)")
    p.set_defaults(func=_cmd_evaluate)
    from braintumor.evaluation.evaluate_commands import add_parser as add_evaluation_parser

    add_evaluation_parser(sub, data)  # evaluate-series, evaluate-localisation

    p = sub.add_parser("validate", help="validation figures of a trained run (what model "
                                        "selection may use; Testing is never read)")
    p.add_argument("--model", required=True)
    p.add_argument("--run-dir", required=True, help="the run folder (config.json, split.json)")
    p.add_argument("--data", default=None, help="the run's Training folder, if it moved")
    p.add_argument("--cache-dir", default=".cache")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("fit-ood", help="fit the not-a-brain-MRI statistics of a model on its "
                                       "training split and store them in its metadata")
    _add_refit_arguments(p, run_dir_required=False, data=data)
    p.add_argument("--quantile", type=float, default=0.995,
                   help="share of validation scans under the threshold (default 0.995)")
    p.set_defaults(func=_cmd_fit_ood)

    p = sub.add_parser("fit-memory", help="give a model its nearest-neighbour memory of the "
                                          "Training scans (vote settings chosen on validation)")
    _add_refit_arguments(p, run_dir_required=True, data=data)
    p.set_defaults(func=_cmd_fit_memory)

    p = sub.add_parser("export-onnx", help="store a model's ONNX graph in its file, for "
                                           "serving on ONNX Runtime (needs TensorFlow)")
    p.add_argument("--model", default="models/braintumor-cnn.keras")
    p.add_argument("--out", default=None, help="write a copy here (default: the model, in place)")
    p.set_defaults(func=_cmd_export_onnx)

    p = sub.add_parser("info", help="print the settings and the model's metadata")
    p.add_argument("--model")
    p.set_defaults(func=_cmd_info)

    add_spark_parser(sub)  # spark preprocess | classify | cluster
    return parser


def _resolve_train_defaults(args: argparse.Namespace) -> None:
    if args.command != "train":
        return
    imagenet_like = args.arch == "resnet50"
    if args.channels is None:
        args.channels = 3 if imagenet_like else 1
    if args.scaling is None:
        args.scaling = "caffe" if imagenet_like else "unit"


def main(argv: list[str] | None = None) -> int:
    """Load the settings once, parse the command line, run the command
    (:func:`braintumor.command_line.run_command`)."""
    return run_command(build_parser, argv, prepare=_resolve_train_defaults)


if __name__ == "__main__":
    sys.exit(main())
