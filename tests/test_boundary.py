"""The boundary holds: a refused call changes nothing, unreadable data is reported typed, the
registry protects itself and the stored data, and every read ends within its deadline."""

from __future__ import annotations

import asyncio
import math
import os
import re
import signal
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from fsredis import (
    AsyncFeatureStore,
    BatchReadError,
    CorruptValue,
    FeatureDefinition,
    FeatureStore,
    FeatureStoreConfig,
    Registry,
    SchemaError,
    StoreUnavailable,
    ValidationError,
    codec,
    limits,
)
from fsredis.keys import entity_keys, registry_keys
from tests.conftest import SERVERS, start_server

LUA_LIMITS = Path(__file__).resolve().parent.parent / "lua" / "lib" / "limits.lua"


def snapshot(client: redis.Redis, namespace: str) -> dict[bytes, Any]:
    """Every key of the namespace: its type, its whole content and its expiry time. (Not DUMP
    alone: a hash in hashtable encoding dumps its fields in an order that rehashing changes.)"""
    return {key: state(client, key) for key in sorted(client.scan_iter(match=f"{namespace}:*"))}


def state(client: redis.Redis, key: bytes | str) -> tuple[Any, ...]:
    kind = client.type(key)
    content: Any
    if kind == b"hash":
        content = client.hgetall(key)
    elif kind == b"zset":
        content = client.zrange(key, 0, -1, withscores=True)
    else:
        content = client.dump(key)
    return kind, content, client.pexpiretime(key)


def fcall(client: redis.Redis, function: str, keys: list[str], *args: Any) -> Any:
    return client.execute_command("FCALL", function, len(keys), *keys, *args)


@pytest.fixture
def loaded(server) -> Any:
    """The server, with the Lua library installed (tests that call it raw need it there)."""
    with FeatureStore(FeatureStoreConfig(redis_url=server.url)) as store:
        store.load_library(only_if_changed=True)
    return server


@pytest.fixture
def seeded(server, namespace) -> Any:
    """An entity with two versions of a few features, and a raw client of the server."""
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        for price in (1.5, 2.5):
            store.write_features("tg:19", {"price": price, "name": "x", "vec": np.ones(4, np.float32)})
    keys = list(entity_keys(namespace, "tg:19"))
    with server.client() as client:
        yield client, keys


def test_limits_agree_with_the_lua_library() -> None:
    lua = dict(re.findall(r"^\s*(\w+) = (\d+),", LUA_LIMITS.read_text(), re.M))
    python = {name.lower(): value for name, value in vars(limits).items() if name.isupper()}
    assert {name: int(value) for name, value in lua.items()} == python


def _write_args(ttl: str = "-1", window: str = "300000", max_versions: str = "5", max_bytes: str = "1024",
                meta: bytes = b"", write_id: str = "w1", name: str = "price", value: bytes = b"\x01") -> list[Any]:
    return [write_id, max_versions, window, max_bytes, meta, name, value, ttl]


NAN32 = codec.EMBEDDING_F32 + np.array([1.0, np.nan], "<f4").tobytes()
INF32 = codec.EMBEDDING_F32 + np.array([np.inf, 1.0], "<f4").tobytes()
INF16 = codec.EMBEDDING_F16 + np.array([1.0, -np.inf], "<f2").tobytes()
REFUSED_WRITES = {
    "ttl 1e300": dict(ttl="1e300"), "ttl inf": dict(ttl="inf"), "ttl 0": dict(ttl="0"), "ttl -2": dict(ttl="-2"),
    "ttl hex": dict(ttl="0x10"), "ttl spaced": dict(ttl=" 5"), "ttl default 1e300": dict(ttl="d1e300"),
    "ttl over 100 years": dict(ttl=str(limits.TTL_MS + 1)), "ttl fraction": dict(ttl="1.5"),
    "window inf": dict(window="inf"), "window negative": dict(window="-1"),
    "window over 7 days": dict(window=str(limits.WINDOW_MS + 1)),
    "max_versions inf": dict(max_versions="inf"), "max_versions too many": dict(max_versions="10001"),
    "max bytes 0": dict(max_bytes="0"), "max bytes inf": dict(max_bytes="inf"),
    "empty write id": dict(write_id=""), "long write id": dict(write_id="w" * 257),
    "meta not a map": dict(meta=b"\x01"), "meta int key": dict(meta=b"\x81\x01\x02"),
    "meta bin": dict(meta=b"\x81\xa1a\xc4\x01x"), "meta bad utf-8": dict(meta=b"\x81\xa1a\xa2\xff\xfe"),
    "meta too deep": dict(meta=b"\x81\xa1a" + b"\x91" * 6 + b"\x01"), "meta trailing": dict(meta=b"\x80\x01"),
    "meta truncated map": dict(meta=b"\x82\xa1a\xa1b"), "meta truncated header": dict(meta=b"\xde\x00"),
    "name #min": dict(name="#min"), "name with #": dict(name="a#1"), "empty name": dict(name=""),
    "invalid utf-8": dict(value=b"\xa2\xff\xfe"), "surrogate": dict(value=b"\xa3\xed\xa0\x80"),
    "overlong": dict(value=b"\xa2\xc0\xaf"), "map": dict(value=b"\x81\xa1a\x01"),
    "map with int keys": dict(value=b"\x81\x01\x02"), "bin": dict(value=b"\xc4\x01x"),
    "ext": dict(value=b"\xd4\x01\x00"), "nan": dict(value=b"\xcb\x7f\xf8" + bytes(6)),
    "float32 inf": dict(value=b"\xca\x7f\x80\x00\x00"), "list of maps": dict(value=b"\x91\x80"),
    "nested list": dict(value=b"\x91\x91\x01"), "truncated string": dict(value=b"\xa5ab"),
    "truncated list": dict(value=b"\xdc\xff\xff\x01"), "two objects": dict(value=b"\x01\x02"),
    "empty value": dict(value=b""), "embedding nan": dict(value=NAN32), "embedding inf": dict(value=INF32),
    "float16 inf": dict(value=INF16), "embedding truncated": dict(value=codec.EMBEDDING_F32 + b"\x00\x00"),
    "unknown tag": dict(value=b"\xc1z\x00\x00"), "0xC1 alone": dict(value=b"\xc1"),
}


@pytest.mark.parametrize("case", sorted(REFUSED_WRITES))
def test_a_refused_write_changes_no_key(seeded, namespace, case) -> None:
    client, keys = seeded
    before = snapshot(client, namespace)
    with pytest.raises(redis.ResponseError) as refused:
        fcall(client, "fs_write", keys, *_write_args(**REFUSED_WRITES[case]))
    assert re.match(r"FS(ARG|VALIDATION) ", str(refused.value)), refused.value
    assert snapshot(client, namespace) == before


def test_refused_key_shapes_change_no_key(seeded, namespace) -> None:
    client, keys = seeded
    other = list(entity_keys(namespace, "tg:20"))
    client.set(other[0], "not a hash")
    before = snapshot(client, namespace)
    for shape in (keys[:3], keys + [keys[0]], [keys[0], keys[2], keys[1], keys[3]], [keys[0], other[1], *keys[2:]],
                  [k.replace("}:", "}:z") for k in keys], other, ["plain", *keys[1:]]):
        for function, args in (("fs_write", _write_args()), ("fs_delete", []),
                               ("fs_rollback", ["price", "1", "w9", "5", "1000", "-1", "-1", ""])):
            with pytest.raises(redis.ResponseError, match="^FSARG "):
                fcall(client, function, shape, *args)
    assert snapshot(client, namespace) == before


def test_refused_rollbacks_and_deletes_change_no_key(seeded, namespace) -> None:
    client, keys = seeded
    before = snapshot(client, namespace)
    for args in (["price", "inf", "w9", "5", "1000", "-1", "-1", ""], ["price", "1", "w9", "inf", "1000", "-1", "-1", ""],
                 ["price", "1", "w9", "5", "1000", "1e300", "-1", ""], ["price", "1", "w9", "5", "1000", "-1", "-1", "\x01"],
                 ["price#1", "1", "w9", "5", "1000", "-1", "-1", ""], ["price", "1", "w9", "5", "1000", "-1", "-1"],
                 ["price", "9", "w9", "5", "1000", "-1", "-1", ""]):
        with pytest.raises(redis.ResponseError, match="^FS(ARG|VALIDATION|NOTFOUND) "):
            fcall(client, "fs_rollback", keys, *args)
    for names in (["#keep"], ["price#1"], ["price", "#min"], [""]):
        with pytest.raises(redis.ResponseError, match="^FSARG "):
            fcall(client, "fs_delete", keys, *names)
    assert snapshot(client, namespace) == before


def test_reads_refuse_reserved_names_and_unbounded_limits(seeded) -> None:
    client, keys = seeded
    for function, call_keys, args in (
        ("fs_get", keys[:2], ["#min"]), ("fs_get", keys[:2], ["price#1"]), ("fs_get_batch", keys[:2], ["#min"]),
        ("fs_get_batch", [keys[0], keys[0]], ["price"]), ("fs_lineage", keys[:3], ["price", "inf"]),
        ("fs_lineage", keys[:3], ["price", str(limits.MAX_VERSIONS + 1)]), ("fs_lineage", keys[:3], ["price#1", "5"]),
        ("fs_lineage", keys[:3], ["price"]), ("fs_get", [keys[0], keys[2]], ["price"]),
    ):
        with pytest.raises(redis.ResponseError, match="^FSARG "):
            client.execute_command("FCALL_RO", function, len(call_keys), *call_keys, *args)


def test_a_read_of_a_key_of_another_type_is_a_typed_refusal(loaded, namespace) -> None:
    server = loaded
    keys = list(entity_keys(namespace, "tg:21"))
    with server.client() as client:
        client.set(keys[0], "x")
        with pytest.raises(redis.ResponseError, match="^FSARG .*not an fsredis key"):
            client.execute_command("FCALL_RO", "fs_get_batch", 2, keys[0], keys[1], "a")


def test_the_python_api_refuses_before_sending(server, namespace) -> None:
    config = FeatureStoreConfig(redis_url=server.url, namespace=namespace)
    with FeatureStore(config) as store, server.client() as client:
        for ttl in (1e300, math.inf, limits.TTL_MS / 1000 + 1):
            with pytest.raises(ValidationError, match="rule=ttl"):
                store.write_features("tg:19", {"a": 1}, ttl=ttl)
        with pytest.raises(ValidationError, match="rule=write_id"):
            store.write_features("tg:19", {"a": 1}, write_id="w" * 300)
        with pytest.raises(ValidationError, match="rule=limit"):
            store.get_feature_lineage("tg:19", "a", limit=limits.MAX_VERSIONS + 1)
        assert list(client.scan_iter(match=f"{namespace}:*")) == []
    for bad in (dict(max_versions=limits.MAX_VERSIONS + 1), dict(dedup_window=8 * 86400.0),
                dict(max_value_bytes=limits.VALUE_BYTES + 1), dict(read_timeout=0), dict(write_timeout=math.inf)):
        with pytest.raises(ValueError):
            FeatureStoreConfig(**bad)


# -- unreadable data -----------------------------------------------------------------------------

POISON = {
    "invalid utf-8": b"\xa2\xff\xfe", "map": b"\x81\xa1a\x01", "map with int keys": b"\x81\x01\x02",
    "ext": b"\xd4\x01\x00", "unknown tag": b"\xc1z\x00\x00", "truncated": b"\xa5ab",
    "truncated embedding": codec.EMBEDDING_F32 + b"\x00", "two objects": b"\x01\x02", "empty": b"",
}


@pytest.mark.parametrize("poison", sorted(POISON))
def test_an_unreadable_value_is_a_typed_error_and_spares_the_others(store, server, namespace, poison) -> None:
    store.write_features("tg:1", {"a": 1, "b": "ok"})
    store.write_features("tg:2", {"a": 2, "b": "fine"})
    with server.client() as client:  # written around the library, as an old build or a raw HSET could
        client.hset(entity_keys(namespace, "tg:2").values, "b", POISON[poison])
    with pytest.raises(CorruptValue) as caught:
        store.get_features("tg:2", ["a", "b"])
    assert (caught.value.entity, caught.value.feature) == ("tg:2", "b")
    with pytest.raises(CorruptValue):
        store.get_features("tg:2")
    with pytest.raises(BatchReadError) as batch:
        store.get_features_batch(["tg:1", "tg:2", "tg:3"], ["a", "b"])
    assert batch.value.results == {"tg:1": {"a": 1, "b": "ok"}, "tg:2": {"a": 2}, "tg:3": {}}
    assert set(batch.value.errors) == {"tg:2"} and batch.value.errors["tg:2"].feature == "b"
    assert store.get_features_batch(["tg:1"], ["a", "b"]) == {"tg:1": {"a": 1, "b": "ok"}}


def test_an_unreadable_history_record_is_a_typed_error(store, server, namespace) -> None:
    store.write_features("tg:5", {"a": 1})
    history = entity_keys(namespace, "tg:5").history
    with server.client() as client:
        client.hset(history, "a#1", b"\x05\x00")
    with pytest.raises(CorruptValue) as caught:
        store.get_feature_lineage("tg:5", "a")
    assert caught.value.rule == "record" and caught.value.entity == "tg:5"
    with server.client() as client:
        record = client.hget(history, "a#1")
        client.hset(history, "a#1", struct.pack("<I", 40) + bytes(36) + b"\xa1")  # a record of a broken value
    with pytest.raises(CorruptValue):
        store.get_feature_lineage("tg:5", "a")
    with pytest.raises(CorruptValue, match="rule=record"):  # the rollback refuses it, typed, nothing written
        store.rollback_feature("tg:5", "a", 1)
    del record


def test_a_counter_written_around_the_library_is_refused_typed(store, server, namespace) -> None:
    store.write_features("tg:6", {"a": 1})
    keys = entity_keys(namespace, "tg:6")
    with server.client() as client:
        client.hset(keys.history, "a", "inf")  # would make fs_lineage count down from infinity
        before = snapshot(client, namespace)
        with pytest.raises(CorruptValue, match="rule=counter"):
            store.get_feature_lineage("tg:6", "a")
        for call in (lambda: store.write_features("tg:6", {"a": 2}), lambda: store.rollback_feature("tg:6", "a", 1)):
            with pytest.raises(CorruptValue, match="rule=counter"):
                call()
        assert snapshot(client, namespace) == before
    assert store.delete_features("tg:6", ["a"]) == 1  # deleting is the way out


def test_a_deadline_passing_between_replies_drops_the_connection(server) -> None:
    from fsredis.deadline import DEADLINE, DeadlinePassed

    with FeatureStore(FeatureStoreConfig(redis_url=server.url)) as store:
        pool = store.redis.connection_pool
        connection = pool.get_connection()
        try:
            connection.send_command("ECHO", "first")
            connection.send_command("ECHO", "second")
            assert connection.read_response() == b"first"
            token = DEADLINE.set(time.monotonic() - 1)
            try:
                with pytest.raises(DeadlinePassed):
                    connection.read_response()
            finally:
                DEADLINE.reset(token)
            assert connection._sock is None  # dropped: its next user never reads "second"
        finally:
            pool.release(connection)
        assert store.redis.echo("third") == b"third"


# -- the registry ----------------------------------------------------------------------------------


def test_definitions_the_lua_library_stores_are_readable_by_python(loaded, namespace) -> None:
    server = loaded
    keys = list(registry_keys(namespace))
    readable = ['{"dtype": "embedding", "dim": 3.0, "nullable": null, "tags": {}}', '{"dtype": "int", "allowed": [1.0, 2]}',
                '{"dtype": "embedding", "dim": 1e1, "description": null}', '{"dtype": "string", "max_length": 2.0}']
    with server.client() as client:
        try:
            for i, definition in enumerate(readable):
                fcall(client, "fs_registry_put", keys, namespace, "-1", "me", "[]", "0", f"p:f{i}", definition)
            registry = Registry.from_hash(client.hgetall(keys[0]))
            assert registry.get("p", "f0").dim == 3 and registry.get("p", "f1").allowed == (1, 2)
            for definition in ('{"dtype": "embedding", "dim": 0x10}', '{"dtype": "float", "min": -Infinity}',
                               '{"dtype": "float", "max": nan}'):
                with pytest.raises(redis.ResponseError, match="^FSSCHEMA "):
                    fcall(client, "fs_registry_put", keys, namespace, "-1", "me", "[]", "0", "p:g", definition)
        finally:
            client.delete(keys[0], keys[1])
            client.srem(keys[2], namespace)




def test_fs_registry_put_checks_definitions_as_featuredefinition_does(loaded, namespace) -> None:
    server = loaded
    keys = list(registry_keys(namespace))
    with server.client() as client:
        for field, definition in (
            ("p:a", '{"dtype": "decimal"}'), ("p:a", '{"dtype": "int", "dim": 3}'), ("p:a", "{"),
            ("p:a", '{"dtype": "embedding"}'), ("p:a", '{"dtype": "int", "min": 5, "max": 1}'),
            ("p:a", '{"dtype": "string", "allowed": [1]}'), ("p:a", '{"dtype": "int", "colour": 1}'),
            ("p:#a", '{"dtype": "int"}'), ("bad group:a", '{"dtype": "int"}'), ("p:a", '{"dtype": "int", "ttl": -1}'),
            ("p:a", '{"dtype": "list"}'), ("p:a", '{"dtype": "int", "nullable": 1}'),
        ):
            with pytest.raises(redis.ResponseError, match="^FSSCHEMA "):
                fcall(client, "fs_registry_put", keys, namespace, "-1", "me", "[]", "0", field, definition)
            with pytest.raises(SchemaError):  # the Python rules give the same verdict
                Registry.from_hash({field.encode(): definition.encode()})
        for args in ((namespace, "inf", "me", "[]", "0"), (namespace, "-1", "me", "not json", "0"),
                     ("other", "-1", "me", "[]", "0"), (namespace, "-1", b"\xff", "[]", "0")):
            with pytest.raises(redis.ResponseError, match="^FSARG "):
                fcall(client, "fs_registry_put", keys, *args)
        assert client.exists(keys[0], keys[1]) == 0


def test_a_broken_stored_definition_stops_no_one(server, namespace) -> None:
    keys = registry_keys(namespace)
    config = FeatureStoreConfig(redis_url=server.url, namespace=namespace)
    with FeatureStore(config) as store, server.client() as client:
        store.register_features("p", [FeatureDefinition("ok", "int")])
        client.hset(keys.definitions, "p:bad", '{"dtype": "decimal"}')  # around fs_registry_put
        try:
            client.function_flush()  # every client must now compile the registries again
            with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace + "x")) as other:
                other.write_features("q:1", {"a": 1})  # another namespace loads the library
            store.write_features("p:1", {"ok": 1})
            with pytest.raises(ValidationError, match="rule=definition"):
                store.write_features("p:1", {"bad": 1})
            health = store.health_check()
            assert health["status"] == "degraded" and "p:bad" in health["registry_errors"]
            store.register_features("p", [FeatureDefinition("bad", "float")])  # replacing it mends it
            store.write_features("p:1", {"bad": 1.5})
            assert store.health_check()["status"] == "healthy"
        finally:
            client.delete(keys.definitions, keys.log)
            client.srem(keys.namespaces, namespace)


def test_a_registry_change_is_checked_against_stored_values(server, namespace) -> None:
    config = FeatureStoreConfig(redis_url=server.url, namespace=namespace)
    with FeatureStore(config) as store:
        for i in range(7):
            store.write_features(f"doc:{i}", {"vec": np.ones(8, np.float32), "n": i})
        with pytest.raises(SchemaError, match=r"doc:vec: 7 value\(s\), e\.g\. doc:\d: feature=vec rule=dim"):
            store.register_features("doc", [FeatureDefinition("vec", "embedding", dim=4)])
        seen: list[tuple[str, int, int]] = []
        with pytest.raises(SchemaError, match=r"doc:n: 2 value\(s\)"):
            store.register_features("doc", [FeatureDefinition("n", "int", max=4)], progress=lambda *a: seen.append(a))
        assert seen and seen[-1] == ("doc:n", 7, 7)
        store.register_features("doc", [FeatureDefinition("n", "int", max=99)], sample=3)  # 3 entities read
        assert store.get_feature_definition("doc", "n").max == 99
        store.register_features("doc", [FeatureDefinition("n", "int", max=4)], force=True)
        store.register_features("doc", [FeatureDefinition("vec", "embedding", dim=8)])  # fits: accepted


# -- deadlines ---------------------------------------------------------------------------------------


@pytest.fixture(params=SERVERS)
def frozen(request) -> Any:
    """A private server, and a function that freezes it (SIGSTOP) until the test ends."""
    server = start_server(request.param)
    stopped = []

    def freeze() -> None:
        os.kill(server.pid, signal.SIGSTOP)
        stopped.append(True)

    def thaw() -> None:
        if stopped:
            os.kill(server.pid, signal.SIGCONT)
            stopped.clear()

    try:
        yield server, freeze, thaw
    finally:
        thaw()
        server.stop()


def _timed(call: Any) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the test inspects it
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


def test_a_frozen_server_fails_reads_within_read_timeout(frozen, client_kind) -> None:
    from tests.conftest import make_store

    server, freeze, thaw = frozen
    config = FeatureStoreConfig(redis_url=server.url, read_timeout=0.5, write_timeout=1.0, retries=10)
    store = make_store(client_kind, config)
    try:
        store.write_features("e:1", {"a": 1})
        freeze()
        for call, budget in ((lambda: store.get_features("e:1", ["a"]), 0.5),
                             (lambda: store.get_features_batch(["e:1", "e:2"], ["a"]), 0.5),
                             (lambda: store.get_feature_lineage("e:1", "a"), 0.5),
                             (lambda: store.get_features("e:1", ["a"], timeout=0.2), 0.2),
                             (lambda: store.write_features("e:1", {"a": 2}), 1.0)):
            took, error = _timed(call)
            assert isinstance(error, StoreUnavailable), error
            # Within the deadline (+10% and scheduling slack), never socket_timeout x retries (55 s).
            assert budget <= took + 0.05 and took < budget * 1.1 + 0.3, (took, budget)
        assert store.health_check()["status"] == "unhealthy"
        thaw()
        assert store.get_features("e:1", ["a"])["a"] in (1, 2)  # recovered by itself
        store.write_features("e:1", {"a": 3})
        assert store.get_features("e:1", ["a"]) == {"a": 3}
    finally:
        thaw()
        store.close()


async def test_deadlines_do_not_leak_into_other_tasks(frozen) -> None:
    server, freeze, thaw = frozen
    async with AsyncFeatureStore(FeatureStoreConfig(redis_url=server.url, read_timeout=0.3)) as store:
        await store.write_features("e:1", {"a": 1})
        freeze()
        results = await asyncio.gather(*(store.get_features("e:1", ["a"]) for _ in range(20)), return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results)
        thaw()
        assert await store.get_features("e:1", ["a"]) == {"a": 1}
