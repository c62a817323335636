"""Config, keys, error mapping and command specs: pure, no Redis."""

from __future__ import annotations

import pytest

from fsredis import FeatureStoreConfig, LibraryError, NotFound, ValidationError, commands
from fsredis.commands import Policy
from fsredis.errors import StoreUnavailable, from_reply, translate
from fsredis.keys import check_entity_id, entity_keys


def test_from_env_reads_prefixed_variables() -> None:
    config = FeatureStoreConfig.from_env({
        "FSREDIS_REDIS_URL": "redis://cache:6380/2",
        "FSREDIS_DEFAULT_TTL": "none",
        "FSREDIS_EMBEDDING_TTL": "120.5",
        "FSREDIS_ENABLE_VERSIONING": "false",
        "FSREDIS_MAX_VERSIONS": "3",
        "FSREDIS_TRANSPORT": "evalsha",
        "UNRELATED": "x",
    })
    assert config.redis_url == "redis://cache:6380/2"
    assert config.default_ttl is None and config.embedding_ttl == 120.5
    assert config.enable_versioning is False and config.max_versions == 3
    assert config.transport == "evalsha"


def test_from_env_overrides_and_defaults() -> None:
    config = FeatureStoreConfig.from_env({}, namespace="shop")
    assert (config.redis_host, config.redis_port, config.namespace) == ("localhost", 6379, "shop")


@pytest.mark.parametrize("variables", [{"FSREDIS_MAX_VERSIONS": "many"}, {"FSREDIS_ENABLE_MONITORING": "maybe"}])
def test_from_env_names_the_bad_variable(variables) -> None:
    with pytest.raises(ValueError, match=next(iter(variables))):
        FeatureStoreConfig.from_env(variables)


@pytest.mark.parametrize("field,value", [
    ("namespace", "has space"), ("namespace", "a{b}"), ("transport", "carrier-pigeon"),
    ("max_versions", 0), ("default_ttl", 0), ("embedding_ttl", -1), ("embedding_dtype", "int8"),
])
def test_bad_config_values(field, value) -> None:
    with pytest.raises(ValueError):
        FeatureStoreConfig(**{field: value})


def test_redis_options() -> None:
    options = FeatureStoreConfig(username="app", password="s3cret", ssl=True, ssl_ca_certs="/ca.pem",
                                 max_connections=8, redis_kwargs={"client_name": "svc"}).redis_options()
    assert options["username"] == "app" and options["password"] == "s3cret"
    assert options["ssl"] is True and options["ssl_ca_certs"] == "/ca.pem"
    assert options["max_connections"] == 8 and options["client_name"] == "svc"


def test_entity_keys_share_one_hash_tag() -> None:
    keys = entity_keys("fs", "product-123")
    assert keys == ("fs:{product-123}:v", "fs:{product-123}:x", "fs:{product-123}:h", "fs:{product-123}:w")
    from redis.crc import key_slot

    assert {key_slot(k.encode()) for k in keys} == {keys.slot}
    assert check_entity_id("a" * 256) == "a" * 256


def test_error_replies_map_to_typed_exceptions() -> None:
    error = from_reply("FSVALIDATION feature=price rule=min below 0 script: fs_write, on @user_function:12.")
    assert isinstance(error, ValidationError)
    assert (error.feature, error.rule, error.detail) == ("price", "min", "below 0")
    missing = from_reply("FSNOTFOUND feature=a b rule=version version 9 does not exist")
    assert isinstance(missing, NotFound) and missing.feature == "a b"
    assert isinstance(from_reply("FSARG the write id is empty"), LibraryError)
    assert from_reply("WRONGTYPE Operation against a key") is None
    import redis

    assert isinstance(translate(redis.ConnectionError("refused")), StoreUnavailable)
    wrapped = translate(redis.ResponseError("OOM command not allowed"))
    assert "OOM" in str(wrapped) and wrapped.__cause__ is not None


def test_write_call_layout() -> None:
    policy = Policy.from_config(FeatureStoreConfig(default_ttl=10, embedding_ttl=None, max_versions=4))
    import numpy as np

    call = commands.write(entity_keys("fs", "e"), {"a": 1, "v": np.ones(2), "b": 2}, policy,
                          write_id="w", ttl={"b": 0.5}, meta=b"\x80")
    assert call.function == "fs_write" and not call.readonly
    assert call.keys == tuple(entity_keys("fs", "e"))
    assert call.args[:5] == ("w", 4, 300_000, 4 * 1024 * 1024, b"\x80")
    assert call.args[5::3] == ("a", "v", "b")
    assert call.args[7::3] == ("d10000", "d-1", 500)  # "d": a default, which a registered TTL replaces


def test_read_calls_are_read_only() -> None:
    keys = entity_keys("fs", "e")
    assert commands.get(keys, ["a"]).readonly
    assert commands.get_batch([keys], ["a"]).keys == (keys.values, keys.expiry)
    assert commands.lineage(keys, "a", 3).readonly
    assert not commands.delete(keys, None).readonly
