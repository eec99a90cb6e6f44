"""A packed Python environment for executors that have none of the dependencies.

Spark's Python package management ships such an environment on ``spark.archives`` and
runs the workers' ``./environment/bin/python``. The environment made here is a real
one: a fresh virtualenv (no access to this one's site-packages) into which the installed
files of exactly the distributions a job's Python workers import are copied (from their
RECORD, with their requirements), packed by venv-pack. braintumor itself is not in it:
the CLI ships the package as a zip, as it does to any cluster.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

from packaging.requirements import Requirement

#: Prints the top-level modules a job's worker imports from site-packages.
_PROBE = """
import importlib, json, sys, sysconfig
for name in sys.argv[1:]:
    importlib.import_module(name)
roots = (sysconfig.get_path("purelib"), sysconfig.get_path("platlib"))
print(json.dumps(sorted({m.split(".")[0] for m, v in list(sys.modules.items())
                         if str(getattr(v, "__file__", "") or "").startswith(roots)})))
"""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def worker_distributions(modules: list[str]) -> set[str]:
    """The distributions behind what importing ``modules`` loads, with their
    requirements (extras left out), e.g. pandas brings python-dateutil and tzdata."""
    found = subprocess.run([sys.executable, "-c", _PROBE, *modules], capture_output=True,
                           text=True, check=True)
    owners = metadata.packages_distributions()
    wanted = {_canonical(dist) for module in json.loads(found.stdout.splitlines()[-1])
              for dist in owners.get(module, [])}
    wanted.discard("braintumor")
    todo, done = list(wanted), set()
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        for line in metadata.distribution(name).requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_canonical(requirement.name))
    return done


def _copy_distribution(name: str, site_packages: Path) -> None:
    dist = metadata.distribution(name)
    for file in dist.files or []:
        if ".." in file.parts or "__pycache__" in file.parts:
            continue  # console scripts in bin/, byte code
        source = Path(str(dist.locate_file(file)))
        if source.is_file():
            target = site_packages / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def packed_environment(root: Path, modules: list[str]) -> Path:
    """A virtualenv with the distributions ``modules`` need, packed: its .tar.gz."""
    env = root / "env"
    venv.create(env, with_pip=False, symlinks=True)
    python = env / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                           "'purelib'))"], capture_output=True, text=True, check=True)
    site_packages = Path(site.stdout.strip())
    for name in sorted(worker_distributions(modules)):
        _copy_distribution(name, site_packages)
    archive = root / "environment.tar.gz"
    subprocess.run([str(Path(sys.executable).parent / "venv-pack"), "-p", str(env), "-o",
                    str(archive), "--compress-level", "1", "-q"], check=True,
                   capture_output=True)
    return archive
