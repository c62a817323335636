"""Fuzz the Lua library as a hostile `redis-cli` user would: every fs_* function, called with random
key counts, keys of other entities, of storage format 1 and of other types, entities whose stored
fields were damaged around the library, random bytes, malformed and hostile msgpack options, meta
and values, extreme numbers. For every call:

* the server still answers PING, and the call answered (no hang: the client has a socket timeout);
* the reply is a value, or an error whose code starts with ``FS``; so is every entity's reply of
  an fs_write_batch;
* a refused call changed nothing: every key of the namespace is as it was (type, content, expiry);
  an entity that fs_write_batch refused is as it was.

``FSREDIS_FUZZ_EXAMPLES`` sets the calls per server (default 300, a few seconds); a long run:
``FSREDIS_FUZZ_EXAMPLES=20000 python -m pytest tests/test_lua_fuzz.py -s``.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import Any

import msgpack
import numpy as np
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsredis import FeatureStore, FeatureStoreConfig, codec, limits
from fsredis.keys import entity_keys, log_key, registry_keys, v1_keys
from tests.test_boundary import entity_header, head, index, record, state

EXAMPLES = int(os.environ.get("FSREDIS_FUZZ_EXAMPLES", "300"))
FUNCTIONS = ("fs_write", "fs_write_batch", "fs_get", "fs_get_batch", "fs_get_many", "fs_get_as_of", "fs_get_history",
             "fs_lineage", "fs_rollback", "fs_delete", "fs_version", "fs_registry_put", "fs_registry_version",
             "fs_show", "fs_put")
_ERROR = re.compile(r"^FS[A-Z]+ ")
_EDGES = [0, 1, -1, -2, 5, 300000, limits.TTL_MS, limits.TTL_MS + 1, limits.MAX_VERSIONS, limits.MAX_VERSIONS + 1,
          limits.WINDOW_MS + 1, limits.VALUE_BYTES + 1, limits.VERSION, limits.VERSION + 1, -limits.TIME_MS - 1,
          2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)]


def _mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any], odds: int = 3) -> st.SearchStrategy[Any]:
    """`common` about `odds` times out of `odds + 1`, else `rare`. (st.one_of(a, a, b) does not
    weigh: hypothesis drops the repeated strategy.)"""
    return st.sampled_from(range(odds + 1)).flatmap(lambda i: common if i < odds else rare)


def _json_text() -> st.SearchStrategy[str]:
    """JSON as an operator might type it at fs_put: objects of features or options, and worse."""
    scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
                       st.text(max_size=10))
    value = st.one_of(scalar, st.lists(scalar, max_size=4), st.dictionaries(st.text(max_size=4), scalar, max_size=2))
    option = st.sampled_from(["write_id", "ttl", "event_time", "max_versions", "source", "lineage", "colour"])
    return st.one_of(
        st.dictionaries(st.one_of(st.sampled_from(_FEATURES), st.text(max_size=8)), value, max_size=4).map(json.dumps),
        st.dictionaries(option, value, max_size=3).map(json.dumps),
        st.text(max_size=20), st.just("[1, 2]"), st.just("{}"), st.just('{"a": 1e999}'),
    )


def _numbers() -> st.SearchStrategy[str]:
    """Integers as text (versions, limits, event times and counts of a batch), inside and outside
    every bound, and text that is almost a number."""
    return st.one_of(
        st.sampled_from([str(n) for n in _EDGES] + [str(2**63 + 5), str(-(2**63) - 1), str(10**300)]),
        st.integers(-(2**64), 2**64).map(str),
        st.sampled_from(["inf", "-inf", "nan", "1e300", "1.5", "0x10", " 5", "5 ", "", "d", "d-1", "d1e300",
                         "d300000", "+5", "--1", "1_000", "٣"]),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
    )


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**64) + 1, 2**64 - 1), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.binary(max_size=20),
)
_objects = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers(-5, 5)), inner, max_size=4),
        st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8)),
    ),
    max_leaves=12,
)


def _packed(obj: Any, bin_type: bool) -> bytes:
    try:
        return msgpack.packb(obj, use_bin_type=bin_type)  # type: ignore[no-any-return]
    except (OverflowError, ValueError, TypeError):
        return b"\xc0"


def _half(xs: list[float]) -> bytes:
    with np.errstate(over="ignore"):
        return np.array(xs, "<f4").astype("<f2").tobytes()


def _values() -> st.SearchStrategy[bytes]:
    """Stored-value candidates: good ones, hostile msgpack, tagged blobs, cut or joined bytes, and
    values with a format-2 head in front (as if copied from a stored field)."""
    floats = st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=1, max_size=8)
    good = st.one_of(
        _scalars.filter(lambda v: not isinstance(v, bytes)).map(lambda v: _packed(v, False)),
        floats.map(lambda xs: codec.EMBEDDING_F32 + np.array(xs, "<f4").tobytes()),
        floats.map(lambda xs: codec.EMBEDDING_F16 + _half(xs)),
        st.integers(-(2**63), 2**63 - 1).map(lambda n: codec.TIMESTAMP + n.to_bytes(8, "little", signed=True)),
    )
    hostile = st.one_of(
        st.tuples(_objects, st.booleans()).map(lambda pair: _packed(*pair)),
        st.binary(max_size=40),
        st.tuples(good, st.integers(0, 12)).map(lambda pair: pair[0][: pair[1]]),
        st.tuples(good, good).map(lambda pair: pair[0] + pair[1]),
        st.binary(max_size=12).map(lambda b: b"\xc1" + b),
        good.map(lambda value: head(version=1) + value),
        st.sampled_from([b"\xa2\xff\xfe", b"\xa3\xed\xa0\x80", b"\xdd\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff",
                         b"\xdf\x00\x01\x00\x00", b"\x91" * 40 + b"\x01", b"\xca\x7f\xc0\x00\x00"]),
    )
    return st.one_of(good, hostile)


def _names() -> st.SearchStrategy[str]:
    reserved = ["#", "#w", "#1", "#2", "price#", "#min", "", "a" * 129, "p:a"]
    return st.one_of(st.sampled_from(["price", "name", "vec", "n", *reserved]), st.text(max_size=12))


_FEATURES = ["price", "name", "vec", "n", "fresh"]
_TTLS = [-1, 1, 5, 60000, 600000, limits.TTL_MS]


def _option_values(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """An extreme number or any object, now and then a plausible value of an option."""
    return st.one_of(good, st.sampled_from(_EDGES + [1.5, 1e300, float("inf"), float("nan"), "5", True]), _objects)


def _options(write_id: bool, event_time: bool) -> st.SearchStrategy[bytes]:
    """ARGV[1] of a writing call: mostly a msgpack map of valid options (with an id and event time
    when the call takes them); else one with hostile values or stray keys, or hostile bytes."""
    ttl = st.sampled_from(_TTLS)
    good: dict[str, st.SearchStrategy[Any]] = {
        "max_versions": st.sampled_from([0, 1, 3, 10]),
        "dedup_ms": st.sampled_from([0, 1, 300000]),
        "max_bytes": st.sampled_from([1, 16, 1024, 4194304]),
        "ttl": st.one_of(ttl, st.dictionaries(st.sampled_from(_FEATURES + ["#", ""]), ttl, max_size=3)),
        "scalar_ttl": ttl,
        "embedding_ttl": ttl,
        "id": st.text(min_size=1, max_size=8),
    }
    if event_time:
        good["event_time"] = st.one_of(st.integers(-limits.TIME_MS, limits.TIME_MS), st.integers(0, 2**41))
    hostile = {name: _option_values(value) for name, value in good.items()}
    hostile["id"] = st.one_of(st.text(max_size=300), st.binary(max_size=8), _option_values(good["id"]))
    required = ("id",) if write_id else ()
    shapes = [
        st.fixed_dictionaries({k: v for k, v in options.items() if k in required},
                              optional={k: v for k, v in options.items() if k not in required})
        for options in (good, hostile)
    ]
    if not write_id:  # a write id given where the call takes none: sometimes
        shapes[0] = shapes[0].map(lambda o: {k: v for k, v in o.items() if k != "id"})
    stray_keys = st.one_of(st.text(max_size=6), st.sampled_from(["id", "event_time", "d", "ttl"]))
    strays = st.dictionaries(stray_keys, _objects, min_size=1, max_size=2)
    return _mostly(
        st.tuples(shapes[0], st.booleans()).map(lambda pair: _packed(*pair)),
        st.one_of(
            st.tuples(shapes[1], st.booleans()).map(lambda pair: _packed(*pair)),
            st.tuples(shapes[0], strays).map(lambda pair: _packed({**pair[0], **pair[1]}, False)),
            st.sampled_from([b"", b"\x80"]),
            st.tuples(_objects, st.booleans()).map(lambda pair: _packed(*pair)),
            st.binary(max_size=20),
        ),
    )


def _meta() -> st.SearchStrategy[bytes]:
    lineage = st.dictionaries(st.sampled_from(["source", "producer", "inputs", "features", "x"]), _objects, max_size=3)
    return _mostly(st.one_of(st.just(b""), lineage.map(lambda m: _packed(m, False))),
                   st.tuples(_objects, st.booleans()).map(lambda pair: _packed(*pair)))


class Target:
    """The namespace under fire: entities with history and TTLs, without TTL, absent; keys of the
    wrong types where an entity's key would be; entities whose stored fields (a head, a version
    index, a record, the entity header) were damaged around the library; format-1 keys."""

    def __init__(self, server: Any, namespace: str) -> None:
        self.namespace = namespace
        self.client = redis.Redis.from_url(server.url, socket_timeout=10)
        config = FeatureStoreConfig(redis_url=server.url, namespace=namespace, max_versions=3)
        with FeatureStore(config) as store:
            store.write_features("p:1", {"price": 1.5, "name": "x", "vec": np.ones(4, np.float32)})
            store.write_features("p:1", {"price": 2.5}, ttl=600)
            store.write_features("p:2", {"n": 1}, ttl=None)
            for entity in ("p:8", "p:9"):
                store.write_features(entity, {"price": 1.5, "name": "x"}, ttl=None)
                store.write_features(entity, {"price": 2.5}, ttl=None)
        key = {f"p:{i}": entity_keys(namespace, f"p:{i}").entity for i in range(1, 10)}
        self.client.set(key["p:4"], "string")
        self.client.lpush(key["p:5"], "list")
        self.client.sadd(key["p:6"], "set")
        self.client.hset(key["p:7"], mapping={"hash": "1", "price": "x", "price#": "2", "#": "junk"})  # no fsredis hash
        self.damage = {  # fields written around the library: a head, an index, a record, a value, the header
            key["p:8"]: {"name": b"\x01" * 5, "price#": index(2, (1, 0, 0, 1, 99))[:-3], "#2": b"junk",
                         "n": head(version=1) + b"\xa2\xff\xfe"},
            key["p:9"]: {"#": entity_header(2, 2, 0)[:-1], "#1": record(1, 0, b"w", b"\x80", {})},
        }
        self.redamage()
        old = v1_keys(namespace, "p:1")
        self.client.hset(old.values, mapping={"price": codec.pack(2.5), "#min": "0"})
        self.client.hset(old.history, mapping={"price": "2", "price#1": b"\x05\x00"})
        self.entities = list(key.values())
        self.hashes = [key[e] for e in ("p:1", "p:2", "p:3", "p:8", "p:9")]  # fsredis entities, damaged or not
        self.others = list(old)
        self.registry = list(registry_keys(namespace))
        # Change logs: the right one of p:1, another slot's, one holding a string, another namespace's.
        self.logs = [log_key(namespace, entity_keys(namespace, "p:1").slot), log_key(namespace, 0),
                     f"{namespace}:{{junk}}:log", "other:{x}:log"]
        self.client.set(self.logs[2], "string")

    def redamage(self) -> None:
        """Damage the fields again that calls mended or deleted (fs_delete, a write of the feature)."""
        pipe = self.client.pipeline(transaction=False)
        for key, fields in self.damage.items():
            pipe.hmget(key, list(fields))
        for (key, fields), found in zip(self.damage.items(), pipe.execute()):
            changed = {name: value for (name, value), now in zip(fields.items(), found) if now != value}
            if changed:
                self.client.hset(key, mapping=changed)

    def keys(self) -> st.SearchStrategy[list[str]]:
        one = st.sampled_from(self.entities)
        any_key = st.one_of(st.sampled_from(self.entities + self.others + self.registry + self.logs),
                            st.text(max_size=20).map(lambda t: f"{self.namespace}:{t}"),
                            st.text(max_size=8).map(lambda t: f"{self.namespace}:p:{{{t}}}:e"))
        return st.one_of(
            one.map(lambda k: [k]), st.lists(one, max_size=4), st.just(self.registry), st.lists(any_key, max_size=6),
            st.just(self.others),
        )

    def calls(self) -> st.SearchStrategy[tuple[str, list[str], list[Any]]]:
        arg = st.one_of(_numbers(), _names(), _values(), st.binary(max_size=30))
        name = _mostly(st.sampled_from(_FEATURES), _names())
        pairs = st.lists(st.tuples(name, _values()), min_size=1, max_size=3).map(lambda ps: [x for p in ps for x in p])
        odd = _mostly(pairs, pairs.map(lambda ps: ps[:-1]), 6)  # now and then a name without a value
        write = st.tuples(_options(True, True), _meta(), odd).map(lambda t: [t[0], t[1], *t[2]])
        event = _mostly(st.one_of(st.just(""), st.integers(-limits.TIME_MS, limits.TIME_MS).map(str)), _numbers(), 6)
        block = st.tuples(_mostly(st.text(min_size=1, max_size=8), st.text(max_size=300), 6), event,
                          _mostly(st.none(), _numbers(), 8), pairs).map(  # None: the count of the block's pairs
            lambda b: [b[0], b[1], len(b[3]) // 2 if b[2] is None else b[2], *b[3]])
        own = _mostly(st.sampled_from(self.hashes), st.sampled_from(self.entities))
        log = st.sampled_from([None, None, *self.logs])  # (None: no change log)
        batch = st.lists(st.tuples(own, log, block), min_size=1, max_size=4).map(
            lambda rows: [([key] if not log else [key, log], b) for key, log, b in rows]).flatmap(
            lambda rows: st.tuples(st.just([k for keys, _ in rows for k in keys]), _options(False, False), _meta(),
                                   st.just([x for _, b in rows for x in b])).map(
                lambda t: ("fs_write_batch", t[0], [t[1], t[2], *t[3]])))
        rollback = st.tuples(_options(True, False), _meta(), name,
                             _mostly(st.sampled_from(["1", "2", "3", "9"]), _numbers())).map(list)
        lineage = st.tuples(name, _mostly(st.sampled_from(["1", "3", "10000"]), _numbers())).map(list)
        registry = st.tuples(
            st.sampled_from([self.namespace, "other", ""]), _numbers(), st.text(max_size=10),
            st.sampled_from(["[]", "{}", "x"]), st.sampled_from(["0", "1", "2"]),
            st.lists(st.tuples(st.sampled_from(["p:a", "p:b", "#x", "bad group:a", "p:"]), st.one_of(
                st.just(""), st.sampled_from(['{"dtype": "int", "min": 0}', '{"dtype": "embedding", "dim": 2}',
                                              '{"dtype": "nope"}', '{"dtype": "string", "allowed": ["a"]}']),
                st.text(max_size=30))), max_size=3),
        ).map(lambda t: [*t[:5], *[x for pair in t[5] for x in pair]])
        one = own.map(lambda k: [k])
        mostly_one = _mostly(one, st.one_of(self.keys(), st.tuples(own, st.sampled_from(self.logs)).map(list)), 3)
        return st.one_of(
            st.tuples(st.sampled_from(FUNCTIONS), self.keys(), st.lists(arg, max_size=9)),
            st.tuples(st.just("fs_write"), mostly_one, write),
            batch,
            st.tuples(st.just("fs_rollback"), mostly_one, rollback),
            st.tuples(st.just("fs_lineage"), mostly_one, lineage),
            st.tuples(st.sampled_from(["fs_get", "fs_delete"]), mostly_one, st.lists(_names(), max_size=4)),
            st.tuples(st.just("fs_get_batch"), self.keys(), st.lists(_names(), max_size=4)),
            st.tuples(st.just("fs_get_many"), st.just([]), st.tuples(
                _mostly(st.sampled_from(["1", "2", "3"]), _numbers()), st.lists(_names(), max_size=3), self.keys(),
            ).map(lambda t: [t[0], *t[1], *t[2]])),
            st.tuples(st.just("fs_registry_put"), st.just(self.registry), registry),
            st.tuples(st.just("fs_put"), mostly_one, st.lists(_json_text(), min_size=1, max_size=2)),
            st.tuples(st.just("fs_show"), mostly_one, st.lists(_names(), max_size=3)),
        )

    def close(self) -> None:
        keys = registry_keys(self.namespace)
        self.client.delete(keys.definitions, keys.log)
        self.client.srem(keys.namespaces, self.namespace)
        self.client.delete(self.logs[-1])
        self.client.close()


def test_no_call_breaks_the_boundary(server, namespace) -> None:
    target = Target(server, namespace)
    outcomes: Counter[str] = Counter()

    def live(client: redis.Redis) -> dict[bytes, Any]:
        return {key: state(client, key) for key in client.scan_iter(match=f"{namespace}:*")}

    def lasting(client: redis.Redis, states: dict[bytes, Any]) -> dict[bytes, Any]:
        """The keys that do not expire by now: a past call may have given some a TTL of ms."""
        now = int(float(b"%d.%06d" % client.time()) * 1000)
        return {key: s for key, s in states.items() if not (0 < s[2] <= now + 5 or s[2] == -2)}  # -2: expired as read

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(target.calls())
    def call(spec: tuple[str, list[str], list[Any]]) -> None:
        function, keys, args = spec
        client = target.client
        target.redamage()
        before = live(client)
        try:
            reply = client.execute_command("FCALL", function, len(keys), *keys, *args)
        except redis.ResponseError as exc:
            message = str(exc)
            outcomes[message.split(" ", 1)[0]] += 1
            # CROSSSLOT and the like are the server's own refusals: it ran nothing.
            assert _ERROR.match(message) or message.startswith("No such"), f"{function}: untyped error {message!r}"
            assert lasting(client, live(client)) == lasting(client, before), (
                f"{function} {keys} {args!r}: refused ({message}) but changed keys")
        else:
            outcomes["ok"] += 1
            if function == "fs_write":
                assert isinstance(reply, list) and reply[0] in (0, 1), reply
            if function == "fs_write_batch":
                entities = [key for key in keys if not key.endswith(":log")]  # (each maybe followed by its log)
                assert isinstance(reply, list) and len(reply) == len(entities), reply
                refused, written = set(), set()
                for key, row in zip(entities, reply):
                    if isinstance(row, redis.ResponseError):
                        outcomes["batch " + str(row).split(" ", 1)[0]] += 1
                        assert _ERROR.match(str(row)), f"fs_write_batch: untyped error {row!r}"
                        refused.add(key.encode())
                    else:
                        assert isinstance(row, list) and row[0] in (0, 1), row
                        written.add(key.encode())
                after = lasting(client, live(client))
                before = lasting(client, before)
                for key in refused - written:
                    assert after.get(key) == before.get(key), (
                        f"fs_write_batch {keys} {args!r}: refused {key!r} but changed it")
        assert client.ping()

    try:
        call()
    finally:
        target.close()
        print(f"\nfuzz {server.binary.rsplit('/', 1)[-1]}: {sum(outcomes.values())} replies, {dict(outcomes)}")
    assert outcomes["ok"] and sum(v for k, v in outcomes.items() if k.startswith("FS")), outcomes
