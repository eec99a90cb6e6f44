"""Running a Spark job from the command line: one line on failure, never a JVM trace.

Spark reports a missing input or a refused output path as a Python exception wrapping
pages of Java stack trace; the CLI's contract is ``error: <one line>`` and exit code 2,
so those are turned into a :class:`SparkJobError` carrying the first line only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from braintumor.errors import BrainTumorError

T = TypeVar("T")


class SparkJobError(BrainTumorError):
    """A Spark job could not run (bad input or output URI, no Spark, a failed stage)."""


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message, without Java frames."""
    text = str(getattr(exc, "desc", None) or exc)
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def run_spark_job(job: Callable[[], T]) -> T:
    """Run ``job``; Spark's and Java's exceptions become one-line :class:`SparkJobError`."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        return job()
    except (PySparkException, Py4JError) as exc:
        raise SparkJobError(f"Spark job failed: {first_line(exc)}") from exc
    except FileNotFoundError as exc:  # no java, or JAVA_HOME pointing nowhere
        raise SparkJobError(f"cannot start Spark: {exc}; Java 17+ is required") from exc
