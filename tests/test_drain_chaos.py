"""Chaos for the offline history: writers keep writing with the change log on while the drainer
is killed with -9 and restarted, and so is Redis (AOF, ``appendfsync always``). Afterwards the
offline history holds every version of every feature exactly once: each acknowledged write,
and the versions numbered 1, 2, 3, ... without a gap or a repeat, though Redis keeps only the
last three of each feature.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pyarrow.dataset as ds
import pytest

from fsredis import FeatureStore, FeatureStoreConfig
from tests.conftest import start_server
from tests.test_chaos import writer

ENTITIES = tuple(f"c:{i}" for i in range(6))
RUN_SECONDS = float(os.environ.get("FSREDIS_CHAOS_SECONDS", "6"))


def drainer(url: str, out: str, *more: str) -> subprocess.Popen[bytes]:
    """``fsredis drain`` in a process of its own (its output appended to <out>.log)."""
    with open(out + ".log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "fsredis", "drain", "--redis-url", url, "--namespace", "drainchaos", "--out", out,
             "--settle", "0", "--max-entries", "40", "--interval", "0.05", *more],
            stdout=log, stderr=subprocess.STDOUT,
        )


@pytest.mark.parametrize("kind", ["valkey", "redis"])
def test_the_offline_history_is_every_version_once_across_kills(kind, tmp_path) -> None:
    server = start_server(kind, data_dir=tmp_path / "redis", persistence=True, extra_args=("--appendfsync", "always"))
    config = FeatureStoreConfig(redis_url=server.url, namespace="drainchaos", change_log=True, max_versions=3,
                                default_ttl=None, read_timeout=1.0, write_timeout=1.0, retries=2, socket_connect_timeout=0.5)
    out = str(tmp_path / "offline")
    acknowledged: list[tuple[str, str, str]] = []
    stop = threading.Event()
    failures: list[BaseException] = []

    threads = [threading.Thread(target=writer, args=(config, ENTITIES, n, stop, acknowledged, failures), daemon=True)
               for n in range(2)]
    process = drainer(server.url, out)
    events: Counter[str] = Counter()
    rng = random.Random(7)
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + RUN_SECONDS
        while time.monotonic() < deadline or events["kill -9 drainer"] < 3 or events["kill -9 redis"] < 2:
            time.sleep(rng.uniform(0.05, 0.4))
            if process.poll() is not None:  # it gave up while Redis was down: a supervisor restarts it
                process = drainer(server.url, out)
            if rng.random() < 0.7:
                process.kill()
                process.wait(10)
                events["kill -9 drainer"] += 1
                process = drainer(server.url, out)
            else:
                os.kill(server.pid, signal.SIGKILL)
                server._process.wait(5)  # noqa: SLF001 - restarted on the same port and data
                server.start()
                events["kill -9 redis"] += 1
        stop.set()
        for thread in threads:
            thread.join(30)
        assert not failures, failures
        process.kill()
        process.wait(10)
        final = drainer(server.url, out, "--once")
        assert final.wait(120) == 0, open(out + ".log").read()[-3000:]

        frame = ds.dataset(out, format="parquet", partitioning="hive").to_table().to_pandas()
        with FeatureStore(config) as store:
            for entity in ENTITIES:
                rows = frame[frame.entity == entity]
                versions = sorted(rows.version)
                top = store.get_feature_lineage(entity, "x")["current_version"]
                assert versions == list(range(1, top + 1)), f"{entity}: versions offline are not 1..{top}"
                offline = dict(zip(rows.write_id, rows.value))
                mine = [(value, write_id) for e, value, write_id in acknowledged if e == entity]
                lost = [value for value, write_id in mine if write_id not in offline]
                assert not lost, f"{len(lost)} acknowledged writes missing offline on {entity}: {lost[:5]}"
                assert all(offline[w].endswith(v.encode()) for v, w in mine)  # the value it wrote
                # The versions Redis still keeps are the same offline.
                for version in store.get_feature_lineage(entity, "x")["versions"]:
                    assert rows[rows.version == version["version"]].write_id.tolist() == [version["write_id"]]
        assert len(acknowledged) > 50
        print(f"\ndrain chaos {kind}: {len(acknowledged)} acknowledged writes, {len(frame)} rows offline, {dict(events)}")
    finally:
        stop.set()
        process.kill()
        server.stop()
