"""Wall time of ``fsredis get ENTITY`` from process start to answer, beside its floors.

Runs the installed entry point itself (``<prefix>/bin/fsredis``, not a version manager's shim),
with bytecode caches written as an installed package has them, against a private Valkey holding
one entity of 10 features. Prints the median and best of ``--runs`` runs for:

* ``python -c pass``: the interpreter alone;
* ``python -c "import redis"``: the interpreter and redis-py (whose package imports its asyncio);
* ``fsredis get``: the whole command, connection and answer included.

    python bench/cli.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from fsredis import FeatureStore, FeatureStoreConfig
from fsredis.embedded import EmbeddedServer


def timed(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    took = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        took.append((time.perf_counter() - started) * 1000.0)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    entry = Path(sysconfig.get_path("scripts")) / "fsredis"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE" and not k.startswith("FSREDIS_")}
    server = EmbeddedServer().start()
    try:
        with FeatureStore(FeatureStoreConfig(redis_url=server.url)) as fs:
            fs.write_features("product:1", {f"f{i}": float(i) for i in range(9)} | {"name": "x"})
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import redis'": [sys.executable, "-c", "import redis"],
            "python -c 'import numpy'": [sys.executable, "-c", "import numpy"],
            "fsredis get product:1": [str(entry), "get", "product:1", "--redis-url", server.url],
        }
        for argv in cases.values():  # warm: bytecode caches written, files in the page cache
            timed(argv, env, 2)
        print(f"{'command':28} {'median ms':>10} {'best ms':>8}")
        for name, argv in cases.items():
            took = timed(argv, env, args.runs)
            print(f"{name:28} {statistics.median(took):10.0f} {min(took):8.0f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
