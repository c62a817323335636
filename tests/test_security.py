"""Passwords and least-privilege ACL users."""

from __future__ import annotations

import pytest

from fsredis import FeatureStore, FeatureStoreConfig, LibraryError, StoreUnavailable
from tests.conftest import SERVERS, start_server


@pytest.fixture(params=SERVERS)
def locked_server(request, tmp_path):
    server = start_server(request.param, data_dir=tmp_path, password="s3cret")
    yield server
    server.stop()


def test_password(locked_server) -> None:
    with FeatureStore(FeatureStoreConfig(redis_url=locked_server.url, password="s3cret")) as store:
        store.write_features("e1", {"a": 1})
        assert store.get_features("e1", ["a"]) == {"a": 1}
    with FeatureStore(FeatureStoreConfig(redis_url=locked_server.url, password="wrong", retries=0)) as store:
        with pytest.raises(StoreUnavailable, match="credentials"):
            store.get_features("e1", ["a"])
        assert store.health_check()["status"] == "unhealthy"


def test_least_privilege_user_runs_a_preloaded_library(locked_server) -> None:
    with locked_server.client() as client:
        client.acl_setuser("app", enabled=True, passwords=["+app-pw"], keys=["fs:*"],
                           commands=["+@all", "-function", "-script", "-flushall", "-flushdb"])
    app = FeatureStoreConfig(redis_url=locked_server.url, username="app", password="app-pw", retries=0)
    with FeatureStore(app) as store:
        with pytest.raises(LibraryError, match="load-functions"):
            store.write_features("e1", {"a": 1})  # nothing installed, and app may not install it
    with FeatureStore(FeatureStoreConfig(redis_url=locked_server.url, password="s3cret")) as ops:
        ops.load_library()  # what `fsredis load-functions` does, as an admin
    with FeatureStore(app) as store:
        store.write_features("e1", {"a": 1}, source="app")
        assert store.get_features("e1", ["a"]) == {"a": 1}
        assert store.get_feature_lineage("e1", "a")["versions"][0]["source"] == "app"
        assert store.health_check()["status"] == "healthy"
