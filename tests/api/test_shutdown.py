"""SIGTERM on the real server: /readyz 503 while draining, the request in flight finishes,
the process exits within GRACEFUL_TIMEOUT."""

from __future__ import annotations

import signal
import socket
import time
from urllib.parse import urlparse

import requests

from conftest import encode, scan_like
from live_server import start_server


def _multipart(data: bytes) -> tuple[bytes, str]:
    boundary = "----braintumortest"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"scan.png\"\r\nContent-Type: image/png\r\n\r\n").encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_sigterm_drains_then_finishes_the_request_in_flight(tiny_model_path, tmp_path):
    server = start_server(tiny_model_path, tmp_path / "server.log", WORKERS="1",
                          DRAIN_SECONDS="3", GRACEFUL_TIMEOUT="20")
    url = urlparse(server.url)
    body, content_type = _multipart(encode(scan_like()))
    in_flight = socket.create_connection((url.hostname, url.port), timeout=30)
    try:
        head = (f"POST /api/classify HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode()
        in_flight.sendall(head + body[:100])  # the server is now reading this request
        time.sleep(0.5)
        started = time.time()
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        draining = requests.get(f"{server.url}/readyz", timeout=5)
        assert draining.status_code == 503
        assert draining.json()["status"] == "draining"
        assert requests.get(f"{server.url}/livez", timeout=5).status_code == 200
        time.sleep(3.5)  # past the drain: no new connections, the old one still served
        in_flight.sendall(body[100:])
        answer = b""
        while chunk := in_flight.recv(65536):
            answer += chunk
    finally:
        in_flight.close()
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert b'"success":true' in answer.replace(b" ", b"")
    assert server.process.wait(timeout=30) == 0
    assert time.time() - started < 20
