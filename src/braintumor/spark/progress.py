"""Progress of a long Spark job on the command line: files done of the total, tasks done.

Spark's own console bar counts the tasks of a stage, not files, and disappears between
stages. Here the tasks add the rows they finish to an accumulator, which Spark merges
into the driver as each task completes, and a thread of the driver reads it with the
status tracker's task counts every :data:`INTERVAL` seconds. The lines go to stderr
(the job's result stays the one JSON line on stdout): on a terminal one line redrawn in
place, otherwise (a log file, CI) a line when the count changed, at most every
:data:`LOG_INTERVAL` seconds.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark import Accumulator
    from pyspark.sql import SparkSession

#: Seconds between two looks at the job.
INTERVAL = 1.0
#: Fewest seconds between two lines when stderr is not a terminal.
LOG_INTERVAL = 10.0


class JobProgress:
    """Hand :attr:`files` (an accumulator) to the job's tasks, which add the rows they
    finish, set :attr:`total`, and run the job inside ``with progress:``; it prints the
    progress while the block runs and a last line with the count and the time."""

    def __init__(self, spark: SparkSession, label: str, total: int = 0,
                 stream: IO[str] | None = None, log_interval: float = LOG_INTERVAL) -> None:
        self.spark, self.total, self.label = spark, total, label
        self.stream = stream or sys.stderr
        self.log_interval = log_interval
        self.files: Accumulator[int] = spark.sparkContext.accumulator(0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="job-progress", daemon=True)
        self._started = time.monotonic()
        self._last_line = ""

    def tasks(self) -> tuple[int, int]:
        """(tasks completed, tasks) of the stages running now, from the status tracker."""
        tracker = self.spark.sparkContext.statusTracker()
        done = total = 0
        for stage_id in tracker.getActiveStageIds():
            stage = tracker.getStageInfo(stage_id)
            if stage is not None:
                done, total = done + stage.numCompletedTasks, total + stage.numTasks
        return done, total

    def line(self) -> str:
        done, tasks = self.tasks()
        files = min(int(self.files.value), self.total)
        share = f" ({100.0 * files / self.total:.0f}%)" if self.total else ""
        stage = f", tasks {done}/{tasks}" if tasks else ""
        return (f"{self.label}: {files}/{self.total} files{share}{stage}, "
                f"{time.monotonic() - self._started:.0f} s")

    def _write(self, text: str, final: bool = False) -> None:
        if self.stream.isatty():
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _watch(self) -> None:
        last_written = 0.0
        while not self._stop.wait(INTERVAL):
            text = self.line()
            now = time.monotonic()
            changed = text.split(",")[0] != self._last_line.split(",")[0]
            if self.stream.isatty() or (changed and now - last_written >= self.log_interval):
                self._write(text)
                self._last_line, last_written = text, now

    def __enter__(self) -> JobProgress:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        seconds = time.monotonic() - self._started
        if kind is None:
            files = min(int(self.files.value), self.total)  # a retried task adds twice
            rate = f", {files / seconds:.1f} files/s" if seconds > 0 else ""
            self._write(f"{self.label}: done, {files} files in {seconds:.1f} s{rate}",
                        final=True)
        elif self.stream.isatty():
            self.stream.write("\n")
