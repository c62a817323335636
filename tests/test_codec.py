"""The codec, without Redis: round trips (property-based), tags, zero-copy embeddings."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from enum import IntEnum

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fsredis import ValidationError
from fsredis.codec import EMBEDDING_F16, EMBEDDING_F32, TIMESTAMP, decode_value, decode_values, encode_value, is_embedding

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
values = st.one_of(scalars, st.lists(scalars, max_size=20))


@given(values)
def test_scalars_and_lists_round_trip(value) -> None:
    decoded = decode_value(encode_value("f", value))
    assert decoded == value
    if isinstance(value, float):
        assert math.copysign(1, decoded) == math.copysign(1, value)


@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=300))
def test_float32_embeddings_round_trip_exactly(floats) -> None:
    array = np.array(floats, dtype=np.float32)
    raw = encode_value("vec", array)
    assert raw[:4] == EMBEDDING_F32 and len(raw) == 4 + 4 * len(floats)
    np.testing.assert_array_equal(decode_value(raw), array)


@given(st.datetimes(timezones=st.just(timezone.utc)))
def test_timestamps_round_trip_to_the_microsecond(moment) -> None:
    raw = encode_value("at", moment)
    assert raw[:4] == TIMESTAMP and len(raw) == 12
    assert decode_value(raw) == moment


def test_timestamps_in_other_zones_come_back_as_utc() -> None:
    moment = datetime(2026, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
    decoded = decode_value(encode_value("at", moment))
    assert decoded == moment and decoded.tzinfo == timezone.utc and decoded.hour == 14


def test_numpy_datetime64_is_a_timestamp() -> None:
    decoded = decode_value(encode_value("at", np.datetime64("2026-01-02T03:04:05.123456")))
    assert decoded == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)


def test_scalar_values_are_plain_msgpack_that_lua_can_read() -> None:
    raw = encode_value("s", "hello")
    assert raw == msgpack.packb("hello", use_bin_type=False)
    assert raw[0] == 0xA5  # fixstr, not bin


def test_numpy_scalars_and_subclasses_are_stored_as_plain_values() -> None:
    class Level(IntEnum):
        HIGH = 3

    assert decode_value(encode_value("a", np.float32(1.5))) == 1.5
    assert type(decode_value(encode_value("a", np.int64(7)))) is int
    assert decode_value(encode_value("a", np.bool_(True))) is True
    assert decode_value(encode_value("a", Level.HIGH)) == 3
    assert decode_value(encode_value("a", (1, "two"))) == [1, "two"]


def test_embeddings_decode_without_copying() -> None:
    raw = encode_value("vec", np.arange(768, dtype=np.float32))
    array = decode_value(raw)
    assert array.base is not None and not array.flags.owndata
    assert not array.flags.writeable
    assert array.flags.aligned
    assert np.shares_memory(array, np.frombuffer(raw, dtype=np.uint8))


def test_float64_embeddings_are_stored_as_float32_and_float16_stays_float16() -> None:
    assert encode_value("v", np.ones(3))[:4] == EMBEDDING_F32
    assert encode_value("v", np.ones(3, dtype=np.float16))[:4] == EMBEDDING_F16
    assert encode_value("v", np.ones(3), embedding_dtype="float16")[:4] == EMBEDDING_F16
    assert decode_value(encode_value("v", np.ones(3, dtype=np.float16))).dtype == np.float16


def test_is_embedding() -> None:
    assert is_embedding(encode_value("v", np.ones(2)))
    assert not is_embedding(encode_value("v", 1.0))
    assert not is_embedding(encode_value("v", datetime.now(timezone.utc)))


def test_float16_overflow_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        encode_value("v", np.array([1e6]), embedding_dtype="float16")
    assert caught.value.rule == "finite" and "too large" in caught.value.detail


@given(st.one_of(st.just(math.inf), st.just(-math.inf), st.floats(allow_nan=True).filter(math.isnan)))
def test_non_finite_floats_are_refused(value) -> None:
    with pytest.raises(ValidationError) as caught:
        encode_value("x", value)
    assert (caught.value.feature, caught.value.rule) == ("x", "finite")


@given(st.lists(st.one_of(values, st.just(np.arange(3, dtype=np.float32)),
                          st.just(datetime(2026, 1, 1, tzinfo=timezone.utc))), max_size=30))
def test_decoding_many_values_at_once_matches_one_by_one(items) -> None:
    raws = [encode_value("f", item) for item in items]
    together = decode_values(raws)
    assert len(together) == len(items)
    for one, many in zip((decode_value(raw) for raw in raws), together):
        if isinstance(one, np.ndarray):
            np.testing.assert_array_equal(one, many)
        else:
            assert one == many and type(one) is type(many)


@pytest.mark.parametrize("value", [2**63, 2**64 - 1, -(2**63) - 1, [1, 2**63]])
def test_integers_outside_int64_are_refused(value) -> None:
    # Lua's cmsgpack reads a uint64 of 2**63 or more as a negative number: the registry's min and
    # max would be checked against the wrong value, so no such integer is stored.
    with pytest.raises(ValidationError) as refused:
        encode_value("n", value)
    assert refused.value.rule == "range"
    assert decode_value(encode_value("n", 2**63 - 1)) == 2**63 - 1


def _stored(expires: int, value: bytes) -> bytes:
    """A stored field: the 24-byte head (expiry, event time, version, record) and the value."""
    return expires.to_bytes(6, "little", signed=True) + bytes(18) + value


_expiries = st.sampled_from([0, 999, 1000, 1001, 2**47 - 1, -5])  # around now=1000, never, corrupt
_plain_fields = st.one_of(st.none(), st.tuples(_expiries, values.map(lambda v: encode_value("f", v))).map(lambda p: _stored(*p)))
_fields = st.one_of(
    _plain_fields,
    st.tuples(_expiries, st.one_of(st.just(encode_value("e", np.ones(3, np.float32))), st.binary(max_size=4))).map(
        lambda p: _stored(*p)
    ),
    st.binary(max_size=30),  # damaged: too short for a head, or a head and no value
)


@given(st.one_of(st.lists(_plain_fields, min_size=1, max_size=12), st.lists(_fields, min_size=1, max_size=12)))
def test_the_fast_single_read_decodes_as_the_general_path(raw) -> None:
    """decode_direct (one pass, one unpackb) answers exactly as decode_get of codec.live: the
    same values, the same expired ones dropped, the same CorruptValue."""
    from fsredis.commands import decode_direct, decode_get
    from fsredis.codec import live
    from fsredis.errors import CorruptValue

    names = [f"f{i}" for i in range(len(raw))]

    def outcome(decode):  # type: ignore[no-untyped-def]
        try:
            found = decode()
        except CorruptValue as exc:
            return ("corrupt", exc.args)
        return {name: value.tolist() if isinstance(value, np.ndarray) else value for name, value in found.items()}

    fast = outcome(lambda: decode_direct(names, raw, 1000.0, "e1"))
    general = outcome(lambda: decode_get(names, [live(field, 1000.0) for field in raw], "e1"))
    assert fast == general
    if not isinstance(fast, tuple):
        for name, field in zip(names, raw):
            if field is not None and len(field) > 24 and 0 < int.from_bytes(field[:6], "little", signed=True) <= 1000:
                assert name not in fast  # expired at now: never returned


@given(st.integers(min_value=1, max_value=4).flatmap(
    lambda width: st.lists(st.lists(_fields, min_size=width, max_size=width), min_size=1, max_size=5)
))
def test_the_fast_batch_read_decodes_as_the_general_path(rows) -> None:
    """decode_batches' one pass over all rows answers exactly as live() and decode_rows: the same
    rows, the same values, the same unreadable ones marked."""
    from fsredis.commands import decode_batches, decode_rows
    from fsredis.codec import live

    names = [f"f{i}" for i in range(len(rows[0]))]
    ids = [f"e{i}" for i in range(len(rows))]

    def plain(found):  # type: ignore[no-untyped-def]
        return {e: {n: v.tolist() if isinstance(v, np.ndarray) else (repr(v) if type(v).__name__ == "Unreadable" else v)
                    for n, v in row.items()} for e, row in found.items()}

    fast, fast_readable = decode_batches([ids], names, [[1000.0, *rows]])
    general, readable = decode_rows(names, [live(field, 1000.0) for row in rows for field in row], len(rows))
    assert fast_readable == readable
    assert plain(fast) == plain(dict(zip(ids, general)))
