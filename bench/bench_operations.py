"""What running as a service costs, and where overload starts; prints figures, asserts nothing.

1. **Cost of the operational features**: two real servers with the default model, one with
   everything off (no metrics, text logs at WARNING, no keys, no rate limit, no admission,
   no audit trail) and one with everything on (metrics, JSON request logs, a key checked
   on every request, a rate limit too high to refuse, MAX_PENDING, an audit trail). The
   same upload goes to each in alternating rounds (so background load hits both alike);
   the p50 difference is the features' cost per classify.
2. **The overload knee**: two servers (one worker, THREADS=4 each), MAX_PENDING=0 (no
   refusal: latency grows with the queue) and MAX_PENDING set (the excess is refused with
   503 at once), under 1, 2, 4 ... closed-loop clients for a few seconds each, both
   settings at each level in turn (so background load hits both alike).

    python bench/bench_operations.py [--rounds 6] [--per-round 20] [--seconds 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, free_port, percentile, sample_upload

OFF = {"METRICS_ENABLED": "false", "LOG_FORMAT": "text", "LOG_LEVEL": "WARNING",
       "MAX_PENDING": "0"}


def start(model: Path, settings: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update(MODEL_PATH=str(model), FLASK_PORT=str(port), FLASK_HOST="127.0.0.1",
               WORKERS="1", THREADS="4", **settings)
    with open(log, "w") as handle:
        server = subprocess.Popen([str(BIN), "serve"], env=env, stdout=handle,
                                  stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/readyz", timeout=10).status_code == 200:
                return server, url
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"server did not become ready: see {log}")


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=60)


def post(session: requests.Session, url: str, upload: tuple[str, bytes],
         headers: dict[str, str]) -> tuple[int, float]:
    started = time.perf_counter()
    response = session.post(f"{url}/api/classify", files={"file": upload}, headers=headers,
                            timeout=120)
    return response.status_code, (time.perf_counter() - started) * 1000


def feature_cost(model: Path, upload: tuple[str, bytes], rounds: int, per_round: int,
                 folder: Path) -> None:
    from braintumor.api.security import add_key

    keys = folder / "keys.txt"
    key = add_key(keys, "bench")
    on = {"LOG_FORMAT": "json", "API_KEYS_FILE": str(keys), "RATE_LIMIT": "6000/minute",
          "MAX_PENDING": "8", "AUDIT_LOG": str(folder / "audit.jsonl")}
    servers = {"off": start(model, OFF, folder / "off.log"),
               "on": start(model, on, folder / "on.log")}
    headers = {"off": {}, "on": {"Authorization": f"Bearer {key}"}}
    times: dict[str, list[float]] = {"off": [], "on": []}
    try:
        sessions = {name: requests.Session() for name in servers}
        for name, (_, url) in servers.items():  # warm both
            for _ in range(5):
                post(sessions[name], url, upload, headers[name])
        for _ in range(rounds):
            for name, (_, url) in servers.items():
                for _ in range(per_round):
                    status, ms = post(sessions[name], url, upload, headers[name])
                    assert status == 200, status
                    times[name].append(ms)
    finally:
        for server, _ in servers.values():
            stop(server)
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    print(f"features off: p50 {off:.1f} ms, p95 {percentile(times['off'], 95):.1f} ms; "
          f"on: p50 {on:.1f} ms, p95 {percentile(times['on'], 95):.1f} ms; "
          f"cost p50 {on - off:+.2f} ms ({len(times['on'])} requests each, alternating)")


def closed_loop(url: str, upload: tuple[str, bytes], clients: int,
                seconds: float) -> tuple[float, float, float, float]:
    """Each client sends, waits for the answer, sends again. -> rps answered, p50, p95, 503
    share."""
    deadline = time.perf_counter() + seconds

    def client(_: int) -> list[tuple[int, float]]:
        session, done = requests.Session(), []
        while time.perf_counter() < deadline:
            status, ms = post(session, url, upload, {})
            done.append((status, ms))
            if status == 503:  # a well-behaved client waits as long as Retry-After says
                time.sleep(1.0)
        return done

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [r for batch in pool.map(client, range(clients)) for r in batch]
    elapsed = time.perf_counter() - started
    answered = [ms for status, ms in results if status == 200]
    busy = sum(1 for status, _ in results if status == 503)
    return (len(answered) / elapsed, statistics.median(answered) if answered else 0.0,
            percentile(answered, 95) if answered else 0.0, busy / max(1, len(results)))


def knee(model: Path, upload: tuple[str, bytes], seconds: float, levels: list[int],
         max_pending: int, folder: Path) -> None:
    print(f"{'clients':>7} | {'MAX_PENDING=0: rps':>18} {'p50':>7} {'p95':>7} | "
          f"{f'MAX_PENDING={max_pending}: rps':>18} {'p50':>7} {'p95':>7} {'503':>5}")
    rows: dict[int, list] = {n: [] for n in levels}
    servers = [start(model, {**OFF, "MAX_PENDING": str(pending)}, folder / f"knee-{pending}.log")
               for pending in (0, max_pending)]
    try:
        for _, url in servers:
            for _ in range(5):
                post(requests.Session(), url, upload, {})
        for clients in levels:  # both settings at each level, one after the other
            for _, url in servers:
                rows[clients].append(closed_loop(url, upload, clients, seconds))
    finally:
        for server, _ in servers:
            stop(server)
    for clients in levels:
        (r0, p50_0, p95_0, _), (r1, p50_1, p95_1, busy) = rows[clients]
        print(f"{clients:>7} | {r0:18.1f} {p50_0:7.0f} {p95_0:7.0f} | {r1:18.1f} {p50_1:7.0f} "
              f"{p95_1:7.0f} {busy:5.0%}")
    print("(closed loop: each client sends again as soon as it has its answer, or 1 s after a "
          "503 as Retry-After says; rps counts 200s; p50/p95 over the 200s, in ms; 503 = "
          "share of answers that were SERVER_BUSY)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--per-round", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--levels", default="1,2,4,8,16,32")
    parser.add_argument("--max-pending", type=int, default=8)
    parser.add_argument("--skip", default="", help="cost or knee")
    args = parser.parse_args()
    from braintumor.config import DEFAULT_MODEL_PATH

    upload = sample_upload()
    print(f"upload: {upload[0]} ({len(upload[1])} bytes); {os.cpu_count()} CPUs; one worker, "
          "THREADS=4")
    with tempfile.TemporaryDirectory() as tmp:
        if "cost" not in args.skip:
            feature_cost(DEFAULT_MODEL_PATH, upload, args.rounds, args.per_round, Path(tmp))
        if "knee" not in args.skip:
            knee(DEFAULT_MODEL_PATH, upload, args.seconds,
                 [int(n) for n in args.levels.split(",")], args.max_pending, Path(tmp))


if __name__ == "__main__":
    main()
