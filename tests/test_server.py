"""The sidecar through its app factory (pytest-aiohttp), against the real session servers."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import msgpack
import numpy as np
import pytest

from fsredis import FeatureStoreConfig
from fsredis_server import ServerSettings, create_app
from fsredis_server.handlers import ROUTES
from fsredis_server.openapi import spec

TOKEN = "s3cret-token-0123456789"
DEFINITIONS = {
    "strict": False,
    "groups": {"product": {
        "price": {"dtype": "float", "min": 0},
        "vec": {"dtype": "embedding", "dim": 3},
        "half": {"dtype": "embedding", "dim": 2, "precision": "float16"},
        "seen": {"dtype": "timestamp"},
    }},
}


def settings_for(server, namespace, **overrides) -> ServerSettings:
    store = FeatureStoreConfig(redis_url=server.url, namespace=namespace, retries=0)
    return ServerSettings(store=store, check_interval=0.05, **overrides)


async def ready(client) -> None:
    for _ in range(200):
        if (await client.get("/readyz")).status == 200:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the sidecar never became ready")


@pytest.fixture
async def api(aiohttp_client, server, namespace):
    client = await aiohttp_client(create_app(settings_for(server, namespace)))
    await ready(client)
    return client


@pytest.fixture
async def locked(aiohttp_client, server, namespace):
    client = await aiohttp_client(create_app(settings_for(server, namespace, token=TOKEN)))
    await ready(client)
    return client


async def put_registry(client, registry=DEFINITIONS, **extra):
    response = await client.put("/v1/registry", json={"registry": registry, **extra})
    return response.status, await response.json()


async def test_health_and_readiness(api) -> None:
    assert (await (await api.get("/healthz")).json())["status"] == "alive"
    body = await (await api.get("/readyz")).json()
    assert body["ready"] and body["library_version"] and body["registry_version"] == 0


async def test_features_round_trip_in_json(api) -> None:
    assert (await put_registry(api))[0] == 200
    written = await api.put("/v1/features/product:1", json={
        "features": {"price": 9.5, "vec": [1, 2, 3], "half": [0.5, 1.5], "seen": "2026-01-02T03:04:05Z",
                     "tags": ["a", "b"]},
        "source": "http-test",
    })
    assert written.status == 200, await written.text()
    assert (await written.json())["written"] == ["half", "price", "seen", "tags", "vec"]
    got = await (await api.get("/v1/features/product:1")).json()
    assert got == {"entity_id": "product:1", "features": {
        "price": 9.5, "vec": [1.0, 2.0, 3.0], "half": [0.5, 1.5], "seen": "2026-01-02T03:04:05Z", "tags": ["a", "b"]}}
    some = await (await api.get("/v1/features/product:1?names=price,nope")).json()
    assert some["features"] == {"price": 9.5}
    lineage = await (await api.get("/v1/lineage/product:1/price")).json()
    assert lineage["current_version"] == 1 and lineage["versions"][0]["source"] == "http-test"
    deleted = await (await api.delete("/v1/features/product:1?names=tags")).json()
    assert deleted["deleted"] == 1
    assert "tags" not in (await (await api.get("/v1/features/product:1")).json())["features"]


async def test_msgpack_carries_embeddings_as_bytes(api) -> None:
    await put_registry(api)
    vector = np.array([1.0, 2.0, 3.0], dtype="<f4")
    body = msgpack.packb({"features": {"vec": vector.tobytes(), "seen": datetime(2026, 1, 2, tzinfo=timezone.utc)}},
                         datetime=True)
    written = await api.put("/v1/features/product:2", data=body, headers={"Content-Type": "application/msgpack"})
    assert written.status == 200, await written.text()
    response = await api.get("/v1/features/product:2", headers={"Accept": "application/msgpack"})
    assert response.content_type == "application/msgpack"
    got = msgpack.unpackb(await response.read(), timestamp=3)["features"]
    np.testing.assert_array_equal(np.frombuffer(got["vec"], dtype="<f4"), vector)
    assert got["seen"] == datetime(2026, 1, 2, tzinfo=timezone.utc)


async def test_refused_writes_are_400_with_the_lua_code(api) -> None:
    await put_registry(api)
    response = await api.put("/v1/features/product:3", json={"features": {"price": -1, "vec": [1, 2, 3]}})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "FSVALIDATION" and error["feature"] == "price" and error["rule"] == "min"
    response = await api.put("/v1/features/product:3", json={"features": {"vec": [1, 2]}})
    assert (await response.json())["error"]["rule"] == "dim"
    assert (await api.get("/v1/features/product:3")).status == 404  # nothing was written


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("PUT", "/v1/features/product:1", None, 400, "FSBADREQUEST"),
        ("PUT", "/v1/features/product:1", b"{not json", 400, "FSBADREQUEST"),
        ("PUT", "/v1/features/product:1", {"features": []}, 400, "FSBADREQUEST"),
        ("PUT", "/v1/features/product:1", {"features": {"a": 1}, "ttl": "soon"}, 400, "FSBADREQUEST"),
        ("PUT", "/v1/features/bad%20id", {"features": {"a": 1}}, 400, "FSVALIDATION"),
        ("PUT", "/v1/features/product:1", {"features": {"a": {"b": 1}}}, 400, "FSVALIDATION"),
        ("GET", "/v1/features/nobody", None, 404, "FSNOTFOUND"),
        ("GET", "/v1/lineage/nobody/price", None, 404, "FSNOTFOUND"),
        ("GET", "/v1/lineage/p:1/price?limit=x", None, 400, "FSBADREQUEST"),
        ("POST", "/v1/rollback/p:1/price", {"version": 3}, 404, "FSNOTFOUND"),
        ("POST", "/v1/rollback/p:1/price", {"version": "3"}, 400, "FSBADREQUEST"),
        ("POST", "/v1/features:batch", {"entity_ids": []}, 400, "FSBADREQUEST"),
        ("POST", "/v1/features:batch", {"entity_ids": "a"}, 400, "FSBADREQUEST"),
        ("POST", "/v1/compute/p:1", {"raw_data": {"zzz": 1}}, 400, "FSTRANSFORM"),
        ("POST", "/v1/compute/p:1", {"raw_data": {"price": -4}}, 400, "FSTRANSFORM"),
        ("PUT", "/v1/registry", {"registry": {"groups": {"p": {"x": {"dtype": "decimal"}}}}}, 400, "FSSCHEMA"),
        ("GET", "/nowhere", None, 404, "FSNOTFOUND"),
        ("PATCH", "/v1/features/p:1", None, 405, "FSMETHOD"),
    ],
)
async def test_errors_are_json_with_stable_codes(api, method, path, body, status, code) -> None:
    kwargs = {"json": body} if isinstance(body, (dict, list)) else {"data": body}
    response = await api.request(method, path, **kwargs)
    assert response.status == status, await response.text()
    error = (await response.json())["error"]
    assert error["code"] == code and error["message"]
    assert "Traceback" not in error["message"]


async def test_batch_compute_and_rollback(api) -> None:
    computed = await api.post("/v1/compute/product:7", json={"raw_data": {"name": "Red shoe", "price": 20}})
    assert computed.status == 200, await computed.text()
    await api.put("/v1/features/product:8", json={"features": {"price": 1.0}})
    await api.put("/v1/features/product:8", json={"features": {"price": 2.0}})
    rolled = await (await api.post("/v1/rollback/product:8/price", json={"version": 1})).json()
    assert rolled["version"] == 3
    batch = await (await api.post("/v1/features:batch", json={
        "entity_ids": ["product:7", "product:8", "product:9"], "names": ["price", "price_bucket"]})).json()
    assert batch["entities"] == {"product:7": {"price": 20.0, "price_bucket": 2}, "product:8": {"price": 1.0},
                                 "product:9": {}}
    lineage = await (await api.get("/v1/lineage/product:7/price_bucket?limit=1")).json()
    assert lineage["versions"][0]["transform"] == "price_features"


async def test_registry_routes(api) -> None:
    planned = await api.put("/v1/registry?dry_run=true", json={"registry": DEFINITIONS})
    assert planned.status == 200 and len((await planned.json())["changes"]) == 4
    assert (await (await api.get("/v1/registry")).json())["version"] == 0  # a dry run changes nothing
    status, applied = await put_registry(api)
    assert status == 200 and applied["version"] == 1 and len(applied["changes"]) == 4
    await api.put("/v1/features/product:4", json={"features": {"price": 1.0}})
    changed = {"groups": {"product": {**DEFINITIONS["groups"]["product"], "price": {"dtype": "string"}}}}
    status, refused = await put_registry(api, changed)
    assert status == 400 and refused["error"]["code"] == "FSSCHEMA" and "product:price" in refused["error"]["message"]
    status, forced = await put_registry(api, changed, force=True)
    assert status == 200 and forced["version"] == 2
    registry = await (await api.get("/v1/registry")).json()
    assert registry["version"] == 2 and registry["groups"]["product"]["price"] == {"dtype": "string"}


async def test_writes_need_the_token_and_reads_do_not(locked) -> None:
    body = {"features": {"price": 1.0}}
    missing = await locked.put("/v1/features/p:1", json=body)
    assert missing.status == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await missing.json())["error"]["code"] == "FSUNAUTHORIZED"
    wrong = await locked.put("/v1/features/p:1", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status == 403 and (await wrong.json())["error"]["code"] == "FSFORBIDDEN"
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert (await locked.put("/v1/features/p:1", json=body, headers=good)).status == 200
    for method, path, payload in (("DELETE", "/v1/features/p:1?names=x", None), ("POST", "/v1/compute/p:1", {}),
                                  ("POST", "/v1/rollback/p:1/price", {"version": 1}), ("PUT", "/v1/registry", {})):
        assert (await locked.request(method, path, json=payload)).status == 401, path
    assert (await locked.get("/v1/features/p:1")).status == 200
    assert (await locked.post("/v1/features:batch", json={"entity_ids": ["p:1"]})).status == 200
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert (await locked.get(path)).status == 200


async def test_reads_can_be_closed(aiohttp_client, server, namespace) -> None:
    client = await aiohttp_client(create_app(settings_for(server, namespace, token=TOKEN, protect_reads=True)))
    assert (await client.get("/v1/features/p:1")).status == 401
    assert (await client.post("/v1/features:batch", json={"entity_ids": ["p:1"]})).status == 401
    assert (await client.get("/v1/features/p:1", headers={"Authorization": f"Bearer {TOKEN}"})).status == 404


async def test_request_ids(api) -> None:
    given = await api.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = await api.get("/healthz", headers={"X-Request-ID": "bad id <script>"})
    assert len(made.headers["X-Request-ID"]) == 32 and made.headers["X-Request-ID"] != "bad id"


async def test_metrics_expose_requests_hit_rate_validation_and_redis(api) -> None:
    await put_registry(api)
    await api.put("/v1/features/product:5", json={"features": {"price": 1.0}})
    await api.put("/v1/features/product:5", json={"features": {"price": -1.0}})
    await api.get("/v1/features/product:5?names=price,missing")
    await api.post("/v1/compute/product:6", json={"raw_data": {"price": 3}})
    text = await (await api.get("/metrics")).text()
    for line in (
        'fsredis_http_requests_total{method="PUT",route="/v1/features/{entity}",status="400"} 1.0',
        'fsredis_validation_errors_total{rule="min"} 1.0',
        "fsredis_features_requested_total 2.0",
        "fsredis_features_found_total 1.0",
        "fsredis_redis_up 1.0",
        'fsredis_transform_duration_seconds_count{transform="price_features"} 1.0',
        'fsredis_operation_duration_seconds_count{operation="get_features"} 1.0',
        "fsredis_redis_pool_size 64.0",
    ):
        assert line in text, line
    assert 'fsredis_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/readyz"}' in text
    assert "fsredis_library_info{registry_version=" in text


def test_openapi_lists_exactly_the_routes() -> None:
    document = spec()
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert documented == {(method, path) for method, path, _ in ROUTES}
    assert document["openapi"].startswith("3.")
    for path, item in document["paths"].items():
        for op in item.values():
            for ref in _refs(op):
                name = ref.rsplit("/", 1)[1]
                assert name in document["components"]["schemas"] or name in document["components"]["responses"], (path, ref)


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


async def test_the_served_document_is_the_spec(api) -> None:
    assert await (await api.get("/openapi.json")).json() == spec()
