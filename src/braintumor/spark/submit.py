"""The file to hand to ``spark-submit``: ``braintumor spark ...`` as an application.

``spark-submit`` runs a Python *file*, not a console script, so on a cluster the jobs
are started as::

    spark-submit --master yarn ... src/braintumor/spark/submit.py classify --input ... --output ...

The arguments are those of ``braintumor spark``. Under spark-submit the session takes
its master, app name and memory from spark-submit's command line, not from SPARK_*
(see :func:`braintumor.spark_session.session.under_spark_submit`).
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    # only once __main__ fixed sys.path
    from braintumor.spark.spark_command import main as spark_main

    return spark_main(sys.argv[1:])


if __name__ == "__main__":
    # Run as a file, Python puts this folder first on sys.path, where images.py,
    # series.py... would shadow top-level modules of those names.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    sys.exit(main())
