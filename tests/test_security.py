"""Passwords, the least-privilege ACL users of deploy/users.acl, and secrets kept out of sight."""

from __future__ import annotations

import dataclasses
import logging
import re
import traceback
from pathlib import Path

import pytest

from fsredis import (
    FeatureStore,
    FeatureStoreConfig,
    LibraryError,
    PermissionDenied,
    StoreUnavailable,
    ValidationError,
)
from fsredis.errors import LibraryPermissionDenied
from fsredis.library import _read, lua_root, resolve_helpers
from tests.conftest import SERVERS, make_store, start_server

ROOT = Path(__file__).resolve().parent.parent
USERS_ACL = ROOT / "deploy" / "users.acl"
REDIS_CONF = ROOT / "redis.conf"
ROLES = ("fs-serving", "fs-writer", "fs-admin")


def passwords() -> dict[str, str]:
    return {role: f"{role}-Secr3t" for role in ROLES}


# -- passwords ----------------------------------------------------------------------------------


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
        client.execute_command("ACL", "SETUSER", "app", "on", ">app-pw", "~fs:*", "%R~fsredis:{registry}:*",
                               "+@all", "-function", "-script", "-flushall", "-flushdb")
    app = FeatureStoreConfig(redis_url=locked_server.url, username="app", password="app-pw", retries=0)
    with FeatureStore(app) as store:
        with pytest.raises(LibraryPermissionDenied, match="load-functions") as refused:
            store.write_features("e1", {"a": 1})  # nothing installed, and app may not install it
        assert isinstance(refused.value, LibraryError) and refused.value.permission == "command 'function|load'"
    with FeatureStore(FeatureStoreConfig(redis_url=locked_server.url, password="s3cret")) as ops:
        ops.load_library()  # what `fsredis load-functions` does, as an admin
    with FeatureStore(app) as store:
        store.write_features("e1", {"a": 1}, source="app")
        assert store.get_features("e1", ["a"]) == {"a": 1}
        assert store.get_feature_lineage("e1", "a")["versions"][0]["source"] == "app"
        assert store.health_check()["status"] == "healthy"


def test_a_refusal_inside_a_function_names_the_permission(locked_server) -> None:
    # TIME is in neither @read nor @write: a read function needs it granted on its own.
    with locked_server.client() as client:
        client.execute_command("ACL", "SETUSER", "reader", "on", ">pw", "resetkeys", "-@all", "+@read",
                               "+fcall_ro", "%R~fs:*")
    with FeatureStore(FeatureStoreConfig(redis_url=locked_server.url, password="s3cret")) as ops:
        ops.write_features("e1", {"a": 1})
    reader = FeatureStoreConfig(redis_url=locked_server.url, username="reader", password="pw", retries=0)
    with FeatureStore(dataclasses.replace(reader, read_path="function")) as store:
        with pytest.raises(PermissionDenied, match="inside the library function fs_get") as refused:
            store.get_features("e1", ["a"])
    assert not isinstance(refused.value, LibraryError) and "load-functions" not in str(refused.value)
    assert refused.value.function == "fs_get"
    # Valkey (and Redis 7.2+) name the command; Redis 7.0 does not say which (its ACL LOG does).
    assert refused.value.permission in ("command 'time'", "a command")
    with FeatureStore(reader) as store:  # the direct read asks for TIME itself, at the top level
        with pytest.raises(PermissionDenied, match="refused command 'time'") as refused:
            store.get_features("e1", ["a"])
    assert refused.value.function is None


# -- the three users of deploy/users.acl ---------------------------------------------------------


def enabled_acl(text: str) -> str:
    """deploy/users.acl as an operator deploys it: each fsredis user switched on with a password
    (appended, as the file's documentation says; the default user stays off)."""
    secret = passwords()
    return re.sub(r"^user (fs-[\w-]+) (.*)$", lambda m: f"user {m[1]} {m[2]} on >{secret[m[1]]}", text, flags=re.M)


@pytest.fixture(params=SERVERS)
def acl_server(request, tmp_path):
    """A server started with the recommended redis.conf and deploy/users.acl as its aclfile."""
    acl = tmp_path / "users.acl"
    acl.write_text(enabled_acl(USERS_ACL.read_text()))
    server = start_server(request.param, data_dir=tmp_path, config_file=REDIS_CONF,
                          extra_args=("--aclfile", str(acl)), username="fs-admin", password=passwords()["fs-admin"])
    yield server
    server.stop()


def as_user(server, role: str, **overrides) -> FeatureStoreConfig:
    return FeatureStoreConfig(redis_url=server.url, username=role, password=passwords()[role], retries=0, **overrides)


def test_the_default_user_is_off(acl_server) -> None:
    with FeatureStore(FeatureStoreConfig(redis_url=acl_server.url, retries=0)) as anonymous:
        assert anonymous.health_check()["status"] == "unhealthy"
        with pytest.raises(StoreUnavailable):
            anonymous.get_features("e1", ["a"])


def test_users_need_the_library_installed_by_the_admin(acl_server) -> None:
    # First use: the client checks the loaded library (FCALL_RO fs_version) and would install it;
    # the serving and writer users may not, and are told who may.
    for role in ("fs-serving", "fs-writer"):
        with FeatureStore(as_user(acl_server, role)) as store:
            with pytest.raises(LibraryPermissionDenied, match="fsredis load-functions"):
                store.get_features("e1", ["a"])
    with FeatureStore(as_user(acl_server, "fs-admin")) as admin:
        admin.load_library()
    for role in ("fs-serving", "fs-writer"):
        with FeatureStore(as_user(acl_server, role)) as store:
            assert store.get_features("e1", ["a"]) == {}
            assert store.health_check()["status"] == "healthy"


def test_admin_loads_the_library_and_changes_the_registry(acl_server) -> None:
    with FeatureStore(as_user(acl_server, "fs-admin", transport="evalsha")) as admin:
        admin.load_library()  # FUNCTION LOAD and SCRIPT LOAD
        changes = admin.register_features("product", [{"name": "price", "dtype": "float", "min": 0}])
        assert [c.feature for c in changes] == ["price"]
        assert admin.registry_history(1)[0]["version"] == 1
        admin.write_features("product:1", {"price": 2.5})
        assert admin.get_features("product:1", ["price"]) == {"price": 2.5}
    with FeatureStore(as_user(acl_server, "fs-writer")) as writer:  # the registry is enforced for all
        with pytest.raises(ValidationError, match="rule=min"):
            writer.write_features("product:1", {"price": -1.0})


def test_writer_writes_and_reads_but_does_not_administer(acl_server) -> None:
    with FeatureStore(as_user(acl_server, "fs-admin")) as admin:
        admin.load_library()
    with FeatureStore(as_user(acl_server, "fs-writer")) as writer:
        writer.write_features("product:1", {"price": 1.0, "tag": "a"}, source="job")
        writer.write_features_batch({"product:2": {"price": 2.0}, "product:3": {"price": 3.0}})
        writer.write_features("product:1", {"price": 1.5})
        assert writer.rollback_feature("product:1", "price", 1) == 3
        assert writer.get_features("product:1") == {"price": 1.0, "tag": "a"}
        assert writer.get_features_batch(["product:2", "product:3"], ["price"])["product:3"] == {"price": 3.0}
        assert writer.get_feature_lineage("product:1", "price")["current_version"] == 3
        assert writer.delete_features("product:1", ["tag"]) == 1
        import pandas as pd

        loaded = writer.ingest(pd.DataFrame({"id": [4, 5], "price": [4.0, 5.0]}), entity_column="id",
                               entity_type="product", source="acl-load")  # entity keys and its checkpoint
        assert loaded.written == 2
        assert writer.ingest(pd.DataFrame({"id": [4, 5], "price": [4.0, 5.0]}), entity_column="id",
                             entity_type="product", source="acl-load").resumed == 2
        assert writer.get_registry().version == 0
        with pytest.raises(LibraryPermissionDenied, match="load-functions") as refused:
            writer.load_library()
        assert refused.value.permission == "command 'function|load'"
        with pytest.raises(PermissionDenied) as refused:  # SCAN for data, or the registry keys
            writer.register_features("product", [{"name": "price", "dtype": "float"}])
        assert not isinstance(refused.value, LibraryError)


@pytest.mark.parametrize("transport", ["fcall", "evalsha"])
def test_serving_user_reads_but_cannot_write(acl_server, transport) -> None:
    with FeatureStore(as_user(acl_server, "fs-admin", transport=transport)) as admin:
        admin.load_library()
    with FeatureStore(as_user(acl_server, "fs-writer", transport=transport)) as writer:
        writer.write_features("product:1", {"price": 1.0}, source="job")
        writer.write_features("product:1", {"price": 2.0}, source="job")
    with FeatureStore(as_user(acl_server, "fs-serving", transport=transport)) as serving:
        assert serving.get_features("product:1", ["price", "missing"]) == {"price": 2.0}
        assert serving.get_features("product:1") == {"price": 2.0}
        assert serving.get_features_batch(["product:1", "product:9"], ["price"]) == {
            "product:1": {"price": 2.0}, "product:9": {}}
        lineage = serving.get_feature_lineage("product:1", "price")
        assert [v["version"] for v in lineage["versions"]] == [2, 1]
        assert serving.health_check()["status"] == "healthy"
        with pytest.raises(PermissionDenied, match="refused command 'fcall'") as refused:
            serving.write_features("product:1", {"price": 3.0})
        assert refused.value.permission == "command 'fcall'" and "load-functions" not in str(refused.value)
        with pytest.raises(PermissionDenied):
            serving.delete_features("product:1")
        with pytest.raises(PermissionDenied):
            serving.rollback_feature("product:1", "price", 1)
        with pytest.raises(LibraryPermissionDenied):
            serving.load_library()
        assert serving.get_features("product:1", ["price"]) == {"price": 2.0}


def acl_rules() -> dict[str, set[str]]:
    """User -> the commands deploy/users.acl grants (``+name`` rules, lower case)."""
    rules = {}
    for line in USERS_ACL.read_text().splitlines():
        words = line.split()
        rules[words[1]] = {w[1:].lower() for w in words[2:] if w.startswith("+")}
    return rules


def test_the_acl_file_grants_every_command_the_lua_calls() -> None:
    # Functions run with their caller's permissions: each command a function sends (TIME too, which
    # is in neither @read nor @write) must be granted to the users who call that function.
    call = re.compile(r"""(?:redis\.p?call|rcall|read_call|call_chunked)\(\s*['"]([A-Za-z]+)['"]""")
    root = lua_root()
    rules = acl_rules()
    assert set(rules) == {"default", *ROLES}
    assert not rules["default"], "the default user is off and may do nothing"
    needed: dict[str, set[str]] = {role: {"ping", "info", "fcall_ro", "evalsha_ro"} for role in ROLES}
    for node in root.iterdir():
        command = _read(root, node.name) if node.name.endswith(".lua") else None
        if command is None or not command.function:
            continue
        used = {m.lower() for f in (command, *resolve_helpers(root, command)) for m in call.findall(f.code)}
        admin_only = command.function in ("fs_registry_put", "fs_migrate")  # registry changes, upgrades
        callers = ["fs-admin"] if admin_only else ["fs-writer", "fs-admin"]
        if "no-writes" in command.flags:
            callers.append("fs-serving")
        for role in callers:
            needed[role] |= used
    needed["fs-admin"] |= {"function|load", "script|load", "fcall", "evalsha"}
    for role in ROLES:  # what the cluster routing sends beside the calls (fsredis/routing.py)
        needed[role] |= {"asking", "readonly"} | ({"wait"} if role != "fs-serving" else set())
    for role in ROLES:
        assert needed[role] <= rules[role], f"{role} lacks {sorted(needed[role] - rules[role])}"
    assert not {"fcall", "evalsha", "function|load", "script|load"} & rules["fs-serving"]
    assert not {"function|load", "script|load", "xadd", "sadd"} & rules["fs-writer"]
    assert not any(rule.startswith(("@", "acl", "config", "flush", "function|delete", "function|flush"))
                   for role in ROLES for rule in rules[role])
    assert "aclfile" in REDIS_CONF.read_text() and "deploy/users.acl" in REDIS_CONF.read_text()


# -- secrets never shown -------------------------------------------------------------------------

SECRET = "Pa55-w0rd-xyzzy"


def test_repr_and_str_of_a_config_hide_secrets() -> None:
    configs = [
        FeatureStoreConfig(password=SECRET, username="app"),
        FeatureStoreConfig(redis_url=f"redis://app:{SECRET}@cache.internal:6380/1"),
        FeatureStoreConfig(redis_url=f"rediss://:{SECRET}@cache.internal/0?ssl_password={SECRET}&db=0",
                           ssl_certfile="/etc/fs/client.crt", ssl_keyfile="/etc/fs/client.key"),
        FeatureStoreConfig(redis_kwargs={"password": SECRET, "ssl_password": SECRET, "client_name": "svc"}),
    ]
    for config in configs:
        for text in (repr(config), str(config), f"{config}", f"{config!r}"):
            assert SECRET not in text
    assert "redis://app:***@cache.internal:6380/1" in repr(configs[1])
    assert "password='***'" in repr(configs[0]) and "username='app'" in repr(configs[0])
    assert "ssl_keyfile='/etc/fs/client.key'" in repr(configs[2])  # a path, never the key itself
    assert "'client_name': 'svc'" in repr(configs[3])


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_errors_health_checks_and_logs_hide_the_password(locked_server, caplog, kind) -> None:
    caplog.set_level(logging.DEBUG)
    host = f"127.0.0.1:{locked_server.port}"
    configs = [
        FeatureStoreConfig(redis_url=f"redis://{host}/0", password=SECRET, retries=0),  # wrong password
        FeatureStoreConfig(redis_url=f"redis://default:{SECRET}@{host}/0", retries=0),  # the same, in the URL
        FeatureStoreConfig(redis_url=f"redis://app:{SECRET}@127.0.0.1:1/0", retries=0,  # nothing listens
                           socket_connect_timeout=0.5),
    ]
    shown: list[str] = []
    for config in configs:
        store = make_store(kind, config)
        try:
            with pytest.raises(StoreUnavailable) as raised:
                store.get_features("e1", ["a"])
            shown += [str(raised.value), repr(raised.value), "".join(traceback.format_exception(raised.value))]
            shown.append(repr(store.health_check()))
            shown.append(repr(store.config))
        finally:
            store.close()
    shown.append(caplog.text)
    assert any("credentials" in text for text in shown) and any("unreachable" in text for text in shown)
    for text in shown:
        assert SECRET not in text
