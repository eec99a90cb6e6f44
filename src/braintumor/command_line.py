"""How a ``braintumor`` command runs: the settings once, the arguments, the one-line errors.

Shared by the ``braintumor`` command (:mod:`braintumor.cli`) and by the file handed to
spark-submit (:mod:`braintumor.spark.submit`), so that neither imports the other. Errors
of the project's own hierarchy end as one line on stderr and exit code 2, never a
traceback; Ctrl-C is exit code 130.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from braintumor.config import Settings, load_settings
from braintumor.errors import BrainTumorError, ConfigError


def run_command(build_parser: Callable[[Settings], argparse.ArgumentParser],
                argv: list[str] | None = None,
                prepare: Callable[[argparse.Namespace], None] | None = None) -> int:
    """Load the settings once, parse the command line, run the command.

    ``build_parser`` takes the settings, whose values are the defaults that come from the
    environment; ``prepare`` completes the parsed arguments before the command runs. The
    settings travel down on ``args.settings``; no command reads the environment.
    """
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    args = build_parser(settings).parse_args(argv)
    args.settings = settings
    if prepare is not None:
        prepare(args)
    logging.basicConfig(level=settings.LOG_LEVEL,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except BrainTumorError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
