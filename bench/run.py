"""fsredis benchmarks: each operation beside the raw redis-py floor on the same data, same run.

    python bench/run.py                     # embedded Valkey, both transports
    python bench/run.py --redis-url URL     # a server of yours (uses namespaces 'bench', 'benchmem')
    python bench/run.py --redis-url URL --own-server   # ... that serves only this run (FLUSHALL allowed)
    python bench/run.py --quick             # fewer iterations

Floors are what a hand-written client would send for the same data (storage format 2: one hash
per entity, ``<ns>:[<type>:]{<id>}:e``): HMGET of the entity hash, HGET of the embedding field, a
pipeline of HMGETs, HSET (a write floor encodes its values with fsredis.codec inside its timing, as
fsredis does). Rounds alternate floor and fsredis so drift on a shared machine hits both. Beside
each client-side figure is the server's own time per operation, from ``INFO commandstats`` deltas
around each side's rounds: a Lua call's nested commands are inside its own time, so a side that
ran Lua counts only its FCALL/EVALSHA time. Prints a table (p50/p95/p99 in microseconds, ratio of
p50s, server us) and writes bench/results/latest.json.

The memory section writes 2,000 entities of 10 mixed scalars and a 128-d embedding with the
default config and compares used_memory deltas and MEMORY USAGE with a Feast-like plain hash. It
starts from ``FLUSHALL SYNC`` on a server of the bench's own (the embedded one, or
``--own-server``); on another server it deletes only its own keys and waits for lazy free.
Targets: DESIGN.md section 6.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any
from collections.abc import Awaitable, Callable

import numpy as np
import redis
import redis.asyncio

from fsredis import AsyncFeatureStore, FeatureStore, FeatureStoreConfig, __version__
from fsredis.codec import encode_value
from fsredis.embedded import EmbeddedServer, free_port
from fsredis.keys import entity_keys
from fsredis.library import bundled

RESULTS = Path(__file__).resolve().parent / "results"
SCALARS = [f"f{i}" for i in range(10)]
HEAD = 24  # bytes before each current value in the entity hash (fsredis.codec.HEAD)
EMBEDDING_OFFSET = HEAD + 4  # ... then the 4-byte embedding tag

# -- server time per operation (INFO commandstats) ------------------------------------------------

LUA_COMMANDS = frozenset({"fcall", "fcall_ro", "evalsha", "evalsha_ro", "eval", "eval_ro"})
NOT_COUNTED = frozenset({"info", "hello", "auth", "select", "ping", "client|setinfo", "client|setname",
                         "config|resetstat", "config|get"})


class ServerTime:
    """Snapshots of ``INFO commandstats`` (calls, usec per command); deltas need no RESETSTAT."""

    def __init__(self, raw: redis.Redis) -> None:
        self.raw = raw

    def snapshot(self) -> dict[str, tuple[int, int]]:
        return {name[len("cmdstat_"):]: (int(v["calls"]), int(v["usec"]))
                for name, v in self.raw.info("commandstats").items() if name.startswith("cmdstat_")}

    @staticmethod
    def delta(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]],
              into: dict[str, list[int]] | None = None) -> dict[str, list[int]]:
        """Command -> [calls, usec] run between two snapshots, added to ``into``."""
        into = {} if into is None else into
        for name, (calls, usec) in after.items():
            c0, u0 = before.get(name, (0, 0))
            if name not in NOT_COUNTED and calls > c0:
                total = into.setdefault(name, [0, 0])
                total[0] += calls - c0
                total[1] += usec - u0
        return into


def server_us(commands: dict[str, list[int]], operations: int) -> float | None:
    """Server microseconds per operation: the Lua calls' time when the side ran Lua (their nested
    commands are counted inside it too), else all its commands' time."""
    if not commands or not operations:
        return None
    lua = {name: v for name, v in commands.items() if name in LUA_COMMANDS}
    return sum(usec for _, usec in (lua or commands).values()) / operations


def percentiles(samples_us: np.ndarray) -> dict[str, float]:
    p50, p95, p99 = np.percentile(samples_us, [50, 95, 99])
    return {"p50_us": float(p50), "p95_us": float(p95), "p99_us": float(p99), "n": int(samples_us.size)}


Sides = dict[str, dict[str, list[int]]]


def paired(floor: Callable[[], Any], ours: Callable[[], Any], n: int, stats: ServerTime,
           rounds: int = 10) -> tuple[np.ndarray, np.ndarray, Sides]:
    """Time ``floor`` and ``ours`` ``n`` times each, alternating in rounds (microseconds), and
    the server commands each side ran in its rounds (warm-up excluded)."""
    for fn in (floor, ours):
        for _ in range(max(50, n // 20)):
            fn()
    per_round = max(1, n // rounds)
    a: list[int] = []
    b: list[int] = []
    server: Sides = {"floor": {}, "fsredis": {}}
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for side, fn, out in (("floor", floor, a), ("fsredis", ours, b)):
            before = stats.snapshot()
            for _ in range(per_round):
                started = clock()
                fn()
                out.append(clock() - started)
            ServerTime.delta(before, stats.snapshot(), server[side])
    return np.array(a) / 1000.0, np.array(b) / 1000.0, server


async def paired_async(floor: Callable[[], Awaitable[Any]], ours: Callable[[], Awaitable[Any]], n: int,
                       stats: ServerTime, rounds: int = 10) -> tuple[np.ndarray, np.ndarray, Sides]:
    for fn in (floor, ours):
        for _ in range(max(50, n // 20)):
            await fn()
    per_round = max(1, n // rounds)
    a: list[int] = []
    b: list[int] = []
    server: Sides = {"floor": {}, "fsredis": {}}
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for side, fn, out in (("floor", floor, a), ("fsredis", ours, b)):
            before = stats.snapshot()  # (blocking, between the timed calls)
            for _ in range(per_round):
                started = clock()
                await fn()
                out.append(clock() - started)
            ServerTime.delta(before, stats.snapshot(), server[side])
    return np.array(a) / 1000.0, np.array(b) / 1000.0, server


def row(name: str, floor_name: str, floor: np.ndarray, ours: np.ndarray, target: str,
        server: Sides | None = None) -> dict[str, Any]:
    f, o = percentiles(floor), percentiles(ours)
    out = {"operation": name, "floor": floor_name, "floor_stats": f, "fsredis": o,
           "ratio_p50": o["p50_us"] / f["p50_us"], "target": target}
    if server is not None:
        out["server_us"] = {"fsredis": server_us(server["fsredis"], ours.size),
                            "floor": server_us(server["floor"], floor.size), "commands": server}
    return out


def seed(fs: FeatureStore, entities: int) -> None:
    rng = np.random.default_rng(0)
    rows = {}
    for i in range(entities):
        features: dict[str, Any] = {name: float(rng.random()) for name in SCALARS}
        features["emb"] = rng.random(768).astype(np.float32)
        rows[f"e{i}"] = features
    for start in range(0, entities, 500):
        fs.write_features_batch({k: rows[k] for k in list(rows)[start:start + 500]}, ttl=3600)


def bench_reads(fs: FeatureStore, raw: redis.Redis, n: int, stats: ServerTime) -> list[dict[str, Any]]:
    ns = fs.config.namespace
    key = entity_keys(ns, "e1").entity
    results = []
    floor, ours, server = paired(lambda: raw.hmget(key, SCALARS), lambda: fs.get_features("e1", SCALARS), n, stats)
    results.append(row(f"get_features 1x10 scalars ({fs.config.read_path})", "HMGET", floor, ours,
                       "p50 <= 1.3x (v2: 1.15x), p99 < 400 us", server))
    with FeatureStore(fs.config, read_path="function") as via_function:
        floor, ours, server = paired(lambda: raw.hmget(key, SCALARS),
                                     lambda: via_function.get_features("e1", SCALARS), n, stats)
    results.append(row("get_features 1x10 scalars (function)", "HMGET", floor, ours, "fs_get, for comparison",
                       server))
    floor, ours, server = paired(
        lambda: np.frombuffer(raw.hget(key, "emb"), dtype="<f4", offset=EMBEDDING_OFFSET),
        lambda: fs.get_features("e1", ["emb"]), n, stats,
    )
    results.append(row("get_features 768-dim embedding", "HGET+frombuffer", floor, ours, "p50 <= 1.3x", server))
    ids = [f"e{i}" for i in range(100)]
    batch_keys = [entity_keys(ns, e).entity for e in ids]

    def pipeline_floor() -> Any:
        pipe = raw.pipeline(transaction=False)
        for k in batch_keys:
            pipe.hmget(k, SCALARS)
        return pipe.execute()

    floor, ours, server = paired(pipeline_floor, lambda: fs.get_features_batch(ids, SCALARS), max(200, n // 10), stats)
    results.append(row("get_features_batch 100x10", "pipeline of 100 HMGET", floor, ours, "p50 <= 0.8x, < 1500 us",
                       server))
    return results


def changing_values(names: list[str]) -> Callable[[], dict[str, float]]:
    """Each call, new values for ``names`` (every value changes from one call to the next)."""
    counter = itertools.count()

    def values() -> dict[str, float]:
        i = next(counter)
        return {name: float(i * 16 + j) + 0.5 for j, name in enumerate(names)}

    return values


def encoded(values: dict[str, Any]) -> dict[str, bytes]:
    return {name: encode_value(name, value) for name, value in values.items()}


def timed_reps(floor: Callable[[int], Any], ours: Callable[[int], Any], prepare: Callable[[int], Any], reps: int,
               stats: ServerTime) -> tuple[float, float, Sides]:
    """Seconds per rep of ``floor(data)`` and ``ours(data)``, alternating, with ``data =
    prepare(rep)`` made outside the timing; and the server commands of each side."""
    spent = {"floor": 0.0, "fsredis": 0.0}
    server: Sides = {"floor": {}, "fsredis": {}}
    for rep in range(reps):
        data = prepare(rep)
        for side, fn in (("floor", floor), ("fsredis", ours)):
            before = stats.snapshot()
            started = time.perf_counter()
            fn(data)
            spent[side] += time.perf_counter() - started
            ServerTime.delta(before, stats.snapshot(), server[side])
    return spent["floor"] / reps, spent["fsredis"] / reps, server


def bench_writes(fs: FeatureStore, raw: redis.Redis, n: int, stats: ServerTime, reps: int) -> list[dict[str, Any]]:
    results = []
    ours_values, floor_values = changing_values(SCALARS), changing_values(SCALARS)
    floor_key = "bench-floor:{w1}"
    floor, ours, server = paired(
        lambda: raw.hset(floor_key, mapping=encoded(floor_values())),
        lambda: fs.write_features("w1", ours_values()), n, stats,
    )
    results.append(row("write_features 10 scalars, every value new", "HSET 10 fields", floor, ours,
                       "p50 <= 2x, server <= 60 us", server))

    entities = 1000
    names = SCALARS
    tag = fs.config.transport  # fresh entities stay fresh when another transport runs next

    def make_rows(ids: Callable[[int], list[str]]) -> Callable[[int], dict[str, dict[str, float]]]:
        """The rows of rep ``rep``: entities ``ids(rep)``, every value other than in any other rep."""
        def prepare(rep: int) -> dict[str, dict[str, float]]:
            return {e: {name: float(rep * 100 + i * 16 + j) + 0.25 for j, name in enumerate(names)}
                    for i, e in enumerate(ids(rep))}
        return prepare

    def floor_batch(rows: dict[str, dict[str, float]]) -> None:
        pipe = raw.pipeline(transaction=False)
        for e, values in rows.items():
            pipe.hset(f"bench-floor:{{{e}}}", mapping=encoded(values))
        pipe.execute()

    def ours_batch(rows: dict[str, dict[str, float]]) -> None:
        fs.write_features_batch(rows)

    features = entities * len(names)
    cases = [("fresh entities", make_rows(lambda rep: [f"wbf{tag}{rep}x{i}" for i in range(entities)]),
              ">= 150,000 features/s")]
    at_max = make_rows(lambda rep: [f"wbm{i}" for i in range(entities)])
    for rep in range(fs.config.max_versions):  # every entity at max_versions before the timing
        ours_batch(at_max(1000 + rep))
    floor_batch(at_max(999))
    cases.append((f"at max_versions ({fs.config.max_versions})", at_max, ">= 150,000 features/s"))
    for label, prepare, target in cases:
        floor_s, ours_s, server = timed_reps(floor_batch, ours_batch, prepare, reps, stats)
        results.append({
            "operation": f"write_features_batch {entities}x{len(names)}, {label}",
            "floor": f"pipeline of {entities} HSET",
            "floor_features_per_s": features / floor_s, "fsredis_features_per_s": features / ours_s,
            "ratio_throughput": floor_s / ours_s, "target": target, "reps": reps,
            "server_us_per_entity": {"fsredis": server_us(server["fsredis"], entities * reps),
                                     "floor": server_us(server["floor"], entities * reps), "commands": server},
        })
    return results


def bench_validation(fs: FeatureStore, raw: redis.Redis, n: int, stats: ServerTime) -> list[dict[str, Any]]:
    """The cost of the schema registry: the same 10-scalar write to an entity type with registered
    definitions (dtype, min, max on each feature) and to one without; the same read of both."""
    fs.register_features("checked", [{"name": name, "dtype": "float", "min": -1.0, "max": 1e9} for name in SCALARS])
    values = {name: float(i) for i, name in enumerate(SCALARS)}
    results = []
    floor, ours, server = paired(lambda: fs.write_features("plain:v1", values),
                                 lambda: fs.write_features("checked:v1", values), n, stats)
    results.append(row("write 10 scalars, registered vs not", "same write, no definitions", floor, ours,
                       "validation cost", server))
    floor, ours, server = paired(lambda: fs.get_features("plain:v1", SCALARS),
                                 lambda: fs.get_features("checked:v1", SCALARS), n, stats)
    results.append(row("get 1x10, registered vs not", "same read, no definitions", floor, ours, "reads unchanged",
                       server))

    def usec(entity: str) -> float:  # what the server itself spends per FCALL fs_write
        before = stats.snapshot()
        for _ in range(1000):
            fs.write_features(entity, values)
        return server_us(ServerTime.delta(before, stats.snapshot()), 1000) or 0.0

    runs: dict[str, list[float]] = {"plain:v1": [], "checked:v1": []}
    for _ in range(8):  # interleaved, so drift hits both; the minimum is the least disturbed run
        for entity, found in runs.items():
            found.append(usec(entity))
    plain, checked = min(runs["plain:v1"]), min(runs["checked:v1"])
    results.append({"operation": "fs_write server time, 10 scalars", "plain_usec": plain, "checked_usec": checked,
                    "ratio": checked / plain, "target": "validation cost, server side"})
    return results


async def bench_async(url: str, namespace: str, transport: str, n: int, stats: ServerTime) -> dict[str, Any]:
    raw = redis.asyncio.Redis.from_url(url)
    key = entity_keys(namespace, "e1").entity
    async with AsyncFeatureStore(FeatureStoreConfig(redis_url=url, namespace=namespace, transport=transport,
                                                    enable_monitoring=False)) as fs:
        floor, ours, server = await paired_async(lambda: raw.hmget(key, SCALARS),
                                                 lambda: fs.get_features("e1", SCALARS), n, stats)
    await raw.aclose()
    return row("async get_features 1x10 scalars", "redis.asyncio HMGET", floor, ours, "p50 <= 1.2x", server)


def _wrk(url: str, seconds: float, connections: int, body: str | None) -> dict[str, Any] | None:
    """Requests/s and latency percentiles from wrk (one thread: the sidecar gets the other core)."""
    tool = shutil.which("wrk")
    if not tool:
        return None
    args = [tool, "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", url]
    script = None
    if body is not None:
        script = Path(tempfile.mkstemp(suffix=".lua")[1])
        script.write_text(f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                          f"wrk.body = {json.dumps(body)}\n")
        args[1:1] = ["-s", str(script)]
    try:
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    finally:
        if script:
            script.unlink()
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def ms(text: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
        return float(number) * units[unit]

    percent = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"tool": "wrk", "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50_ms": ms(percent["50"]), "p99_ms": ms(percent["99"]), "errors": int(errors.group(1)) if errors else 0}


def bench_http(redis_url: str, namespace: str, seconds: float) -> list[dict[str, Any]]:
    """The sidecar (``fsredis serve``, one process) under a load generator in another process (wrk,
    else bench/http_load.py): a single-entity GET and a 100-entity batch POST."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSREDIS_")}
    sidecar = subprocess.Popen(
        [sys.executable, "-m", "fsredis", "serve", "--redis-url", redis_url, "--port", str(port),
         "--namespace", namespace], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        get = f"{base}/v1/features/e1?names={','.join(SCALARS)}"
        batch = json.dumps({"entity_ids": [f"e{i}" for i in range(100)], "names": SCALARS})
        cases = [  # 16 connections saturate the sidecar (throughput); 1 shows latency without queueing
            ("GET /v1/features/{entity}, 10 scalars", get, None, 16, ">= 3,000 req/s"),
            ("GET /v1/features/{entity}, 10 scalars", get, None, 1, "p99 < 5 ms"),
            ("POST /v1/features:batch, 100 x 10", f"{base}/v1/features:batch", batch, 16, ""),
            ("POST /v1/features:batch, 100 x 10", f"{base}/v1/features:batch", batch, 1, ""),
        ]
        results = []
        for name, url, body, connections, target in cases:
            load = _wrk(url, seconds, connections, body)
            if load is None:
                command = [sys.executable, str(Path(__file__).with_name("http_load.py")), url,
                           "--seconds", str(seconds), "--connections", str(connections)]
                load = {"tool": "aiohttp", **json.loads(subprocess.run(
                    command + (["--body", body] if body else []), capture_output=True, text=True, check=True).stdout)}
            results.append({"operation": name, "connections": connections, "target": target, **load})
        return results
    finally:
        sidecar.send_signal(signal.SIGTERM)
        sidecar.wait(timeout=30)


def memory_embedding(fs: FeatureStore, raw: redis.Redis) -> dict[str, Any]:
    """Bytes Redis uses for one entity holding only a 768-dim float32 embedding (MEMORY USAGE of
    its one key): after its first write, then after a second write of another vector."""
    rng = np.random.default_rng(1)
    key = entity_keys(fs.config.namespace, "mem").entity
    fs.delete_features("mem")
    fs.write_features("mem", {"emb": rng.random(768).astype(np.float32)})
    first = raw.memory_usage(key, samples=0) or 0
    fs.write_features("mem", {"emb": rng.random(768).astype(np.float32)})  # one superseded version in history
    second = raw.memory_usage(key, samples=0) or 0
    return {"operation": "memory, 768-dim float32 embedding", "raw_bytes": 3072, "entity_key_bytes": first,
            "ratio_current_value": first / 3072, "with_one_older_version_bytes": second,
            "older_version_bytes": second - first, "target": "current value <= 1.3x 3,072 bytes"}


MIXED = {  # 10 scalars of mixed types, the first version of entity i
    "f0": lambda i, v: float(i) * 0.37 + v, "f1": lambda i, v: (i % 97) / 7.0 + v, "f2": lambda i, v: -1.5 * v - i,
    "f3": lambda i, v: 1e6 + i * 3.25 + v, "f4": lambda i, v: i + v, "f5": lambda i, v: 1000 * i + v,
    "f6": lambda i, v: -(i + v) * 3, "f7": lambda i, v: f"category-{(i + v) % 50}",
    "f8": lambda i, v: f"user-segment-{i}-v{v}", "f9": lambda i, v: (i + v) % 2 == 0,
}


def mixed_row(i: int, version: int, rng: np.random.Generator, embedding: np.ndarray | None = None) -> dict[str, Any]:
    """Entity i's features at ``version`` (each version changes every value), or with
    ``embedding`` given, the values of version 0 and that embedding."""
    row: dict[str, Any] = {name: make(i, version) for name, make in MIXED.items()}
    row["emb"] = embedding if embedding is not None else rng.random(128).astype(np.float32)
    return row


def memory_mixed(url: str, raw: redis.Redis, own: bool, entities: int) -> dict[str, Any]:
    """Bytes per entity of 10 mixed scalars + a 128-d float32 embedding, with the default config
    (max_versions 10, TTLs): (a) one version, (b) each further version with every value changed,
    (c) each further version with no value changed; beside a Feast-like floor (one plain hash per
    entity: the same fields and encoded values plus an 8-byte timestamp, no TTL). Measured as
    used_memory deltas (client buffers excluded) and as MEMORY USAGE of each key."""
    namespace = "benchmem"
    ids = [f"m{i}" for i in range(entities)]
    ours_keys = [entity_keys(namespace, e).entity for e in ids]
    floor_keys = [f"{namespace}:{{{e}}}:f" for e in ids]  # the keys write_floor writes
    further = 9  # versions after the first: 10 kept in all (the default max_versions)

    def wait_lazy_free() -> None:
        for _ in range(600):  # lazy free runs in a background thread: wait until it is done
            if int(raw.info("memory").get("lazyfree_pending_objects", 0)) == 0:
                break
            time.sleep(0.05)

    def unlink(pattern: str) -> None:
        found = list(raw.scan_iter(match=pattern, count=1000))
        for start in range(0, len(found), 1000):
            raw.unlink(*found[start:start + 1000])

    def clear() -> None:
        if own:
            raw.execute_command("FLUSHALL", "SYNC")  # plain FLUSHALL is lazy under lazyfree-lazy-user-flush
        else:
            unlink(f"{namespace}:*")
        wait_lazy_free()

    def used() -> int:
        time.sleep(0.05)
        info = raw.info("memory")
        return int(info["used_memory"]) - int(info.get("mem_clients_normal", 0))

    def usage(keys: list[str]) -> float:
        pipe = raw.pipeline(transaction=False)
        for k in keys:
            pipe.memory_usage(k, samples=0)
        return sum(v or 0 for v in pipe.execute()) / len(keys)

    rng = np.random.default_rng(7)
    v0 = {e: mixed_row(i, 0, rng) for i, e in enumerate(ids)}
    value_bytes = sum(len(encode_value(name, value)) for name, value in v0[ids[0]].items())
    out: dict[str, Any] = {"operation": f"memory, {entities:,} entities x (10 mixed scalars + 128-d float32)",
                           "entities": entities, "features": 11, "value_bytes_per_entity": value_bytes,
                           "config": "defaults: max_versions 10, default_ttl 3600, embedding_ttl 86400",
                           "further_versions": further}
    config = FeatureStoreConfig(redis_url=url, namespace=namespace, enable_monitoring=False)
    with FeatureStore(config) as fs:
        fs.load_library(only_if_changed=True)

        stamp = int(time.time() * 1e6).to_bytes(8, "little")

        def write_floor(rows: dict[str, dict[str, Any]]) -> None:
            pipe = raw.pipeline(transaction=False)
            for e, values in rows.items():
                pipe.hset(f"{namespace}:{{{e}}}:f", mapping={**encoded(values), "_ts": stamp})
            pipe.execute()

        def baseline(write: Callable[[dict[str, dict[str, Any]]], Any]) -> int:
            """used_memory on an empty keyspace, after a throw-away write of the same shape (so the
            one-time growth of buffers a first large write leaves is not counted per entity)."""
            clear()
            write({f"tmp{i}": mixed_row(i, 0, rng) for i in range(min(500, entities))})
            unlink(f"{namespace}:{{tmp*")
            wait_lazy_free()
            return used()

        # Feast-like floor: one plain hash per entity, the same encoded values + 8-byte timestamp.
        start = baseline(write_floor)
        write_floor(v0)
        out["floor"] = {"used_memory_per_entity": (used() - start) / entities, "memory_usage_per_key": usage(floor_keys)}

        for label, changed in (("changed", True), ("unchanged", False)):
            start = baseline(fs.write_features_batch)
            fs.write_features_batch(v0)
            one = used()
            first = {"used_memory_per_entity": (one - start) / entities, "memory_usage_per_key": usage(ours_keys)}
            one_usage = first["memory_usage_per_key"]
            for version in range(1, further + 1):
                rows = {e: mixed_row(i, version, rng) for i, e in enumerate(ids)} if changed else \
                    {e: mixed_row(i, 0, rng, v0[e]["emb"]) for i, e in enumerate(ids)}
                fs.write_features_batch(rows)
            out["one_version" if changed else "one_version_again"] = first
            out[f"per_further_version_{label}"] = {
                "used_memory_per_entity": (used() - one) / entities / further,
                "memory_usage_per_key": (usage(ours_keys) - one_usage) / further,
            }
        clear()
    floor = out["floor"]
    for part in ("one_version", "per_further_version_changed", "per_further_version_unchanged"):
        out[part]["ratio_to_floor"] = {m: out[part][m] / floor[m] for m in floor}
    out["target_per_version"] = value_bytes + 48 * 11
    out["target"] = f"each kept version <= value + 48 B: {value_bytes} + 11 x 48 = {value_bytes + 48 * 11} B/entity"
    return out


def capacity(url: str, namespace: str, quick: bool, stats: ServerTime) -> dict[str, Any] | None:
    """redis-benchmark, pipelined: requests/s (and server us per call) of bare HMGET of the entity
    hash — which is all the direct read path asks of the server — a Lua function doing only that
    HMGET, and FCALL_RO fs_get; beside HMGET of a Feast-like plain hash of the same values."""
    tool = shutil.which("redis-benchmark") or shutil.which("valkey-benchmark")
    if not tool:
        return None
    parsed = urllib.parse.urlparse(url)
    target = ["-h", parsed.hostname or "127.0.0.1", "-p", str(parsed.port or 6379)]
    if parsed.password:
        target += ["-a", urllib.parse.unquote(parsed.password)]
        if parsed.username:
            target += ["--user", urllib.parse.unquote(parsed.username)]
    key = entity_keys(namespace, "e1").entity
    requests = 50_000 if quick else 200_000

    def run(*command: str) -> dict[str, float]:
        before = stats.snapshot()
        out = subprocess.run([tool, *target, "-n", str(requests), "-c", "20", "-P", "16", "-q", "--csv", *command],
                             capture_output=True, text=True, check=True).stdout
        ran = ServerTime.delta(before, stats.snapshot())
        name = command[0].lower()
        calls, usec = ran.get(name, [0, 0])
        last = [line for line in out.splitlines() if line.strip()][-1]
        return {"rps": float(last.split(",")[1].strip('"')), "server_us": usec / calls if calls else float("nan")}

    # The floor of any Lua read on this server: a function doing nothing but HMGET.
    with redis.Redis.from_url(url) as client:
        client.function_load(
            "#!lua name=fsbench\nredis.register_function{function_name='bench_hmget', flags={'no-writes'}, "
            "callback=function(keys, args) return redis.call('HMGET', keys[1], unpack(args)) end}",
            replace=True,
        )
        stored = client.hmget(key, SCALARS)
        plain = "bench-floor:{e1}:plain"
        client.hset(plain, mapping={**{n: v[HEAD:] for n, v in zip(SCALARS, stored) if v is not None},
                                    "emb": client.hget(key, "emb")[HEAD:], "_ts": b"\0" * 8})
    try:
        bare = run("HMGET", key, *SCALARS)
        wrapped = run("FCALL_RO", "bench_hmget", "1", key, *SCALARS)
        ours = run("FCALL_RO", "fs_get", "1", key, *SCALARS)
        feast = run("HMGET", plain, *SCALARS)
    finally:
        with redis.Redis.from_url(url) as client:
            client.delete(plain)
            client.function_delete("fsbench")
    return {"operation": "server capacity, get 10 scalars", "tool": Path(tool).name, "requests": requests,
            "hmget_rps": bare["rps"], "lua_hmget_rps": wrapped["rps"], "fs_get_rps": ours["rps"],
            "feast_hmget_rps": feast["rps"],
            "server_us": {"hmget": bare["server_us"], "lua_hmget": wrapped["server_us"], "fs_get": ours["server_us"],
                          "feast_hmget": feast["server_us"]},
            "ratio": ours["rps"] / bare["rps"], "ratio_to_lua_floor": ours["rps"] / wrapped["rps"],
            "lua_floor_ratio": wrapped["rps"] / bare["rps"], "direct_ratio": 1.0,
            "target": ">= 40% of HMGET (v2: single read >= 0.6x)"}


def _us(value: float | None) -> str:
    return f"{value:>7.1f}" if value is not None else f"{'-':>7}"


HEADER = (f"{'operation':<46} {'p50':>8} {'p95':>8} {'p99':>8} {'srv us':>7}   {'floor':<24} {'p50':>8} {'p99':>8} "
          f"{'srv us':>7}   {'ratio':>6}   target (us)")


def fmt_row(r: dict[str, Any]) -> str:
    if "ratio_p50" in r:
        f, o = r["floor_stats"], r["fsredis"]
        srv = r.get("server_us", {})
        return (f"{r['operation']:<46} {o['p50_us']:>8.1f} {o['p95_us']:>8.1f} {o['p99_us']:>8.1f} "
                f"{_us(srv.get('fsredis'))}   {r['floor']:<24} {f['p50_us']:>8.1f} {f['p99_us']:>8.1f} "
                f"{_us(srv.get('floor'))}   {r['ratio_p50']:>5.2f}x   {r['target']}")
    if "ratio_throughput" in r:
        srv = r["server_us_per_entity"]
        return (f"{r['operation']:<46} {r['fsredis_features_per_s']:>18,.0f}/s {_us(srv['fsredis'])}   "
                f"{r['floor']:<24} {r['floor_features_per_s']:>15,.0f}/s {_us(srv['floor'])}   "
                f"{r['ratio_throughput']:>5.2f}x   {r['target']} (srv us per entity)")
    if "requests_per_s" in r:
        return (f"{r['operation']:<46} {r['requests_per_s']:>10,.0f} req/s   p50 {r['p50_ms']:.2f} ms   "
                f"p99 {r['p99_ms']:.2f} ms   ({r['tool']}, {r['connections']} connection(s), {r.get('errors', 0)} errors)"
                f"   {r['target']}")
    if "checked_usec" in r:
        return (f"{r['operation']:<46} {r['checked_usec']:>8.1f} us/call with definitions, {r['plain_usec']:.1f} "
                f"without (INFO commandstats, min of 8 x 1,000)   {r['ratio']:>5.2f}x   {r['target']}")
    if "ratio_current_value" in r:
        return (f"{r['operation']:<46} entity key {r['entity_key_bytes']:>6} B after one write, "
                f"{r['with_one_older_version_bytes']} B with one older version   vs raw 3,072 B   "
                f"{r['ratio_current_value']:>5.2f}x   {r['target']}")
    if "hmget_rps" in r:
        s = r["server_us"]
        return (f"{r['operation']:<46} {'fs_get (FCALL_RO)':<24} {r['fs_get_rps']:>12,.0f} rps {s['fs_get']:>6.1f} us"
                f"   {r['ratio']:>5.2f}x of bare HMGET   {r['target']}\n"
                f"{'':<46} {'bare HMGET, entity hash':<24} {r['hmget_rps']:>12,.0f} rps {s['hmget']:>6.1f} us"
                f"   = the direct read path's server work (1.00x)\n"
                f"{'':<46} {'Lua function doing HMGET':<24} {r['lua_hmget_rps']:>12,.0f} rps {s['lua_hmget']:>6.1f} us"
                f"   {r['lua_floor_ratio']:>5.2f}x of bare HMGET; fs_get / it {r['ratio_to_lua_floor']:.2f}x\n"
                f"{'':<46} {'HMGET, Feast-like hash':<24} {r['feast_hmget_rps']:>12,.0f} rps {s['feast_hmget']:>6.1f} us"
                f"   ({r['tool']}, {r['requests']:,} requests, -c 20 -P 16)")
    raise ValueError(f"no format for {r.get('operation')}")


def fmt_memory(m: dict[str, Any]) -> str:
    lines = [f"{m['operation']}, {m['config']}",
             f"  {'':<50} {'used_memory':>12} {'MEMORY USAGE':>13}   ratio to floor (used_memory / MEMORY USAGE)"]
    parts = [("Feast-like floor: plain hash + 8-byte ts, no TTL", "floor"), ("(a) one version", "one_version"),
             ("(b) per further version, every value changed", "per_further_version_changed"),
             ("(c) per further version, no value changed", "per_further_version_unchanged")]
    for label, part in parts:
        p = m[part]
        ratio = p.get("ratio_to_floor")
        shown = f"{ratio['used_memory_per_entity']:>5.2f}x / {ratio['memory_usage_per_key']:>5.2f}x" if ratio else ""
        lines.append(f"  {label:<50} {p['used_memory_per_entity']:>10,.0f} B {p['memory_usage_per_key']:>11,.0f} B"
                     f"   {shown}")
    lines.append(f"  (bytes per entity; encoded values {m['value_bytes_per_entity']} B per entity; "
                 f"target {m['target']}; {m['further_versions']} further versions averaged)")
    return "\n".join(lines)


def bench_ingest(url: str, namespace: str, rows: int) -> dict[str, Any]:
    """fs.ingest of a DataFrame of ``rows`` x 10 features, in a child process (bench/ingest.py)."""
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("ingest.py")), url, f"{namespace}-ingest", str(rows)],
                          capture_output=True, text=True, check=True, timeout=1800)
    return json.loads(done.stdout.strip().splitlines()[-1])


def fmt_ingest(m: dict[str, Any]) -> str:
    lines = [f"ingest of a DataFrame, {m['rows']:,} rows x 10 features (encoding included), peak RSS {m['peak_rss_mb']:.0f} MB"]
    for label in ("fresh", "second version"):
        r = m[label]
        lines.append(f"  {label:<16} {r['features_per_s']:>10,.0f} features/s   {r['server_us_per_row']:6.1f} srv us/row   "
                     f"floor (pipeline of HSET) {r['floor_features_per_s']:>10,.0f}/s   {r['ratio']:.2f}x   target >= 300,000 (v2)")
    return "\n".join(lines)


def cleanup(url: str, raw: redis.Redis, namespace: str) -> None:
    with FeatureStore(FeatureStoreConfig(redis_url=url, namespace=namespace)) as fs:
        try:
            fs.unregister_features("checked", SCALARS, author="bench")
        except Exception:  # noqa: BLE001 - not registered (the run stopped before), or already gone
            pass
    for pattern in (f"{namespace}:*}}:e", "bench-floor:*", f"{namespace}-ingest*"):
        batch = list(raw.scan_iter(match=pattern, count=1000))
        for start in range(0, len(batch), 1000):
            raw.unlink(*batch[start:start + 1000])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", help="a server of yours (default: an embedded Valkey)")
    parser.add_argument("--own-server", action="store_true",
                        help="the server at --redis-url serves only this run: FLUSHALL is allowed (memory section)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--transports", default="fcall,evalsha")
    parser.add_argument("--memory-entities", type=int, default=2000)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args(argv)
    n = 2000 if args.quick else 10000
    reps = 3 if args.quick else 10

    server = None
    url = args.redis_url
    if not url:
        server = EmbeddedServer(persistence=False).start()
        url = server.url
    own = server is not None or args.own_server
    namespace = "bench"
    raw = redis.Redis.from_url(url)
    stats = ServerTime(raw)
    info = raw.info("server")
    report: dict[str, Any] = {
        "fsredis": __version__, "library": bundled().version, "python": sys.version.split()[0], "redis_py": redis.__version__,
        "hiredis": redis.utils.HIREDIS_AVAILABLE, "machine": platform.machine(),
        "server": f"valkey {info['valkey_version']}" if info.get("valkey_version") else f"redis {info['redis_version']}",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "iterations": n, "transports": {},
    }
    cleaned = False
    try:
        for transport in args.transports.split(","):
            config = FeatureStoreConfig(redis_url=url, namespace=namespace, transport=transport, enable_monitoring=False)
            with FeatureStore(config) as fs:
                if not report["transports"]:
                    seed(fs, 200)
                rows = bench_reads(fs, raw, n, stats) + bench_writes(fs, raw, max(1000, n // 2), stats, reps)
                rows.append(asyncio.run(bench_async(url, namespace, transport, max(1000, n // 2), stats)))
                report["transports"][transport] = rows
        with FeatureStore(FeatureStoreConfig(redis_url=url, namespace=namespace)) as fs:
            report["memory"] = memory_embedding(fs, raw)
            report["validation"] = bench_validation(fs, raw, max(1000, n // 2), stats)
        report["capacity"] = capacity(url, namespace, args.quick, stats)
        report["ingest"] = bench_ingest(url, namespace, 20_000 if args.quick else 100_000)
        report["http"] = [] if args.skip_http else bench_http(url, namespace, 3 if args.quick else 10)
        cleanup(url, raw, namespace)
        cleaned = True
        # Last: its large batch writes leave MBs of Lua garbage that the next calls would pay for,
        # and on the bench's own server it starts from FLUSHALL.
        report["memory_mixed"] = memory_mixed(url, raw, own, args.memory_entities)
    finally:
        if not cleaned:
            cleanup(url, raw, namespace)
        raw.close()
        if server is not None:
            server.stop()

    print(f"fsredis {report['library']} on {report['server']}, Python {report['python']}, redis-py "
          f"{report['redis_py']} (hiredis {report['hiredis']}), {report['iterations']} iterations, loopback\n"
          "srv us: server microseconds per operation (INFO commandstats deltas); ratio: p50 over floor p50, "
          "or throughput over floor throughput\n")
    for transport, rows in report["transports"].items():
        print(f"transport: {transport}\n{HEADER}")
        for r in rows:
            print(fmt_row(r))
        print()
    print(f"schema registry\n{HEADER}")
    for r in report["validation"]:
        print(fmt_row(r))
    print()
    if report["http"]:
        print("sidecar over HTTP (fsredis serve, one process)")
        for r in report["http"]:
            print(fmt_row(r))
        print()
    print(fmt_row(report["memory"]))
    if report.get("capacity"):
        print(fmt_row(report["capacity"]))
    print()
    print(fmt_ingest(report["ingest"]))
    print()
    print(fmt_memory(report["memory_mixed"]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
