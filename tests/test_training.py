"""Training sets: get_historical_features against an independent point-in-time join.

The reference is pandas ``merge_asof`` over every version ever written (the model of
tests/test_as_of.py); the store keeps only ``max_versions``, so it must give the reference's value
or say beyond retention, and only for a feature that lost versions to trimming.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsredis import FeatureStore, FeatureStoreConfig, ValidationError
from tests.conftest import LocalCluster, make_store, stores_by_max_versions
from tests.test_as_of import FUTURE, Model, operations, replay

ENTITIES = ["u:1", "u:2", "u:3"]
NAMES = ["a", "b"]
rows = st.lists(st.tuples(st.sampled_from([*ENTITIES, "u:9"]), st.sampled_from([0, *range(1, 14), -1])),
                min_size=1, max_size=40)


def reference(models: dict[str, Model], frame: pd.DataFrame, name: str) -> list[Any]:
    """Each row's value of ``name`` by pandas merge_asof over every version ever written."""
    versions = pd.DataFrame(
        [(entity, event, version, expires, value) for entity, model in models.items()
         for version, event, expires, value in model.versions.get(name, [])],
        columns=["entity_id", "event", "version", "expires", "value"],
    )
    labels = frame.assign(row=np.arange(len(frame)), t=frame["event_timestamp"].astype(float))
    if versions.empty:
        return [None] * len(frame)
    versions = versions.assign(event=versions["event"].astype(float)).sort_values(["event", "version"], kind="stable")
    joined = pd.merge_asof(labels.sort_values("t"), versions, left_on="t", right_on="event", by="entity_id",
                           direction="backward", allow_exact_matches=True).sort_values("row")
    out = []
    for _, row in joined.iterrows():
        if pd.isna(row["version"]) or (row["expires"] and row["t"] >= FUTURE):
            out.append(None)
        else:
            out.append(row["value"])
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations(ENTITIES, NAMES, 30), picks=rows)
def test_training_sets_agree_with_merge_asof(open_store, server, namespace, ops, picks) -> None:
    stores = stores_by_max_versions(open_store, server, namespace)
    store = stores[10]
    for entity in ENTITIES:
        store.delete_features(entity)
    models = {entity: Model() for entity in ENTITIES}
    replay(stores, models, ops, lambda name, seed, serial: float(seed * 1000 + serial))  # numbers
    frame = pd.DataFrame({"entity_id": [e for e, _ in picks],
                          "event_timestamp": [FUTURE if t < 0 else float(t) for _, t in picks]})
    got = store.get_historical_features(frame, NAMES, mask=True)
    assert list(got["entity_id"]) == list(frame["entity_id"]) and len(got) == len(frame)  # one row per row, in order
    for name in NAMES:
        expected = reference({e: m for e, m in models.items()}, frame, name)
        for i, (entity, _) in enumerate(picks):
            value, beyond = got[name].iloc[i], got[f"{name}__beyond_retention"].iloc[i]
            if beyond:
                kept = len(store.get_feature_lineage(entity, name)["versions"])
                assert len(models[entity].versions.get(name, [])) > kept, (entity, name, "beyond, but nothing trimmed")
                assert pd.isna(value)
            elif expected[i] is None:
                assert pd.isna(value), (i, entity, name, value)
            else:
                assert value == expected[i], (i, entity, name, value, expected[i])
            # The same answer as an as-of read of that row.
            one = store.get_features(entity, [name], as_of=frame["event_timestamp"].iloc[i])
            assert (name in one.beyond_retention) == bool(beyond)
            assert one.get(name) == (None if pd.isna(value) else value)
        assert got.attrs["beyond_retention"][name] == int(got[f"{name}__beyond_retention"].sum())


def test_training_sets_from_every_client(store) -> None:
    """Sync and async, both transports: datetimes, embeddings and strings, a pyarrow Table, progress."""
    base = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    for day in range(3):
        store.write_features("p:1", {"price": 10.0 + day, "tag": f"t{day}", "vec": np.full(4, day, dtype=np.float32)},
                             event_time=base + day * 86_400)
    labels = pd.DataFrame({
        "entity_id": ["p:1", "p:1", "p:2", "p:1"],
        "event_timestamp": pd.to_datetime([base + 3600, base + 86_400 + 60, base, base - 1], unit="s", utc=True),
        "label": [1, 0, 1, 0],
    })
    seen: list[tuple[int, int]] = []
    got = store.get_historical_features(labels, ["price", "tag", "vec"], progress=lambda done, total: seen.append((done, total)))
    assert list(got.columns) == ["entity_id", "event_timestamp", "label", "price", "tag", "vec"]
    assert got["price"].tolist()[:2] == [10.0, 11.0] and got["price"].isna().tolist() == [False, False, True, True]
    assert got["tag"].tolist()[:2] == ["t0", "t1"] and got["tag"].iloc[2] is None
    assert got["vec"].iloc[1].tolist() == [1.0] * 4 and got["vec"].iloc[1].dtype == np.float32
    assert seen == [(4, 4)]
    assert got.attrs["beyond_retention"] == {"price": 0, "tag": 0, "vec": 0}
    table = store.get_historical_features(pa.Table.from_pandas(labels), ["price"])
    assert table["price"].tolist()[:2] == [10.0, 11.0]
    arrow = store.get_historical_features(labels, ["price", "vec"], format="arrow")
    assert isinstance(arrow, pa.Table) and arrow.column("price").to_pylist()[:2] == [10.0, 11.0]
    assert arrow.column("vec").to_pylist()[1] == [1.0] * 4
    assert arrow.schema.metadata[b"fsredis.beyond_retention"] == b'{"price": 0, "vec": 0}'
    numeric = store.get_historical_features(labels.assign(event_timestamp=[base + 3600, base, base, base]), ["price"])
    assert numeric["price"].tolist()[:2] == [10.0, 10.0]


def test_training_sets_refuse_what_cannot_be_joined(server, namespace) -> None:
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        naive = pd.DataFrame({"entity_id": ["a"], "event_timestamp": pd.to_datetime(["2026-01-01"])})
        with pytest.raises(ValidationError) as caught:
            store.get_historical_features(naive, ["x"])
        assert caught.value.rule == "as_of"
        missing = pd.DataFrame({"entity_id": ["a"], "event_timestamp": [float("nan")]})
        with pytest.raises(ValidationError):
            store.get_historical_features(missing, ["x"])
        with pytest.raises(ValueError, match="no column 'ts'"):
            store.get_historical_features(naive, ["x"], timestamp_column="ts")
        with pytest.raises(ValueError, match="already has columns"):
            store.get_historical_features(naive.assign(x=1), ["x"])
        with pytest.raises(TypeError):
            store.get_historical_features([("a", 1.0)], ["x"])


def test_training_sets_on_a_cluster(local_cluster: LocalCluster, namespace: str) -> None:
    config = FeatureStoreConfig(redis_url=local_cluster.url, cluster=True, namespace=namespace, default_ttl=None)
    for kind in ("sync", "async"):
        store = make_store(kind, config)
        try:
            ids = [f"{kind}{i}" for i in range(60)]  # over the slots of every primary
            store.write_features_batch({e: {"x": 1} for e in ids}, event_time=100)
            store.write_features_batch({e: {"x": 2} for e in ids}, event_time=200)
            frame = pd.DataFrame({"entity_id": ids * 2, "event_timestamp": [150.0] * 60 + [250.0] * 60})
            got = store.get_historical_features(frame, ["x"])
            assert got["x"].tolist() == [1.0] * 60 + [2.0] * 60
        finally:
            store.close()


def test_the_training_set_command(server, namespace, tmp_path, capsys) -> None:
    from fsredis.cli import main

    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace, default_ttl=None)) as store:
        store.write_features("product:1", {"price": 10.0, "vec": np.ones(3, dtype=np.float32)}, event_time=100)
        store.write_features("product:1", {"price": 12.0}, event_time=200)
    target = ["--redis-url", server.url, "--namespace", namespace, "--no-progress"]
    labels = tmp_path / "labels.csv"
    labels.write_text("sku,at,label\n1,1970-01-01T00:02:30Z,1\n1,1970-01-01T01:04:00+01:00,0\n2,1970-01-01T00:04:00Z,1\n")
    out = tmp_path / "train.parquet"
    assert main(["training-set", str(labels), "--features", "price,vec", "--out", str(out), "--entity-column", "sku",
                 "--timestamp-column", "at", "--type", "product", "--mask", *target]) == 0
    assert "3 rows x 2 features" in capsys.readouterr().out
    train = pd.read_parquet(out)
    assert train["sku"].tolist() == [1, 1, 2]  # the ids as they were in the file
    assert train["price"].tolist()[:2] == [10.0, 12.0] and pd.isna(train["price"].iloc[2])
    assert list(train["vec"].iloc[0]) == [1.0, 1.0, 1.0] and train["price__beyond_retention"].tolist() == [False] * 3
    naive = tmp_path / "naive.csv"
    for times in ("1970-01-01T00:04:00", "1970-01-01T00:04:00Z\nproduct:1,1970-01-01T00:05:00"):  # naive, or some
        naive.write_text(f"entity_id,event_timestamp\nproduct:1,{times}\n")
        assert main(["training-set", str(naive), "--features", "price", "--out", str(tmp_path / "x.csv"), *target]) == 1
        assert "timezone-aware" in capsys.readouterr().err
