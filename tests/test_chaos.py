"""Chaos: writers keep writing while the server is frozen (SIGSTOP) and resumed, and killed with
-9 and restarted under ``appendfsync always``. Afterwards, no acknowledged write is lost, none is
applied twice, and every feature's versions run 1, 2, 3, ... without a gap or a repeat.

A writer retries a write that failed (StoreUnavailable) with the same write id, as a service
would; the Lua library applies a write id at most once per entity, so a retry of a write that did
land (its reply lost) is not applied again.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections import Counter

import pytest

from fsredis import FeatureStore, FeatureStoreConfig, StoreUnavailable
from tests.conftest import start_server

WRITERS = 4
ENTITIES = tuple(f"c:{i}" for i in range(8))
WRITES_PER_WRITER = 16_000
"""Each entity then gets at most 8,000 writes, all kept (max_versions 10,000), so every one is checked."""
RUN_SECONDS = float(os.environ.get("FSREDIS_CHAOS_SECONDS", "6"))


def writer(config: FeatureStoreConfig, entities: tuple[str, ...], number: int, stop: threading.Event,
           acknowledged: list[tuple[str, str, str]], failures: list[BaseException], most: int | None = None) -> None:
    """Write ``x = "<number>-<seq>"`` to the entities in turn until ``stop`` (or ``most`` writes),
    each write sent again with its write id until it lands, as a service's retry loop would;
    every acknowledged (entity, value, write id) goes to ``acknowledged``, an exception to
    ``failures``."""
    try:
        with FeatureStore(config) as store:
            seq = 0
            while not stop.is_set() and (most is None or seq < most):
                entity, value, write_id = entities[seq % len(entities)], f"{number}-{seq}", uuid.uuid4().hex
                for _ in range(100):  # the same write, until it lands (a service's retry loop)
                    try:
                        store.write_features(entity, {"x": value}, write_id=write_id)
                    except StoreUnavailable:
                        time.sleep(0.05)
                        continue
                    acknowledged.append((entity, value, write_id))
                    break
                seq += 1
    except BaseException as exc:  # noqa: BLE001 - reported by the test
        failures.append(exc)


@pytest.mark.parametrize("kind", ["valkey", "redis"])
def test_no_acknowledged_write_is_lost_or_doubled(kind, tmp_path) -> None:
    server = start_server(kind, data_dir=tmp_path, persistence=True, extra_args=("--appendfsync", "always"))
    config = FeatureStoreConfig(redis_url=server.url, namespace="chaos", max_versions=10_000, default_ttl=None,
                                read_timeout=1.0, write_timeout=1.0, retries=2, socket_connect_timeout=0.5)
    acknowledged: list[tuple[str, str, str]] = []  # (entity, value, write id)
    stop = threading.Event()
    failures: list[BaseException] = []

    threads = [threading.Thread(target=writer, args=(config, ENTITIES, n, stop, acknowledged, failures, WRITES_PER_WRITER),
                                daemon=True) for n in range(WRITERS)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + RUN_SECONDS
        events = Counter()
        while time.monotonic() < deadline:
            time.sleep(0.4)
            os.kill(server.pid, signal.SIGSTOP)  # a long fork, a VM pause
            time.sleep(0.6)
            os.kill(server.pid, signal.SIGCONT)
            events["freeze"] += 1
            time.sleep(0.4)
            os.kill(server.pid, signal.SIGKILL)  # a crash; the AOF keeps what was acknowledged
            server._process.wait(5)  # noqa: SLF001 - the launcher restarts on the same port
            server.start()
            events["kill -9"] += 1
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(30)
        assert not failures, failures
        assert all(not t.is_alive() for t in threads)

        with FeatureStore(config) as store:
            for entity in ENTITIES:
                lineage = store.get_feature_lineage(entity, "x", limit=10_000)
                versions = [v["version"] for v in lineage["versions"]]
                assert versions == list(range(lineage["current_version"], 0, -1))  # no gap, no repeat
                stored = Counter(v["value"] for v in lineage["versions"])
                ids = Counter(v["write_id"] for v in lineage["versions"])
                assert max(stored.values()) == 1 and max(ids.values()) == 1  # nothing applied twice
                mine = [(value, write_id) for e, value, write_id in acknowledged if e == entity]
                lost = [value for value, _ in mine if value not in stored]
                assert not lost, f"{len(lost)} acknowledged writes lost on {entity}: {lost[:5]}"
        print(f"\nchaos {kind}: {len(acknowledged)} acknowledged writes, {dict(events)}, 0 lost, 0 doubled")
        assert events["kill -9"] >= 2 and len(acknowledged) > 20
    finally:
        stop.set()
        if server.pid:
            os.kill(server.pid, signal.SIGCONT)
        server.stop()
