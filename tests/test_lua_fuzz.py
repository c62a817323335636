"""Fuzz the Lua library as a hostile `redis-cli` user would: every fs_* function, called with random
key counts, keys of other entities and of other types, random bytes, malformed and hostile
msgpack, extreme numbers. For every call:

* the server still answers PING, and the call answered (no hang: the client has a socket timeout);
* the reply is a value, or an error whose code starts with ``FS``;
* a refused call changed nothing: every key of the namespace is as it was (type, content, expiry).

``FSREDIS_FUZZ_EXAMPLES`` sets the calls per server (default 300, a few seconds); a long run:
``FSREDIS_FUZZ_EXAMPLES=20000 python -m pytest tests/test_lua_fuzz.py -s``.
"""

from __future__ import annotations

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
from fsredis.keys import entity_keys, registry_keys
from tests.test_boundary import state

EXAMPLES = int(os.environ.get("FSREDIS_FUZZ_EXAMPLES", "300"))
FUNCTIONS = ("fs_write", "fs_get", "fs_get_batch", "fs_lineage", "fs_rollback", "fs_delete", "fs_version",
             "fs_registry_put", "fs_registry_version")
_ERROR = re.compile(r"^FS[A-Z]+ ")


def _numbers() -> st.SearchStrategy[str]:
    """Integers as text, inside and outside every bound, and text that is almost a number."""
    edges = [0, 1, -1, -2, 5, 300000, limits.TTL_MS, limits.TTL_MS + 1, limits.MAX_VERSIONS, limits.MAX_VERSIONS + 1,
             limits.WINDOW_MS + 1, limits.VERSION, limits.VERSION + 1, 2**63, -(2**63) - 1, 10**300]
    return st.one_of(
        st.sampled_from([str(n) for n in edges]),
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
    """Stored-value candidates: good ones, hostile msgpack, tagged blobs, cut or joined bytes."""
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
        st.sampled_from([b"\xa2\xff\xfe", b"\xa3\xed\xa0\x80", b"\xdd\xff\xff\xff\xff", b"\xdb\xff\xff\xff\xff",
                         b"\xdf\x00\x01\x00\x00", b"\x91" * 40 + b"\x01", b"\xca\x7f\xc0\x00\x00"]),
    )
    return st.one_of(good, hostile)


def _names() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["price", "name", "vec", "n", "#min", "#keep", "price#1", "", "a" * 129, "p:a"]),
                     st.text(max_size=12))


class Target:
    """The namespace under fire: two entities (one with history and TTLs, one without TTL) and
    keys of the wrong types where an entity's keys would be."""

    def __init__(self, server: Any, namespace: str) -> None:
        self.namespace = namespace
        self.client = redis.Redis.from_url(server.url, socket_timeout=10)
        config = FeatureStoreConfig(redis_url=server.url, namespace=namespace, max_versions=3)
        with FeatureStore(config) as store:
            store.write_features("p:1", {"price": 1.5, "name": "x", "vec": np.ones(4, np.float32)})
            store.write_features("p:1", {"price": 2.5}, ttl=600)
            store.write_features("p:2", {"n": 1}, ttl=None)
        self.entities = [list(entity_keys(namespace, e)) for e in ("p:1", "p:2", "p:3")]
        wrong = list(entity_keys(namespace, "p:4"))
        self.client.set(wrong[0], "string")
        self.client.lpush(wrong[1], "list")
        self.client.sadd(wrong[2], "set")
        self.client.hset(wrong[3], "hash", "1")
        self.entities.append(wrong)
        self.registry = list(registry_keys(namespace))

    def keys(self) -> st.SearchStrategy[list[str]]:
        one = st.sampled_from(self.entities)
        any_key = st.one_of(st.sampled_from([k for e in self.entities for k in e] + self.registry),
                            st.text(max_size=20).map(lambda t: f"{self.namespace}:{t}"))
        return st.one_of(
            one, one.map(lambda e: e[:2]), one.map(lambda e: e[:3]), st.lists(one, max_size=3).map(lambda es: [k for e in es for k in e[:2]]),
            st.just(self.registry), st.lists(any_key, max_size=6), st.permutations(self.entities[0]),
        )

    def calls(self) -> st.SearchStrategy[tuple[str, list[str], list[Any]]]:
        arg = st.one_of(_numbers(), _names(), _values(), st.binary(max_size=30))
        meta = st.one_of(st.just(b""), st.tuples(_objects, st.booleans()).map(lambda pair: _packed(*pair)))
        # Mostly valid numbers and names, so that calls reach the checks of values and meta.
        good = st.sampled_from(["1", "3", "60000", "300000", "-1", "d60000", "1024"])
        plausible = st.one_of(good, good, good, good, _numbers())
        name = st.one_of(st.sampled_from(["price", "name", "vec", "n", "fresh"]), _names())
        write = st.tuples(
            st.one_of(st.text(min_size=1, max_size=8), st.text(max_size=300)), plausible, plausible, plausible,
            st.one_of(st.just(b""), st.just(b""), meta), st.lists(st.tuples(name, _values(), plausible), min_size=1, max_size=3),
        ).map(lambda t: [*t[:5], *[x for triple in t[5] for x in triple]])
        rollback = st.tuples(name, plausible, st.text(max_size=8), plausible, plausible, plausible,
                             plausible, st.one_of(st.just(b""), meta)).map(list)
        registry = st.tuples(
            st.sampled_from([self.namespace, "other", ""]), _numbers(), st.text(max_size=10),
            st.sampled_from(["[]", "{}", "x"]), st.sampled_from(["0", "1", "2"]),
            st.lists(st.tuples(st.sampled_from(["p:a", "p:b", "#x", "bad group:a", "p:"]), st.one_of(
                st.just(""), st.sampled_from(['{"dtype": "int", "min": 0}', '{"dtype": "embedding", "dim": 2}',
                                              '{"dtype": "nope"}', '{"dtype": "string", "allowed": ["a"]}']),
                st.text(max_size=30))), max_size=3),
        ).map(lambda t: [*t[:5], *[x for pair in t[5] for x in pair]])
        own = st.sampled_from(self.entities)
        return st.one_of(
            st.tuples(st.sampled_from(FUNCTIONS), self.keys(), st.lists(arg, max_size=9)),
            st.tuples(st.just("fs_write"), st.one_of(own, self.keys()), write),
            st.tuples(st.just("fs_write"), own, write),
            st.tuples(st.just("fs_rollback"), st.one_of(own, self.keys()), rollback),
            st.tuples(st.sampled_from(["fs_get", "fs_get_batch", "fs_lineage", "fs_delete"]), self.keys(),
                      st.lists(_names(), max_size=4)),
            st.tuples(st.just("fs_registry_put"), st.just(self.registry), registry),
        )

    def close(self) -> None:
        keys = registry_keys(self.namespace)
        self.client.delete(keys.definitions, keys.log)
        self.client.srem(keys.namespaces, self.namespace)
        self.client.close()


def test_no_call_breaks_the_boundary(server, namespace) -> None:
    target = Target(server, namespace)
    outcomes: Counter[str] = Counter()

    def live(client: redis.Redis) -> dict[bytes, Any]:
        return {key: state(client, key) for key in client.scan_iter(match=f"{namespace}:*")}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(target.calls())
    def call(spec: tuple[str, list[str], list[Any]]) -> None:
        function, keys, args = spec
        client = target.client
        before = live(client)
        try:
            client.execute_command("FCALL", function, len(keys), *keys, *args)
        except redis.ResponseError as exc:
            message = str(exc)
            outcomes[message.split(" ", 1)[0]] += 1
            # CROSSSLOT and the like are the server's own refusals: it ran nothing.
            assert _ERROR.match(message) or message.startswith("No such"), f"{function}: untyped error {message!r}"
            after = live(client)
            now = int(float(b"%d.%06d" % client.time()) * 1000)  # keys a past call gave a TTL of ms may expire
            before = {key: s for key, s in before.items() if not (0 < s[2] <= now + 5 or s[2] == -2)}  # -2: expired
            after = {key: s for key, s in after.items() if not (0 < s[2] <= now + 5 or s[2] == -2)}  # as it was read
            assert after == before, f"{function} {keys} {args!r}: refused ({message}) but changed keys"
        else:
            outcomes["ok"] += 1
        assert client.ping()

    try:
        call()
    finally:
        target.close()
        print(f"\nfuzz {server.binary.rsplit('/', 1)[-1]}: {sum(outcomes.values())} calls, {dict(outcomes)}")
    assert outcomes["ok"] and sum(v for k, v in outcomes.items() if k.startswith("FS")), outcomes
