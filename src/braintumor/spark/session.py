"""One place that turns the Spark settings (:class:`~braintumor.config.SparkSettings`) into a
SparkSession.

Why the settings here: image rows are large (a few hundred KB each with their content),
so Arrow batches are kept to ``ARROW_BATCH_ROWS`` rows instead of Spark's 10,000, which
bounds the memory of a Python worker and gives ``mapInPandas`` model-sized batches.
Spark's own logging is turned down to errors because its INFO/WARN chatter would bury
the job's progress bar and our one-line results.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from braintumor.config import SparkSettings
from braintumor.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

#: Rows per Arrow batch handed to mapInPandas: one model batch of encoded images.
ARROW_BATCH_ROWS = 64

_LOG4J2 = """\
rootLogger.level = error
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n%ex
# pyspark runs as an "interpreter": without this, Spark resets the root level to WARN
logger.repl.name = org.apache.spark.repl.Main
logger.repl.level = error
"""


def _quiet_log4j_file() -> Path:
    """A log4j2 configuration that only lets errors through, written once per machine."""
    path = Path(tempfile.gettempdir()) / "braintumor-spark-log4j2.properties"
    if not path.is_file() or path.read_text() != _LOG4J2:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(_LOG4J2)
        tmp.replace(path)
    return path


def under_spark_submit() -> bool:
    """True when this script was started by ``spark-submit`` (its JVM is already up).

    Then the command line owns the master, the app name and the memory: setting them
    again from Settings would silently turn ``--master yarn`` into ``local[*]``.
    """
    return "PYSPARK_GATEWAY_PORT" in os.environ


def session_conf(settings: SparkSettings, progress: bool = False) -> dict[str, str]:
    """The Spark configuration built from the Spark settings (also what ``spark-submit``
    sees)."""
    conf = {
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(ARROW_BATCH_ROWS),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.showConsoleProgress": "true" if progress else "false",
        "spark.executorEnv.TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    }
    if under_spark_submit():
        return conf  # spark-submit's --master, --driver-memory... decide the rest
    conf["spark.master"] = settings.SPARK_MASTER
    conf["spark.app.name"] = settings.SPARK_APP_NAME
    conf["spark.executor.memory"] = settings.SPARK_EXECUTOR_MEMORY
    conf["spark.driver.memory"] = settings.SPARK_DRIVER_MEMORY
    return conf


#: Seconds to wait for a standalone master's port before giving up.
MASTER_CONNECT_TIMEOUT = 5.0


def check_master_reachable(master: str, timeout: float = MASTER_CONNECT_TIMEOUT) -> None:
    """Fail fast, in one line naming SPARK_MASTER, when a standalone master (``spark://``)
    does not accept connections: Spark itself retries for minutes before it gives up.

    Other masters (``local``, ``yarn``, ``k8s://``) are left to Spark.
    """
    if not master.startswith("spark://"):
        return
    for address in master[len("spark://"):].split(","):  # a list of masters (HA)
        host, _, port = address.rpartition(":")
        try:
            with socket.create_connection((host, int(port)), timeout=timeout):
                return
        except (OSError, ValueError):
            continue
    raise ConfigError("SPARK_MASTER", f"cannot reach the Spark master at {master} "
                      f"(no answer within {timeout:g} s); is it running?")


def build_session(settings: SparkSettings, progress: bool = False, quiet: bool = True,
                  extra_conf: dict[str, str] | None = None) -> SparkSession:
    """Start (or join) this process's SparkSession as the Spark settings describe.

    ``progress`` turns on Spark's console progress bar (the CLI jobs want it, the server
    and tests do not). ``extra_conf`` wins over everything else. Only one SparkContext
    can live in a process: when one is already running, it is returned as it is, and a
    different master is logged rather than silently ignored.
    """
    from pyspark.sql import SparkSession  # Spark: only when a session is wanted

    conf = session_conf(settings, progress)
    if quiet and not under_spark_submit() and not (
        os.environ.get("PYSPARK_SUBMIT_ARGS") or os.environ.get("SPARK_CONF_DIR")
    ):
        # Applied when this process launches the JVM: hides the start-up warnings too.
        conf["spark.driver.extraJavaOptions"] = (
            f"-Dlog4j2.configurationFile=file:{_quiet_log4j_file()}")
    conf.update(extra_conf or {})
    check_master_reachable(conf.get("spark.master", ""))
    if conf.get("spark.master", "").startswith(("local", "spark://")):
        # The Python workers must run this interpreter (the venv that has braintumor),
        # not whatever ``python3`` is first on PATH; pyspark reads only PYSPARK_PYTHON
        # for that. A standalone cluster's workers on this machine, or on machines that
        # share its paths, find it there too; set PYSPARK_PYTHON (or ship a packed
        # environment, see the README) when they do not. YARN and Kubernetes executors'
        # Python is the cluster's to configure.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    master = spark.sparkContext.master
    if not under_spark_submit() and master != conf.get("spark.master", master):
        log.warning("a SparkContext on %s was already running; SPARK_MASTER=%s is not used",
                    master, settings.SPARK_MASTER)
    if quiet:
        spark.sparkContext.setLogLevel("ERROR")
    return spark
