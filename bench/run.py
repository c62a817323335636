"""fsredis benchmarks: each operation beside the raw redis-py floor on the same data, same run.

    python bench/run.py                     # embedded Valkey, both transports
    python bench/run.py --redis-url URL     # a server of yours (uses namespace 'bench')
    python bench/run.py --quick             # fewer iterations

Floors are what a hand-written client would send for the same data: HMGET of the values hash,
HGET of the embedding bytes, a pipeline of HMGETs, HSET. Rounds alternate floor and fsredis so
drift on a shared machine hits both. Prints a table (p50/p95/p99 in microseconds, ratio of
p50s) and writes bench/results/latest.json. Targets: DESIGN.md section 6.
"""

from __future__ import annotations

import argparse
import asyncio
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
import urllib.request
from pathlib import Path
from typing import Any
from collections.abc import Awaitable, Callable

import numpy as np
import redis
import redis.asyncio

from fsredis import AsyncFeatureStore, FeatureStore, FeatureStoreConfig, __version__
from fsredis.embedded import EmbeddedServer, free_port
from fsredis.keys import entity_keys

RESULTS = Path(__file__).resolve().parent / "results"
SCALARS = [f"f{i}" for i in range(10)]


def percentiles(samples_us: np.ndarray) -> dict[str, float]:
    p50, p95, p99 = np.percentile(samples_us, [50, 95, 99])
    return {"p50_us": float(p50), "p95_us": float(p95), "p99_us": float(p99), "n": int(samples_us.size)}


def paired(floor: Callable[[], Any], ours: Callable[[], Any], n: int, rounds: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Time ``floor`` and ``ours`` ``n`` times each, alternating in rounds (microseconds)."""
    for fn in (floor, ours):
        for _ in range(max(50, n // 20)):
            fn()
    per_round = max(1, n // rounds)
    a, b = [], []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for fn, out in ((floor, a), (ours, b)):
            for _ in range(per_round):
                started = clock()
                fn()
                out.append(clock() - started)
    return np.array(a) / 1000.0, np.array(b) / 1000.0


async def paired_async(floor: Callable[[], Awaitable[Any]], ours: Callable[[], Awaitable[Any]], n: int,
                       rounds: int = 10) -> tuple[np.ndarray, np.ndarray]:
    for fn in (floor, ours):
        for _ in range(max(50, n // 20)):
            await fn()
    per_round = max(1, n // rounds)
    a, b = [], []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for fn, out in ((floor, a), (ours, b)):
            for _ in range(per_round):
                started = clock()
                await fn()
                out.append(clock() - started)
    return np.array(a) / 1000.0, np.array(b) / 1000.0


def row(name: str, floor_name: str, floor: np.ndarray, ours: np.ndarray, target: str) -> dict[str, Any]:
    f, o = percentiles(floor), percentiles(ours)
    return {"operation": name, "floor": floor_name, "floor_stats": f, "fsredis": o,
            "ratio_p50": o["p50_us"] / f["p50_us"], "target": target}


def seed(fs: FeatureStore, entities: int) -> None:
    rng = np.random.default_rng(0)
    rows = {}
    for i in range(entities):
        features: dict[str, Any] = {name: float(rng.random()) for name in SCALARS}
        features["emb"] = rng.random(768).astype(np.float32)
        rows[f"e{i}"] = features
    for start in range(0, entities, 500):
        fs.write_features_batch({k: rows[k] for k in list(rows)[start:start + 500]}, ttl=3600)


def bench_reads(fs: FeatureStore, raw: redis.Redis, n: int) -> list[dict[str, Any]]:
    ns = fs.config.namespace
    keys = entity_keys(ns, "e1")
    results = []
    floor, ours = paired(lambda: raw.hmget(keys.values, SCALARS), lambda: fs.get_features("e1", SCALARS), n)
    results.append(row("get_features 1x10 scalars", "HMGET", floor, ours, "p50 <= 1.3x, p99 < 400 us"))
    floor, ours = paired(
        lambda: np.frombuffer(raw.hget(keys.values, "emb"), dtype="<f4", offset=4),
        lambda: fs.get_features("e1", ["emb"]), n,
    )
    results.append(row("get_features 768-dim embedding", "HGET+frombuffer", floor, ours, "p50 <= 1.3x"))
    ids = [f"e{i}" for i in range(100)]
    batch_keys = [entity_keys(ns, e).values for e in ids]

    def pipeline_floor() -> Any:
        pipe = raw.pipeline(transaction=False)
        for key in batch_keys:
            pipe.hmget(key, SCALARS)
        return pipe.execute()

    floor, ours = paired(pipeline_floor, lambda: fs.get_features_batch(ids, SCALARS), max(200, n // 10))
    results.append(row("get_features_batch 100x10", "pipeline of 100 HMGET", floor, ours, "p50 <= 0.8x, < 1500 us"))
    return results


def bench_writes(fs: FeatureStore, raw: redis.Redis, n: int) -> list[dict[str, Any]]:
    values = {name: float(i) for i, name in enumerate(SCALARS)}
    from fsredis.codec import encode_value

    encoded = {name: encode_value(name, v) for name, v in values.items()}
    results = []
    floor, ours = paired(
        lambda: raw.hset("bench-floor:w", mapping=encoded),
        lambda: fs.write_features("w1", values), n,
    )
    results.append(row("write_features 10 scalars, versioned", "HSET 10 fields", floor, ours, "p50 <= 2x"))

    rows = {f"wb{i}": values for i in range(1000)}
    raw_rows = [(f"bench-floor:{{wb{i}}}", encoded) for i in range(1000)]
    for _ in range(2):  # warm up
        fs.write_features_batch(rows)
    reps = 5
    started = time.perf_counter()
    for _ in range(reps):
        pipe = raw.pipeline(transaction=False)
        for key, mapping in raw_rows:
            pipe.hset(key, mapping=mapping)
        pipe.execute()
    floor_s = (time.perf_counter() - started) / reps
    started = time.perf_counter()
    for _ in range(reps):
        fs.write_features_batch(rows)
    ours_s = (time.perf_counter() - started) / reps
    features = 1000 * len(values)
    results.append({
        "operation": "write_features_batch 1000x10, versioned", "floor": "pipeline of 1000 HSET",
        "floor_features_per_s": features / floor_s, "fsredis_features_per_s": features / ours_s,
        "ratio_throughput": (features / ours_s) / (features / floor_s), "target": ">= 150,000 features/s",
    })
    raw.delete("bench-floor:w", *[key for key, _ in raw_rows])
    return results


def bench_validation(fs: FeatureStore, raw: redis.Redis, n: int) -> list[dict[str, Any]]:
    """The cost of the schema registry: the same 10-scalar write to an entity type with registered
    definitions (dtype, min, max on each feature) and to one without; the same read of both."""
    fs.register_features("checked", [{"name": name, "dtype": "float", "min": -1.0, "max": 1e9} for name in SCALARS])
    values = {name: float(i) for i, name in enumerate(SCALARS)}
    results = []
    floor, ours = paired(lambda: fs.write_features("plain:v1", values), lambda: fs.write_features("checked:v1", values), n)
    results.append(row("write 10 scalars, registered vs not", "same write, no definitions", floor, ours,
                       "validation cost"))
    floor, ours = paired(lambda: fs.get_features("plain:v1", SCALARS), lambda: fs.get_features("checked:v1", SCALARS), n)
    results.append(row("get 1x10, registered vs not", "same read, no definitions", floor, ours, "reads unchanged"))

    def server_usec(entity: str) -> float:  # what Redis itself spends per FCALL fs_write
        raw.config_resetstat()
        for _ in range(1000):
            fs.write_features(entity, values)
        return float(raw.info("commandstats")["cmdstat_fcall"]["usec_per_call"])

    runs: dict[str, list[float]] = {"plain:v1": [], "checked:v1": []}
    for _ in range(8):  # interleaved, so drift hits both; the minimum is the least disturbed run
        for entity, usec in runs.items():
            usec.append(server_usec(entity))
    plain, checked = min(runs["plain:v1"]), min(runs["checked:v1"])
    results.append({"operation": "fs_write server time, 10 scalars", "plain_usec": plain, "checked_usec": checked,
                    "ratio": checked / plain, "target": "validation cost, server side"})
    return results


async def bench_async(url: str, namespace: str, transport: str, n: int) -> dict[str, Any]:
    raw = redis.asyncio.Redis.from_url(url)
    keys = entity_keys(namespace, "e1")
    async with AsyncFeatureStore(FeatureStoreConfig(redis_url=url, namespace=namespace, transport=transport,
                                                    enable_monitoring=False)) as fs:
        floor, ours = await paired_async(lambda: raw.hmget(keys.values, SCALARS),
                                         lambda: fs.get_features("e1", SCALARS), n)
    await raw.aclose()
    return row("async get_features 1x10 scalars", "redis.asyncio HMGET", floor, ours, "p50 <= 1.2x")


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


def memory(fs: FeatureStore, raw: redis.Redis) -> dict[str, Any]:
    """Bytes Redis uses for one entity holding only a 768-dim float32 embedding."""
    vector = np.random.default_rng(1).random(768).astype(np.float32)
    keys = entity_keys(fs.config.namespace, "mem")
    fs.write_features("mem", {"emb": vector})
    fs.write_features("mem", {"emb": vector})  # one superseded version in history
    usage = {name: raw.memory_usage(getattr(keys, name), samples=0) or 0
             for name in ("values", "expiry", "history", "writes")}
    return {"operation": "memory, 768-dim float32 embedding", "raw_bytes": 3072, "values_key_bytes": usage["values"],
            "ratio_current_value": usage["values"] / 3072, "all_keys_bytes": sum(usage.values()),
            "keys": usage, "target": "current value <= 1.3x 3,072 bytes"}


def capacity(server_port: int, namespace: str, seconds_hint: int) -> dict[str, Any] | None:
    """redis-benchmark: requests/s of FCALL_RO fs_get against bare HMGET, pipelined."""
    tool = shutil.which("redis-benchmark") or shutil.which("valkey-benchmark")
    if not tool:
        return None
    keys = entity_keys(namespace, "e1")
    requests = 200_000 if seconds_hint > 1 else 50_000

    def rps(*command: str) -> float:
        out = subprocess.run([tool, "-p", str(server_port), "-n", str(requests), "-c", "20", "-P", "16", "-q",
                              "--csv", *command], capture_output=True, text=True, check=True).stdout
        last = [line for line in out.splitlines() if line.strip()][-1]
        return float(last.split(",")[1].strip('"'))

    # The floor of any Lua read on this server: a function doing nothing but HMGET.
    with redis.Redis(port=server_port) as client:
        client.function_load(
            "#!lua name=fsbench\nredis.register_function{function_name='bench_hmget', flags={'no-writes'}, "
            "callback=function(keys, args) return redis.call('HMGET', keys[1], unpack(args)) end}",
            replace=True,
        )
    bare = rps("HMGET", keys.values, *SCALARS)
    wrapped = rps("FCALL_RO", "bench_hmget", "1", keys.values, *SCALARS)
    ours = rps("FCALL_RO", "fs_get", "2", keys.values, keys.expiry, *SCALARS)
    return {"operation": "server capacity, get 10 scalars", "tool": Path(tool).name, "hmget_rps": bare,
            "lua_hmget_rps": wrapped, "fs_get_rps": ours, "ratio": ours / bare,
            "ratio_to_lua_floor": ours / wrapped, "target": ">= 40% of HMGET"}


def fmt_row(r: dict[str, Any]) -> str:
    if "ratio_p50" in r:
        f, o = r["floor_stats"], r["fsredis"]
        return (f"{r['operation']:<42} {o['p50_us']:>8.1f} {o['p95_us']:>8.1f} {o['p99_us']:>8.1f}   "
                f"{r['floor']:<24} {f['p50_us']:>8.1f} {f['p99_us']:>8.1f}   {r['ratio_p50']:>5.2f}x   {r['target']}")
    if "ratio_throughput" in r:
        return (f"{r['operation']:<42} {r['fsredis_features_per_s']:>26,.0f}/s   {r['floor']:<24} "
                f"{r['floor_features_per_s']:>17,.0f}/s   {r['ratio_throughput']:>5.2f}x   {r['target']}")
    if "requests_per_s" in r:
        return (f"{r['operation']:<42} {r['requests_per_s']:>10,.0f} req/s   p50 {r['p50_ms']:.2f} ms   "
                f"p99 {r['p99_ms']:.2f} ms   ({r['tool']}, {r['connections']} connection(s), {r.get('errors', 0)} errors)"
                f"   {r['target']}")
    if "checked_usec" in r:
        return (f"{r['operation']:<42} {r['checked_usec']:>8.1f} us/call with definitions, {r['plain_usec']:.1f} "
                f"without (INFO commandstats, min of 8 x 1,000)   {r['ratio']:>5.2f}x   {r['target']}")
    if "ratio_current_value" in r:
        return (f"{r['operation']:<42} values key {r['values_key_bytes']:>6} B, all keys {r['all_keys_bytes']:>6} B"
                f"   vs raw 3,072 B   {r['ratio_current_value']:>5.2f}x   {r['target']}")
    return (f"{r['operation']:<42} {r['fs_get_rps']:>24,.0f} rps   {'HMGET (' + r['tool'] + ')':<24} "
            f"{r['hmget_rps']:>15,.0f} rps   {r['ratio']:>5.2f}x   {r['target']}\n"
            f"{'  (a Lua function doing only HMGET)':<42} {r['lua_hmget_rps']:>24,.0f} rps   "
            f"{'fs_get / that':<24} {'':>19}   {r['ratio_to_lua_floor']:>5.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--transports", default="fcall,evalsha")
    parser.add_argument("--output", type=Path, default=RESULTS / "latest.json")
    args = parser.parse_args(argv)
    n = 2000 if args.quick else 10000

    server = None
    url = args.redis_url
    if not url:
        server = EmbeddedServer(persistence=False).start()
        url = server.url
    namespace = "bench"
    raw = redis.Redis.from_url(url)
    report: dict[str, Any] = {
        "fsredis": __version__, "python": sys.version.split()[0], "redis_py": redis.__version__,
        "hiredis": redis.utils.HIREDIS_AVAILABLE, "machine": platform.machine(),
        "server": raw.info("server").get("valkey_version") and f"valkey {raw.info('server')['valkey_version']}"
        or f"redis {raw.info('server')['redis_version']}",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "iterations": n, "transports": {},
    }
    try:
        for transport in args.transports.split(","):
            config = FeatureStoreConfig(redis_url=url, namespace=namespace, transport=transport, enable_monitoring=False)
            with FeatureStore(config) as fs:
                if not report["transports"]:
                    seed(fs, 200)
                rows = bench_reads(fs, raw, n) + bench_writes(fs, raw, max(1000, n // 2))
                rows.append(asyncio.run(bench_async(url, namespace, transport, max(1000, n // 2))))
                report["transports"][transport] = rows
        with FeatureStore(FeatureStoreConfig(redis_url=url, namespace=namespace)) as fs:
            report["memory"] = memory(fs, raw)
            report["validation"] = bench_validation(fs, raw, max(1000, n // 2))
        if server is not None:
            report["capacity"] = capacity(server.port, namespace, 0 if args.quick else 2)
        report["http"] = bench_http(url, namespace, 3 if args.quick else 10)
    finally:
        with FeatureStore(FeatureStoreConfig(redis_url=url, namespace=namespace)) as fs:
            for i in range(0, 1200):
                for prefix in ("e", "w", "wb"):
                    fs.delete_features(f"{prefix}{i}")
            fs.delete_features("mem")
            for entity in ("plain:v1", "checked:v1"):
                fs.delete_features(entity)
            fs.unregister_features("checked", SCALARS, author="bench")
        raw.close()
        if server is not None:
            server.stop()

    print(f"fsredis {report['fsredis']} on {report['server']}, Python {report['python']}, redis-py "
          f"{report['redis_py']} (hiredis {report['hiredis']}), {report['iterations']} iterations, loopback\n")
    header = (f"{'operation':<42} {'p50':>8} {'p95':>8} {'p99':>8}   {'floor':<24} {'p50':>8} {'p99':>8}   "
              f"{'ratio':>6}   target (us)")
    for transport, rows in report["transports"].items():
        print(f"transport: {transport}\n{header}")
        for r in rows:
            print(fmt_row(r))
        print()
    print(f"schema registry\n{header}")
    for r in report["validation"]:
        print(fmt_row(r))
    print()
    print("sidecar over HTTP (fsredis serve, one process)")
    for r in report["http"]:
        print(fmt_row(r))
    print()
    print(fmt_row(report["memory"]))
    if report.get("capacity"):
        print(fmt_row(report["capacity"]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
