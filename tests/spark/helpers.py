"""Small helpers shared by the Spark tests."""

from __future__ import annotations

import site
import subprocess
import venv
from pathlib import Path

from conftest import encode, scan_like

#: Settings of the shared test session: two cores, small memory.
SPARK_SETTINGS = {"SPARK_MASTER": "local[2]", "SPARK_DRIVER_MEMORY": "1g",
                  "SPARK_EXECUTOR_MEMORY": "1g", "SPARK_APP_NAME": "braintumor-tests"}

#: (relative path, encoder) of the valid images of the clean tree.
CLEAN_IMAGES = {
    "glioma/g1.png": lambda: encode(scan_like((96, 96), seed=1)),
    "glioma/g2.jpg": lambda: encode(scan_like((120, 90), seed=2), "JPEG", quality=90),
    "glioma/nested/g3.PNG": lambda: encode(scan_like((64, 80), seed=3)),
    "meningioma/m1.png": lambda: encode(scan_like((100, 100), seed=4).convert("RGB")),
    "meningioma/m2.bmp": lambda: encode(scan_like((70, 70), seed=5), "BMP"),
    "notumor/n1.jpeg": lambda: encode(scan_like((96, 96), seed=6).convert("RGB"), "JPEG"),
    "notumor/n2.webp": lambda: encode(scan_like((96, 96), seed=7), "WEBP"),
    "Pituitary/p1.gif": lambda: encode(scan_like((80, 96), seed=8), "GIF"),
    "Pituitary/p2.png": lambda: encode(scan_like((96, 96), seed=9).convert("RGBA")),
}


def relative(uri: str, root: Path) -> str:
    """``file:/tmp/x/Testing/glioma/a.png`` -> ``glioma/a.png`` (relative to ``root``)."""
    path = uri.removeprefix("file://").removeprefix("file:")
    return str(Path(path).relative_to(root.resolve()))


def python_without_package(root: Path) -> Path:
    """A Python that imports this venv's dependencies, but not braintumor."""
    venv.create(root, with_pip=False, symlinks=True)
    python = root / "bin" / "python"
    found = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path"
                            "('purelib'))"], capture_output=True, text=True, check=True)
    Path(found.stdout.strip(), "dependencies.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n")
    return python
