"""One place that turns the Spark settings (:class:`~braintumor.config.SparkSettings`) into a
SparkSession.

Why the settings here: image rows are large (a few hundred KB each with their content),
so Arrow batches are kept to ``ARROW_BATCH_ROWS`` rows instead of Spark's 10,000, which
bounds the memory of a Python worker and gives ``mapInPandas`` model-sized batches.
Spark's own logging is turned down to errors because its INFO/WARN chatter would bury
the jobs' own progress lines and our one-line results.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import socket
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import braintumor
from braintumor.config import SparkSettings
from braintumor.errors import ConfigError
from braintumor.spark_session.commands import SparkJobError
from braintumor.spark_session.standalone import master_status

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


def session_conf(settings: SparkSettings) -> dict[str, str]:
    """The Spark configuration built from the Spark settings (also what ``spark-submit``
    sees)."""
    conf = {
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(ARROW_BATCH_ROWS),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # the jobs report files done themselves (spark.progress), not Spark's task bar
        "spark.ui.showConsoleProgress": "false",
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


#: How to install Spark's packages (pyspark, pandas, pyarrow): the server does not need them.
SPARK_EXTRA = "pip install .[spark]"


def spark_installed() -> bool:
    """Whether pyspark (the ``[spark]`` extra) is installed; imports nothing."""
    try:
        return importlib.util.find_spec("pyspark") is not None
    except (ImportError, ValueError):
        return False


def build_session(settings: SparkSettings, quiet: bool = True,
                  extra_conf: dict[str, str] | None = None) -> SparkSession:
    """Start (or join) this process's SparkSession as the Spark settings describe.

    ``extra_conf`` wins over everything else. Only one SparkContext
    can live in a process: when one is already running, it is returned as it is, and a
    different master is logged rather than silently ignored.
    """
    if not spark_installed():
        raise ConfigError("SPARK_MASTER", f"Spark is not installed: {SPARK_EXTRA}")
    from pyspark.sql import SparkSession  # Spark: only when a session is wanted

    conf = session_conf(settings)
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
    if not under_spark_submit() and not local_master(conf.get("spark.master", "local")):
        ship_package(spark)
    master = spark.sparkContext.master
    if not under_spark_submit() and master != conf.get("spark.master", master):
        log.warning("a SparkContext on %s was already running; SPARK_MASTER=%s is not used",
                    master, settings.SPARK_MASTER)
    if quiet:
        spark.sparkContext.setLogLevel("ERROR")
        # py4j logs every closed gateway connection at INFO, after the job's last line
        logging.getLogger("py4j").setLevel(logging.WARNING)
    return spark


def local_master(master: str) -> bool:
    """``local``, ``local[4]``...: the executors are this process's JVM."""
    return master.startswith("local")


def package_zip(folder: Path | None = None) -> Path:
    """This braintumor package as a zip for ``addPyFile``, built once per code version.

    The zip holds the package's ``.py`` files (it has no other files); its name carries
    a digest of them, so a changed checkout ships a new zip and an unchanged one reuses
    the zip in the temporary folder instead of writing a new file per job.
    """
    source = Path(braintumor.__file__).resolve().parent
    files = sorted(p for p in source.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(source.parent).as_posix().encode())
        digest.update(path.read_bytes())
    folder = folder or Path(tempfile.gettempdir()) / f"braintumor-pyfiles-{os.getuid()}"
    target = folder / f"braintumor-{digest.hexdigest()[:16]}.zip"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(source.parent).as_posix())
        partial.replace(target)
    return target


def ship_package(spark: SparkSession) -> None:
    """Put this package on the executors' ``sys.path`` (``SparkContext.addPyFile``).

    On a cluster the executors' Python may have the dependencies but not braintumor, or
    an older braintumor: the tasks then fail with ``No module named 'braintumor'`` or run
    other code than the driver's. The zip goes before site-packages on the executors, so
    they run exactly the driver's code. Local masters need nothing: their Python workers
    run this interpreter. Under spark-submit, ``--py-files`` does this job.
    """
    spark.sparkContext.addPyFile(str(package_zip()))


def master_webui(settings: SparkSettings, master: str) -> str:
    """The standalone master's web UI: SPARK_MASTER_WEBUI, or port 8080 on its host."""
    if settings.SPARK_MASTER_WEBUI:
        return settings.SPARK_MASTER_WEBUI
    host = urlparse(master.split(",")[0]).hostname or "localhost"
    return f"http://{host}:8080"


def _workers_offer(status: dict) -> str:
    """What a master's JSON status says its live workers have free, in words."""
    alive = [w for w in status.get("workers", []) if w.get("state") == "ALIVE"]
    if not alive:
        return "the master lists no live worker"
    memory = max(int(w.get("memoryfree", 0)) for w in alive)
    cores = max(int(w.get("coresfree", 0)) for w in alive)
    workers = f"{len(alive)} live worker{'s' if len(alive) != 1 else ''}"
    return (f"the master's {workers} offer at most {memory} MB and "
            f"{cores} core{'s' if cores != 1 else ''} free")


#: Seconds without a new executor after which the cluster is taken as complete.
SETTLE_SECONDS = 2.0


def _executors(spark: SparkSession) -> int:
    return len(spark.sparkContext.statusTracker().getExecutorInfos()) - 1  # less the driver


def _settle(spark: SparkSession, limit: float = 15.0) -> None:
    """Wait while executors keep arriving (they start on every worker at about the same
    time): the job's partitioning reads ``defaultParallelism``, the cores registered so
    far, and would otherwise be cut for the first executor alone."""
    count, changed = _executors(spark), time.monotonic()
    stop = changed + limit
    while time.monotonic() - changed < SETTLE_SECONDS and time.monotonic() < stop:
        time.sleep(0.25)
        now = _executors(spark)
        if now != count:
            count, changed = now, time.monotonic()


def wait_for_executors(spark: SparkSession, settings: SparkSettings,
                       timeout: float | None = None) -> None:
    """On a ``spark://`` master, fail in one line when no executor starts in time.

    A standalone master that no worker can satisfy (an executor asking 2 GB of a 1 GB
    worker, more cores than any has) launches nothing, and Spark waits for ever,
    repeating "Initial job has not accepted any resources". Here the session waits at
    most SPARK_EXECUTOR_TIMEOUT seconds for the first executor, then stops and says what
    was asked and what the master's web UI says the workers offer. Other masters (local,
    YARN's queues, Kubernetes' pods, dynamic allocation) are left to Spark.
    """
    sc = spark.sparkContext
    conf, master = sc.getConf(), str(sc.master)
    if (not master.startswith("spark://")
            or conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true"):
        return
    timeout = settings.SPARK_EXECUTOR_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _executors(spark) > 0:
            _settle(spark)
            return
        time.sleep(0.5)
    memory = conf.get("spark.executor.memory", "1g")
    cores = conf.get("spark.executor.cores", None)
    webui = master_webui(settings, master)
    status = master_status(webui)
    offer = (_workers_offer(status) if status else
             f"its web UI at {webui} did not answer (SPARK_MASTER_WEBUI), so what the "
             "workers offer is unknown")
    spark.stop()
    raise SparkJobError(
        f"no executor started on {master} within {timeout:g} s: each executor asks "
        f"{memory} of memory (SPARK_EXECUTOR_MEMORY) and "
        f"{cores + ' cores' if cores else 'the cores of a whole worker'} "
        f"(spark.executor.cores); {offer}")


def job_session(settings: SparkSettings, conf: dict[str, str] | None = None) -> SparkSession:
    """The session of a batch job: :func:`build_session`, then executors made sure of."""
    spark = build_session(settings, extra_conf=conf)
    wait_for_executors(spark, settings)
    return spark
