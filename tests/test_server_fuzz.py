"""Property test: whatever a client sends, the sidecar answers without a 5xx (Redis being up)."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import zlib

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsredis import FeatureStoreConfig
from fsredis_server import ServerSettings, create_app
from fsredis_server.handlers import ROUTES
from tests.conftest import shared_server
from tests.test_server import ready

_ids = itertools.count()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
segments = st.sampled_from(["p:1", "product:2", "x", "a:b:c", "%20", "{}", "é", "p:" + "9" * 300, "#", "a{b", "}",
                            "%2F", "p:%7B1%7D", "%00"]) | st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#"), min_size=1, max_size=12)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=40),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({}, optional={
        "features": json_values, "ttl": json_values, "source": json_values, "write_id": json_values,
        "lineage": json_values, "entity_ids": st.lists(segments, max_size=5) | json_values,
        "names": st.lists(st.text(max_size=6), max_size=4) | json_values, "raw_data": json_values,
        "version": json_values, "registry": json_values, "force": json_values,
    }).map(lambda v: json.dumps(v).encode()),
)


@pytest.fixture(scope="module")
def client(servers):
    server = shared_server(servers, "valkey")
    loop = asyncio.new_event_loop()
    store = FeatureStoreConfig(redis_url=server.url, namespace=f"fuzz{next(_ids)}", retries=0)
    # (a check may take up to half the interval: 0.25 s, so a busy machine does not make /readyz say 503)
    test_client = TestClient(TestServer(create_app(ServerSettings(store=store, check_interval=0.5))), loop=loop)
    loop.run_until_complete(test_client.start_server())
    loop.run_until_complete(ready(test_client))
    yield loop, test_client
    loop.run_until_complete(test_client.close())
    loop.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(route=st.sampled_from(ROUTES), entity=segments, feature=segments, body=bodies,
       query=st.sampled_from(["", "?names=", "?names=a,,b", "?limit=0", "?limit=-1", "?dry_run=true", "?names=%23",
                              "?dry_run=", "?dry_run=yes", "?dry_run=0", "?limit=99999999999999999999999"]),
       msgpack=st.booleans(), encoding=st.sampled_from([None, "gzip", "deflate", "broken"]))
def test_no_input_makes_a_5xx(client, route, entity, feature, body, query, msgpack, encoding) -> None:
    loop, test_client = client
    method, path, _ = route
    from urllib.parse import quote

    url = path.replace("{entity}", quote(entity, safe=":")).replace("{feature}", quote(feature, safe="")) + query
    headers = {"Content-Type": "application/msgpack" if msgpack else "application/json"}
    if encoding and body is not None:
        headers["Content-Encoding"] = "gzip" if encoding == "broken" else encoding
        body = body if encoding == "broken" else gzip.compress(body) if encoding == "gzip" else zlib.compress(body)

    async def call():
        response = await test_client.request(method, url, data=body, headers=headers)
        return response.status, await response.read()

    status, payload = loop.run_until_complete(call())
    assert status < 500, (method, url, body, status, payload)
    if status >= 400:
        assert json.loads(payload)["error"]["code"].startswith("FS")
