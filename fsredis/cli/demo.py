"""``fsredis demo`` (a walkthrough of the Python API) and ``fsredis serve`` (the sidecar), on an
embedded Valkey unless a Redis URL is given."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fsredis.lazy import numpy as np

from fsredis import (
    FeatureStore,
    FeatureStoreError,
    MissingDependency,
    NotFound,
)
from fsredis import export
from fsredis.config import redacted_url
from fsredis.embedded import EmbeddedServer
from fsredis.cli.common import config


@contextmanager
def _demo_store(args: argparse.Namespace) -> Iterator[FeatureStore]:
    if args.redis_url:
        store = FeatureStore(config(args))
        print(f"fsredis demo: using the server at {redacted_url(args.redis_url)}", flush=True)
    else:
        server = EmbeddedServer(data_dir=args.data_dir).start()
        print(
            f"fsredis demo: started an embedded {server.version().split(' v=')[0].split()[0]} "
            f"at {server.url} (data in {server.data_dir}); it stops when the demo ends",
            flush=True,
        )
        store = FeatureStore(config(args, redis_url=server.url), server=server)
    with store:
        yield store


DEMO_DEFINITIONS: list[dict[str, Any]] = [
    {"name": "price", "dtype": "float", "min": 0, "description": "List price in EUR", "owner": "pricing"},
    {"name": "category", "dtype": "string", "allowed": ["books", "toys", "garden", "electronics", "sports"]},
    {"name": "rating", "dtype": "float", "min": 1, "max": 5},
    {"name": "in_stock", "dtype": "bool"},
    {"name": "text_embedding", "dtype": "embedding", "dim": 64},
]


def serve_command(args: argparse.Namespace) -> int:
    try:
        from fsredis_server.command import serve_command as serve
    except ImportError as exc:
        raise MissingDependency(f"the sidecar needs the server extra: pip install 'fsredis[server]' ({exc})") from None
    return serve(args)


def _section(title: str) -> None:
    print(f"\n== {title}")


def demo_command(args: argparse.Namespace) -> int:
    rng = np.random.default_rng(7)
    with _demo_store(args) as fs:
        print(f"library {fs.load_library(only_if_changed=True)} loaded ({fs.config.transport})")

        _section("write product features with an embedding (one atomic, versioned write)")
        product = {
            "price": 999.99,
            "category": "electronics",
            "brand": "Acme",
            "in_stock": True,
            "rating": 4.6,
            "text_embedding": rng.random(64),
        }
        started = time.perf_counter()
        fs.write_features("product:123", product, source="catalog-import")
        print(f"wrote {len(product)} features of product:123 in {(time.perf_counter() - started) * 1000:.2f} ms")

        started = time.perf_counter()
        got = fs.get_features("product:123", ["price", "category", "in_stock", "text_embedding"])
        elapsed = (time.perf_counter() - started) * 1000
        embedding = got.pop("text_embedding")
        print(f"read back in {elapsed:.2f} ms: {got}, text_embedding {embedding.dtype}{embedding.shape}")

        _section("batch: 100 products x 5 features")
        fs.write_features_batch(
            {f"product:{i}": {"price": round(float(rng.uniform(5, 500)), 2), "category": ["books", "toys", "garden"][i % 3],
                              "rating": round(float(rng.uniform(1, 5)), 1), "in_stock": bool(i % 4),
                              "text_embedding": rng.random(64)} for i in range(100)},
            source="catalog-import",
        )
        ids = [f"product:{i}" for i in range(100)]
        started = time.perf_counter()
        batch = fs.get_features_batch(ids, ["price", "category", "rating", "in_stock", "text_embedding"])
        elapsed = (time.perf_counter() - started) * 1000
        print(f"read {sum(len(v) for v in batch.values())} features of {len(batch)} products in {elapsed:.2f} ms")

        _section("lineage and rollback")
        for price in (949.99, 899.99):
            fs.write_features("product:123", {"price": price}, source="pricing-service",
                              lineage={"producer": "repricer", "inputs": ["competitor_prices"]})
        lineage = fs.get_feature_lineage("product:123", "price")
        for entry in lineage["versions"]:
            print(f"  v{entry['version']}: {entry['value']:>8}  source={entry['source']}  "
                  f"at {time.strftime('%H:%M:%S', time.gmtime(entry['timestamp']))}Z")
        new_version = fs.rollback_feature("product:123", "price", 1)
        print(f"rolled price back to v1 as v{new_version}: {fs.get_features('product:123', ['price'])}")
        try:
            fs.rollback_feature("product:123", "price", 42)
        except NotFound as exc:
            print(f"rollback to v42 refused: {exc}")

        _section("TTL per feature")
        fs.write_features("session:9", {"last_click": "shoes", "lifetime_value": 120.0},
                          ttl={"last_click": 0.5, "lifetime_value": 3600})
        print(f"now:        {fs.get_features('session:9')}")
        time.sleep(0.6)
        print(f"after 0.6s: {fs.get_features('session:9')} (last_click expired, its sibling lives)")

        _section("schema registry: definitions checked inside Redis, for every writer")
        fs.register_features("product", DEMO_DEFINITIONS, author="demo")
        registry = fs.get_registry()
        print(f"{len(registry.definitions('product'))} product features registered; registry version {registry.version}")
        for bad in ({"price": -5.0, "rating": 4.0}, {"category": "cars"}, {"rating": float("nan")}):
            try:
                fs.write_features("product:123", bad)
            except FeatureStoreError as exc:
                print(f"refused whole: {type(exc).__name__}: {exc}")
        print(f"price still {fs.get_features('product:123', ['price'])['price']}")

        _section("computed features: transforms on raw data, one atomic write with lineage")
        raw = {"name": "Trail running shoe", "description": "A light trail running shoe with a grippy sole",
               "category": " Sports ", "price": 89.5}
        fs.compute_and_store_features("product:456", raw)
        computed = fs.get_features("product:456")
        vector = computed.pop("text_embedding")
        print(f"from {sorted(raw)}: {computed}, text_embedding {vector.dtype}{vector.shape}")
        entry = fs.get_feature_lineage("product:456", "price_log")["versions"][0]
        print(f"price_log v{entry['version']} by transform {entry['transform']}@{entry['transform_version']} "
              f"from {entry['inputs']}")

        _section("export to a DataFrame")
        try:
            frame = fs.export_features(ids[:5], ["price", "category", "rating", "in_stock"], format="pandas")
            print(frame.to_string())
        except FeatureStoreError as exc:
            print(f"skipped: {exc}")

        _section("training data: labels joined point in time")
        day = 86_400.0
        start = float(int(time.time() - 30 * day))
        for week, (price, clicks) in enumerate([(20.0, 3), (18.0, 7), (25.0, 2)]):  # backfilled, in event time
            fs.write_features("product:777", {"price": price, "clicks_7d": clicks}, event_time=start + week * 7 * day,
                              source="backfill")
        print(f"as of day 10: {dict(fs.get_features('product:777', ['price', 'clicks_7d'], as_of=start + 10 * day))}")
        try:
            pd = export._require("pandas")
            labels = pd.DataFrame({
                "entity_id": ["product:777"] * 3 + ["product:123"],
                "event_timestamp": pd.to_datetime([start + 1 * day, start + 8 * day, start + 20 * day, int(time.time())],
                                                  unit="s", utc=True),
                "purchased": [0, 1, 0, 1],
            })
            print(fs.get_historical_features(labels, ["price", "clicks_7d"]).to_string())
            print("each label row sees the values of its own time, not today's")
            with tempfile.TemporaryDirectory(prefix="fsredis-demo-") as offline:
                report = fs.export_history(offline + "/history", entity_type="product", features=["price", "clicks_7d"])
                same = fs.get_historical_features(labels, ["price", "clicks_7d"], source=offline + "/history")
                print(f"export_history: {report.versions} versions of {report.entities} products as Parquet; "
                      f"the same join there with DuckDB gives the same frame: {same.equals(fs.get_historical_features(labels, ['price', 'clicks_7d']))}")
        except FeatureStoreError as exc:
            print(f"skipped: {exc}")

        _section("health and metrics")
        health = fs.health_check()
        print({k: health[k] for k in ("status", "redis_connected", "server", "library_version", "ping_ms")})
        metrics = fs.get_performance_metrics()
        print(f"cache_hit_rate={metrics['cache_hit_rate']:.2%}  "
              f"average_computation_time={metrics['average_computation_time']:.3f} ms")
        for name, op in metrics["operations"].items():
            print(f"  {name:<22} calls={op['calls']:<4} p50={op['p50_ms']:.3f} ms  p99={op['p99_ms']:.3f} ms")
        print("\nkey format for redis-cli: FCALL_RO fs_get 1 '<ns>:<type>:{<id>}:e' <feature>...")
    return 0
