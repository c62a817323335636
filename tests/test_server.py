"""The sidecar through its app factory (pytest-aiohttp), against the real session servers."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import time
import tracemalloc
import zlib
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

import msgpack
import numpy as np
import orjson
import pytest

from fsredis import FeatureStoreConfig
from fsredis.embedded import free_port
from fsredis_server import ServerSettings, create_app, handlers, logs
from fsredis_server.handlers import ROUTES
from fsredis_server.openapi import spec
from fsredis_server.settings import ConfigError
from tests.conftest import start_server

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


async def test_writes_take_an_event_time_and_report_versions(api) -> None:
    first = await (await api.put("/v1/features/e:1", json={"features": {"a": 2}, "event_time": "2026-12-01T10:00:00Z",
                                                             "write_id": "w-1"})).json()
    assert first["versions"] == {"a": 1} and first["applied"] and first["history_only"] == []
    late = await (await api.put("/v1/features/e:1", json={"features": {"a": 1}, "event_time": 1_700_000_000})).json()
    assert late["versions"] == {"a": 2} and late["history_only"] == ["a"]
    again = await (await api.put("/v1/features/e:1", json={"features": {"a": 3}, "write_id": "w-1"})).json()
    assert again["applied"] is False and again["versions"] == {}
    assert (await (await api.get("/v1/features/e:1")).json())["features"] == {"a": 2}
    lineage = await (await api.get("/v1/lineage/e:1/a")).json()
    assert [(v["version"], v["event_time"]) for v in lineage["versions"]] == [(2, 1_700_000_000.0), (1, 1_796_119_200.0)]
    for bad in ("yesterday", "2026-12-01T10:00:00", [1]):
        response = await api.put("/v1/features/e:1", json={"features": {"a": 1}, "event_time": bad})
        assert response.status == 400, bad


async def test_reads_as_of_a_time(api) -> None:
    for event, value in ((1_700_000_000, 1), (1_700_000_100, 2)):
        await api.put("/v1/features/e:2", json={"features": {"a": value, "b": "x"}, "event_time": event})
    one = await (await api.get("/v1/features/e:2", params={"as_of": "1700000050", "names": "a,b"})).json()
    assert one == {"entity_id": "e:2", "features": {"a": 1, "b": "x"}, "beyond_retention": []}
    iso = await (await api.get("/v1/features/e:2", params={"as_of": "2023-11-14T22:15:00Z"})).json()
    assert iso["features"] == {"a": 2, "b": "x"}  # 1,700,000,100 s is 22:15:00 UTC
    assert (await api.get("/v1/features/e:2", params={"as_of": "1600000000"})).status == 404
    batch = await (await api.post("/v1/features:batch", json={"entity_ids": ["e:2", "e:3"], "names": ["a"],
                                                              "as_of": 1_700_000_050})).json()
    assert batch == {"entities": {"e:2": {"a": 1}, "e:3": {}}, "beyond_retention": {}}
    for bad in ("yesterday", "2023-11-14T22:15:00", "nan"):
        response = await api.get("/v1/features/e:2", params={"as_of": bad})
        assert response.status == 400, bad
        assert (await response.json())["error"]["code"] == "FSVALIDATION", bad


async def test_ingest_streams_ndjson_and_msgpack_rows(api, locked) -> None:
    lines = [{"entity_id": f"e:{i}", "features": {"a": i, "b": "x"}, "event_time": 1000 + i} for i in range(1200)]
    body = b"\n".join(orjson.dumps(line) if i != 7 else b'{"entity_id": "e:7", "features": {"a": 1e999}}'
                      for i, line in enumerate(lines)) + b"\nnot json\n\n" + orjson.dumps({"entity_id": 5}) + b"\n"
    response = await api.post("/v1/ingest?source=upload-1", data=body, headers={"Content-Type": "application/x-ndjson"})
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert (answer["rows"], answer["written"], answer["rejected"]) == (1202, 1199, 3)
    assert [e["row"] for e in answer["errors"]] == [7, 1200, 1201]
    assert {e["code"] for e in answer["errors"]} <= {"FSVALIDATION", "FSBADREQUEST"}
    got = await (await api.get("/v1/features/e:1199")).json()
    assert got["features"] == {"a": 1199, "b": "x"}
    lineage = await (await api.get("/v1/lineage/e:3/a")).json()
    assert lineage["versions"][0]["source"] == "upload-1" and lineage["versions"][0]["event_time"] == 1003.0
    packed = b"".join(msgpack.packb({"entity_id": f"m:{i}", "features": {"v": [1.0, 2.0]}, "write_id": f"w{i}"})
                      for i in range(3))
    for _ in range(2):  # a retried upload with the same write ids adds nothing
        answer = await (await api.post("/v1/ingest", data=packed, headers={"Content-Type": "application/msgpack"})).json()
    assert (answer["rows"], answer["written"], answer["already_applied"]) == (3, 0, 3)
    assert (await locked.post("/v1/ingest", data=packed, headers={"Content-Type": "application/msgpack"})).status == 401


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
        ("GET", "/v1/lineage/p:1/price?limit=x", None, 400, "FSVALIDATION"),
        ("GET", "/v1/lineage/p:1/price?limit=%C2%B2", None, 400, "FSVALIDATION"),  # a Unicode digit
        ("GET", "/v1/features/p:1?names=,", None, 400, "FSVALIDATION"),
        ("GET", "/v1/features/a%7Bb%7D", None, 400, "FSVALIDATION"),
        ("GET", "/v1/features/a{b}", None, 400, "FSVALIDATION"),
        ("GET", "/v1/lineage/p:1/a%23b", None, 400, "FSVALIDATION"),
        ("POST", "/v1/features:batch", {"entity_ids": ["ok:1", "no}"]}, 400, "FSVALIDATION"),
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
    for _ in range(100):  # fsredis_redis_up is the last background check's (each bounded to 25 ms here)
        text = await (await api.get("/metrics")).text()
        if "fsredis_redis_up 1.0" in text:
            break
        await asyncio.sleep(0.05)
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
    assert documented == {(method, re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)) for method, path, _ in ROUTES}
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


# -- hardening: bodies, hang-ups, parameters, numbers, paths, codes, deadlines, secrets -----------------


@pytest.fixture
def json_logs(capsys):
    """The process-wide logging of ``fsredis serve`` (stdlib records as JSON too) for one test;
    returns a function giving the JSON lines printed so far (every stdout line must be one)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("aiohttp.access").disabled
    logs.configure()

    def lines() -> list[dict]:
        out = capsys.readouterr().out
        assert "Traceback" not in out, out
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    yield lines
    root.handlers, root.level = saved[0], saved[1]
    logging.getLogger("aiohttp.access").disabled = saved[2]


def gzip_of(data: bytes, repeat: int = 1) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    return b"".join([*(packer.compress(data) for _ in range(repeat)), packer.flush()])


async def test_compressed_bodies_are_read_and_a_bomb_is_refused_without_inflating_it(
        aiohttp_client, server, namespace) -> None:
    client = await aiohttp_client(create_app(settings_for(server, namespace, max_body_bytes=1 << 20)))
    await ready(client)
    body = json.dumps({"features": {"price": 3.5}}).encode()
    for encoding, data in (("gzip", gzip_of(body)), ("deflate", zlib.compress(body))):
        response = await client.put("/v1/features/p:gz", data=data, headers={
            "Content-Encoding": encoding, "Content-Type": "application/json"})
        assert response.status == 200, await response.text()
    bomb = gzip_of(b"\0" * (1 << 20), repeat=256)  # 256 MiB of zeros in 250 KiB
    assert len(bomb) < 256 << 10
    tracemalloc.start()
    try:
        response = await client.put("/v1/features/p:gz", data=bomb, headers={"Content-Encoding": "gzip"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert response.status == 413 and (await response.json())["error"]["code"] == "FSTOOLARGE"
    assert peak < 32 << 20, f"{peak / 2**20:.0f} MiB held while refusing the bomb"
    broken = await client.put("/v1/features/p:gz", data=b"not gzip", headers={"Content-Encoding": "gzip"})
    assert broken.status == 400 and (await broken.json())["error"]["code"] == "FSBADREQUEST"
    reader, writer = await asyncio.open_connection(client.host, client.port)  # the answer may come early
    writer.write(b"PUT /v1/features/p:gz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (2 << 20))
    writer.write(b" " * (2 << 20))
    assert (await reader.readline()).startswith(b"HTTP/1.1 413")
    writer.close()


@pytest.mark.parametrize("cancel", [False, True], ids=["handler-runs-on", "handler-cancelled"])
async def test_a_client_that_hangs_up_is_no_server_error(aiohttp_client, server, namespace, json_logs,
                                                         cancel) -> None:
    app = create_app(settings_for(server, namespace))
    client = await aiohttp_client(app, server_kwargs={"handler_cancellation": cancel})
    await ready(client)
    for request in (
        b"PUT /v1/features/p:1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{\"features\": ",  # the body never comes
        b"GET /v1/features/p:1 HTTP/1.1\r\nHost: x\r\n\r\n",  # gone before the answer
        b"GET /v1/features/p:1 HTTP/1.1\r\nHost: x\r\nBad header line\r\n\r\n",  # not HTTP
    ):
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(request)
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()
        await writer.wait_closed()
    await asyncio.sleep(0.2)
    text = await (await client.get("/metrics")).text()
    assert 'route="/v1/features/{entity}",status="499"} 1.0' in text
    assert not re.search(r'fsredis_http_requests_total\{[^}]*status="5\d\d"', text), text
    lines = json_logs()  # all JSON, no traceback
    gone = [line for line in lines if line.get("status") == 499]
    assert len(gone) == 1 and gone[0]["event"] == "request" and gone[0]["method"] == "PUT"
    assert not [line for line in lines if line.get("level") == "error" and "unhandled" in line["event"]]


@pytest.mark.parametrize(("given", "dry"), [("true", True), ("TRUE", True), ("1", True), ("false", False),
                                            ("False", False), ("0", False), (None, False)])
async def test_dry_run_takes_true_false_1_0(api, given, dry) -> None:
    query = "" if given is None else f"?dry_run={given}"
    response = await api.put(f"/v1/registry{query}", json={"registry": DEFINITIONS})
    assert response.status == 200, await response.text()
    assert (await (await api.get("/v1/registry")).json())["version"] == (0 if dry else 1)


@pytest.mark.parametrize("given", ["", "yes", "no", "on", "2", "tru", " true", "true ", "-1"])
async def test_any_other_boolean_is_refused_naming_the_parameter(api, given) -> None:
    response = await api.put(f"/v1/registry?dry_run={quote(given)}", json={"registry": DEFINITIONS})
    assert response.status == 400
    error = (await response.json())["error"]
    assert error["code"] == "FSVALIDATION" and error["parameter"] == "dry_run" and "dry_run" in error["message"]
    assert "feature" not in error
    assert (await (await api.get("/v1/registry")).json())["version"] == 0


def test_every_boolean_query_parameter_is_strict() -> None:
    """dry_run is the only boolean parameter; a new one must be documented as one and read by flag()."""
    booleans = {param["name"] for item in spec()["paths"].values() for op in item.values()
                for param in op.get("parameters", []) if param["schema"].get("type") == "boolean"}
    assert booleans == {"dry_run"}
    source = Path(handlers.__file__).read_text()
    assert not re.search(r'query\.get\("(%s)"' % "|".join(booleans), source)


@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 2**64, 10**30, -(10**25)])
@pytest.mark.parametrize("where", ["scalar", "list"])
async def test_integers_outside_int64_are_refused_naming_the_feature(api, number, where) -> None:
    value = number if where == "scalar" else [1, number]
    text = '{"features": {"ok": 1, "big": %s}}' % json.dumps(value)
    response = await api.put("/v1/features/p:int", data=text, headers={"Content-Type": "application/json"})
    assert response.status == 400, await response.text()
    error = (await response.json())["error"]
    assert (error["code"], error["feature"], error["rule"]) == ("FSVALIDATION", "big", "range")
    assert (await api.get("/v1/features/p:int")).status == 404  # nothing written
    if 0 <= number < 2**64:  # msgpack can carry these (as uint64)
        packed = msgpack.packb({"features": {"big": value}})
        response = await api.put("/v1/features/p:int", data=packed, headers={"Content-Type": "application/msgpack"})
        assert (await response.json())["error"]["feature"] == "big"


async def test_int64_limits_and_long_digit_runs_still_pass(api) -> None:
    features = {"top": 2**63 - 1, "bottom": -(2**63), "float": 1e30, "text": "12345678901234567890123",
                "list": [2**63 - 1, 0.5]}
    text = json.dumps({"features": features, "source": "9" * 40})
    assert (await api.put("/v1/features/p:edge", data=text)).status == 200
    got = (await (await api.get("/v1/features/p:edge")).json())["features"]
    assert got == features and type(got["top"]) is int and type(got["float"]) is float
    outside = await api.put("/v1/features/p:edge", data='{"features": {"a": 1}, "ttl": 100000000000000000000}')
    assert outside.status == 400 and (await outside.json())["error"]["code"] == "FSBADREQUEST"
    for bad in ('{"features": {"a": NaN}, "x": 1234567890123456789012}', "[" * 100_000 + "1" + "]" * 100_000 + "0" * 20,
                '{"features": {"a": 1%s}}' % ("0" * 5000)):
        assert (await api.put("/v1/features/p:edge", data=bad)).status == 400


@pytest.mark.parametrize(("method", "path", "body", "entity"), [
    ("GET", "/v1/features/a%7Bb%7D", None, "a{b}"),
    ("GET", "/v1/features/%7D", None, "}"),
    ("PUT", "/v1/features/x:{1}", {"features": {"a": 1}}, "x:{1}"),
    ("DELETE", "/v1/features/%7B", None, "{"),
    ("POST", "/v1/compute/a%7Bb", {"raw_data": {"price": 1}}, "a{b"),
    ("GET", "/v1/lineage/%7B%7D/price", None, "{}"),
    ("POST", "/v1/rollback/a%7D/price", {"version": 1}, "a}"),
    ("POST", "/v1/features:batch", {"entity_ids": ["p:1", "p:{2}"]}, "p:{2}"),
    ("GET", "/v1/features/no:such-entity", None, "no:such-entity"),
])
async def test_entity_ids_are_validated_and_named_as_entities(api, method, path, body, entity) -> None:
    response = await api.request(method, path, json=body)
    error = (await response.json())["error"]
    assert error.get("entity") == entity, error
    assert "feature" not in error  # an entity id is never reported as a feature
    if error["code"] == "FSVALIDATION":
        assert response.status == 400 and error["rule"] == "entity_id"
    else:
        assert (response.status, error["code"], error["rule"]) == (404, "FSNOTFOUND", "entity")


async def test_the_feature_field_names_a_feature_or_is_absent(api) -> None:
    await put_registry(api)
    cases = [
        ("PUT", "/v1/features/product:1", {"features": {"price": -1}}, "price"),
        ("PUT", "/v1/features/product:1", {"features": {"a": 1}, "ttl": {"b": 5}}, "b"),
        ("PUT", "/v1/features/product:1", {"features": {"a": 1}, "lineage": {"features": 1}}, None),
        ("PUT", "/v1/features/product:1", {"features": {"a": 1}, "lineage": {"x": {"y": 1}}}, None),
        ("GET", "/v1/lineage/product:1/price", None, "price"),
        ("GET", "/v1/lineage/product:1/a%23b", None, "a#b"),
        ("POST", "/v1/rollback/product:1/price", {"version": 4}, "price"),
    ]
    for method, path, body, feature in cases:
        response = await api.request(method, path, json=body)
        error = (await response.json())["error"]
        assert response.status in (400, 404) and error.get("feature") == feature, (path, body, error)


def _readme_sidecar() -> str:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    return text.split("## Sidecar (HTTP)", 1)[1].split("\n## ", 1)[0]


def test_every_status_and_code_is_documented() -> None:
    from fsredis_server import errors as error_table
    from fsredis_server.openapi import CODES

    in_code = error_table.answers()
    assert {(status, code) for status, code, _ in CODES} == in_code
    document = spec()
    assert set(document["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]) == {
        code for _, code in in_code}
    statuses = {int(s) for item in document["paths"].values() for op in item.values() for s in op["responses"]}
    statuses |= {int(s) for s in re.findall(r"\b([45]\d\d) FS", document["info"]["description"])}
    assert {status for status, _ in in_code} | {200} <= statuses
    readme = _readme_sidecar()
    documented = set()
    for status, codes in re.findall(r"\b([1-5]\d\d) ((?:`FS[A-Z]+`(?: / |, | or )?)+)", readme):
        documented |= {(int(status), code) for code in re.findall(r"`(FS[A-Z]+)`", codes)}
    assert documented == in_code, (documented ^ in_code)
    assert "request_timeout" in readme and "max_body_bytes" in readme and "499" in readme


async def test_a_frozen_redis_answers_503_within_the_deadline_and_recovers(aiohttp_client, namespace) -> None:
    private = start_server("valkey")
    try:
        settings = ServerSettings(store=FeatureStoreConfig(redis_url=private.url, namespace=namespace))
        deadline, interval = settings.request_timeout, settings.check_interval  # the defaults: 1 s, 1 s
        client = await aiohttp_client(create_app(settings))
        await ready(client)
        assert (await client.put("/v1/features/p:1", json={"features": {"price": 1.0}})).status == 200
        os.kill(private.pid, signal.SIGSTOP)
        frozen = time.monotonic()
        try:
            async def timed(method: str, path: str, body: object = None) -> tuple[str, float]:
                started = time.monotonic()
                response = await client.request(method, path, json=body)
                took = time.monotonic() - started
                assert response.status == 503, await response.text()
                assert (await response.json())["error"]["code"] == "FSUNAVAILABLE"
                return f"{method} {path}", took

            async def not_ready() -> float:
                while (await client.get("/readyz")).status == 200:
                    assert time.monotonic() - frozen < 2 * interval + deadline, "/readyz never turned 503"
                    await asyncio.sleep(0.02)
                return time.monotonic() - frozen

            *calls, turned = await asyncio.gather(
                timed("GET", "/v1/features/p:1"), timed("POST", "/v1/features:batch", {"entity_ids": ["p:1"]}),
                timed("PUT", "/v1/features/p:1", {"features": {"price": 2.0}, "write_id": "w1"}), not_ready())
            for call, took in calls:
                print(f"\nfrozen Redis: {call} answered 503 in {took:.3f}s (request_timeout {deadline}s)")
                assert took < deadline * 1.5 + 0.3 and took < 20 / 4, (call, took)
            print(f"frozen Redis: /readyz answered 503 {turned:.3f}s after the freeze (check_interval {interval}s)")
            assert turned < 2 * interval  # a check waits at most half an interval
        finally:
            os.kill(private.pid, signal.SIGCONT)
        resumed = time.monotonic()
        while (response := await client.get("/v1/features/p:1")).status != 200:
            assert time.monotonic() - resumed < 10, await response.text()
            await asyncio.sleep(0.05)
        assert (await response.json())["features"]["price"] in (1.0, 2.0)  # the cut-off write may have landed
        print(f"frozen Redis: reads served again {time.monotonic() - resumed:.3f}s after SIGCONT")
        await ready(client)
        print(f"frozen Redis: /readyz 200 again {time.monotonic() - resumed:.3f}s after SIGCONT")
    finally:
        private.stop()


SECRET_PASSWORD = "pw-Zq8s1Lm4Xx"


async def test_no_secret_in_reprs_logs_or_answers(aiohttp_client, namespace, json_logs) -> None:
    private = start_server("valkey", password=SECRET_PASSWORD)
    try:
        url = f"redis://default:{SECRET_PASSWORD}@127.0.0.1:{private.port}/0"
        settings = ServerSettings(token=TOKEN, store=FeatureStoreConfig(
            redis_url=url, password=SECRET_PASSWORD, namespace=namespace, redis_kwargs={"password": SECRET_PASSWORD}))
        for text in (repr(settings), str(settings), json.dumps(settings.public())):
            assert SECRET_PASSWORD not in text and TOKEN not in text and "***" in text, text
        client = await aiohttp_client(create_app(settings))
        await ready(client)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        answers = [
            await client.put("/v1/features/p:1", json={"features": {"price": 1.0}}, headers=auth),
            await client.put("/v1/features/p:1", json={"features": {"price": "x", "y": {}}}, headers=auth),
            await client.put("/v1/features/p:1", json={"features": {"a": 1}}, headers={"Authorization": "Bearer x"}),
            await client.get("/v1/features/p:1"), await client.get("/readyz"),
        ]
        texts = [await response.text() for response in answers]
        private.stop()  # Redis gone: the error paths log too
        await asyncio.sleep(0.2)
        texts.append(await (await client.get("/v1/features/p:1")).text())
        texts.append(await (await client.get("/readyz")).text())
        lines = json_logs()
        assert lines[0]["event"] == "sidecar starting" and lines[0]["redis_answered"] is True
        assert lines[0]["redis"] == f"redis://default:***@127.0.0.1:{private.port}/0"
        everything = "\n".join(texts) + json.dumps(lines)
        assert SECRET_PASSWORD not in everything and TOKEN not in everything
    finally:
        private.stop()


async def test_the_startup_line_says_where_and_whether_redis_answered(aiohttp_client, namespace, json_logs) -> None:
    port = free_port()
    url = f"redis://user:{SECRET_PASSWORD}@127.0.0.1:{port}/0"  # nothing listens there
    client = await aiohttp_client(create_app(ServerSettings(
        port=9999, check_interval=0.05, store=FeatureStoreConfig(redis_url=url, namespace=namespace, retries=0))))
    assert (await client.get("/readyz")).status == 503
    start = [line for line in json_logs() if line["event"] == "sidecar starting"]
    assert len(start) == 1
    line = start[0]
    assert line["listen"] == "http://127.0.0.1:9999" and line["redis_answered"] is False and not line["ready"]
    assert line["reason"] and SECRET_PASSWORD not in json.dumps(line) and line["redis"].startswith("redis://user:***@")


@pytest.mark.parametrize(("environ", "overrides", "says"), [
    ({"FSREDIS_SERVER_PORT": "abc"}, {}, "FSREDIS_SERVER_PORT"),
    ({"FSREDIS_SERVER_REQUEST_TIMEOUT": "soon"}, {}, "FSREDIS_SERVER_REQUEST_TIMEOUT"),
    ({"FSREDIS_SERVER_MAX_BATCH": "-1"}, {}, "max_batch"),
    ({"FSREDIS_SERVER_REQUEST_TIMEOUT": "0"}, {}, "request_timeout"),
    ({}, {"token": "short"}, "16 characters"),
    ({"FSREDIS_REDIS_URL": "localhost:6379"}, {}, "scheme"),
    ({"FSREDIS_REDIS_URL": f"localhost:{SECRET_PASSWORD}@x:1"}, {}, "scheme"),
])
def test_configuration_mistakes_name_the_setting(environ, overrides, says) -> None:
    with pytest.raises(ConfigError) as caught:
        ServerSettings.from_env(environ, **overrides)
    assert says in str(caught.value) and SECRET_PASSWORD not in str(caught.value)


def test_request_timeout_comes_from_the_environment() -> None:
    settings = ServerSettings.from_env({"FSREDIS_SERVER_REQUEST_TIMEOUT": "0.25", "FSREDIS_SERVER_PORT": "9000"})
    assert (settings.request_timeout, settings.port) == (0.25, 9000)


def test_log_lines_are_json_whatever_they_carry() -> None:
    """Lines are rendered by orjson; what it refuses (an integer past 64 bits, a non-string key)
    still makes a JSON line, never an exception in the request that logs it."""
    import json as std_json

    from fsredis_server import logs

    for event in ({"event": "request", "ms": 1.5, "status": 200}, {"event": "x", "n": 2**70, 1: "key"},
                  {"event": "x", "thing": object()}):
        line = std_json.loads(logs._RENDER(None, "info", dict(event)))
        assert line["event"] == event["event"]
    assert std_json.loads(logs._RENDER(None, "info", {"event": "x", "n": 2**70}))["n"] == 2**70
