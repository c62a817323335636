"""The offline history: the change log each write appends, the drainer that moves it to Parquet
without losing or doubling a version (whatever crashes), and training sets joined over it with
DuckDB that agree with an independent point-in-time join and with the online path.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
from hypothesis import HealthCheck, given, settings

from fsredis import FeatureStoreConfig, FeatureStoreError, ValidationError
from fsredis.changelog import change_of, next_id
from fsredis.drain import STAGING, STATE, DrainError, Drainer
from fsredis.keys import SLOTS, entity_keys, log_key, log_keys, slot_tags
from redis.crc import key_slot
from tests.conftest import LocalCluster
from tests.test_as_of import FUTURE, Model, operations, replay
from tests.test_training import ENTITIES, NAMES, reference, rows


def logged(store: Any) -> list[tuple[str, dict[bytes, bytes]]]:
    """Every change-log entry of the store's namespace: (entity key, fields), in stream order."""
    out = []
    with_entries = [k for k in log_keys(store.config.namespace) if store.redis.exists(k)]
    for key in with_entries:
        for _, fields in store.redis.xrange(key):
            out.append((fields.pop(b"#k").decode(), fields))
    return out


def history(directory: Any) -> pd.DataFrame:
    """The offline history as one frame (a column ``feature`` from the partition)."""
    return ds.dataset(str(directory), format="parquet", partitioning="hive").to_table().to_pandas()


def logging_store(open_store: Any, url: str, namespace: str, **settings: Any) -> Any:
    settings.setdefault("default_ttl", None)
    return open_store(FeatureStoreConfig(redis_url=url, namespace=namespace, change_log=True, **settings))


# -- keys -------------------------------------------------------------------------------------


def test_every_slot_has_a_log_key_in_it() -> None:
    tags = slot_tags()
    assert len(tags) == SLOTS and len(set(tags)) == SLOTS
    assert all(key_slot(log_key("fs", slot).encode()) == slot for slot in range(0, SLOTS, 7))
    assert log_key("fs", 0) == "fs:{06S}:log"  # fixed across versions: existing logs are found by it
    keys = entity_keys("fs", "product:123")
    assert key_slot(log_key("fs", keys.slot).encode()) == keys.slot


# -- the log ----------------------------------------------------------------------------------


def test_each_write_appends_what_it_made(server, namespace, open_store) -> None:
    store = logging_store(open_store, server.url, namespace, max_versions=2)
    store.write_features("p:1", {"price": 1.5, "name": "a"}, source="job", write_id="w1", event_time=100.0)
    store.write_features("p:1", {"price": 2.5}, write_id="w2", event_time=50.0)  # late: history only
    store.write_features("p:1", {"price": 2.5}, write_id="w2", event_time=50.0)  # a retry: nothing new
    store.write_features_batch({"p:2": {"price": 7.0}, "p:3": {"price": 8.0}}, write_ids={"p:2": "b2", "p:3": "b3"})
    assert store.rollback_feature("p:1", "price", 1) == 3
    assert store.delete_features("p:2", ["price", "nothing"]) == 1
    assert store.delete_features("p:3") == 1
    with pytest.raises(ValidationError):
        store.write_features("p:1", {"price": float("nan")})  # refused: nothing anywhere
    entries = logged(store)
    by_entity: dict[str, list[dict[bytes, bytes]]] = {}
    for key, fields in entries:
        by_entity.setdefault(key, []).append(fields)
    one = by_entity[entity_keys(namespace, "p:1").entity]
    assert [e[b"#w"] for e in one] == [b"w1", b"w2", one[2][b"#w"]] and len(one) == 3
    assert [k for k in one[0] if not k.startswith(b"#")] == [b"price", b"name"]  # in the write's order
    heads = {k: [int.from_bytes(v[i : i + 6], "little") for i in range(0, 24, 6)] for k, v in one[0].items() if k[:1] != b"#"}
    assert heads == {b"price": [0, 100_000, 1, 1], b"name": [0, 100_000, 1, 1]}  # expiry, event, version, record
    late = one[1][b"price"]  # history only: packed as a current value would be
    assert [int.from_bytes(late[i : i + 6], "little") for i in range(0, 18, 6)] == [0, 50_000, 2]
    assert late[24:] == b"\xcb@\x04" + bytes(6)
    assert int.from_bytes(one[1][b"#"][6:12], "little") == 50_000  # the event time
    assert int.from_bytes(one[2][b"price"][12:18], "little") == 3  # the rollback's version
    assert b"rolled_back_from" in one[2][b"#m"] and b"job" in one[0][b"#m"]
    two = by_entity[entity_keys(namespace, "p:2").entity]
    assert [e[b"price"][24:] for e in two] == [b"\xcb@\x1c" + bytes(6), b""]  # written, then deleted
    assert b"nothing" not in two[1]  # only what existed is deleted
    three = by_entity[entity_keys(namespace, "p:3").entity]
    assert three[1] == {b"#": three[1][b"#"], b"#w": b"", b"#m": b"", b"price": b""}

def test_ingest_and_computed_features_are_logged_too(server, namespace, open_store, tmp_path) -> None:
    store = logging_store(open_store, server.url, namespace)
    report = store.ingest(pd.DataFrame({"sku": ["1", "2"], "price": [3.0, 4.0]}), entity_column="sku", entity_type="p")
    assert report.written == 2
    store.compute_and_store_features("p:3", {"price": 5.0})
    with Drainer(store, tmp_path, settle=0) as drainer:
        drainer.drain_once()
    frame = history(tmp_path)
    prices = frame[frame.feature == "price"].sort_values("number")
    assert list(prices.entity) == ["p:1", "p:2", "p:3"] and list(prices.number) == [3.0, 4.0, 5.0]
    assert "compute" in prices.lineage.iloc[2] and "price_log" in set(frame.feature)


def test_a_log_key_that_cannot_be_the_log_refuses_the_write(server, namespace, open_store) -> None:
    store = logging_store(open_store, server.url, namespace)
    plain = open_store(FeatureStoreConfig(redis_url=server.url, namespace=namespace, default_ttl=None))
    plain.write_features("p:1", {"price": 1.0, "tag": "a"})
    plain.write_features("p:1", {"price": 2.0})
    entity = entity_keys(namespace, "p:1").entity
    before = store.redis.hgetall(entity)
    store.redis.set(log_key(namespace, entity_keys(namespace, "p:1").slot), "not a stream")
    for call in (
        lambda: store.write_features("p:1", {"price": 1.0}),
        lambda: store.write_features_batch({"p:1": {"price": 1.0}}),
        lambda: store.rollback_feature("p:1", "price", 1),
        lambda: store.delete_features("p:1", ["price"]),
        lambda: store.delete_features("p:1"),
    ):
        with pytest.raises(FeatureStoreError, match="not a stream|not an fsredis change log"):
            call()
        assert store.redis.hgetall(entity) == before  # nothing written
    with store.redis.pipeline(transaction=False) as raw:  # another namespace's log, or a malformed one
        for key in (f"other:{{x}}:log", f"{namespace}:log", "{x}:log"):
            raw.fcall("fs_write", 2, entity, key, b"\x81\xa2id\xa1w", b"", "price", b"\xcb@\x00\x00\x00\x00\x00\x00\x00")
        replies = raw.execute(raise_on_error=False)
    assert all("FSARG" in str(reply) for reply in replies), replies
    assert store.redis.hgetall(entity) == before


# -- the drainer ------------------------------------------------------------------------------


def test_drained_history_equals_the_writes_and_leaves_the_log_empty(server, namespace, open_store, tmp_path) -> None:
    store = logging_store(open_store, server.url, namespace, max_versions=1)
    written = {}
    for i in range(300):
        entity = f"p:{i % 40}"
        result = store.write_features(entity, {"price": float(i), "tag": f"t{i}"}, write_id=f"w{i}")
        written[(entity, "price", result.versions["price"])] = (float(i), f"w{i}")
    with Drainer(store, tmp_path, settle=0, max_entries=50) as drainer:
        reports = [drainer.drain_once()]
        while reports[-1].entries and len(reports) < 20:
            reports.append(drainer.drain_once())
    assert sum(r.entries for r in reports) == 300 and reports[-1].entries == 0
    assert all(not store.redis.exists(key) or store.redis.xlen(key) == 0 for key in log_keys(namespace))
    frame = history(tmp_path)
    prices = frame[frame.feature == "price"]
    got = {(e, "price", v): (n, w) for e, v, n, w in zip(prices.entity, prices.version, prices.number, prices.write_id)}
    assert got == written  # every version once, though Redis kept only the last of each
    assert len(frame[frame.feature == "tag"]) == 300
    assert str(frame.event_time.dtype) == "datetime64[ms, UTC]"
    assert json.loads((tmp_path / STATE).read_text())["batch"] == max(r.batch for r in reports)


def test_entries_that_are_not_change_log_entries_are_quarantined_not_a_stop(server, namespace, open_store,
                                                                            tmp_path) -> None:
    """Someone XADDs into a log key (or a field cannot be read): the drain goes on, sets those
    entries aside whole in _quarantine/ with the reason, trims them with the others, and the
    history holds exactly the real writes; an entry is taken all or nothing."""
    store = logging_store(open_store, server.url, namespace)
    store.write_features("p:1", {"x": 1})
    key = log_key(namespace, entity_keys(namespace, "p:1").slot)  # p:1's change-log stream
    good = store.redis.xrange(key)[0][1]
    hostile = [
        {b"hello": b"world"},  # no header at all
        {b"#": good[b"#"], b"#k": b"other:{1}:e", b"x": good[b"x"]},  # another namespace's entity
        {**good, b"#m": b"\xc1"},  # meta that msgpack cannot read
        {b"#": good[b"#"], b"#k": good[b"#k"], b"a": good[b"x"], b"b": b"short"},  # a good field, then a bad one
        {**good, b"#m": b"\x81\xa1a" * 1000 + b"\xc0"},  # meta nested 1,000 deep (RecursionError in json)
    ]
    for fields in hostile:
        store.redis.xadd(key, fields)
    store.write_features("p:1", {"x": 2})
    with Drainer(store, tmp_path, settle=0) as drainer:
        report = drainer.drain_once()
        assert drainer.drain_once().entries == 0
    assert (report.entries, report.quarantined) == (7, 5)
    assert store.redis.xlen(key) == 0  # trimmed with the others: the log does not grow behind them
    frame = history(tmp_path)
    assert sorted(zip(frame.feature, frame.number)) == [("x", 1.0), ("x", 2.0)]  # feature a's good half is not in
    (part,) = (tmp_path / "_quarantine").glob("*.jsonl")
    lines = [json.loads(line) for line in part.read_text().splitlines()]
    assert [line["stream"] for line in lines] == [key] * 5
    assert lines[0]["fields"] == {"hello": b"world".hex()} and "no header" in lines[0]["error"]
    assert "cannot be read" in lines[2]["error"] and "a version of 5 bytes" in lines[3]["error"]
    assert "RecursionError" in lines[4]["error"]
    assert not (tmp_path / STAGING).exists() or not any((tmp_path / STAGING).iterdir())


def _many_small_files(store: Any, directory: Any, batches: int) -> None:
    """``batches`` drain passes of a few writes each (features x and y), one large batch of x
    in the middle."""
    with Drainer(store, directory, settle=0) as drainer:
        for batch in range(batches):
            count = 40 if batch == batches // 2 else 2
            for i in range(count):
                store.write_features(f"p:{i % 5}", {"x": batch * 100 + i, **({"y": f"v{batch}"} if batch % 2 else {})})
            assert drainer.drain_once().entries == count


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["feature", "change"]).reset_index(drop=True)


def test_compaction_merges_runs_of_small_files_and_the_history_stays_the_same(server, namespace, open_store,
                                                                              tmp_path) -> None:
    store = logging_store(open_store, server.url, namespace)
    _many_small_files(store, tmp_path, 20)
    before = _sorted(history(tmp_path))
    labels = pd.DataFrame({"entity_id": [f"p:{i}" for i in range(5)], "event_timestamp": pd.Timestamp.now(tz="UTC")})
    online = store.get_historical_features(labels, ["x", "y"])
    assert len(list((tmp_path / "feature=x").glob("*.parquet"))) == 20
    with Drainer(store, tmp_path, settle=0) as drainer:
        report = drainer.compact(min_files=4, target_rows=30, grace=0)
        # x: batches 1-10 (2 rows each) in one file, batch 11 (40 rows) kept as it is, 12-20 in
        # another; y (the 10 even batches, 2 rows each) in one file.
        assert (report.merged, report.written, report.deleted) == (19 + 10, 3, 0)
        # The sources stay until their grace has passed: a join sees those versions twice, and
        # counts them once.
        assert len(history(tmp_path)) == 2 * len(before) - 40
        pd.testing.assert_frame_equal(store.get_historical_features(labels, ["x", "y"], source=tmp_path), online)
        again = drainer.compact(min_files=4, target_rows=30, grace=0)
    assert (again.merged, again.written, again.deleted) == (0, 0, 29)
    pd.testing.assert_frame_equal(_sorted(history(tmp_path)), before)  # the same rows, none twice
    assert sorted(p.name for p in (tmp_path / "feature=x").glob("*.parquet")) == [
        "part-0000000001-0000000010.parquet", "part-0000000011.parquet", "part-0000000012-0000000020.parquet"]
    assert [p.name for p in (tmp_path / "feature=y").glob("*.parquet")] == ["part-0000000002-0000000020.parquet"]
    pd.testing.assert_frame_equal(store.get_historical_features(labels, ["x", "y"], source=tmp_path), online)


def test_a_compaction_cut_short_or_a_reused_name_loses_nothing(server, namespace, open_store, tmp_path,
                                                              monkeypatch) -> None:
    """A crash after the merge is recorded, before its file goes in: the sources (the only copy)
    stay and the record is forgotten. A source whose name now holds another file (batches
    numbered again after a lost state file) is not deleted with the merge."""
    import os

    import pyarrow.parquet as pq

    from fsredis import drain

    store = logging_store(open_store, server.url, namespace)
    _many_small_files(store, tmp_path, 6)
    before = _sorted(history(tmp_path))

    class Crash(BaseException):
        pass

    moves = []
    real = os.replace

    def replace(source: Any, target: Any) -> None:
        moves.append(target)
        if str(target).endswith(".parquet"):  # the merged file's move (the record's own went first)
            raise Crash
        real(source, target)

    with Drainer(store, tmp_path, settle=0) as drainer:
        with monkeypatch.context() as patch:
            patch.setattr(drain.os, "replace", replace)
            with pytest.raises(Crash):
                drainer.compact(min_files=2, target_rows=1000, grace=0)
    assert str(moves[0]).endswith(drain.COMPACTED)  # recorded first
    with Drainer(store, tmp_path, settle=0) as drainer:  # a start: the staged merge is gone
        pd.testing.assert_frame_equal(_sorted(history(tmp_path)), before)
        report = drainer.compact(min_files=2, target_rows=1000, grace=3600)
        assert report.written == 2 and report.deleted == 0
        # Batch 1's name now holds another file: it must outlive the merge that listed it.
        source = tmp_path / "feature=x" / "part-0000000001.parquet"
        table = pq.read_table(source)
        source.unlink()
        pq.write_table(table.slice(0, 1), source)
        assert drainer.compact(min_files=2, target_rows=1000, grace=0).deleted == 5 + 3  # x: 6 less batch 1, y: 3
    assert source.exists()
    assert sorted(p.name for p in (tmp_path / "feature=x").glob("*.parquet")) == [
        "part-0000000001-0000000006.parquet", "part-0000000001.parquet"]


def test_fsredis_compact(server, namespace, open_store, tmp_path, capsys) -> None:
    from fsredis.cli import main

    store = logging_store(open_store, server.url, namespace)
    _many_small_files(store, tmp_path, 4)
    with Drainer(store, tmp_path, settle=0):  # a drainer holds it: said, nothing done
        assert main(["compact", str(tmp_path), "--min-files", "2"]) == 1
    assert "another drainer" in capsys.readouterr().err
    assert main(["compact", str(tmp_path / "nothing"), "--min-files", "2"]) == 2
    assert main(["compact", str(tmp_path), "--min-files", "2", "--grace", "0"]) == 0
    assert "6 files merged into 2, 0 files of earlier merges deleted" in capsys.readouterr().out
    assert main(["compact", str(tmp_path), "--min-files", "2", "--grace", "0"]) == 0
    assert "0 files merged into 0, 6 files of earlier merges deleted" in capsys.readouterr().out
    assert len(list((tmp_path / "feature=x").glob("*.parquet"))) == 1
    (tmp_path / "feature=z").mkdir()
    for batch in (1, 2):
        (tmp_path / "feature=z" / f"part-000000000{batch}.parquet").write_bytes(b"not parquet")
    assert main(["compact", str(tmp_path), "--min-files", "2"]) == 1  # said, the others compacted
    assert "feature=z not compacted: ArrowInvalid" in capsys.readouterr().err


def test_a_drain_crash_at_any_step_loses_and_doubles_nothing(server, namespace, open_store, tmp_path) -> None:
    """The steps of a pass fail in turn (as a kill would stop them); the next drainer recovers."""
    store = logging_store(open_store, server.url, namespace)
    count = 0

    def write(n: int) -> None:
        nonlocal count
        for _ in range(n):
            count += 1
            store.write_features(f"p:{count % 7}", {"x": count})

    class Crash(BaseException):
        pass

    # (step, whether the step itself ran before the crash)
    for step, ran in (("_write", True), ("_commit", False), ("_publish", False), ("_trim", False)):
        write(25)
        drainer = Drainer(store, tmp_path, settle=0)

        def crash(*args: Any, real: Any = getattr(drainer, step), ran: bool = ran) -> None:
            if ran:
                real(*args)
            raise Crash

        setattr(drainer, step, crash)
        with pytest.raises(Crash):
            drainer.drain_once()
        drainer.close()
        staged = [p for p in (tmp_path / STAGING).glob("*")] if (tmp_path / STAGING).exists() else []
        assert bool(staged) == (step != "_trim")  # the crash left staged files (or entries in Redis) behind
    with Drainer(store, tmp_path, settle=0) as drainer:
        while drainer.drain_once().entries:
            pass
    frame = history(tmp_path)
    assert sorted(frame.number.astype(int)) == list(range(1, count + 1))  # each write exactly once
    assert not (tmp_path / STAGING).exists() or not any((tmp_path / STAGING).iterdir())


def test_one_drainer_per_directory_and_namespace(server, namespace, open_store, tmp_path) -> None:
    store = logging_store(open_store, server.url, namespace)
    store.write_features("p:1", {"x": 1})
    with Drainer(store, tmp_path, settle=0) as drainer:
        drainer.drain_once()
        with pytest.raises(DrainError, match="another drainer"):
            Drainer(store, tmp_path)
    other = logging_store(open_store, server.url, namespace + "x")
    with pytest.raises(DrainError, match="namespace"):
        Drainer(other, tmp_path)


def test_young_entries_wait_for_the_settle_time(server, namespace, open_store, tmp_path) -> None:
    store = logging_store(open_store, server.url, namespace)
    store.write_features("p:1", {"x": 1})
    with Drainer(store, tmp_path, settle=3600) as drainer:
        assert drainer.drain_once().entries == 0
    with Drainer(store, tmp_path, settle=0) as drainer:
        assert drainer.drain_once().entries == 1


def test_stream_ids_order_changes() -> None:
    assert change_of(b"1700000000000-3") < change_of("1700000000000-4") < change_of("1700000000001-0")
    assert next_id(b"5-9") == "5-10"
    with pytest.raises(ValueError):
        change_of("1-1000000")


# -- training sets over the offline history ---------------------------------------------------


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations(ENTITIES, NAMES, 30), picks=rows)
def test_offline_training_sets_agree_with_merge_asof_and_online(open_store, server, namespace, ops, picks, tmp_path_factory) -> None:
    stores = {mv: logging_store(open_store, server.url, namespace, max_versions=mv) for mv in (1, 2, 3, 10)}
    store = stores[10]
    for entity in ENTITIES:
        store.delete_features(entity)  # (the namespace is shared by the examples: each starts afresh)
    models = {entity: Model() for entity in ENTITIES}
    numbers = len(ops) % 2 == 0  # numbers (a float64 column) or text (objects)
    replay(stores, models, ops,
           (lambda name, seed, serial: float(seed * 1000 + serial)) if numbers else (lambda name, seed, serial: f"{name}{seed}-{serial}"))
    directory = tmp_path_factory.mktemp("offline")
    with Drainer(store, directory, settle=0) as drainer:
        while drainer.drain_once().entries:
            pass
    frame = pd.DataFrame({"entity_id": [e for e, _ in picks],
                          "event_timestamp": [FUTURE if t < 0 else float(t) for _, t in picks]})
    offline = store.get_historical_features(frame, NAMES, source=directory, mask=True)
    online = store.get_historical_features(frame, NAMES, mask=True)
    for name in NAMES:
        expected = reference(models, frame, name)
        got = [None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in offline[name]]
        assert got == expected, (name, got, expected)  # everything: nothing is beyond retention offline
        kept = ~online[f"{name}__beyond_retention"].to_numpy()
        assert [g for g, k in zip(got, kept) if k] == [
            None if v is None or (isinstance(v, float) and np.isnan(v)) else v for v, k in zip(online[name], kept) if k
        ]
        assert offline.attrs["beyond_retention"][name] == 0
    if not any(online.attrs["beyond_retention"].values()):
        pd.testing.assert_frame_equal(offline, online)  # the same frame, dtypes and all


def test_offline_training_set_of_a_missing_feature_and_dir(server, namespace, open_store, tmp_path) -> None:
    store = logging_store(open_store, server.url, namespace)
    store.write_features("p:1", {"x": 1.0}, event_time=10.0)
    with Drainer(store, tmp_path, settle=0) as drainer:
        drainer.drain_once()
    frame = pd.DataFrame({"entity_id": ["p:1", "p:1"], "event_timestamp": [9.0, 11.0]})
    got = store.get_historical_features(frame, ["x", "never"], source=tmp_path, format="arrow")
    assert got.column("x").to_pylist()[1] == 1.0 and got.column("never").to_pylist() == [None, None]
    with pytest.raises(FileNotFoundError):
        store.get_historical_features(frame, ["x"], source=tmp_path / "nowhere")


def test_change_log_and_drain_on_a_cluster(local_cluster: LocalCluster, namespace, open_store, tmp_path) -> None:
    store = open_store(FeatureStoreConfig(redis_url=local_cluster.url, cluster=True, namespace=namespace,
                                          change_log=True, default_ttl=None, max_versions=2))
    entities = [f"p:{i}" for i in range(60)]
    for round_ in range(3):
        store.write_features_batch({e: {"x": float(round_ * 100 + i)} for i, e in enumerate(entities)}, event_time=round_ + 1)
    store.write_features("p:0", {"x": -1.0}, event_time=0.5)
    with Drainer(store, tmp_path, settle=0) as drainer:
        while drainer.drain_once().entries:
            pass
    frame = history(tmp_path)
    tops = frame.groupby("entity").version.max()
    assert len(frame) == 181 and tops.pop("p:0") == 4 and tops.eq(3).all() and len(tops) == 59
    labels = pd.DataFrame({"entity_id": entities, "event_timestamp": [1.5] * 60})
    offline = store.get_historical_features(labels, ["x"], source=tmp_path)
    assert list(offline.x) == [float(i) for i in range(60)]  # the first round's values: trimmed online, kept offline
    online = store.get_historical_features(labels, ["x"], mask=True)
    assert online["x__beyond_retention"].all()


# -- snapshots --------------------------------------------------------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations(ENTITIES, NAMES, 30), picks=rows)
def test_a_snapshot_answers_as_the_online_history(open_store, server, namespace, ops, picks, tmp_path_factory) -> None:
    """export_history keeps what Redis keeps, and where Redis trimmed: the same frame, beyond
    retention included, as the online join."""
    stores = {mv: open_store(FeatureStoreConfig(redis_url=server.url, namespace=namespace, max_versions=mv,
                                                default_ttl=None)) for mv in (1, 2, 3, 10)}
    store = stores[10]
    for entity in ENTITIES:
        store.delete_features(entity)
    models = {entity: Model() for entity in ENTITIES}
    numbers = len(ops) % 2 == 0
    replay(stores, models, ops,
           (lambda name, seed, serial: float(seed * 1000 + serial)) if numbers else (lambda name, seed, serial: f"{name}{seed}-{serial}"))
    directory = tmp_path_factory.mktemp("snapshot") / "out"
    report = store.export_history(directory, entity_type="u")
    assert report.entities == sum(store.redis.exists(entity_keys(namespace, e).entity) for e in ENTITIES)
    frame = pd.DataFrame({"entity_id": [e for e, _ in picks],
                          "event_timestamp": [FUTURE if t < 0 else float(t) for _, t in picks]})
    online = store.get_historical_features(frame, NAMES, mask=True)
    offline = store.get_historical_features(frame, NAMES, mask=True, source=directory)
    pd.testing.assert_frame_equal(offline, online)
    assert offline.attrs == online.attrs


def test_a_snapshot_refuses_a_used_directory_and_names_features(server, namespace, open_store, tmp_path) -> None:
    store = open_store(FeatureStoreConfig(redis_url=server.url, namespace=namespace, default_ttl=None))
    store.write_features("u:1", {"a": 1.0, "b": "x"}, source="job", lineage={"producer": "p"})
    store.write_features("v:1", {"a": 2.0})
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    with pytest.raises(FeatureStoreError, match="other files than an offline history"):
        store.export_history(tmp_path / "used")
    seen = []
    report = store.export_history(tmp_path / "a", features=["a"], progress=lambda done, total: seen.append((done, total)))
    assert (report.entities, report.versions, report.files) == (2, 2, 1) and seen == [(2, 2)]
    frame = history(tmp_path / "a")
    assert sorted(frame.entity) == ["u:1", "v:1"] and set(frame.feature) == {"a"}
    row = frame[frame.entity == "u:1"].iloc[0]
    assert json.loads(row.lineage) == {"source": "job", "producer": "p"} and row.kind == "version" and row.write_id
    assert store.export_history(tmp_path / "b", entity_type="v").versions == 1


def test_a_log_turned_on_late_starts_from_a_snapshot(server, namespace, open_store, tmp_path) -> None:
    """Redis kept 2 versions of each feature when the log was turned on: a snapshot into the
    drained history gives it that past (and says where Redis had trimmed), the log the rest; the
    join over both answers as the online join, counting twice-held versions once."""
    before = open_store(FeatureStoreConfig(redis_url=server.url, namespace=namespace, max_versions=2, default_ttl=None))
    after = logging_store(open_store, server.url, namespace, max_versions=2)
    entities = [f"u:{i}" for i in range(4)]
    models = {e: Model() for e in entities}

    def write(store: Any, entity: str, value: float, day: float) -> None:
        store.write_features(entity, {"x": value}, event_time=day * 86_400.0)
        models[entity].add("x", day * 86_400.0, False, value)

    for day in range(1, 5):
        for i, e in enumerate(entities):
            write(before, e, float(day * 10 + i), day)
    write(after, "u:0", -1.0, 5)  # logged, and then in the snapshot too
    after.export_history(tmp_path)
    write(after, "u:1", -2.0, 6)  # trims the version of day 3 online, which the snapshot keeps
    write(after, "u:2", -3.0, 2.5)  # a late event
    after.delete_features("u:3")
    models["u:3"].versions.clear()
    write(after, "u:3", -4.0, 0.5)  # after a delete: its past is gone
    with Drainer(after, tmp_path, settle=0) as drainer:
        drainer.drain_once()
    times = [0.4, 1.5, 2.6, 3.5, 4.5, 5.5, 6.5]
    labels = pd.DataFrame({"entity_id": [e for e in entities for _ in times],
                           "event_timestamp": [t * 86_400.0 for _ in entities for t in times]})
    online = after.get_historical_features(labels, ["x"], mask=True)
    offline = after.get_historical_features(labels, ["x"], mask=True, source=tmp_path)
    beyond = offline["x__beyond_retention"]
    assert (beyond <= online["x__beyond_retention"]).all()  # it knows at least what Redis knows
    for (entity, t), value, unknown in zip(zip(labels.entity_id, labels.event_timestamp), offline["x"], beyond):
        found, truth = models[entity].at("x", t)
        if unknown:
            assert pd.isna(value)
        else:
            assert (value == truth) if found else pd.isna(value), (entity, t / 86_400, value, truth)
    known = ~online["x__beyond_retention"]
    pd.testing.assert_series_equal(offline["x"][known], online["x"][known])
    assert beyond.any() and (beyond < online["x__beyond_retention"]).any()  # (the data has both cases)
    # Online, with the cells Redis cannot tell filled from the offline history: the same frame.
    filled = after.get_historical_features(labels, ["x"], mask=True, fill_from=tmp_path)
    pd.testing.assert_frame_equal(filled, offline)
    assert filled.attrs["beyond_retention"] == {"x": int(beyond.sum())}
    slow = open_store(after.config, "async")
    pd.testing.assert_frame_equal(slow.get_historical_features(labels, ["x"], fill_from=tmp_path),
                                  offline.drop(columns=["x__beyond_retention"]))
    table = after.get_historical_features(labels, ["x"], fill_from=tmp_path, format="arrow")
    assert table.column("x").to_pylist() == [None if pd.isna(v) else v for v in offline["x"]]


def test_the_history_commands(server, namespace, open_store, tmp_path, capsys) -> None:
    from fsredis.cli import main

    store = logging_store(open_store, server.url, namespace)
    for day in range(3):
        store.write_features("u:1", {"a": float(day)}, event_time=86_400.0 * (day + 1))
    common = ["--redis-url", server.url, "--namespace", namespace]
    assert main(["info", *common]) == 0
    assert "log:      3 change-log entries waiting for fsredis drain in 1 streams" in capsys.readouterr().out
    assert main(["drain", *common, "--out", str(tmp_path / "h"), "--once", "--settle", "0"]) == 0
    assert "3 entries" in capsys.readouterr().out
    assert main(["export-history", *common, "--out", str(tmp_path / "s"), "--no-progress"]) == 0
    assert "1 entities, 3 rows" in capsys.readouterr().out
    labels = tmp_path / "labels.csv"
    labels.write_text("entity_id,event_timestamp\nu:1,1970-01-02T12:00:00+00:00\nu:1,1970-01-03T12:00:00Z\n")
    for option, source in (("--source", "h"), ("--source", "s"), ("--fill-from", "h")):
        out = tmp_path / f"train-{source}.csv"
        assert main(["training-set", str(labels), "--features", "a", "--out", str(out), option, str(tmp_path / source),
                     "--no-progress", *(common if option == "--fill-from" else [])]) == 0
        assert list(pd.read_csv(out)["a"]) == [0.0, 1.0]


# -- the sidecar's drainer --------------------------------------------------------------------


async def test_the_sidecar_drains_and_a_second_one_takes_over(aiohttp_client, server, namespace, tmp_path) -> None:
    import asyncio

    from fsredis_server import create_app
    from tests.test_server import ready, settings_for

    def settings() -> Any:
        made = settings_for(server, namespace, drain_dir=str(tmp_path), drain_interval=0.05, drain_settle=0)
        made.store.change_log = True
        return made

    async def drained(rows: int) -> None:
        for _ in range(400):
            if (tmp_path / "feature=x").exists() and len(history(tmp_path)) >= rows:
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"the history did not reach {rows} rows")

    first = await aiohttp_client(create_app(settings()))
    second = await aiohttp_client(create_app(settings()))
    await ready(first)
    await ready(second)
    for i in range(5):
        assert (await first.put(f"/v1/features/u:{i}", json={"features": {"x": i}})).status == 200
    await drained(5)
    metrics = [await (await c.get("/metrics")).text() for c in (first, second)]
    entries = [float(re.search(r"^fsredis_drain_entries_total (\S+)$", m, re.M).group(1)) for m in metrics]
    assert sorted(entries) == [0.0, 5.0]  # one of them holds the directory
    holder, other = (first, second) if entries[0] else (second, first)
    await holder.close()  # it stops; the other takes over
    for i in range(5, 8):
        assert (await other.put(f"/v1/features/u:{i}", json={"features": {"x": i}})).status == 200
    await drained(8)
    assert sorted(history(tmp_path).number) == [float(i) for i in range(8)]
