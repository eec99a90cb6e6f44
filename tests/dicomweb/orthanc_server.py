"""A real Orthanc with its DICOMweb plugin, for the tests: Debian's ``orthanc`` and
``orthanc-dicomweb`` packages (``make test`` installs them when missing, as root).

Each test session starts its own server on a free loopback port, with its storage in a
temporary folder and a configuration file written here: basic auth on, remote access and
the DICOM network port off, so nothing outside the machine can reach it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ORTHANC = os.environ.get("ORTHANC", shutil.which("Orthanc") or "/usr/sbin/Orthanc")
PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc/plugins",
               "/usr/local/share/orthanc/plugins")
USER, PASSWORD = "braintumor", "test-only-password"


@dataclass(frozen=True)
class Orthanc:
    base: str  # REST root, http://127.0.0.1:PORT
    url: str  # DICOMweb root
    user: str = USER
    password: str = PASSWORD

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    def clear(self) -> None:
        """Delete every study (REST API), for tests that look at the whole server."""
        for study in requests.get(f"{self.base}/studies", auth=self.auth, timeout=10).json():
            requests.delete(f"{self.base}/studies/{study}", auth=self.auth, timeout=10)


def _plugin() -> str | None:
    for folder in PLUGIN_DIRS:
        path = Path(folder) / "libOrthancDicomWeb.so"
        if path.is_file():
            return str(path)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    plugin = _plugin()
    if not (Path(ORTHANC).is_file() and plugin):
        message = ("Orthanc with its DICOMweb plugin is not installed (Debian: apt-get "
                   "install orthanc orthanc-dicomweb; `make test` does it as root)")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("orthanc")
    port = _free_port()
    config = {
        "Name": "braintumor-tests", "HttpPort": port, "DicomServerEnabled": False,
        "StorageDirectory": str(folder / "storage"), "IndexDirectory": str(folder / "storage"),
        "RemoteAccessAllowed": False, "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD}, "Plugins": [plugin],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "HttpCompressionEnabled": False, "StableAge": 1, "ConcurrentJobs": 1,
    }
    (folder / "orthanc.json").write_text(json.dumps(config, indent=1))
    log = (folder / "orthanc.log").open("wb")
    process = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], cwd=folder,
                               stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    server = Orthanc(base=base, url=f"{base}/dicom-web")
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"Orthanc exited at start: {(folder / 'orthanc.log').read_text()}")
            try:
                if requests.get(f"{base}/system", auth=server.auth, timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("Orthanc did not answer within 30 s")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
