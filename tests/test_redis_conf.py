"""The recommended redis.conf: both servers start with it, and a full server refuses writes whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsredis import FeatureStoreConfig, StoreFull
from tests.conftest import SERVERS, start_server

REDIS_CONF = Path(__file__).resolve().parent.parent / "redis.conf"


@pytest.fixture(params=SERVERS)
def conf_server(request, tmp_path):
    server = start_server(request.param, data_dir=tmp_path, persistence=True, config_file=REDIS_CONF)
    yield server
    server.stop()


def test_servers_start_with_the_recommended_config(conf_server, open_store) -> None:
    with conf_server.client() as client:
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        assert client.config_get("appendonly")["appendonly"] == "yes"
    store = open_store(FeatureStoreConfig(redis_url=conf_server.url))
    store.write_features("e1", {"a": 1})
    assert store.get_features("e1", ["a"]) == {"a": 1}


def test_a_full_server_refuses_writes_whole_and_keeps_serving_reads(conf_server, open_store) -> None:
    store = open_store(FeatureStoreConfig(redis_url=conf_server.url, retries=0))
    store.write_features("e1", {"a": 1})
    with conf_server.client() as client:
        client.config_set("maxmemory", max(1, client.info("memory")["used_memory"] // 2))
    with pytest.raises(StoreFull, match="nothing stored"):
        store.write_features("e1", {"a": 2, "b": "x" * 1000})
    assert store.get_features("e1") == {"a": 1}
    assert store.get_feature_lineage("e1", "a")["current_version"] == 1
    with conf_server.client() as client:
        client.config_set("maxmemory", 0)
    store.write_features("e1", {"a": 2})
    assert store.get_features("e1", ["a"]) == {"a": 2}
