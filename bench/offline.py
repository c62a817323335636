"""The offline history: what the change log costs a write, how fast it drains, and training sets
over Parquet with DuckDB beside a hand-written ASOF JOIN on the same files.

    python bench/offline.py                         # all three parts
    python bench/offline.py --part join --rows 10000000 --entities 1000000
    python bench/offline.py --quick

* ``write``: batched versioned writes (100 entities x 10 floats a call, entities at
  ``max_versions``) with the change log off and on, in alternating rounds on one embedded Valkey;
  features/s of each (median) and the ratio. The streams are drained between rounds (not timed).
* ``drain``: entries and rows per second of ``Drainer.drain_once`` over what ``write`` logged.
* ``join``: a synthetic offline history in the drained layout (``entities`` x ``versions`` x
  ``features`` floats, event times an hour apart), ``rows`` labelled rows at random times;
  ``get_historical_features(source=...)`` end to end (labels frame in, frame out) against, per
  feature, the plain DuckDB query ``labels ASOF LEFT JOIN history ON entity = entity AND t >= e``
  fetched as Arrow (the floor: no ties, deletions, expiry or frame assembly).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fsredis import FeatureStore, FeatureStoreConfig
from fsredis.changelog import VERSION, schema
from fsredis.drain import Drainer
from fsredis.embedded import EmbeddedServer
from fsredis.offline import duckdb, get_historical_features

NAMES = [f"f{j}" for j in range(10)]


def write_and_drain(rounds: int, batches: int) -> None:
    server = EmbeddedServer(persistence=False).start()
    try:
        stores = {on: FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace="bench", change_log=on,
                                                      default_ttl=None, max_versions=10)) for on in (False, True)}
        ids = [f"u:{i}" for i in range(100 * batches)]
        serial = 0

        def one_round(store: FeatureStore) -> float:
            nonlocal serial
            began = time.perf_counter()
            for first in range(0, len(ids), 100):
                serial += 1
                store.write_features_batch({e: {n: float(serial + j) for j, n in enumerate(NAMES)} for e in ids[first : first + 100]})
            return len(ids) * len(NAMES) / (time.perf_counter() - began)

        for _ in range(11):  # every entity at max_versions, streams exist
            one_round(stores[True])
        with tempfile.TemporaryDirectory(prefix="fsredis-bench-") as tmp, Drainer(stores[True], tmp, settle=0) as drainer:
            while drainer.drain_once().more:
                pass
            rates: dict[bool, list[float]] = {False: [], True: []}
            drained = []
            for _ in range(rounds):
                for on in (False, True):
                    rates[on].append(one_round(stores[on]))
                began, entries, rows = time.perf_counter(), 0, 0
                while True:
                    report = drainer.drain_once()
                    entries, rows = entries + report.entries, rows + report.rows
                    if not report.more:
                        break
                drained.append((entries / (time.perf_counter() - began), rows / (time.perf_counter() - began)))
        off, on = statistics.median(rates[False]), statistics.median(rates[True])
        print(f"batched writes, 100 x 10 floats at max_versions, median of {rounds} rounds of {len(ids):,} entities:")
        print(f"  change log off {off:,.0f} features/s, on {on:,.0f} features/s: {1 - on / off:.1%} slower "
              f"(rounds off {[f'{r:,.0f}' for r in rates[False]]}, on {[f'{r:,.0f}' for r in rates[True]]})")
        print(f"drain: {statistics.median(e for e, _ in drained):,.0f} entries/s, "
              f"{statistics.median(r for _, r in drained):,.0f} rows/s (median of {rounds} passes to empty)")
        for store in stores.values():
            store.close()
    finally:
        server.stop()


def synthetic(directory: Path, entities: int, versions: int, rng: np.random.Generator) -> int:
    """Write a drained-layout history: one file per feature; returns its start time (ms)."""
    start = 1_700_000_000_000
    n = entities * versions
    entity = pa.array(np.char.add("u:", np.arange(entities).astype(str)).repeat(versions))
    version = np.tile(np.arange(1, versions + 1), entities)
    event = start + (version - 1) * 3_600_000 + rng.integers(0, 600_000, n)
    stamp = pa.timestamp("ms", tz="UTC")
    for j, name in enumerate(NAMES):
        number = rng.random(n)
        value = pa.array([b"\xcb" + x.tobytes()[::-1] for x in number[:1]] * n, type=pa.binary())  # (not read by the join's floats)
        table = pa.table({
            "entity": entity, "kind": pa.array([VERSION] * n), "version": version, "event_time": pa.array(event, stamp),
            "ingested_at": pa.array(event, stamp), "expires_at": pa.nulls(n, stamp), "number": number, "value": value,
            "write_id": pa.nulls(n, pa.string()), "lineage": pa.nulls(n, pa.string()), "change": event * 1_000_000,
        }, schema=schema())
        folder = directory / f"feature={name}"
        folder.mkdir(parents=True)
        pq.write_table(table, folder / "part-0000000001.parquet", compression="zstd")
    return start


def join(rows: int, entities: int, versions: int, repeats: int) -> None:
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory(prefix="fsredis-bench-") as tmp:
        directory = Path(tmp)
        began = time.perf_counter()
        start = synthetic(directory, entities, versions, rng)
        print(f"offline history: {entities:,} entities x {versions} versions x {len(NAMES)} features "
              f"({entities * versions * len(NAMES):,} rows) written in {time.perf_counter() - began:.1f} s")
        times = start + rng.integers(-3_600_000, versions * 3_600_000, rows)
        labels = pd.DataFrame({"entity_id": np.char.add("u:", rng.integers(0, entities, rows).astype(str)),
                               "event_timestamp": pd.to_datetime(times, unit="ms", utc=True)})
        ours, floor = [], []
        for _ in range(repeats):
            began = time.perf_counter()
            out = get_historical_features(directory, labels, NAMES)
            ours.append(time.perf_counter() - began)
            began = time.perf_counter()
            connection = duckdb().connect()
            connection.register("labels", pa.table({"rid": np.arange(rows), "entity": labels["entity_id"].to_numpy(),
                                                    "t": times}))
            for name in NAMES:
                files = str(directory / f"feature={name}" / "*.parquet")
                connection.sql(
                    "SELECT l.rid, h.number FROM labels l ASOF LEFT JOIN "
                    "(SELECT entity, epoch_ms(event_time) AS e, number FROM read_parquet(?)) h "
                    "ON l.entity = h.entity AND l.t >= h.e", params=[files]).to_arrow_table()
            connection.close()
            floor.append(time.perf_counter() - began)
        missing = int(out[NAMES[0]].isna().sum())
        a, b = min(ours), min(floor)
        print(f"training set, {rows:,} rows x {len(NAMES)} features (best of {repeats}):")
        print(f"  get_historical_features(source=...) {a:.2f} s ({rows / a:,.0f} rows/s); hand-written ASOF JOIN "
              f"{b:.2f} s ({rows / b:,.0f} rows/s): {a / b:.2f}x; rows before any version: {missing:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["all", "write", "join"], default="all")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the bench runs")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.entities, args.rounds, args.repeats = 200_000, 20_000, 2, 1
    if args.part in ("all", "write"):
        write_and_drain(args.rounds, 5 if args.quick else 20)
    if args.part in ("all", "join"):
        join(args.rows, args.entities, args.versions, args.repeats)


if __name__ == "__main__":
    main()
