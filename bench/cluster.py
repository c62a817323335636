"""Redis Cluster and replication figures, each beside its raw redis-py floor in the same run.

    python bench/cluster.py            # starts its own local Valkey servers, prints a table

* batches over a local 3-primary cluster: ``get_features_batch`` and ``write_features_batch`` of
  1,000 entities x 10 features against a redis-py ``RedisCluster`` pipeline of ``HMGET`` / ``HSET``
  on the same data (the floor);
* the same batches on 1 primary and on 3 (one client process each time), with the CPU seconds the
  client and the servers used, to say what saturates on this machine;
* ``min_replicas=1`` (``WAIT 1`` after each write) against ``min_replicas=0`` on a primary with one
  replica: single writes per second and batched features per second.

Rounds alternate floor and fsredis (and the two settings), so drift on a shared machine hits
both; each figure is the median of its rounds.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.cluster import RedisCluster

from fsredis import FeatureStore, FeatureStoreConfig
from fsredis.embedded import EmbeddedServer, default_binary, free_port
from fsredis.keys import entity_keys

NAMES = [f"f{i}" for i in range(10)]
IDS = [f"e{i}" for i in range(1000)]


def start_cluster(primaries: int) -> list[EmbeddedServer]:
    """``primaries`` cluster nodes on loopback, every slot covered (no replicas)."""
    nodes = []
    for _ in range(primaries):
        args = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", str(free_port()))
        nodes.append(EmbeddedServer(persistence=False, extra_args=args).start())
    cli = str(Path(default_binary()).with_name("valkey-cli"))
    if primaries >= 3:
        subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes], "--cluster-replicas", "0",
                        "--cluster-yes"], check=True, capture_output=True, timeout=60)
    else:
        with nodes[0].client() as client:
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    for node in nodes:
        with node.client() as client:
            while client.cluster("info")["cluster_state"] != "ok":
                time.sleep(0.05)
    return nodes


def median_ms(fn: Callable[[], Any], rounds: int) -> float:
    spent = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent) * 1000


def server_cpu(nodes: list[EmbeddedServer]) -> float:
    total = 0.0
    for node in nodes:
        with node.client() as client:
            cpu = client.info("cpu")
            total += cpu["used_cpu_user"] + cpu["used_cpu_sys"]
    return total


def batches(primaries: int, reps: int = 6) -> dict[str, float]:
    nodes = start_cluster(primaries)
    try:
        url = nodes[0].url
        store = FeatureStore(FeatureStoreConfig(redis_url=url, cluster=True, namespace="bench", enable_monitoring=False))
        raw = RedisCluster.from_url(url)
        rows = {e: {n: float(i) for i, n in enumerate(NAMES)} for e in IDS}
        store.write_features_batch(rows)
        keys = [entity_keys("bench", e).entity for e in IDS]
        floor_values = {n: b"\xcb" + bytes(8) for n in NAMES}

        def raw_get() -> None:
            pipe = raw.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, NAMES)
            pipe.execute()

        def raw_set() -> None:
            pipe = raw.pipeline(transaction=False)
            for key in keys:
                pipe.hset(key + "-floor", mapping=floor_values)
            pipe.execute()

        found: dict[str, list[float]] = {k: [] for k in ("floor get", "get", "floor write", "write")}
        client_before, server_before, started = resource.getrusage(resource.RUSAGE_SELF), server_cpu(nodes), time.perf_counter()
        for _ in range(reps):
            found["floor get"].append(median_ms(raw_get, 3))
            found["get"].append(median_ms(lambda: store.get_features_batch(IDS, NAMES), 3))
            found["floor write"].append(median_ms(raw_set, 3))
            found["write"].append(median_ms(lambda: store.write_features_batch(rows), 3))
        wall = time.perf_counter() - started
        client_after = resource.getrusage(resource.RUSAGE_SELF)
        out = {k: statistics.median(v) for k, v in found.items()}
        out["client_cpu_share"] = (client_after.ru_utime + client_after.ru_stime - client_before.ru_utime - client_before.ru_stime) / wall
        out["server_cpu_share"] = (server_cpu(nodes) - server_before) / wall
        store.close()
        raw.close()
        return out
    finally:
        for node in nodes:
            node.stop()


def replication(rounds: int = 8) -> dict[str, float]:
    primary = EmbeddedServer(persistence=False).start()
    replica = EmbeddedServer(persistence=False, extra_args=("--replicaof", "127.0.0.1", str(primary.port))).start()
    try:
        with primary.client() as client:
            while client.info("replication")["connected_slaves"] < 1 or client.wait(1, 100) < 1:
                time.sleep(0.05)
        stores = {n: FeatureStore(FeatureStoreConfig(redis_url=primary.url, namespace=f"r{n}", enable_monitoring=False,
                                                     min_replicas=n)) for n in (0, 1)}
        values = {n: float(i) for i, n in enumerate(NAMES)}
        rows = {f"b{i}": values for i in range(100)}
        found: dict[str, list[float]] = {k: [] for k in ("single 0", "single 1", "batch 0", "batch 1")}
        for _ in range(rounds):
            for n, store in stores.items():
                ms = median_ms(lambda: store.write_features("e1", values), 200)
                found[f"single {n}"].append(1000 / ms)
                ms = median_ms(lambda: store.write_features_batch(rows), 10)
                found[f"batch {n}"].append(1000 * 1000 / ms)
        for store in stores.values():
            store.close()
        return {k: statistics.median(v) for k, v in found.items()}
    finally:
        replica.stop()
        primary.stop()


def main() -> None:
    print("batches of 1,000 entities x 10 features, median ms (ratio to the redis-py cluster pipeline)")
    for primaries in (3, 1):
        r = batches(primaries)
        print(f"  {primaries} primar{'ies' if primaries > 1 else 'y'}: get {r['get']:.1f} vs {r['floor get']:.1f} "
              f"({r['get'] / r['floor get']:.2f}x), write {r['write']:.1f} vs {r['floor write']:.1f} "
              f"({r['write'] / r['floor write']:.2f}x); CPU: client {r['client_cpu_share']:.0%} of a core, "
              f"servers {r['server_cpu_share']:.0%}")
    r = replication()
    print("min_replicas on a primary with one replica (WAIT 1 after the writes of each connection)")
    print(f"  single writes/s: {r['single 0']:,.0f} without, {r['single 1']:,.0f} with ({r['single 1'] / r['single 0']:.2f}x)")
    print(f"  batched features/s: {r['batch 0']:,.0f} without, {r['batch 1']:,.0f} with ({r['batch 1'] / r['batch 0']:.2f}x)")


if __name__ == "__main__":
    main()
