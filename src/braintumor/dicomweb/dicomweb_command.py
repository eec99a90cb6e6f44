"""``braintumor dicomweb classify|watch``: series classified where they live."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from braintumor.classify import Classifier
from braintumor.dicomweb.client import connect
from braintumor.model import load_serving_model, onnx_threads

if TYPE_CHECKING:
    from dicomweb_client.api import DICOMwebClient


def _client(args: argparse.Namespace) -> DICOMwebClient:
    return connect(args.url, token=args.token, user=args.user, password=args.password)


def _classifier(args: argparse.Namespace) -> Classifier:
    settings = args.settings  # loaded once by main()
    return Classifier(load_serving_model(settings.model, threads=onnx_threads()), settings)


def cmd_classify(args: argparse.Namespace) -> int:
    # highdicom (the SR and Secondary Capture writers) is heavy: only for these commands
    from braintumor.dicomweb.commands import classify_study, mr_series

    client = _client(args)
    mr_series(client, args.url, args.study, args.series)  # fail fast, before the model loads
    body = classify_study(client, args.url, _classifier(args), args.study, args.series,
                          store=args.store)
    print(json.dumps(body, indent=None if args.compact else 2))
    return 0 if all(item["success"] for item in body["series"]) else 2


def cmd_watch(args: argparse.Namespace) -> int:
    # highdicom (the SR and Secondary Capture writers) is heavy: only for these commands
    from braintumor.dicomweb.commands import watch

    client = _client(args)
    classifier = _classifier(args)

    def emit(answer: dict) -> None:
        print(json.dumps(answer, indent=None), flush=True)  # one line per series

    watch(client, args.url, classifier, Path(args.state), store=args.store,
          interval=args.interval, once=args.once, settle=not args.no_settle, emit=emit)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", required=True,
                   help="the DICOMweb root, e.g. http://pacs:8042/dicom-web")
    p.add_argument("--token", help="bearer token (Authorization: Bearer)")
    p.add_argument("--user", help="basic-auth user")
    p.add_argument("--password", help="basic-auth password (default: DICOMWEB_PASSWORD)")
    p.add_argument("--store", action="store_true",
                   help="store the results back into the study (STOW-RS): a Structured "
                        "Report and a Secondary Capture of the key slice's heatmap")


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``dicomweb`` with ``classify`` and ``watch`` on the main command."""
    p = sub.add_parser("dicomweb", help="classify MR series on a DICOMweb server "
                                        "(QIDO-RS/WADO-RS), store results back (STOW-RS)")
    commands = p.add_subparsers(dest="dicomweb_command", required=True)
    q = commands.add_parser("classify", help="classify the MR series of one study")
    _common(q)
    q.add_argument("--study", required=True, help="Study Instance UID")
    q.add_argument("--series", help="only this Series Instance UID")
    q.add_argument("--compact", action="store_true", help="one-line JSON")
    q.set_defaults(func=cmd_classify)
    q = commands.add_parser("watch", help="poll for new MR series and classify each once")
    _common(q)
    q.add_argument("--state", default="dicomweb-watch.json",
                   help="JSON file remembering the series done (default %(default)s)")
    q.add_argument("--interval", type=float, default=30.0, help="seconds between polls")
    q.add_argument("--once", action="store_true", help="poll once and exit")
    q.add_argument("--no-settle", action="store_true",
                   help="classify a new series at once instead of waiting one poll for "
                        "its instance count to stop changing")
    q.set_defaults(func=cmd_watch)
