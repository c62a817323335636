"""The schema registry against real servers: enforcement inside the Lua write, for every client."""

from __future__ import annotations

import subprocess
import threading
from datetime import datetime, timezone
from pathlib import Path

import msgpack
import numpy as np
import pytest

from fsredis import (
    FeatureDefinition,
    FeatureStore,
    FeatureStoreConfig,
    NotFound,
    Registry,
    SchemaError,
    ValidationError,
)
from fsredis.keys import entity_keys
from tests.conftest import entity_keys_in
from tests.test_cli import cli_for

ROOT = Path(__file__).resolve().parent.parent

DEFINITIONS = [
    {"name": "count", "dtype": "int", "min": 0, "max": 100},
    {"name": "size", "dtype": "int", "allowed": [1, 2, 3]},
    {"name": "price", "dtype": "float", "min": 0.5, "max": 10.0},
    {"name": "color", "dtype": "string", "allowed": ["red", "green"]},
    {"name": "title", "dtype": "string", "max_length": 3},
    {"name": "flag", "dtype": "bool"},
    {"name": "maybe", "dtype": "float", "nullable": True},
    {"name": "seen", "dtype": "timestamp"},
    {"name": "vec", "dtype": "embedding", "dim": 4},
    {"name": "half", "dtype": "embedding", "dim": 2, "precision": "float16"},
    {"name": "ids", "dtype": "list", "items": "int", "min": 1, "max_length": 2},
    {"name": "words", "dtype": "list", "items": "string", "allowed": ["a", "b"]},
]
NOW = datetime(2026, 1, 2, tzinfo=timezone.utc)

# feature -> (accepted values, [(rejected value, rule)]): each rule at its boundary.
CASES = {
    "count": ([0, 100], [(-1, "min"), (101, "max"), (1.0, "dtype"), (True, "dtype"), ("1", "dtype"), (None, "nullable")]),
    "size": ([1, 3], [(4, "allowed"), (0, "allowed")]),
    "price": ([0.5, 10.0, 1], [(0.49999, "min"), (10.000001, "max"), ([1.0], "dtype")]),
    "color": (["red", "green"], [("Red", "allowed"), ("", "allowed"), (1, "dtype")]),
    "title": (["abc", "ééé", ""], [("abcd", "max_length"), ("éééé", "max_length")]),
    "flag": ([True, False], [(1, "dtype"), ("true", "dtype")]),
    "maybe": ([None, 2.5], [("x", "dtype")]),
    "seen": ([NOW], [(1767312000, "dtype")]),
    "vec": ([np.ones(4, np.float32)], [(np.ones(3, np.float32), "dim"), (np.ones(5, np.float32), "dim"),
                                       (np.ones(4, np.float16), "dtype"), ([1.0, 1.0, 1.0, 1.0], "dtype")]),
    "half": ([np.ones(2, np.float16)], [(np.ones(2, np.float32), "dtype"), (np.ones(4, np.float16), "dim")]),
    "ids": ([[1, 2], [], [3.0]], [([1, 2, 3], "max_length"), ([0], "min"), ([1.5], "items"), (["1"], "items"),
                                  ([True], "items"), ([None], "items"), (5, "dtype")]),
    "words": ([["a", "b", "a"]], [(["c"], "allowed"), ([1], "items")]),
}


@pytest.fixture
def registered(store):
    store.register_features("product", DEFINITIONS, author="tests")
    return store


def test_every_rule_accepts_and_refuses_at_its_boundary(registered) -> None:
    store = registered
    for feature, (good, bad) in CASES.items():
        for value in good:
            store.write_features("product:1", {feature: value})
        for value, rule in bad:
            with pytest.raises(ValidationError) as caught:
                store.write_features("product:1", {feature: value})
            assert (caught.value.feature, caught.value.rule) == (feature, rule), (feature, value)
        # Only the accepted writes made versions.
        assert store.get_feature_lineage("product:1", feature)["current_version"] == len(good)


def test_a_mixed_write_is_refused_whole(registered, server, config) -> None:
    store = registered
    store.write_features("product:2", {"count": 1, "color": "red"})
    with pytest.raises(ValidationError) as caught:
        store.write_features("product:2", {"count": 2, "flag": True, "color": "blue", "title": "ok"})
    assert caught.value.feature == "color" and caught.value.rule == "allowed"
    assert '"blue"' in str(caught.value)  # the offending value is named
    assert store.get_features("product:2") == {"count": 1, "color": "red"}
    assert store.get_feature_lineage("product:2", "count")["current_version"] == 1
    assert store.get_feature_lineage("product:2", "flag")["current_version"] == 0


def test_floats_written_as_integers_come_back_as_floats(registered) -> None:
    registered.write_features("product:3", {"price": 2})
    value = registered.get_features("product:3", ["price"])["price"]
    assert value == 2.0 and type(value) is float


def test_entity_types_keep_their_own_keys_and_rules(registered, server, config) -> None:
    store = registered
    store.write_features("user:1", {"count": -5})  # no rules for users
    store.write_features("1", {"count": -6})  # nor for untyped entities
    with pytest.raises(ValidationError):
        store.write_features("product:1", {"count": -7})
    assert store.get_features("user:1") == {"count": -5}
    assert store.get_features("1") == {"count": -6}
    assert store.get_features("product:1") == {}
    keys = {k.decode() for k in entity_keys_in(server, config.namespace)}
    assert {entity_keys(config.namespace, "user:1").entity, entity_keys(config.namespace, "1").entity} <= keys
    assert f"{config.namespace}:user:{{1}}:e" in keys


def test_registered_ttl_replaces_the_default_but_not_the_call(store) -> None:
    store.register_features("session", [
        FeatureDefinition("click", "string", ttl=30),
        FeatureDefinition("profile", "string", ttl="never"),
    ])
    store.write_features("session:1", {"click": "a", "profile": "b", "other": "c"})
    versions = {n: store.get_feature_lineage("session:1", n)["versions"][0] for n in ("click", "profile", "other")}
    assert versions["click"]["expires_at"] - versions["click"]["timestamp"] == pytest.approx(30)
    assert versions["profile"]["expires_at"] is None
    assert versions["other"]["expires_at"] - versions["other"]["timestamp"] == pytest.approx(3600)
    store.write_features("session:1", {"click": "b"}, ttl=5)
    latest = store.get_feature_lineage("session:1", "click")["versions"][0]
    assert latest["expires_at"] - latest["timestamp"] == pytest.approx(5)


def test_strict_namespaces_refuse_unregistered_features(registered) -> None:
    store = registered
    store.set_strict(True)
    for entity, name in (("product:1", "unknown"), ("user:1", "count"), ("1", "count")):
        with pytest.raises(ValidationError) as caught:
            store.write_features(entity, {name: 1})
        assert (caught.value.feature, caught.value.rule) == (name, "unregistered")
    store.write_features("product:1", {"count": 1})
    assert store.get_registry().strict
    store.set_strict(False)
    store.write_features("user:1", {"anything": 1})


def test_the_registry_is_versioned_and_logged(store) -> None:
    assert store.get_registry().version == 0
    store.register_features("product", [FeatureDefinition("a", "int")], author="alice")
    store.register_features("product", [FeatureDefinition("a", "int", min=0), FeatureDefinition("b", "bool")], author="bob")
    assert store.register_features("product", [FeatureDefinition("b", "bool")], author="carol") == []  # no change
    assert store.get_registry().version == 2
    history = store.registry_history()
    assert [(h["version"], h["by"]) for h in history] == [(2, "bob"), (1, "alice")]
    assert [(c["kind"], c["feature"]) for c in history[0]["changes"]] == [("changed", "a"), ("added", "b")]
    assert history[0]["changes"][0]["before"] == {"dtype": "int"}
    assert history[0]["changes"][0]["after"] == {"dtype": "int", "min": 0}
    assert history[0]["at"] >= history[1]["at"] > 1.7e9
    assert store.get_feature_definition("product", "a").min == 0
    assert [d.name for d in store.list_features("product")] == ["a", "b"]
    with pytest.raises(NotFound):
        store.get_feature_definition("product", "zzz")
    assert store.health_check()["registry_version"] == 2
    store.unregister_features("product", ["a"])
    assert [d.name for d in store.list_features()] == ["b"]
    store.write_features("product:1", {"a": -1})  # no longer checked


def test_a_dtype_change_on_a_feature_with_data_needs_force(registered) -> None:
    store = registered
    store.register_features("product", [FeatureDefinition("unused", "int")])
    store.write_features("product:9", {"count": 5})
    with pytest.raises(SchemaError, match=r"product:count \(dtype changes from int to string\)"):
        store.register_features("product", [FeatureDefinition("count", "string")])
    assert store.get_feature_definition("product", "count").dtype == "int"  # nothing changed
    store.register_features("product", [FeatureDefinition("unused", "string")])  # no data: fine
    store.register_features("product", [FeatureDefinition("count", "string")], force=True)
    store.write_features("product:9", {"count": "five"})


def test_rollback_obeys_todays_definition(store) -> None:
    store.write_features("product:4", {"count": -3})
    store.write_features("product:4", {"count": 3})
    store.register_features("product", [FeatureDefinition("count", "int", min=0, ttl="never")])
    with pytest.raises(ValidationError, match="rule=min"):
        store.rollback_feature("product:4", "count", 1)
    assert store.get_features("product:4") == {"count": 3}
    store.write_features("product:4", {"count": 4})
    assert store.rollback_feature("product:4", "count", 2) == 4
    assert store.get_feature_lineage("product:4", "count")["versions"][0]["expires_at"] is None  # registered TTL


def test_other_clients_obey_a_change_at_once(registered, config) -> None:
    with FeatureStore(config) as other:
        other.write_features("product:5", {"count": 1})  # connected, library checked
        registered.register_features("product", [{"name": "count", "dtype": "int", "max": 0}], force=True)
        with pytest.raises(ValidationError, match="rule=max"):
            other.write_features("product:5", {"count": 1})


def test_a_reloaded_library_keeps_enforcing_the_registry(registered, server) -> None:
    with server.client() as client:
        client.function_flush()
        client.script_flush()
    with pytest.raises(ValidationError, match="rule=min"):
        registered.write_features("product:6", {"count": -1})
    registered.write_features("product:6", {"count": 1})


def test_concurrent_registry_changes_all_land_and_are_enforced(server, namespace) -> None:
    config = FeatureStoreConfig(redis_url=server.url, namespace=namespace)
    errors: list[BaseException] = []

    def register(i: int) -> None:
        try:
            with FeatureStore(config) as store:
                for j in range(5):
                    store.register_features("product", [FeatureDefinition(f"f{i}_{j}", "int", min=0)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    with FeatureStore(config) as store:
        registry = store.get_registry()
        assert registry.version == 20 and len(registry.definitions("product")) == 20
        loaded = store.redis.execute_command("FCALL_RO", "fs_registry_version", 0, namespace)
        assert loaded == 20  # the library enforces the newest registry
        with pytest.raises(ValidationError):
            store.write_features("product:1", {"f3_4": -1})


def test_apply_and_diff_a_registry_file(server, namespace) -> None:
    desired = Registry.load(str(ROOT / "features.yaml"))
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        planned = store.diff_registry(desired)
        assert {c.kind for c in planned} == {"added"} and len(planned) == len(desired.definitions())
        assert store.get_registry().version == 0  # a diff changes nothing
        assert store.apply_registry(desired, author="ci") == planned
        assert store.diff_registry(desired) == []
        assert store.apply_registry(desired) == []
        desired.groups["product"].pop("brand")
        desired.groups["user"]["segment"] = FeatureDefinition("segment", "string", allowed=("new", "vip"))
        changes = store.apply_registry(desired)
        assert [(c.kind, c.feature) for c in changes] == [("removed", "brand"), ("changed", "segment")]
        with pytest.raises(ValidationError, match="rule=allowed"):
            store.write_features("user:1", {"segment": "loyal"})
        assert store.get_registry().groups == desired.groups


def test_redis_cli_writes_are_checked_too(server, namespace) -> None:
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        store.register_features("product", DEFINITIONS)
    key = f"{namespace}:product:{{7}}:e"

    def quoted(arg: bytes) -> str:  # redis-cli reads "\xHH" escapes in double quotes from stdin
        return '"' + "".join(f"\\x{b:02x}" for b in arg) + '"'

    def fcall(name: str, value: bytes) -> bytes:
        options = msgpack.packb({"id": "w-" + name, "max_versions": 5, "max_bytes": 1000})
        args = ["FCALL", "fs_write", "1", key, quoted(options), '""', "count", quoted(msgpack.packb(1)), name, quoted(value)]
        result = subprocess.run([cli_for(server), "-p", str(server.port)], input=" ".join(args).encode() + b"\n",
                                capture_output=True, timeout=30)
        return result.stdout + result.stderr

    assert b"FSVALIDATION feature=price rule=min 0.1 is below the minimum 0.5" in fcall("price", msgpack.packb(0.1))
    assert b"FSVALIDATION feature=color rule=allowed" in fcall("color", msgpack.packb("blue"))
    assert b"FSVALIDATION feature=vec rule=dim" in fcall("vec", b"\xc1e4\x00" + bytes(8))
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        assert store.get_features("product:7") == {}  # the valid "count" of each call was not written
