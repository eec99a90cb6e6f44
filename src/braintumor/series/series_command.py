"""``braintumor classify-series PATH``: the endpoint's JSON for a folder, zip or NIfTI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from braintumor.classify import Classifier, utc_timestamp
from braintumor.errors import NotBrainMRIError
from braintumor.model import load_serving_model, onnx_threads
from braintumor.series import classify_series, series_from_path


def error_json(exc: NotBrainMRIError) -> dict:
    """The API's error body for a refusal, printed on stdout like ``braintumor classify``."""
    return {"success": False,
            "error": {"message": exc.message, "code": exc.code, "status": exc.status},
            "timestamp": utc_timestamp()}


def write_key_slice_pngs(pngs: dict[str, bytes], out: Path, prefix: str = "key_slice") -> None:
    """The key slice's three pictures as ``<prefix>_<picture>.png`` (no input file name)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, png in pngs.items():
        (out / f"{prefix}_{name}.png").write_bytes(png)


def cmd_classify_series(args: argparse.Namespace) -> int:
    settings = args.settings  # loaded once by main()
    volume = series_from_path(Path(args.path), settings)  # refuse bad input before loading
    classifier = Classifier(load_serving_model(settings.model, threads=onnx_threads()),
                            settings)
    indent = None if args.compact else 2
    try:
        result = classify_series(classifier, volume)
    except NotBrainMRIError as exc:
        print(json.dumps(error_json(exc), indent=indent))
        raise
    if args.out:
        write_key_slice_pngs(result.pngs, Path(args.out))
    print(json.dumps(result.to_json(), indent=indent))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``classify-series`` on the main command's sub-parsers."""
    p = sub.add_parser("classify-series",
                       help="classify a whole series (folder of DICOM files, zip, or NIfTI "
                            "volume); prints the API's JSON")
    p.add_argument("path", help="a folder of DICOM files, a .zip of them, or a .nii/.nii.gz")
    p.add_argument("--out", help="folder for the key slice's three PNGs")
    p.add_argument("--compact", action="store_true", help="one-line JSON")
    p.set_defaults(func=cmd_classify_series)
