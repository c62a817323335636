"""Config, keys, error mapping and command specs: pure, no Redis."""

from __future__ import annotations

import msgpack
import pytest

from fsredis import FeatureStoreConfig, LibraryError, NotFound, ValidationError, commands
from fsredis.commands import Policy
from fsredis.errors import StoreUnavailable, from_reply, translate
from fsredis.keys import check_entity_id, entity_keys, entity_of, log_key, v1_keys


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
    assert keys == ("fs:{product-123}:e",)
    assert entity_keys("fs", "product:123") == ("fs:product:{123}:e",)
    old = v1_keys("fs", "product:123")
    assert old == ("fs:product:{123}:v", "fs:product:{123}:x", "fs:product:{123}:h", "fs:product:{123}:w")
    from redis.crc import key_slot

    assert {key_slot(k.encode()) for k in (*entity_keys("fs", "product:123"), *old)} == {key_slot(b"{123}")}
    assert entity_of("fs:product:{123}:e", "fs") == "product:123" == entity_of(old.values, "fs")
    assert entity_of("fs:{123}:e", "fs") == "123"
    assert entity_of("fs:{registry}", "fs") is None and entity_of("other:{1}:e", "fs") is None
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
                          write_id="w", ttl={"b": 0.5}, meta=b"\x80", event_time=12.5)
    assert call.function == "fs_write" and not call.readonly
    assert call.keys == tuple(entity_keys("fs", "e"))
    assert msgpack.unpackb(call.args[0]) == {
        "id": "w", "event_time": 12_500, "max_versions": 4, "dedup_ms": 300_000, "max_bytes": 4 * 1024 * 1024,
        "scalar_ttl": 10_000, "embedding_ttl": -1, "ttl": {"b": 500},  # defaults a registered TTL replaces
    }
    assert call.args[1] == b"\x80"
    assert call.args[2::2] == ("a", "v", "b")


def test_read_calls_are_read_only() -> None:
    keys = entity_keys("fs", "e")
    assert commands.get(keys, ["a"]).readonly
    assert commands.get_batch([keys], ["a"]).keys == (keys.entity,)
    assert commands.get_direct(keys, ["a"]).args == ("HMGET", keys.entity, "a")
    assert commands.lineage(keys, "a", 3).readonly
    policy = commands.Policy.from_config(FeatureStoreConfig())
    assert not commands.delete(keys, None, policy).readonly


def test_writes_name_the_change_log_of_the_entity_slot_when_it_is_on() -> None:
    keys = entity_keys("ns", "product:123")
    off = commands.Policy.from_config(FeatureStoreConfig(namespace="ns"))
    on = commands.Policy.from_config(FeatureStoreConfig(namespace="ns", change_log=True))
    assert commands.delete(keys, None, off).keys == (keys.entity,)
    log = log_key("ns", keys.slot)
    assert commands.delete(keys, None, on).keys == (keys.entity, log)
    assert commands.write(keys, {"a": 1}, on, write_id="w").keys == (keys.entity, log)
    assert commands.rollback(keys, "a", 1, on, write_id="w", meta=b"").keys == (keys.entity, log)
    other = entity_keys("ns", "u:9")
    batch = commands.write_batch([commands.write_row(k, {"a": 1}, on, write_id="w") for k in (keys, other)], on)
    assert batch.keys == (keys.entity, log, other.entity, log_key("ns", other.slot))
    assert FeatureStoreConfig.from_env({"FSREDIS_CHANGE_LOG": "true"}).change_log is True


def test_ssl_and_the_url_scheme_agree() -> None:
    # redis-py raises a TypeError for ssl=True beside a redis:// URL; the config makes it rediss://.
    assert FeatureStoreConfig(redis_url="redis://h:6380/1", ssl=True).redis_url == "rediss://h:6380/1"
    assert FeatureStoreConfig(redis_url="rediss://h/0").ssl is True
    assert FeatureStoreConfig(redis_url="redis://h/0").ssl is False
    with pytest.raises(ValueError, match="unix://"):
        FeatureStoreConfig(redis_url="unix:///run/redis.sock", ssl=True)
    with pytest.raises(ValueError, match="ssl_ca_certs need TLS"):
        FeatureStoreConfig(redis_url="redis://h/0", ssl_ca_certs="/ca.pem")
    with pytest.raises(ValueError, match="give both"):
        FeatureStoreConfig(ssl=True, ssl_keyfile="/client.key")


def test_redis_options_with_tls() -> None:
    options = FeatureStoreConfig(redis_url="rediss://h/0", ssl_ca_certs="/ca.pem", ssl_certfile="/c.pem",
                                 ssl_keyfile="/c.key", ssl_check_hostname=False).redis_options()
    assert "ssl" not in options  # the rediss:// URL says so; redis-py refuses ssl= beside a URL
    assert (options["ssl_ca_certs"], options["ssl_certfile"], options["ssl_keyfile"]) == ("/ca.pem", "/c.pem", "/c.key")
    assert options["ssl_check_hostname"] is False
    plain = FeatureStoreConfig(redis_url="redis://h/0").redis_options()
    assert not any(name.startswith("ssl") for name in plain)
    config = FeatureStoreConfig.from_env({"FSREDIS_REDIS_URL": "redis://h/0", "FSREDIS_SSL": "true",
                                          "FSREDIS_SSL_CERTFILE": "/c.pem", "FSREDIS_SSL_CHECK_HOSTNAME": "no"})
    assert config.redis_url == "rediss://h/0" and config.ssl_certfile == "/c.pem" and not config.ssl_check_hostname


def test_redacted_url() -> None:
    from fsredis.config import redacted_url

    assert redacted_url("redis://app:s3cret@h:6379/0") == "redis://app:***@h:6379/0"
    assert redacted_url("rediss://:s3cret@h") == "rediss://:***@h"
    assert redacted_url("redis://app:p@ss@h/0?password=x&db=1") == "redis://app:***@h/0?password=***&db=1"
    assert redacted_url("redis://h:6379/0") == "redis://h:6379/0"
    assert redacted_url(None) is None
    assert redacted_url("redis://s3cret@h/0") == "redis://***@h/0"  # a password in the user's place
    assert redacted_url("app:s3cret@h:6379") == "***@h:6379"  # not a URL: all before the last @


def test_refusals_map_to_permission_denied() -> None:
    import redis

    from fsredis import PermissionDenied
    from fsredis.errors import LibraryPermissionDenied

    top = translate(redis.exceptions.NoPermissionError("this user has no permissions to run the 'fcall' command"))
    assert type(top) is PermissionDenied and top.permission == "command 'fcall'" and "load-functions" not in str(top)
    load = translate(redis.exceptions.NoPermissionError("User app has no permissions to run the 'function|load' command"))
    assert isinstance(load, LibraryPermissionDenied) and isinstance(load, LibraryError) and "load-functions" in str(load)
    key = translate(redis.exceptions.NoPermissionError("No permissions to access a key"))
    assert key.permission == "a key"
    inside = translate(redis.ResponseError(
        "ACL failure in script: User app has no permissions to run the 'time' command script: fs_get, on @user_function:3."))
    assert (inside.permission, inside.function) == ("command 'time'", "fs_get")
    old = translate(redis.ResponseError(
        "The user executing the script can't run this command or subcommand script: fs_write, on @user_function:9."))
    assert isinstance(old, PermissionDenied) and old.function == "fs_write" and "ACL LOG" in str(old)
    # Our typed codes quote user data: they are never taken for a refusal.
    quoted = translate(redis.ResponseError("FSVALIDATION feature=a rule=allowed \"no permissions to run the 'x' command\""))
    assert isinstance(quoted, ValidationError)


def test_tls_failures_map_to_tls_error() -> None:
    import ssl

    import redis

    from fsredis.errors import TLSError

    def failed(cause: BaseException) -> BaseException:
        try:
            try:
                raise cause
            except OSError as exc:
                raise redis.ConnectionError(f"Error 1 connecting to h:6379. {exc}.") from None
        except redis.ConnectionError as exc:
            exc.__context__ = cause
            return exc

    verify = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    verify.verify_message = "self-signed certificate in certificate chain"
    error = translate(failed(verify))
    assert isinstance(error, TLSError) and isinstance(error, StoreUnavailable)
    assert "could not be verified (self-signed certificate in certificate chain)" in str(error)
    assert "client certificate" in str(translate(failed(ssl.SSLError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED]"))))
    assert type(translate(redis.ConnectionError("Connection refused"))) is StoreUnavailable


def test_a_cluster_url_may_name_several_nodes() -> None:
    config = FeatureStoreConfig(redis_url="redis://app:pw@h1:7000,h2:7001,[::1]:7002/0", cluster=True)
    assert config.startup_nodes() == ("redis://app:pw@h1:7000/0", [("h2", 7001), ("::1", 7002)])
    assert "pw" not in repr(config)
    assert FeatureStoreConfig(redis_url="redis://h1:7000", cluster=True).startup_nodes() == ("redis://h1:7000", [])
    with pytest.raises(ValueError, match="cluster=True"):
        FeatureStoreConfig(redis_url="redis://h1:7000,h2:7001")
    with pytest.raises(ValueError, match="host:port"):
        FeatureStoreConfig(redis_url="redis://h1:7000,h2", cluster=True)


def test_a_sentinel_url_names_the_sentinels_the_master_and_the_database() -> None:
    config = FeatureStoreConfig(redis_url="redis+sentinel://app:p%40ss@s1:26379,[::1]:26380/main/2", sentinel_password="sp")
    assert config.sentinel and not config.cluster
    assert config.sentinel_nodes() == ([("s1", 26379), ("::1", 26380)], "main", 2, "app", "p@ss")
    assert "p%40ss" not in repr(config) and "sp'" not in repr(config)
    assert FeatureStoreConfig(redis_url="rediss+sentinel://s1:26379/main").ssl
    with pytest.raises(ValueError, match="master"):
        FeatureStoreConfig(redis_url="redis+sentinel://s1:26379")
    with pytest.raises(ValueError, match="host:port"):
        FeatureStoreConfig(redis_url="redis+sentinel://s1/main")
    with pytest.raises(ValueError, match="no sentinels"):
        FeatureStoreConfig(redis_url="redis+sentinel://s1:26379/main", cluster=True)
