"""The sidecar with 1 and N workers: GET /v1/features/{entity} (10 scalars) under the same load.

    python bench/workers.py [--workers 1 2] [--seconds 5] [--connections 16]

Starts an embedded Valkey, writes one entity of 10 floats, then for each worker count runs
``fsredis serve --workers W`` against it and ``bench/http_load.py`` (its own process) for
``--seconds``. Prints requests/s, p50/p99 and the CPU seconds the sidecar's processes (supervisor
and workers) and Valkey used during the load, so the figures say how the cores were split: the load
generator shares this machine. First, under the same load, the floors (bench/bare_http.py): a
bare aiohttp server answering the same body from a constant, and one that reads it with a
redis-py asyncio ``HMGET``; what one process of the sidecar can do is bounded by them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from fsredis import FeatureStore, FeatureStoreConfig
from fsredis.embedded import EmbeddedServer, free_port

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and its descendants, in seconds."""
    total = 0.0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICKS
            stack += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except FileNotFoundError:
            continue
    return total


def measure(label: str, argv: list[str], url: str, args: argparse.Namespace, valkey: EmbeddedServer,
            env: dict[str, str]) -> None:
    """Start ``argv`` (a server on ``url``), load it, print requests/s, latency and CPU split."""
    server = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if urllib.request.urlopen(url + "/readyz", timeout=1).status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        time.sleep(1.0)  # every worker up
        server_cpu, valkey_cpu = cpu_seconds(server.pid), cpu_seconds(valkey.pid or 0)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        load = subprocess.run([sys.executable, str(HERE / "http_load.py"), url + "/v1/features/product:1",
                               "--seconds", str(args.seconds), "--connections", str(args.connections)],
                              capture_output=True, text=True, check=True)
        server_cpu, valkey_cpu = cpu_seconds(server.pid) - server_cpu, cpu_seconds(valkey.pid or 0) - valkey_cpu
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        result = json.loads(load.stdout.strip().splitlines()[-1])
        print(f"{label}: {result['requests_per_s']:,.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
              f"p99 {result['p99_ms']:.2f} ms, errors {result['errors']}; CPU over {args.seconds:g} s: server "
              f"{server_cpu:.2f} s ({result['requests'] / max(server_cpu, 1e-9):,.0f} requests per CPU-second), "
              f"Valkey {valkey_cpu:.2f} s, load generator {load_cpu:.2f} s ({os.cpu_count()} cores)", flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--no-floors", action="store_true", help="skip the bare aiohttp floors")
    args = parser.parse_args()
    valkey = EmbeddedServer(persistence=False).start()
    env = {**os.environ, "FSREDIS_NAMESPACE": "bench"}
    try:
        with FeatureStore(FeatureStoreConfig(redis_url=valkey.url, namespace="bench", default_ttl=None)) as fs:
            fs.write_features("product:1", {f"f{i}": float(i) for i in range(10)})
        with valkey.client() as client:
            client.hset("bare:product:1", mapping={f"f{i}": float(i) for i in range(10)})
        floors = [] if args.no_floors else [("static", "floor: bare aiohttp, constant body"),
                                            ("hmget", "floor: bare aiohttp + redis-py asyncio HMGET")]
        for kind, label in floors:
            port = free_port()
            measure(label, [sys.executable, str(HERE / "bare_http.py"), str(port), valkey.url, kind],
                    f"http://127.0.0.1:{port}", args, valkey, env)
        for workers in args.workers:
            port = free_port()
            measure(f"fsredis serve --workers {workers}",
                    [sys.executable, "-m", "fsredis", "serve", "--redis-url", valkey.url, "--port", str(port),
                     "--workers", str(workers)], f"http://127.0.0.1:{port}", args, valkey, env)
    finally:
        valkey.stop()


if __name__ == "__main__":
    main()
