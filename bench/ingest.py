"""Ingest of a DataFrame end to end, in a process of its own so its peak memory is its own.

    python bench/ingest.py REDIS_URL NAMESPACE ROWS   ->  one JSON line

ROWS entities x 10 features (mixed: 6 floats, 2 ints, a string, a bool), built as a pandas
DataFrame; timed: ``fs.ingest`` of it (encoding included) into fresh entities, then the same
rows again one version newer, beside the raw floor — a pipeline of ``HSET`` of the same values,
msgpack-encoded in Python — in the same run. Peak RSS is ``ru_maxrss`` of this process.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import msgpack
import numpy as np
import pandas as pd
import redis

from fsredis import FeatureStore, FeatureStoreConfig


def frame(rows: int, version: int) -> pd.DataFrame:
    rng = np.random.default_rng(version)
    data = {"id": np.arange(rows)}
    for i in range(6):
        data[f"f{i}"] = rng.random(rows) * 100
    data["qty"] = rng.integers(0, 10_000, rows)
    data["views"] = rng.integers(0, 1 << 40, rows)
    data["category"] = rng.choice(["books", "toys", "electronics", "garden"], rows)
    data["active"] = rng.random(rows) > 0.5
    data["at"] = np.full(rows, 1_700_000_000.0 + version)
    return pd.DataFrame(data)


def floor(raw: redis.Redis, data: pd.DataFrame, namespace: str) -> float:
    """Seconds for a pipeline of HSET of the same values (msgpack per value, 1,000 per round trip)."""
    pack = msgpack.Packer(use_bin_type=False).pack
    names = [c for c in data.columns if c not in ("id", "at")]
    columns = [data[name].tolist() for name in names]
    ids = data["id"].tolist()
    started = time.perf_counter()
    pipe = raw.pipeline(transaction=False)
    for i, entity in enumerate(ids):
        pipe.hset(f"{namespace}-floor:{{{entity}}}", mapping={name: pack(column[i]) for name, column in zip(names, columns)})
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()
    return time.perf_counter() - started


def main(url: str, namespace: str, rows: int) -> dict[str, object]:
    raw = redis.Redis.from_url(url)
    out: dict[str, object] = {"rows": rows, "features": rows * 10}
    with FeatureStore(FeatureStoreConfig(redis_url=url, namespace=namespace, enable_monitoring=False)) as fs:
        for label, version in (("fresh", 1), ("second version", 2)):
            data = frame(rows, version)
            before = raw.info("commandstats").get("cmdstat_fcall", {}).get("usec", 0)
            report = fs.ingest(data, entity_column="id", entity_type="ing", event_time_column="at", source=f"bench-{version}")
            server = raw.info("commandstats").get("cmdstat_fcall", {}).get("usec", 0) - before
            assert report.written == rows and report.rejected == 0, report
            floor_s = floor(raw, data, namespace)
            out[label] = {
                "seconds": report.seconds, "features_per_s": report.features / report.seconds,
                "floor_features_per_s": rows * 10 / floor_s, "ratio": floor_s / report.seconds,
                "server_us_per_row": server / rows,
            }
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    raw.close()
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
