"""A Spark standalone cluster on this machine, from pyspark's own ``spark-class``.

Spark's standalone mode is a master JVM and worker JVMs that launch executors; pyspark's
pip package ships ``bin/spark-class``, which starts both. The tests and ``make
bench-spark`` use this to run the jobs against ``spark://`` exactly as a user with a
cluster would, and anyone can use it to try cluster mode on one machine::

    with LocalStandaloneCluster(workers=2, cores=1, memory="3g") as cluster:
        ...  # SPARK_MASTER=cluster.master_url

Nothing here schedules or distributes work: that is Spark's. The class only starts the
JVMs on loopback ports, each in its own process group with its own work folder, waits on
the master's JSON status page until the workers have registered, and stops exactly the
processes it started (a worker's process group holds its executors and their Python
workers too, so :meth:`kill_worker` takes all of them down, as a lost machine would).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

#: Seconds to wait for the master and the workers to come up.
START_TIMEOUT = 90.0


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spark_class() -> Path:
    """pyspark's ``bin/spark-class`` (FileNotFoundError when this pyspark lacks it)."""
    import pyspark  # only where a cluster is started

    path = Path(pyspark.__file__).parent / "bin" / "spark-class"
    if not path.is_file():
        raise FileNotFoundError(f"pyspark ships no {path}")
    return path


def master_status(webui_url: str, timeout: float = 2.0) -> dict[str, Any]:
    """The master's JSON status page (workers, applications), ``{}`` when it does not
    answer."""
    try:
        with urllib.request.urlopen(f"{webui_url.rstrip('/')}/json/", timeout=timeout) as page:
            answer = json.load(page)
    except (OSError, ValueError):
        return {}
    return answer if isinstance(answer, dict) else {}


class LocalStandaloneCluster:
    """A master and ``workers`` workers of ``cores`` cores and ``memory`` each."""

    def __init__(self, workers: int = 2, cores: int = 1, memory: str = "3g",
                 base: Path | None = None) -> None:
        self.workers, self.cores, self.memory = workers, cores, memory
        self._owns_base = base is None  # a folder made here is removed by stop()
        self.base = Path(base) if base else Path(tempfile.mkdtemp(prefix="spark-standalone-"))
        self.port, self.webui_port = free_port(), free_port()
        self.master_url = f"spark://127.0.0.1:{self.port}"
        self.webui_url = f"http://127.0.0.1:{self.webui_port}"
        self._master: subprocess.Popen | None = None
        self._workers: list[subprocess.Popen] = []

    # -- life cycle -----------------------------------------------------------------
    def _launch(self, log_name: str, *args: str) -> subprocess.Popen:
        script = spark_class()
        env = {**os.environ, "SPARK_HOME": str(script.parent.parent),
               "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(self.base / "logs")}
        with (self.base / log_name).open("ab") as log:
            return subprocess.Popen([str(script), *args], env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)

    def start(self) -> LocalStandaloneCluster:
        """Start the master and the workers; return once every worker is ALIVE."""
        self.base.mkdir(parents=True, exist_ok=True)
        self._master = self._launch("master.log", "org.apache.spark.deploy.master.Master",
                                    "--host", "127.0.0.1", "--port", str(self.port),
                                    "--webui-port", str(self.webui_port))
        try:
            for _ in range(self.workers):
                self._add_worker()
            self.wait_for_workers(self.workers)
        except BaseException:
            self.stop()
            raise
        return self

    def _add_worker(self) -> None:
        """Start one more worker (its log is ``worker<N>.log``)."""
        number = len(self._workers) + 1
        work = self.base / f"work{number}"
        work.mkdir(parents=True, exist_ok=True)
        self._workers.append(self._launch(
            f"worker{number}.log", "org.apache.spark.deploy.worker.Worker",
            "--cores", str(self.cores), "--memory", self.memory, "--work-dir", str(work),
            "--webui-port", str(free_port()), "--host", "127.0.0.1", self.master_url))

    def status(self) -> dict[str, Any]:
        """The master's JSON status page."""
        return master_status(self.webui_url)

    def alive_workers(self) -> int:
        return sum(1 for w in self.status().get("workers", []) if w.get("state") == "ALIVE")

    def wait_for_workers(self, count: int, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while self.alive_workers() < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the standalone cluster did not come up "
                                   f"({self.alive_workers()} of {count} workers):\n"
                                   + self.logs())
            time.sleep(0.5)

    def logs(self, tail: int = 800) -> str:
        """The end of every log the cluster wrote, for a failure message."""
        return "\n".join(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}"
                         for path in sorted(self.base.glob("*.log")))

    def kill_worker(self, number: int) -> None:
        """SIGKILL worker ``number`` with its executors and their Python workers."""
        process = self._workers[number - 1]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=20)

    def stop(self) -> None:
        """Stop the workers, then the master: exactly the processes started here."""
        started = [*self._workers, *([self._master] if self._master else [])]
        for process in started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)
        if self._owns_base:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> LocalStandaloneCluster:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()
