"""Bulk ingest: DataFrames, Arrow and files in; exactly one version per row, even across a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fsredis import FeatureDefinition, FeatureStore, FeatureStoreConfig, IngestError, ValidationError
from fsredis.cli import main


def frame(n: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({
        "id": np.arange(n),
        "price": rng.random(n) * 100,
        "qty": rng.integers(0, 1000, n),
        "name": [f"item {i}" for i in range(n)],
        "active": rng.random(n) > 0.5,
        "seen": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
        "vec": [rng.random(4).astype(np.float32) for _ in range(n)],
        "at": np.full(n, 1_700_000_000.0),
    })


def test_a_dataframe_lands_as_one_versioned_write_per_row(store) -> None:
    data = frame()
    data.loc[3, "price"] = np.nan  # a missing cell: nothing written for that feature
    seen: list = []
    report = store.ingest(data, entity_column="id", entity_type="product", event_time_column="at",
                          source="catalog-2026-01", progress=seen.append)
    assert (report.rows, report.written, report.rejected, report.empty) == (50, 50, 0, 0)
    assert report.features == 50 * 6 - 1 and report.source == "catalog-2026-01"
    assert seen and seen[-1].rows == 50 and seen[-1].total == 50
    got = store.get_features("product:7")
    assert got["price"] == data.price[7] and got["qty"] == data.qty[7] and got["name"] == "item 7"
    assert got["active"] == bool(data.active[7]) and got["seen"] == datetime(2026, 1, 1, 7, tzinfo=timezone.utc)
    assert got["vec"].dtype == np.float32 and np.array_equal(got["vec"], data.vec[7])
    assert "price" not in store.get_features("product:3")
    lineage = store.get_feature_lineage("product:7", "qty")["versions"][0]
    assert lineage["source"] == "catalog-2026-01" and lineage["event_time"] == 1_700_000_000.0
    again = store.ingest(data, entity_column="id", entity_type="product", event_time_column="at",
                         source="catalog-2026-01")
    assert (again.written, again.resumed) == (0, 50)  # the same load: its checkpoint says it is done
    assert store.get_feature_lineage("product:7", "qty")["latest_version"] == 1
    other = store.ingest(data, entity_column="id", entity_type="product")  # another load (no source): written
    assert other.written == 50 and store.get_feature_lineage("product:7", "qty")["latest_version"] == 2


def test_rows_out_of_event_order_keep_the_newest_current(store) -> None:
    rows = pa.table({"id": ["a", "a", "b", "a"], "v": [2, 3, 1, 1], "at": [200.0, 300.0, 100.0, 100.0]})
    report = store.ingest(rows, entity_column="id", event_time_column="at")
    assert report.written == 4 and report.history_only == 1
    assert store.get_features("a", ["v"]) == {"v": 3}
    versions = store.get_feature_lineage("a", "v")["versions"]
    assert [(v["version"], v["value"], v["current"]) for v in versions] == [(3, 1, False), (2, 3, True), (1, 2, False)]


def test_refused_rows_are_collected_not_fatal(store, tmp_path) -> None:
    store.register_features("product", [FeatureDefinition("price", "float", min=0)])
    data = pd.DataFrame({"id": ["1", "2", "bad{id}", "4"], "price": [1.0, -5.0, 2.0, 3.0],
                         "x": [1.0, 2.0, 3.0, float("inf")]})
    reject = tmp_path / "rejects.ndjson"
    report = store.ingest(data, entity_column="id", entity_type="product", reject_file=reject)
    assert (report.written, report.rejected) == (1, 3)
    assert [(row, entity) for row, entity, _ in report.examples] == [
        (2, "product:bad{id}"), (3, "product:4"), (1, "product:2")]  # checked in Python first, then in Lua
    lines = [json.loads(line) for line in reject.read_text().splitlines()]
    assert {line["row"] for line in lines} == {1, 2, 3} and any("rule=min" in line["error"] for line in lines)
    assert store.get_features("product:1") == {"price": 1.0, "x": 1.0}
    assert store.get_features("product:2") == {} and store.get_features("product:4") == {}
    with pytest.raises(IngestError, match="rule=min") as stopped:
        store.ingest(data.iloc[:2], entity_column="id", entity_type="product", source="again", on_error="raise")
    assert stopped.value.report.rejected == 1


def test_files_stream_in_batches(store, tmp_path) -> None:
    data = frame(120).drop(columns=["vec"])
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), tmp_path / "part.parquet", row_group_size=30)
    data.to_csv(tmp_path / "rows.csv", index=False)
    progress: list = []
    report = store.ingest(tmp_path / "part.parquet", entity_column="id", entity_type="p", batch_rows=25,
                          progress=progress.append)
    assert report.written == 120 and report.source.endswith("part.parquet")
    assert [p.rows for p in progress][-1] == 120 and all(p.total == 120 for p in progress) and len(progress) >= 5
    from_csv = store.ingest(tmp_path / "rows.csv", entity_column="id", entity_type="c", features=["price", "name"])
    assert from_csv.written == 120 and store.get_features("c:5") == {"price": data.price[5], "name": "item 5"}
    with pytest.raises(ValueError, match="entity_column"):
        store.ingest(data, entity_column="nope")
    with pytest.raises(TypeError):
        store.ingest(42, entity_column="id")


def test_equal_rows_are_each_written_and_many_rows_per_entity_rerun_once(store, tmp_path) -> None:
    for value in (5, 6, 5):  # three loads, the last equal to the first: three versions
        store.ingest(pd.DataFrame({"id": ["e"], "x": [value]}), entity_column="id")
    assert [v["value"] for v in store.get_feature_lineage("e", "x")["versions"]] == [5, 6, 5]
    store.ingest(pd.DataFrame({"id": ["f", "f", "f"], "x": [1, 2, 1]}), entity_column="id")  # one load, equal rows
    assert store.get_feature_lineage("f", "x")["latest_version"] == 3
    rows = 300  # more rows of one entity than its write log remembers
    path = tmp_path / "history.parquet"
    pq.write_table(pa.table({"id": ["g"] * rows, "x": list(range(rows)), "at": [float(i) for i in range(rows)]}), path)
    first = store.ingest(path, entity_column="id", event_time_column="at")
    second = store.ingest(path, entity_column="id", event_time_column="at")
    assert (first.written, second.written, second.resumed) == (rows, 0, rows)
    assert store.get_feature_lineage("g", "x")["latest_version"] == rows
    path.write_bytes(path.read_bytes())  # the same rows in a file written again: another load
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
    assert store.ingest(path, entity_column="id", event_time_column="at").written == rows


def test_rows_with_a_null_id_or_a_bad_event_time_are_refused(store) -> None:
    table = pa.table({"id": ["a", None, "c", "d"], "x": [1, 2, 3, 4],
                      "at": pa.array([1.0, 2.0, float("nan"), 1e15])})
    report = store.ingest(table, entity_column="id", event_time_column="at")
    assert report.written == 1 and report.rejected == 3
    assert {(row, why.split(": ")[0]) for row, _, why in report.examples} == {
        (1, "feature=id rule=entity_id"), (2, "feature=at rule=event_time"), (3, "feature=at rule=event_time")}
    far = pa.table({"id": ["a", "b"], "x": [1, 2],
                    "at": pa.array([datetime(2026, 1, 1), datetime(9999, 12, 31)], pa.timestamp("us"))})
    assert store.ingest(far, entity_column="id", event_time_column="at").rejected == 1


def test_write_rows(store) -> None:
    results = store.write_rows([
        {"entity_id": "e1", "features": {"a": 1}},
        {"entity_id": "e1", "features": {"a": 2}, "event_time": 1.0},
        {"entity_id": "bad}", "features": {"a": 1}},
        {"entity_id": "e2", "features": {"a": float("nan")}},
    ])
    assert results[0].versions == {"a": 1} and results[1].history_only == {"a"}
    assert results[2].rule == "entity_id" and results[3].rule == "finite"


SCRIPT = textwrap.dedent("""
    import sys
    from fsredis import FeatureStore, FeatureStoreConfig

    def progress(p):
        print(p.rows, flush=True)

    with FeatureStore(FeatureStoreConfig(redis_url=sys.argv[1], namespace=sys.argv[2])) as fs:
        fs.ingest(sys.argv[3], entity_column="id", entity_type="u", event_time_column="at", batch_rows=500,
                  progress=progress)
""")


def test_a_killed_ingest_run_again_adds_each_version_once(server, namespace, tmp_path) -> None:
    n = 3000  # entities, each in two rows (two events), the rows of both events interleaved
    ids = np.tile(np.arange(n), 2)
    table = pa.table({"id": ids, "v": np.arange(2 * n), "at": np.repeat([1000.0, 2000.0], n)})
    path = tmp_path / "rows.parquet"
    pq.write_table(table, path, row_group_size=500)
    child = subprocess.Popen([sys.executable, "-c", SCRIPT, server.url, namespace, str(path)],
                             stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        first = child.stdout.readline()  # one round trip done, more on the way
        assert first.strip().isdigit(), first
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as fs:
        partial = fs.get_features_batch([f"u:{i}" for i in range(n)], ["v"])
        assert sum(1 for row in partial.values() if row) < n  # it was stopped midway
        report = fs.ingest(path, entity_column="id", entity_type="u", event_time_column="at", batch_rows=500)
        assert report.resumed > 0  # it went on from the checkpoint of the killed run
        assert report.resumed + report.written + report.already_applied == 2 * n
        final = fs.get_features_batch([f"u:{i}" for i in range(n)], ["v"])
        assert all(final[f"u:{i}"] == {"v": n + i} for i in range(n))  # the newer event is current
        for i in range(0, n, 97):
            lineage = fs.get_feature_lineage(f"u:{i}", "v")
            assert sorted(v["value"] for v in lineage["versions"]) == [i, n + i], lineage


def test_the_cli_loads_a_file(server, namespace, tmp_path, capsys) -> None:
    data = frame(40).drop(columns=["vec"])
    data.loc[5, "qty"] = -1
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), path)
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as fs:
        fs.register_features("product", [FeatureDefinition("qty", "int", min=0)])
    target = ["--redis-url", server.url, "--namespace", namespace]
    reject = tmp_path / "rejects.ndjson"
    assert main(["ingest", str(path), "--entity-column", "id", "--type", "product", "--event-time-column", "at",
                 "--reject-file", str(reject), "--no-progress", *target]) == 0
    out = capsys.readouterr()
    assert "40 rows" in out.out and "39 written" in out.out and "1 refused" in out.out
    assert "refused row 5 (product:5)" in out.err and reject.exists()
    assert main(["ingest", str(path), "--entity-column", "id", "--type", "product", "--stop-on-error",
                 "--source", "second", "--no-progress", *target]) == 1
    assert "rule=min" in capsys.readouterr().err


def test_a_ttl_map_names_features_of_any_row(store, server, namespace) -> None:
    table = pa.table({"id": ["a", "b"], "x": [1, 2], "y": [None, 3]})
    assert store.ingest(table, entity_column="id", ttl={"x": 60, "y": 120}).written == 2
    batch = store.write_features_batch({"c": {"x": 1}, "d": {"y": 2}}, ttl={"x": 60, "y": 120})
    assert set(batch) == {"c", "d"}
    with server.client() as client:
        assert 110_000 < client.pttl(f"{namespace}:{{d}}:e") <= 120_000
    with pytest.raises(ValidationError, match="no row"):
        store.write_features_batch({"c": {"x": 1}}, ttl={"z": 60})


def test_rounds_never_hold_more_rows_of_one_entity_than_its_write_log_remembers() -> None:
    from fsredis.ingest import ROWS_PER_ENTITY, _rounds

    rows = [(None, "", None, [], i, "hot" if i % 3 else f"cold{i}") for i in range(2000)]
    rounds = list(_rounds(rows, 4000))
    assert rounds[0][0] == 0 and rounds[-1][1] == 2000
    assert all(a[1] == b[0] for a, b in zip(rounds, rounds[1:]))
    assert all(sum(1 for r in rows[s:e] if r[5] == "hot") <= ROWS_PER_ENTITY for s, e in rounds)
    assert list(_rounds([], 4000)) == [(0, 0)]
    assert list(_rounds(rows[:10], 4)) == [(0, 4), (4, 8), (8, 10)]
