"""Running a Spark job from the command line: one line on failure, never a JVM trace.

Spark reports a missing input or a refused output path as a Python exception wrapping
pages of Java stack trace; the CLI's contract is ``error: <one line>`` and exit code 2,
so those are turned into a :class:`SparkJobError` carrying the first line only.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from braintumor.errors import BrainTumorError

T = TypeVar("T")


class SparkJobError(BrainTumorError):
    """A Spark job could not run (bad input or output URI, no Spark, a failed stage)."""


#: The last line of a Python traceback: ``ModuleNotFoundError: No module named 'x'``.
_PYTHON_ERROR = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b:?.*$")


def first_line(exc: BaseException) -> str:
    """One line that says what went wrong, without Java frames.

    Usually the message's first non-empty line. A failure inside a Python worker starts
    with "An exception was thrown from the Python worker:" and the cause is at the end of
    the worker's traceback, so that line (``ModuleNotFoundError: ...``) is added.
    """
    text = str(getattr(exc, "desc", None) or exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    head = lines[0]
    if "Python worker" in head:
        causes = [line for line in lines[1:] if _PYTHON_ERROR.match(line)]
        if causes:
            return f"{head} {causes[-1]}"
    return head


def run_spark_job(job: Callable[[], T]) -> T:
    """Run ``job``; Spark's and Java's exceptions become one-line :class:`SparkJobError`."""
    # Spark's exception types: only where a Spark job runs
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        return job()
    except (PySparkException, Py4JError) as exc:
        raise SparkJobError(f"Spark job failed: {first_line(exc)}") from exc
    except FileNotFoundError as exc:  # no java, or JAVA_HOME pointing nowhere
        raise SparkJobError(f"cannot start Spark: {exc}; Java 17+ is required") from exc
