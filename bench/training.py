"""Training sets from online history: get_historical_features rows per second.

    python bench/training.py                      # 10,000 entities x 10 versions x 10 features
    python bench/training.py --entities 2000 --rows-per-entity 10

Writes ``versions`` versions of ``features`` float features to each entity (an hour of event
time apart, ``max_versions`` 10), then joins ``rows-per-entity`` labelled rows per entity at random
times across that span, twice, and prints rows/s with the server's time in ``fs_get_history``
(``INFO commandstats``) beside it. Starts its own embedded Valkey.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from fsredis import FeatureStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--rows-per-entity", type=int, default=10)
    args = parser.parse_args()
    names = [f"f{j}" for j in range(args.features)]
    start = 1_700_000_000
    with FeatureStore.embedded(persistence=False, max_versions=10, default_ttl=None) as fs:
        began = time.perf_counter()
        for version in range(args.versions):
            for first in range(0, args.entities, 1000):
                fs.write_features_batch(
                    {f"u:{e}": {n: float(e * 100 + version * 10 + j) for j, n in enumerate(names)}
                     for e in range(first, min(first + 1000, args.entities))},
                    event_time=start + version * 3600,
                )
        print(f"wrote {args.entities:,} entities x {args.versions} versions x {args.features} features "
              f"in {time.perf_counter() - began:.1f} s")
        rng = np.random.default_rng(1)
        rows = args.entities * args.rows_per_entity
        labels = pd.DataFrame({
            "entity_id": [f"u:{e}" for e in rng.integers(0, args.entities, rows)],
            "event_timestamp": pd.to_datetime(start + rng.integers(-3600, args.versions * 3600, rows), unit="s", utc=True),
        })
        for _ in range(2):
            fs.redis.config_resetstat()
            began = time.perf_counter()
            out = fs.get_historical_features(labels, names)
            elapsed = time.perf_counter() - began
            stats = fs.redis.info("commandstats").get("cmdstat_fcall_ro", {})
            print(f"{rows:,} rows x {args.features} features: {rows / elapsed:,.0f} rows/s ({elapsed:.2f} s; "
                  f"server {stats.get('usec', 0) / 1e6:.2f} s in {stats.get('calls', 0)} calls); "
                  f"beyond retention: {sum(out.attrs['beyond_retention'].values())} cells")


if __name__ == "__main__":
    main()
