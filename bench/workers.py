"""The sidecar with 1 and N workers: GET /v1/features/{entity} (10 scalars) under the same load.

    python bench/workers.py [--workers 1 2] [--seconds 5] [--connections 16]

Starts an embedded Valkey, writes one entity of 10 floats, then for each worker count runs
``fsredis serve --workers W`` against it and ``bench/http_load.py`` (its own process) for
``--seconds``. Prints requests/s, p50/p99 and the CPU seconds the sidecar's processes (supervisor
and workers) and Valkey used during the load, so the figures say how the cores were split: the load
generator shares this machine.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    valkey = EmbeddedServer(persistence=False).start()
    try:
        with FeatureStore(FeatureStoreConfig(redis_url=valkey.url, namespace="bench", default_ttl=None)) as fs:
            fs.write_features("product:1", {f"f{i}": float(i) for i in range(10)})
        for workers in args.workers:
            port = free_port()
            env = {**os.environ, "FSREDIS_NAMESPACE": "bench"}
            sidecar = subprocess.Popen([sys.executable, "-m", "fsredis", "serve", "--redis-url", valkey.url, "--port", str(port),
                                        "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                url = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        if urllib.request.urlopen(url + "/readyz", timeout=1).status == 200:
                            break
                    except OSError:
                        time.sleep(0.2)
                time.sleep(1.0)  # every worker up
                sidecar_cpu, valkey_cpu = cpu_seconds(sidecar.pid), cpu_seconds(valkey.pid or 0)
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                load = subprocess.run([sys.executable, str(HERE / "http_load.py"), url + "/v1/features/product:1",
                                       "--seconds", str(args.seconds), "--connections", str(args.connections)],
                                      capture_output=True, text=True, check=True)
                sidecar_cpu, valkey_cpu = cpu_seconds(sidecar.pid) - sidecar_cpu, cpu_seconds(valkey.pid or 0) - valkey_cpu
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                load_cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                result = json.loads(load.stdout.strip().splitlines()[-1])
                print(f"workers {workers}: {result['requests_per_s']:,.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
                      f"p99 {result['p99_ms']:.2f} ms, errors {result['errors']}; CPU over {args.seconds:g} s: sidecar "
                      f"{sidecar_cpu:.2f} s ({result['requests'] / max(sidecar_cpu, 1e-9):,.0f} requests per CPU-second), "
                      f"Valkey {valkey_cpu:.2f} s, load generator {load_cpu:.2f} s ({os.cpu_count()} cores)", flush=True)
            finally:
                sidecar.send_signal(signal.SIGTERM)
                sidecar.wait(60)
    finally:
        valkey.stop()


if __name__ == "__main__":
    main()
