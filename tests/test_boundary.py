"""The boundary holds: a refused call changes nothing, unreadable data is reported typed, the
registry protects itself and the stored data, and every read ends within its deadline.

Storage format 2: one hash per entity (``<ns>:[<type>:]{<id>}:e``); each current value carries a
24-byte head, ``<name>#`` is its version index, ``#<seq>`` the record of a write, ``#`` the entity
header and ``#w`` the write-id log (docs/storage_format.md). The helpers below build those fields
byte by byte, so the tests can damage them as a raw ``HSET`` (an old build, a bad restore) would."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import re
import signal
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pandas as pd
import pytest
import redis

from fsredis import (
    AsyncFeatureStore,
    BatchReadError,
    BatchWriteError,
    CorruptValue,
    FeatureDefinition,
    FeatureStore,
    FeatureStoreConfig,
    FeatureStoreError,
    Registry,
    SchemaError,
    StoreUnavailable,
    ValidationError,
    codec,
    limits,
)
from fsredis.keys import entity_keys, registry_keys, v1_keys
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


def pack(obj: Any, bin_type: bool = False) -> bytes:
    """msgpack as the options and meta arguments take it (no bin type, unless asked for)."""
    return msgpack.packb(obj, use_bin_type=bin_type)  # type: ignore[no-any-return]


def int48(n: int) -> bytes:
    return n.to_bytes(6, "little", signed=True)


def head(expires: int = 0, event: int = 0, version: int = 1, seq: int = 0) -> bytes:
    """The 24-byte head before a current value: expiry ms (0: none), event ms, version, record."""
    return int48(expires) + int48(event) + int48(version) + int48(seq)


NO_CUT = -(2**47)
"""An index's cut while no version was cut from it."""


def index(counter: int, *entries: tuple[int, int, int, int, int], cut: int | None = NO_CUT) -> bytes:
    """A version index ``<name>#``: the counter and the newest event time cut (None: an index of
    before cuts were kept, with a 6-byte header), then (version, event, expiry, made by, held in)."""
    header = int48(counter) + (b"" if cut is None else int48(cut))
    return header + b"".join(int48(n) for entry in entries for n in entry)


def record(refs: int, time_ms: int, write_id: bytes, meta: bytes, held: dict[bytes, bytes | None]) -> bytes:
    """The record ``#<seq>`` of a write; a held value None means "equal to what this write stored"."""
    out = struct.pack("<I", refs) + int48(time_ms) + struct.pack("<H", len(write_id)) + write_id
    out += struct.pack("<I", len(meta)) + meta + struct.pack("<I", len(held))
    for name, value in held.items():
        out += bytes((len(name),)) + name
        out += b"\xff\xff\xff\xff" if value is None else struct.pack("<I", len(value)) + value
    return out


def entity_header(seq: int, untimed: int, earliest: int) -> bytes:
    """The entity header ``#``: int48 seq, uint32 count of values without expiry, int48 earliest expiry."""
    return int48(seq) + struct.pack("<I", untimed) + int48(earliest)


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


# -- a refused call changes no key -------------------------------------------------------------------

WRITE_OPTIONS: dict[str, Any] = {"id": "w1", "max_versions": 5, "dedup_ms": 300000, "max_bytes": 1024}
"""The options of the write that each refused case breaks in one place (unbroken, it is accepted:
test_the_unbroken_writes_are_accepted)."""
DROP = object()
"""An override that leaves an option out."""
_PARTS = ("options", "meta", "name", "value", "pairs")
ARG = "FSARG"


def _invalid(feature: str, rule: str) -> str:
    return f"FSVALIDATION feature={feature} rule={rule}"


def _split(over: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The options map of a case, and its other parts (options: a function of the map that
    makes the raw bytes; meta; name and value of the first feature, None: no feature; pairs)."""
    options, parts = dict(WRITE_OPTIONS), {}
    for key, value in over.items():
        if key in _PARTS:
            parts[key] = value
        elif value is DROP:
            options.pop(key, None)
        else:
            options[key] = value
    return options, parts


def _options(options: dict[str, Any], parts: dict[str, Any]) -> bytes:
    make = parts.get("options")
    return make(options) if make is not None else pack(options)


def _pairs(parts: dict[str, Any]) -> list[Any]:
    if parts.get("name", "price") is None:
        return list(parts.get("pairs", []))
    return [parts.get("name", "price"), parts.get("value", b"\x01"), *parts.get("pairs", [])]


def _write_args(**over: Any) -> list[Any]:
    """The ARGV of fs_write: options, meta, then name, value pairs."""
    options, parts = _split(over)
    return [_options(options, parts), parts.get("meta", b""), *_pairs(parts)]


def _block(write_id: str = "b1", event: Any = "", pairs: Any = ("price", b"\x01"), count: Any = None) -> list[Any]:
    """One entity's block of fs_write_batch: write id, event time, n, n name/value pairs."""
    return [write_id, event, len(pairs) // 2 if count is None else count, *pairs]


BATCH_OPTIONS = {key: value for key, value in WRITE_OPTIONS.items() if key != "id"}
NAN32 = codec.EMBEDDING_F32 + np.array([1.0, np.nan], "<f4").tobytes()
INF32 = codec.EMBEDDING_F32 + np.array([np.inf, 1.0], "<f4").tobytes()
INF16 = codec.EMBEDDING_F16 + np.array([1.0, -np.inf], "<f2").tobytes()
REFUSED_WRITES: dict[str, tuple[str, dict[str, Any]]] = {
    # the options map (ARGV[1])
    "options not a map": (ARG, dict(options=lambda o: b"\x01")),
    "options of format 1": (ARG, dict(options=lambda o: b"w1")),  # format 1 began with the write id
    "options int key": (ARG, dict(options=lambda o: b"\x81\x01\x02")),
    "options bad utf-8 key": (ARG, dict(options=lambda o: b"\x81\xa2\xff\xfe\x01")),
    "options bin": (ARG, dict(options=lambda o: pack({**o, "scalar_ttl": b"\x01"}, bin_type=True))),
    "options ext": (ARG, dict(options=lambda o: pack({**o, "ttl": msgpack.ExtType(1, b"x")}))),
    "options trailing": (ARG, dict(options=lambda o: pack(o) + b"\x01")),
    "options truncated": (ARG, dict(options=lambda o: pack(o)[:-1])),
    "options over 64 KiB": (ARG, dict(options=lambda o: pack({**o, "ttl": {"p" * 70000: 5}}))),
    "unknown option": (ARG, dict(colour=1)),
    "option d of format 1": (ARG, dict(d=60000)),
    "no write id": (ARG, dict(id=DROP)), "empty write id": (ARG, dict(id="")),
    "long write id": (ARG, dict(id="w" * 257)), "write id not a string": (ARG, dict(id=5)),
    "write id bad utf-8": (ARG, dict(id=b"\xff\xfe")),
    "event_time over": (ARG, dict(event_time=limits.TIME_MS + 1)),
    "event_time under": (ARG, dict(event_time=-limits.TIME_MS - 1)),
    "event_time fraction": (ARG, dict(event_time=1.5)), "event_time text": (ARG, dict(event_time="5")),
    "event_time inf": (ARG, dict(event_time=math.inf)), "event_time nan": (ARG, dict(event_time=math.nan)),
    "event_time 2**64-1": (ARG, dict(event_time=2**64 - 1)),
    "max_versions inf": (ARG, dict(max_versions=math.inf)), "max_versions too many": (ARG, dict(max_versions=10001)),
    "max_versions negative": (ARG, dict(max_versions=-1)), "max_versions fraction": (ARG, dict(max_versions=1.5)),
    "max_versions text": (ARG, dict(max_versions="5")),
    "dedup_ms inf": (ARG, dict(dedup_ms=math.inf)), "dedup_ms negative": (ARG, dict(dedup_ms=-1)),
    "dedup_ms over 7 days": (ARG, dict(dedup_ms=limits.WINDOW_MS + 1)), "dedup_ms text": (ARG, dict(dedup_ms="1")),
    "max_bytes 0": (ARG, dict(max_bytes=0)), "max_bytes inf": (ARG, dict(max_bytes=math.inf)),
    "max_bytes over 512 MiB": (ARG, dict(max_bytes=limits.VALUE_BYTES + 1)),
    "ttl 1e300": (ARG, dict(ttl=1e300)), "ttl inf": (ARG, dict(ttl=math.inf)), "ttl nan": (ARG, dict(ttl=math.nan)),
    "ttl 0": (ARG, dict(ttl=0)), "ttl -2": (ARG, dict(ttl=-2)), "ttl fraction": (ARG, dict(ttl=1.5)),
    "ttl over 100 years": (ARG, dict(ttl=limits.TTL_MS + 1)), "ttl text": (ARG, dict(ttl="60000")),
    "ttl default of format 1": (ARG, dict(ttl="d60000")), "ttl bool": (ARG, dict(ttl=True)),
    "ttl 2**64-1": (ARG, dict(ttl=2**64 - 1)),
    "ttl map 0": (_invalid("price", "ttl"), dict(ttl={"price": 0})),
    "ttl map text": (_invalid("price", "ttl"), dict(ttl={"price": "5"})),
    "ttl map fraction": (_invalid("price", "ttl"), dict(ttl={"price": 1.5})),
    "ttl map over 100 years": (_invalid("price", "ttl"), dict(ttl={"price": limits.TTL_MS + 1})),
    "ttl map of another feature": (_invalid("other", "ttl"), dict(ttl={"other": 5})),
    "ttl map int key": (ARG, dict(ttl={1: 5})),
    "ttl map of lists": (_invalid("price", "ttl"), dict(ttl={"price": [[1]]})),
    "scalar_ttl 0": (ARG, dict(scalar_ttl=0)), "scalar_ttl over 100 years": (ARG, dict(scalar_ttl=limits.TTL_MS + 1)),
    "scalar_ttl map": (ARG, dict(scalar_ttl={"price": 5})), "embedding_ttl -2": (ARG, dict(embedding_ttl=-2)),
    "embedding_ttl text": (ARG, dict(embedding_ttl="-1")),
    # meta (ARGV[2])
    "meta not a map": (ARG, dict(meta=b"\x01")), "meta int key": (ARG, dict(meta=b"\x81\x01\x02")),
    "meta bin": (ARG, dict(meta=b"\x81\xa1a\xc4\x01x")), "meta bad utf-8": (ARG, dict(meta=b"\x81\xa1a\xa2\xff\xfe")),
    "meta too deep": (ARG, dict(meta=b"\x81\xa1a" + b"\x91" * 6 + b"\x01")),
    "meta trailing": (ARG, dict(meta=b"\x80\x01")),
    "meta truncated map": (ARG, dict(meta=b"\x82\xa1a\xa1b")), "meta truncated header": (ARG, dict(meta=b"\xde\x00")),
    "meta over 1 MiB": (ARG, dict(meta=pack({"a": "x" * limits.META_BYTES}))),
    # the name, value pairs
    "no feature": (ARG, dict(name=None)), "name without value": (ARG, dict(pairs=["b"])),
    **{
        case: (_invalid(name, "name"), dict(name=name))
        for case, name in (("name #", "#"), ("name #w", "#w"), ("name #1", "#1"), ("name price#", "price#"),
                           ("name #min", "#min"), ("name with #", "a#1"), ("empty name", ""), ("long name", "a" * 129),
                           ("name with a digit first", "1a"), ("name with :", "p:a"))
    },
    "duplicate name": (_invalid("price", "duplicate"), dict(pairs=["price", b"\x02"])),
    "second value bad": (_invalid("b", "encoding"), dict(pairs=["b", b"\xc1"])),
    "value over max_bytes": (_invalid("price", "size"), dict(value=codec.pack("x" * 2000))),
    **{
        case: (_invalid("price", rule), dict(value=value))
        for case, rule, value in (
            ("invalid utf-8", "encoding", b"\xa2\xff\xfe"), ("surrogate", "encoding", b"\xa3\xed\xa0\x80"),
            ("overlong", "encoding", b"\xa2\xc0\xaf"), ("map", "encoding", b"\x81\xa1a\x01"),
            ("map with int keys", "encoding", b"\x81\x01\x02"), ("bin", "encoding", b"\xc4\x01x"),
            ("ext", "encoding", b"\xd4\x01\x00"), ("nan", "finite", b"\xcb\x7f\xf8" + bytes(6)),
            ("float32 inf", "finite", b"\xca\x7f\x80\x00\x00"), ("list of maps", "encoding", b"\x91\x80"),
            ("nested list", "encoding", b"\x91\x91\x01"), ("truncated string", "encoding", b"\xa5ab"),
            ("truncated list", "encoding", b"\xdc\xff\xff\x01"), ("two objects", "encoding", b"\x01\x02"),
            ("empty value", "encoding", b""), ("embedding nan", "finite", NAN32), ("embedding inf", "finite", INF32),
            ("float16 inf", "finite", INF16), ("embedding truncated", "encoding", codec.EMBEDDING_F32 + b"\x00\x00"),
            ("timestamp truncated", "encoding", codec.TIMESTAMP + bytes(7)),
            ("unknown tag", "encoding", b"\xc1z\x00\x00"), ("0xC1 alone", "encoding", b"\xc1"),
        )
    },
}



@pytest.mark.parametrize("case", sorted(REFUSED_WRITES))
def test_a_refused_write_changes_no_key(seeded, namespace, case) -> None:
    client, keys = seeded
    expected, over = REFUSED_WRITES[case]
    before = snapshot(client, namespace)
    try:
        fcall(client, "fs_write", keys, *_write_args(**over))
    except redis.ResponseError as refused:
        assert str(refused).startswith(expected + " "), refused
    else:
        pytest.fail(f"{case}: the write was accepted")
    assert snapshot(client, namespace) == before


BATCH_ACCEPTS = {"ttl map of another feature"}
"""Refused by fs_write, taken by fs_write_batch: its ttl map is shared by the entities of the
call, each taking the entries of the features it has."""


def _batchable(case: str, over: dict[str, Any]) -> bool:
    """Whether a refused write has a batch form: its id and event time are per entity there, and
    an odd number of pair items would be read as the next block."""
    return (case not in BATCH_ACCEPTS and not {"id", "event_time"} & set(over)
            and len(_pairs(_split(over)[1])) % 2 == 0)


@pytest.mark.parametrize("case", sorted(case for case, (_, over) in REFUSED_WRITES.items() if _batchable(case, over)))
def test_a_refused_batch_write_changes_no_key_it_refuses(seeded, namespace, case) -> None:
    """fs_write_batch: FSARG refuses the whole call; a refused entity changes nothing, the next
    one (after it in the call) is written."""
    client, keys = seeded
    other = entity_keys(namespace, "tg:30").entity
    expected, over = REFUSED_WRITES[case]
    options, parts = _split({**over, "id": DROP})
    pairs = _pairs(parts)
    args = [_options(options, parts), parts.get("meta", b""), *_block("b1", "", pairs), *_block("b2")]
    before = snapshot(client, namespace)
    if expected == ARG:
        try:
            fcall(client, "fs_write_batch", [keys[0], other], *args)
        except redis.ResponseError as refused:
            assert str(refused).startswith("FSARG "), refused
        else:
            pytest.fail(f"{case}: the batch was accepted")
        assert snapshot(client, namespace) == before
        return
    replies = fcall(client, "fs_write_batch", [keys[0], other], *args)
    alone = set(over) <= {"name", "value", "pairs"}  # else the shared options refuse every entity
    for reply in replies[:1] if alone else replies:
        assert isinstance(reply, redis.ResponseError) and str(reply).startswith(expected + " "), reply
    after = snapshot(client, namespace)
    if alone:
        assert replies[1] == [1, 1]
        assert after.pop(other.encode())[0] == b"hash"
    assert after == before


REFUSED_BATCHES: dict[str, Callable[[str, str], tuple[list[str], list[Any]]]] = {
    "write id in the options": lambda k, o: ([k, o], [pack({"id": "x"}), b"", *_block(), *_block("b2")]),
    "event_time in the options": lambda k, o: ([k, o], [pack({"event_time": 5}), b"", *_block(), *_block("b2")]),
    "empty write id": lambda k, o: ([k, o], [b"", b"", *_block(), *_block("")]),
    "long write id": lambda k, o: ([k, o], [b"", b"", *_block(), *_block("w" * 257)]),
    **{
        f"event time {text!r}": (lambda text: lambda k, o: ([k, o], [b"", b"", *_block(), *_block("b2", text)]))(text)
        for text in ("inf", "nan", "1.5", " 5", "0x10", "1e3", "d60000", str(limits.TIME_MS + 1),
                     str(-limits.TIME_MS - 1))
    },
    "no features": lambda k, o: ([k, o], [b"", b"", *_block(), *_block("b2", "", ())]),
    "count not a number": lambda k, o: ([k, o], [b"", b"", *_block(), *_block("b2", "", ("price", b"\x01"), "x")]),
    "count over the limit": lambda k, o: ([k, o], [b"", b"", *_block(), *_block("b2", "", ("price", b"\x01"),
                                                                                 limits.NAMES + 1)]),
    "truncated block": lambda k, o: ([k, o], [b"", b"", *_block(), *_block("b2", "", ("price", b"\x01"), 2)]),
    "missing block": lambda k, o: ([k, o], [b"", b"", *_block()]),
    "extra argument": lambda k, o: ([k, o], [b"", b"", *_block(), *_block("b2"), "x"]),
    "no options": lambda k, o: ([k, o], []),
    "no keys": lambda k, o: ([], [b"", b""]),
    "too many keys": lambda k, o: ([k] * (limits.ENTITIES + 1), [b"", b"", *_block() * (limits.ENTITIES + 1)]),
    "a key of format 1": lambda k, o: ([k, o[:-1] + "v"], [b"", b"", *_block(), *_block("b2")]),
    "arguments of format 1": lambda k, o: ([k, o], ["w1", "5", "300000", "1024", b"", "price", b"\x01", "-1"]),
}


@pytest.mark.parametrize("case", sorted(REFUSED_BATCHES))
def test_a_malformed_batch_write_changes_no_key(seeded, namespace, case) -> None:
    client, keys = seeded
    call_keys, args = REFUSED_BATCHES[case](keys[0], entity_keys(namespace, "tg:30").entity)
    before = snapshot(client, namespace)
    with pytest.raises(redis.ResponseError, match="^FSARG "):
        fcall(client, "fs_write_batch", call_keys, *args)
    assert snapshot(client, namespace) == before


def test_the_unbroken_writes_are_accepted(seeded, namespace) -> None:
    """Each refused case above breaks one of these in one place; as they are, they are written."""
    client, keys = seeded
    other = entity_keys(namespace, "tg:30").entity
    assert fcall(client, "fs_write", keys, *_write_args()) == [1, 3]
    assert fcall(client, "fs_write_batch", [keys[0], other], pack(BATCH_OPTIONS), b"", *_block(), *_block("b2")) == [
        [1, 4], [1, 1],
    ]


def test_refused_key_shapes_change_no_key(seeded, namespace) -> None:
    client, keys = seeded
    key = keys[0]
    other = entity_keys(namespace, "tg:20").entity
    client.set(other, "not a hash")
    neighbour = entity_keys(namespace, "tg:21").entity
    old = list(v1_keys(namespace, "tg:19"))
    before = snapshot(client, namespace)
    everywhere = [
        [other], ["plain"], old, old[:1], [key[:-1] + "z"], [key[:-2]], [key + ":e"], [f"{namespace}:tg:{{}}:e"],
        [f"{namespace}:tg:{{1}}{{2}}:e"], ["{19}:e"], [key, other], [other, key], [key, "plain"], [key, old[0]],
    ]
    single = [*everywhere, [], [key, key], [key, neighbour]]
    for function, args in (("fs_write", _write_args()), ("fs_delete", []), ("fs_delete", ["price"]),
                           ("fs_rollback", [pack({"id": "w9"}), b"", "price", "1"])):
        for shape in single:
            with pytest.raises(redis.ResponseError, match="^FSARG "):
                fcall(client, function, shape, *args)
    for shape in everywhere:
        blocks = [item for i in range(len(shape)) for item in _block(f"b{i}")]
        with pytest.raises(redis.ResponseError, match="^FSARG "):
            fcall(client, "fs_write_batch", shape, pack(BATCH_OPTIONS), b"", *blocks)
    assert snapshot(client, namespace) == before


def test_refused_rollbacks_and_deletes_change_no_key(seeded, namespace) -> None:
    client, keys = seeded
    fcall(client, "fs_write", keys, pack({"id": "t1", "max_versions": 1}), b"", "name", codec.pack("y"))  # 1-2 trimmed
    options = pack({"id": "r1"})
    refused = {
        "version inf": (ARG, [options, b"", "price", "inf"]), "version 0": (ARG, [options, b"", "price", "0"]),
        "version -1": (ARG, [options, b"", "price", "-1"]), "version fraction": (ARG, [options, b"", "price", "1.5"]),
        "version spaced": (ARG, [options, b"", "price", " 1"]), "version hex": (ARG, [options, b"", "price", "0x1"]),
        "version over 2**47-1": (ARG, [options, b"", "price", str(limits.VERSION + 1)]),
        "no write id": (ARG, [pack({}), b"", "price", "1"]), "empty options": (ARG, [b"", b"", "price", "1"]),
        "event_time": (ARG, [pack({"id": "r1", "event_time": 5}), b"", "price", "1"]),
        "max_versions too many": (ARG, [pack({"id": "r1", "max_versions": 10001}), b"", "price", "1"]),
        "ttl 0": (ARG, [pack({"id": "r1", "ttl": 0}), b"", "price", "1"]),
        "ttl map of another feature": (_invalid("name", "ttl"),
                                       [pack({"id": "r1", "ttl": {"name": 5}}), b"", "price", "1"]),
        "unknown option": (ARG, [pack({"id": "r1", "colour": 1}), b"", "price", "1"]),
        "meta not a map": (ARG, [options, b"\x01", "price", "1"]),
        "meta bin": (ARG, [options, b"\x81\xa1a\xc4\x01x", "price", "1"]),
        "name price#": (_invalid("price#", "name"), [options, b"", "price#", "1"]),
        "name #": (_invalid("#", "name"), [options, b"", "#", "1"]),
        "three arguments": (ARG, [options, b"", "price"]), "five arguments": (ARG, [options, b"", "price", "1", "x"]),
        "arguments of format 1": (ARG, ["price", "1", "w9", "5", "1000", "-1", "-1", ""]),
        "no such version": ("FSNOTFOUND feature=price rule=version", [options, b"", "price", "9"]),
        "largest version": ("FSNOTFOUND feature=price rule=version", [options, b"", "price", str(limits.VERSION)]),
        "no such feature": ("FSNOTFOUND feature=nope rule=version", [options, b"", "nope", "1"]),
        "trimmed version": ("FSNOTFOUND feature=name rule=trimmed", [options, b"", "name", "1"]),
        "value over max_bytes": (_invalid("vec", "size"), [pack({"id": "r1", "max_bytes": 3}), b"", "vec", "1"]),
    }
    before = snapshot(client, namespace)
    for case, (expected, args) in refused.items():
        with pytest.raises(redis.ResponseError) as caught:
            fcall(client, "fs_rollback", keys, *args)
        assert str(caught.value).startswith(expected + " "), (case, caught.value)
    for names in (["#keep"], ["#"], ["#w"], ["#2"], ["price#"], ["price", "#"], ["price", "name#"], [""], ["a" * 129],
                  ["price"] * (limits.NAMES + 1)):
        with pytest.raises(redis.ResponseError, match="^FSARG "):
            fcall(client, "fs_delete", keys, *names)
    assert snapshot(client, namespace) == before
    assert fcall(client, "fs_rollback", keys, options, b"", "price", "1") == 3  # unbroken, they are applied
    assert fcall(client, "fs_delete", keys, "price", "nope") == 1


def test_reads_refuse_reserved_names_and_unbounded_limits(seeded, namespace) -> None:
    client, keys = seeded
    key, old = keys[0], v1_keys(namespace, "tg:19").values
    reserved = ["#", "#w", "#1", "#2", "price#", "#min", "", "a" * 129]
    for function, call_keys, args in (
        ("fs_get", [key, key], ["price"]), ("fs_get", [], ["price"]), ("fs_get", [old], ["price"]),
        ("fs_get", ["plain"], ["price"]), ("fs_get", [key], ["price"] * (limits.NAMES + 1)),
        *(("fs_get", [key], ["price", name]) for name in reserved),
        ("fs_get_batch", [key], []), ("fs_get_batch", [key, old], ["price"]), ("fs_get_batch", [old, key], ["price"]),
        ("fs_get_batch", [key] * (limits.ENTITIES + 1), ["price"]),
        ("fs_get_batch", [key], ["price"] * (limits.NAMES + 1)),
        *(("fs_get_batch", [key], ["price", name]) for name in reserved),
        ("fs_lineage", [key], ["price", "inf"]), ("fs_lineage", [key], ["price", "0"]),
        ("fs_lineage", [key], ["price", str(limits.MAX_VERSIONS + 1)]), ("fs_lineage", [key], ["price", " 5"]),
        ("fs_lineage", [key], ["price"]), ("fs_lineage", [key], ["price", "5", "x"]),
        ("fs_lineage", [key, key], ["price", "5"]),
        ("fs_lineage", [old], ["price", "5"]), ("fs_lineage", [], ["price", "5"]),
        *(("fs_lineage", [key], [name, "5"]) for name in reserved),
        ("fs_get_many", [key], ["1", "price", key]), ("fs_get_many", [], ["1", "price"]),
        ("fs_get_many", [], ["0", key]), ("fs_get_many", [], ["1001", *["p"] * 1001, key]),
        ("fs_get_many", [], ["x", "price", key]), ("fs_get_many", [], ["2", "price", key]),
        ("fs_get_many", [], ["1", "price", old]), ("fs_get_many", [], ["1", "price", "plain"]),
        ("fs_get_many", [], ["1", "price", *[key] * (limits.ENTITIES + 1)]),
        *(("fs_get_many", [], ["2", "price", name, key]) for name in reserved),
        ("fs_get_as_of", [], ["5", "price"]), ("fs_get_as_of", [key], ["5"]), ("fs_get_as_of", [key], ["x", "price"]),
        ("fs_get_as_of", [key], ["1.5", "price"]), ("fs_get_as_of", [key], [str(limits.TIME_MS + 1), "price"]),
        ("fs_get_as_of", [old], ["5", "price"]), ("fs_get_as_of", ["plain"], ["5", "price"]),
        ("fs_get_as_of", [key] * (limits.ENTITIES + 1), ["5", "price"]),
        ("fs_get_as_of", [key], ["5", *["price"] * (limits.NAMES + 1)]),
        *(("fs_get_as_of", [key], ["5", "price", name]) for name in reserved),
        ("fs_get_history", [], ["price"]), ("fs_get_history", [key], []), ("fs_get_history", [old], ["price"]),
        ("fs_get_history", ["plain"], ["price"]), ("fs_get_history", [key] * (limits.ENTITIES + 1), ["price"]),
        ("fs_get_history", [key], ["price"] * (limits.NAMES + 1)),
        *(("fs_get_history", [key], ["price", name]) for name in reserved),
    ):
        with pytest.raises(redis.ResponseError, match="^FSARG "):
            client.execute_command("FCALL_RO", function, len(call_keys), *call_keys, *args)
    # Well formed, it answers as fs_get_batch does (here on one server: every key is served).
    assert fcall(client, "fs_get_many", [], "1", "price", key, key)[1:] == fcall(client, "fs_get_batch", [key, key], "price")[1:]


def test_a_read_of_a_key_of_another_type_is_a_typed_refusal(loaded, namespace) -> None:
    server = loaded
    key, neighbour = entity_keys(namespace, "tg:21").entity, entity_keys(namespace, "tg:22").entity
    with server.client() as client:
        client.set(key, "x")
        for function, call_keys, args in (("fs_get_batch", [neighbour, key], ["a"]), ("fs_get", [key], ["a"]),
                                          ("fs_get_many", [], ["1", "a", neighbour, key]),
                                          ("fs_get", [key], []), ("fs_lineage", [key], ["a", "5"]),
                                          ("fs_get_as_of", [neighbour, key], ["5", "a"]),
                                          ("fs_get_history", [neighbour, key], ["a"])):
            with pytest.raises(redis.ResponseError, match="^FSARG .*not an fsredis key"):
                client.execute_command("FCALL_RO", function, len(call_keys), *call_keys, *args)
        for read_path in ("direct", "function"):
            config = FeatureStoreConfig(redis_url=server.url, namespace=namespace, read_path=read_path)
            with FeatureStore(config) as store:
                for call in (lambda: store.get_features("tg:21", ["a"]), lambda: store.get_features("tg:21"),
                             lambda: store.get_features_batch(["tg:22", "tg:21"], ["a"]),
                             lambda: store.get_feature_lineage("tg:21", "a"),
                             lambda: store.get_features("tg:21", ["a"], as_of=5),
                             lambda: store.get_historical_features(
                                 pd.DataFrame({"entity_id": ["tg:21"], "event_timestamp": [5.0]}), ["a"])):
                    with pytest.raises(FeatureStoreError):  # typed, not redis-py's own ResponseError
                        call()
        assert client.get(key) == b"x"


def test_the_python_api_refuses_before_sending(server, namespace) -> None:
    config = FeatureStoreConfig(redis_url=server.url, namespace=namespace)
    with FeatureStore(config) as store, server.client() as client:
        for ttl in (1e300, math.inf, limits.TTL_MS / 1000 + 1, {"a": math.nan}):
            with pytest.raises(ValidationError, match="rule=ttl"):
                store.write_features("tg:19", {"a": 1}, ttl=ttl)
        with pytest.raises(ValidationError, match="rule=ttl"):
            store.write_features("tg:19", {"a": 1}, ttl={"b": 5})
        for event_time in (math.inf, math.nan, limits.TIME_MS / 1000 + 1, -limits.TIME_MS / 1000 - 1):
            with pytest.raises(ValidationError, match="rule=event_time"):
                store.write_features("tg:19", {"a": 1}, event_time=event_time)
        with pytest.raises(ValidationError, match="rule=write_id"):
            store.write_features("tg:19", {"a": 1}, write_id="w" * 300)
        with pytest.raises(ValidationError, match="rule=write_id"):
            store.write_features_batch({"tg:19": {"a": 1}, "tg:20": {"a": 1}}, write_ids={"tg:20": "w" * 300})
        with pytest.raises(ValidationError, match="rule=limit"):
            store.get_feature_lineage("tg:19", "a", limit=limits.MAX_VERSIONS + 1)
        with pytest.raises(ValidationError, match="rule=version"):
            store.rollback_feature("tg:19", "a", limits.VERSION + 1)
        for read_path in ("direct", "function"):  # a '#' name would read a bookkeeping field
            with FeatureStore(dataclasses.replace(config, read_path=read_path)) as reader:
                for names in (["a#"], ["#"], ["#w"], ["a", "#1"]):
                    with pytest.raises(ValidationError, match="rule=name"):
                        reader.get_features("tg:19", names)
                    with pytest.raises(ValidationError, match="rule=name"):
                        reader.get_features_batch(["tg:19"], names)
        assert list(client.scan_iter(match=f"{namespace}:*")) == []
    for bad in (dict(max_versions=limits.MAX_VERSIONS + 1), dict(dedup_window=8 * 86400.0),
                dict(max_value_bytes=limits.VALUE_BYTES + 1), dict(read_timeout=0), dict(write_timeout=math.inf),
                dict(read_path="hmget")):
        with pytest.raises(ValueError):
            FeatureStoreConfig(**bad)


# -- unreadable data -----------------------------------------------------------------------------

LIVE = head(event=1)
"""A head without expiry (version 1, no record), as a raw HSET of an old build would leave it."""
POISON = {
    "invalid utf-8": LIVE + b"\xa2\xff\xfe", "map": LIVE + b"\x81\xa1a\x01",
    "map with int keys": LIVE + b"\x81\x01\x02",
    "ext": LIVE + b"\xd4\x01\x00", "unknown tag": LIVE + b"\xc1z\x00\x00", "truncated": LIVE + b"\xa5ab",
    "truncated embedding": LIVE + codec.EMBEDDING_F32 + b"\x00", "two objects": LIVE + b"\x01\x02",
    "a value of format 1": b"\xa2ok",  # no head: format 1 stored the bare value
    "head only": LIVE, "short head": LIVE[:10], "empty": b"",
}
HEADLESS = {"a value of format 1", "head only", "short head", "empty"}
"""Fields too short to hold a head and a value: fs_get itself refuses them (FSCORRUPT rule=head)."""


@pytest.mark.parametrize("poison", sorted(POISON))
def test_an_unreadable_value_is_a_typed_error_and_spares_the_others(store, config, client_kind, server, namespace,
                                                                    poison) -> None:
    from tests.conftest import make_store

    store.write_features("tg:1", {"a": 1, "b": "ok"})
    store.write_features("tg:2", {"a": 2, "b": "fine"})
    key = entity_keys(namespace, "tg:2").entity
    with server.client() as client:  # written around the library, as an old build or a raw HSET could
        client.hset(key, "b", POISON[poison])
        before = snapshot(client, namespace)
    other_path = make_store(client_kind, dataclasses.replace(config, read_path="function"))
    try:
        for reader in (store, other_path):  # a plain HMGET checked by the client, and fs_get
            with pytest.raises(CorruptValue) as caught:
                reader.get_features("tg:2", ["a", "b"])
            assert caught.value.feature == "b", caught.value
            if reader is store or poison not in HEADLESS:
                assert caught.value.entity == "tg:2", caught.value
            else:  # refused by fs_get itself
                assert caught.value.rule == "head", caught.value
            assert reader.get_features("tg:2", ["a"]) == {"a": 2}
            assert reader.get_features("tg:1", ["a", "b"]) == {"a": 1, "b": "ok"}
            with pytest.raises(CorruptValue):
                reader.get_features("tg:2")
            with pytest.raises(BatchReadError) as batch:
                reader.get_features_batch(["tg:1", "tg:2", "tg:3"], ["a", "b"])
            assert batch.value.results == {"tg:1": {"a": 1, "b": "ok"}, "tg:2": {"a": 2}, "tg:3": {}}
            assert set(batch.value.errors) == {"tg:2"} and batch.value.errors["tg:2"].feature == "b"
            assert reader.get_features_batch(["tg:1"], ["a", "b"]) == {"tg:1": {"a": 1, "b": "ok"}}
    finally:
        other_path.close()
    with server.client() as client:
        assert snapshot(client, namespace) == before  # reads never mend nor drop what they cannot read
    assert store.delete_features("tg:2", ["b"]) == 1  # deleting is the way out
    store.write_features("tg:2", {"b": "mended"})
    assert store.get_features("tg:2", ["a", "b"]) == {"a": 2, "b": "mended"}


def test_an_unreadable_history_record_is_a_typed_error(store, server, namespace) -> None:
    store.write_features("tg:5", {"a": 1})
    store.write_features("tg:5", {"a": 2})  # version 1's value moves into the record of this write, "#2"
    key = entity_keys(namespace, "tg:5").entity
    with server.client() as client:
        broken = record(2, 0, b"w", b"\x80", {b"a": b"\xa1"})
        for label, damage in (("unreadable", b"\x05\x00"), ("holding a broken value", broken)):
            client.hset(key, "#2", damage)
            before = snapshot(client, namespace)
            with pytest.raises(CorruptValue) as caught:
                store.get_feature_lineage("tg:5", "a")
            assert (caught.value.entity, caught.value.feature, caught.value.rule) == ("tg:5", "a", "record")
            with pytest.raises(CorruptValue) as caught:  # the rollback refuses it, typed, nothing written
                store.rollback_feature("tg:5", "a", 1)
            assert (caught.value.entity, caught.value.feature, caught.value.rule) == ("tg:5", "a", "record")
            assert snapshot(client, namespace) == before
        assert store.get_features("tg:5", ["a"]) == {"a": 2}  # the current value is still read


DAMAGE: dict[str, tuple[str, bytes | None, dict[str, tuple[str, str | None]]]] = {
    # case: (field of entity tg:6, its damaged content (None: deleted), call -> (feature, rule) of its refusal).
    # The entity: a = 2 (version 1 held in record #2), b = "x"; header "#" at seq 2.
    **{
        f"head {label}": ("a", raw, {op: ("a", "head") for op in ("lineage", "rollback", "write", "batch", "read", "as_of", "history")})
        for label, raw in (("empty", b""), ("of 5 bytes", b"\x01" * 5), ("without value", head(version=2, seq=2)),
                           ("of format 1", b"\x02"))
    },
    **{
        f"index {label}": ("a#", raw, {op: ("a", "index") for op in ("lineage", "rollback", "write", "batch", "as_of", "history")})
        for label, raw in (("empty", b""), ("of 5 bytes", bytes(5)), ("of 7 bytes", bytes(7)),
                           ("with a cut entry", index(2, (1, 0, 0, 1, 2))[:-1]),
                           ("over max_versions", index(10002) + bytes(30 * (limits.MAX_VERSIONS + 1))),
                           ("of format 1", b"2"))
    },
    "index held by a missing record": ("a#", index(2, (1, 0, 0, 1, 99)), {"lineage": ("a", "record"),
                                                                          "rollback": ("a", "record")}),
    "index made by a missing record": ("a#", index(2, (1, 0, 0, 99, 2)), {"lineage": ("a", "record")}),
    "index held by record 0": ("a#", index(2, (1, 0, 0, 1, 0)), {"lineage": ("a", "record"),
                                                                  "rollback": ("a", "record")}),
    "index counter at the largest version": ("a#", index(limits.VERSION, (1, 0, 0, 1, 2)),
                                             {op: ("a", None) for op in ("rollback", "write", "batch")}),
    **{
        f"record {label}": ("#2", raw, {op: ("a", "record") for op in ("lineage", "rollback")})
        for label, raw in (("unreadable", b"junk"), ("missing", None),
                           ("cut", record(2, 0, b"w2", b"\x80", {b"a": b"\x01"})[:-1]),
                           ("without the feature", record(2, 0, b"w2", b"\x80", {b"b": b"\x01"})),
                           ("holding a broken value", record(2, 0, b"w2", b"\x80", {b"a": b"\xa1"})))
    },
    **{
        f"header {label}": ("#", raw, {op: ("#", "entity") for op in ("rollback", "write", "write other", "batch")})
        for label, raw in (("empty", b""), ("of 15 bytes", bytes(15)), ("of 17 bytes", bytes(17)))
    },
    "header seq at the largest": ("#", entity_header(limits.VERSION, 2, 0),
                                  {op: ("#", None) for op in ("rollback", "write", "write other", "batch")}),
}



@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_bookkeeping_is_refused_typed_and_changes_nothing(server, namespace, case) -> None:
    """A damaged head, version index, record or entity header (written around the library) is
    refused typed, by writes before they write anything and by reads, on both read paths and
    never hangs; the undamaged features are still read; deleting is the way out."""
    field, damaged, refusals = DAMAGE[case]
    config = FeatureStoreConfig(redis_url=server.url, namespace=namespace, read_timeout=5, write_timeout=5, retries=0)
    direct, function_path = FeatureStore(config), FeatureStore(dataclasses.replace(config, read_path="function"))
    key, neighbour = entity_keys(namespace, "tg:6").entity, entity_keys(namespace, "tg:7").entity
    with direct, function_path, server.client() as client:
        direct.write_features("tg:6", {"a": 1, "b": "x"})
        direct.write_features("tg:6", {"a": 2})
        if damaged is None:
            client.hdel(key, field)
        else:
            client.hset(key, field, damaged)
        before = snapshot(client, namespace)
        calls: dict[str, Callable[[], Any]] = {
            "lineage": lambda: direct.get_feature_lineage("tg:6", "a"),
            "rollback": lambda: direct.rollback_feature("tg:6", "a", 1),
            "write": lambda: direct.write_features("tg:6", {"a": 3}),
            "write other": lambda: direct.write_features("tg:6", {"b": "y"}),
            "batch": lambda: direct.write_features_batch({"tg:6": {"a": 3}, "tg:7": {"a": 1}}),
            "as_of": lambda: direct.get_features("tg:6", ["a", "b"], as_of=time.time() + 86_400),
            "history": lambda: direct.get_historical_features(
                pd.DataFrame({"entity_id": ["tg:6"], "event_timestamp": [time.time() + 86_400]}), ["a", "b"]),
        }
        for op, call in calls.items():
            if op not in refusals:
                continue
            feature, rule = refusals[op]
            started = time.monotonic()
            try:
                call()
            except FeatureStoreError as exc:
                error: BaseException | None = exc
            else:
                error = None
            assert time.monotonic() - started < 5, f"{op} took {time.monotonic() - started:.1f} s"
            if op == "batch" and isinstance(error, BatchWriteError):
                assert error.written == ["tg:7"], error  # the other entity of the batch is written
                client.delete(neighbour)
                error = error.errors.get("tg:6")
            assert isinstance(error, CorruptValue) and error.feature == feature and rule in (None, error.rule), (
                f"{op}: expected CorruptValue feature={feature} rule={rule}, got {error!r}")
            assert error.entity == "tg:6", error
            assert snapshot(client, namespace) == before, f"{op} was refused but changed keys"
        unread = "read" in refusals
        for reader in (direct, function_path):
            if unread:
                with pytest.raises(CorruptValue) as caught:
                    reader.get_features("tg:6", ["a", "b"])
                assert caught.value.feature == "a", caught.value
                with pytest.raises(CorruptValue):
                    reader.get_features("tg:6")
                with pytest.raises(BatchReadError) as batch:
                    reader.get_features_batch(["tg:6"], ["a", "b"])
                assert batch.value.results == {"tg:6": {"b": "x"}}
            else:
                assert reader.get_features("tg:6", ["a", "b"]) == {"a": 2, "b": "x"}
                assert reader.get_features("tg:6") == {"a": 2, "b": "x"}
                assert reader.get_features_batch(["tg:6"], ["a", "b"]) == {"tg:6": {"a": 2, "b": "x"}}
            assert reader.get_features("tg:6", ["b"]) == {"b": "x"}
        assert snapshot(client, namespace) == before
        assert client.ping()
        # Deleting is the way out: the feature (or, for a damaged header, the entity) starts over.
        if field == "#":
            assert direct.delete_features("tg:6") == 2
        else:
            assert direct.delete_features("tg:6", ["a"]) == 1
        direct.write_features("tg:6", {"a": 5})
        assert direct.get_features("tg:6", ["a"]) == {"a": 5}
        assert [v["value"] for v in direct.get_feature_lineage("tg:6", "a")["versions"]] == [5]


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
                             (lambda: store.get_features("e:1", ["a"], as_of=time.time()), 0.5),
                             (lambda: store.get_features_batch(["e:1", "e:2"], ["a"], as_of=time.time()), 0.5),
                             (lambda: store.get_historical_features(
                                 pd.DataFrame({"entity_id": ["e:1"], "event_timestamp": [time.time()]}), ["a"],
                                 timeout=0.3), 0.3),
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
