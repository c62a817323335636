"""Property tests: the Python rules (FeatureDefinition.validate_encoded) and the Lua write give the
same verdict, with the same rule, on the same bytes, for random definitions and values."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import numpy as np
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsredis import FeatureDefinition, FeatureStore, FeatureStoreConfig, ValidationError, codec
from fsredis.errors import translate
from fsredis.keys import entity_keys
from tests.conftest import SERVERS, shared_server
from tests.test_registry import DEFINITIONS

SAFE_INT = 2**53  # Lua numbers are doubles: bounds and values beyond this compare approximately
_ids = itertools.count()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-SAFE_INT, SAFE_INT),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0, 1, 2, 3, -1, 0.5, 10.0, 100, 101, "a", "b", "red", "green", ""]),
    st.text(max_size=6),
)
values = st.one_of(
    scalars,
    st.lists(st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b", "c", 1.5, 2.0, True, None]), scalars), max_size=4),
    st.integers(1, 6).map(lambda n: np.ones(n, np.float32)),
    st.integers(1, 6).map(lambda n: np.ones(n, np.float16)),
    st.integers(0, 10**6).map(lambda s: datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=s)),
)


def edges(definition: FeatureDefinition) -> list[object]:
    """Values at and just past each of the definition's limits, alone and as list items."""
    edges: list[object] = [None, True, 0, 1.5, "a"]
    for bound in (definition.min, definition.max):
        if bound is not None:
            edges += [bound, bound - 1, bound + 1, float(bound), bound - 0.5, bound + 0.5, int(bound)]
    for allowed in definition.allowed or ():
        edges += [allowed, [allowed], [allowed, allowed]]
    if definition.max_length is not None:
        n = definition.max_length
        edges += ["x" * n, "é" * n, "x" * (n + 1), "é" * (n + 1), [1] * n, [1] * (n + 1), ["a"] * (n + 1)]
    if definition.dim is not None:
        for size in (definition.dim - 1, definition.dim, definition.dim + 1):
            edges += [np.ones(size, np.float32), np.ones(size, np.float16)] if size > 0 else []
    edges = [edge for edge in edges if not isinstance(edge, float) or abs(edge) < SAFE_INT]
    return edges + [[edge] for edge in edges if not isinstance(edge, (list, np.ndarray))]


@pytest.fixture(scope="module", params=SERVERS)
def store(request, servers):
    server = shared_server(servers, request.param)
    namespace = f"agree{next(_ids)}"
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as fs:
        yield fs


def python_verdict(definition: FeatureDefinition, raw: bytes) -> str | None:
    try:
        definition.validate_encoded(raw)
    except ValidationError as exc:
        return exc.rule
    return None


def lua_verdict(store: FeatureStore, group: str, name: str, raw: bytes) -> str | None:
    keys = entity_keys(store.config.namespace, f"{group}:{next(_ids)}")
    options = msgpack.packb({"id": f"w{next(_ids)}", "max_versions": 0, "dedup_ms": 0, "max_bytes": 1 << 22})
    try:
        store.redis.execute_command("FCALL", "fs_write", 1, *keys, options, "", name, raw)
    except Exception as exc:  # a ResponseError carrying FSVALIDATION
        error = translate(exc)
        assert isinstance(error, ValidationError), error
        return error.rule
    return None


def encoded(value: object) -> bytes | None:
    try:
        return codec.encode_value("v", value)
    except ValidationError:
        return None  # the client refuses it before any rule is looked at


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(definition=st.sampled_from([FeatureDefinition(**d) for d in DEFINITIONS]), data=st.data())
def test_python_and_lua_agree_on_the_registered_examples(store, definition, data) -> None:
    if store.get_registry().version == 0:
        store.register_features("agree", [FeatureDefinition(**d) for d in DEFINITIONS])
    value = data.draw(values)
    raw = encoded(value)
    if raw is not None:
        assert python_verdict(definition, raw) == lua_verdict(store, "agree", definition.name, raw), value


def test_python_and_lua_agree_at_every_edge_of_the_registered_examples(store) -> None:
    if store.get_registry().version == 0:
        store.register_features("agree", [FeatureDefinition(**d) for d in DEFINITIONS])
    for definition in (FeatureDefinition(**d) for d in DEFINITIONS):
        for value in edges(definition):
            raw = encoded(value)
            if raw is not None:
                assert python_verdict(definition, raw) == lua_verdict(store, "agree", definition.name, raw), value


numbers = st.integers(-1000, 1000) | st.floats(-1000, 1000, allow_nan=False)


@st.composite
def definitions(draw: st.DrawFn) -> FeatureDefinition:
    dtype = draw(st.sampled_from(["int", "float", "string", "bool", "timestamp", "embedding", "list"]))
    fields: dict[str, object] = {"nullable": draw(st.booleans())}
    scalar = dtype
    if dtype == "embedding":
        fields.update(dim=draw(st.integers(1, 6)), precision=draw(st.sampled_from(["float32", "float16"])))
    if dtype == "list":
        scalar = draw(st.sampled_from(["int", "float", "string", "bool"]))
        fields["items"] = scalar
    if scalar in ("int", "float"):
        low = draw(st.none() | (st.integers(-5, 5) if scalar == "int" else numbers))
        high = draw(st.none() | (st.integers(-5, 5) if scalar == "int" else numbers))
        if low is not None and high is not None and low > high:
            low, high = high, low
        fields.update(min=low, max=high)
    if scalar in ("int", "string") and draw(st.booleans()):
        pool = st.integers(-3, 3) if scalar == "int" else st.sampled_from(["a", "b", "red", ""])
        fields["allowed"] = draw(st.lists(pool, min_size=1, max_size=3))
    if dtype in ("string", "list") and draw(st.booleans()):
        fields["max_length"] = draw(st.integers(0, 4))
    return FeatureDefinition(name="f", dtype=dtype, **fields)  # type: ignore[arg-type]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(definition=definitions(), data=st.data())
def test_python_and_lua_agree_on_random_definitions(store, definition, data) -> None:
    group = f"g{next(_ids)}"
    store.register_features(group, [definition])
    for value in edges(definition) + data.draw(st.lists(values, min_size=5, max_size=5)):
        raw = encoded(value)
        if raw is not None:
            assert python_verdict(definition, raw) == lua_verdict(store, group, "f", raw), (definition, value)
