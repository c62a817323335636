"""Operators at redis-cli: fs_show answers in JSON people can read, fs_put takes JSON values and
writes them exactly as fs_write does, and ``fsredis keys`` prints calls that work as printed."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fsredis import FeatureStoreConfig
from fsredis.cli import main
from fsredis.embedded import default_binary
from fsredis.keys import entity_keys, log_key


def show(store, entity: str, *names: str) -> dict:
    return json.loads(store.redis.execute_command("FCALL_RO", "fs_show", 1, entity_keys(store.config.namespace, entity).entity, *names))


def put(store, entity: str, features: str, options: str | None = None, log: bool = False):
    keys = entity_keys(store.config.namespace, entity)
    declared = [keys.entity, log_key(store.config.namespace, keys.slot)] if log else [keys.entity]
    reply = store.redis.execute_command("FCALL", "fs_put", len(declared), *declared, features, *([options] if options else []))
    return json.loads(reply)


@pytest.fixture
def ops(open_store, server, namespace):
    return open_store(FeatureStoreConfig(redis_url=server.url, namespace=namespace, default_ttl=None))


def test_fs_show_reads_as_people_do(ops) -> None:
    ops.write_features("p:1", {
        "price": 999.99, "name": "iPhone", "tags": ["a", None, 2], "ok": True, "none": None, "empty": [],
        "seen": datetime(2024, 2, 29, 23, 59, 59, 123000, tzinfo=timezone.utc),
        "vec": np.array([3, 4], dtype=np.float32), "half": np.array([1, -2, 0.5], dtype=np.float16),
    }, event_time=datetime(2020, 2, 29, 12, 0, tzinfo=timezone.utc))
    ops.write_features("p:1", {"brief": 1}, ttl=0.05)
    time.sleep(0.1)
    got = show(ops, "p:1")
    assert got["entity_key"] == entity_keys(ops.config.namespace, "p:1").entity
    features = got["features"]
    assert "brief" not in features  # expired: left out, as every read leaves it out
    assert {name: f["value"] for name, f in features.items() if name not in ("vec", "half")} == {
        "price": 999.99, "name": "iPhone", "tags": ["a", None, 2], "ok": True, "none": None, "empty": [],
        "seen": "2024-02-29T23:59:59.123Z",
    }
    assert features["vec"]["value"] == {"dtype": "float32", "dim": 2, "norm": 5, "head": [3, 4]}
    assert features["half"]["value"]["dtype"] == "float16" and features["half"]["value"]["head"] == [1, -2, 0.5]
    assert features["price"]["event_time"] == "2020-02-29T12:00:00.000Z" and features["price"]["version"] == 1
    assert features["price"]["expires_at"] is None
    assert show(ops, "p:1", "price", "nothing")["features"].keys() == {"price"}
    assert show(ops, "p:404")["features"] == {}
    with pytest.raises(redis.ResponseError, match="FSARG"):
        ops.redis.execute_command("FCALL_RO", "fs_show", 1, "not-an-entity")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ms=st.integers(-62_135_596_800_000, 140_737_488_355_327))  # year 1 to the bound of event times
def test_fs_show_dates_agree_with_python(ops, ms) -> None:
    ops.delete_features("p:t")
    ops.write_features("p:t", {"x": 1}, event_time=ms / 1000)
    expected = (datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    assert show(ops, "p:t", "x")["features"]["x"]["event_time"] == expected.rjust(24, "0")


def test_fs_put_writes_as_fs_write_does(ops, open_store, server, namespace) -> None:
    ops.register_features("p", [
        {"name": "price", "dtype": "float", "min": 0},
        {"name": "vec", "dtype": "embedding", "dim": 3},
        {"name": "half", "dtype": "embedding", "dim": 2, "precision": "float16"},
        {"name": "seen", "dtype": "timestamp"},
    ])
    ops.write_features("p:1", {"price": 1.0})
    assert put(ops, "p:1", '{"price": 949.99, "tags": ["a", null]}') == {
        "applied": True, "versions": {"price": 2, "tags": 1}, "history_only": []}
    assert ops.get_features("p:1", ["price", "tags"]) == {"price": 949.99, "tags": ["a", None]}
    before = ops.redis.hgetall(entity_keys(namespace, "p:1").entity)
    with pytest.raises(redis.ResponseError, match="FSVALIDATION feature=price rule=min"):
        put(ops, "p:1", '{"price": -5, "tags": ["b"]}')  # one refused: nothing written
    with pytest.raises(redis.ResponseError, match="FSVALIDATION feature=half rule=dtype"):
        put(ops, "p:1", '{"half": [1, 2]}')
    for bad in ('[1]', 'nope', '{}'):
        with pytest.raises(redis.ResponseError, match="FSARG"):
            put(ops, "p:1", bad)
    with pytest.raises(redis.ResponseError, match="FSARG unknown option"):
        put(ops, "p:1", '{"price": 1}', '{"colour": "red"}')
    assert ops.redis.hgetall(entity_keys(namespace, "p:1").entity) == before
    # Registered kinds: an embedding from an array, a timestamp from epoch seconds; an int to a float.
    assert put(ops, "p:1", '{"vec": [1, 2, 3], "seen": 1700000000.5, "price": 7}')["versions"]["price"] == 3
    got = ops.get_features("p:1", ["vec", "seen", "price"])
    assert got["vec"].dtype == np.float32 and list(got["vec"]) == [1, 2, 3]
    assert got["seen"] == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=timezone.utc) and got["price"] == 7.0
    # Options: a write id applies once; an older event goes to history; a TTL; lineage.
    options = '{"write_id": "ops-1", "event_time": 100, "ttl": 60, "source": "ops", "lineage": {"ticket": "OPS-1"}}'
    assert put(ops, "p:1", '{"price": 5}', options) == {"applied": True, "versions": {"price": 4}, "history_only": ["price"]}
    assert put(ops, "p:1", '{"price": 5}', options) == {"applied": False, "versions": {}, "history_only": []}
    newest = ops.get_feature_lineage("p:1", "price")["versions"]
    late = next(v for v in newest if v["version"] == 4)
    assert (late["source"], late["ticket"], late["write_id"], late["event_time"]) == ("ops", "OPS-1", "ops-1", 100.0)
    assert 0 < late["expires_at"] - time.time() <= 60
    assert ops.get_features("p:1", ["price"]) == {"price": 7.0}  # the current value stays
    # With the change log key, the put is logged as a write is.
    put(ops, "p:2", '{"x": 1}', log=True)
    logged = ops.redis.xrange(log_key(namespace, entity_keys(namespace, "p:2").slot))
    assert logged and logged[-1][1][b"#k"] == entity_keys(namespace, "p:2").entity.encode()


def test_keys_prints_calls_that_work(ops, server, namespace, capsys) -> None:
    ops.write_features("p:7", {"price": 10.0})
    ops.write_features("p:7", {"price": 11.0})
    assert main(["keys", "p:7", "price", "--redis-url", server.url, "--namespace", namespace]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line and not line.startswith("#")]
    cli = str(Path(default_binary()).with_name("valkey-cli"))
    outputs = {}
    for line in lines:  # as a shell runs them (bash: the rollback's options are $'...' bytes)
        words = shlex.split(line.replace("$'", "'"))
        assert words[:5] == ["redis-cli", "-h", "127.0.0.1", "-p", str(server.port)]
        done = subprocess.run(["bash", "-c", f'redis-cli() {{ "{cli}" "$@"; }}; {line}'], capture_output=True, timeout=30)
        output = done.stdout.decode(errors="replace").strip()
        assert done.returncode == 0 and "ERR" not in output and not output.startswith("FS"), (line, output)
        outputs.setdefault(words[6] if words[5].startswith("FCALL") else words[5], []).append(output)
    assert json.loads(outputs["fs_show"][0])["features"]["price"]["value"] == 11.0  # before the put
    assert json.loads(outputs["fs_put"][0]) == {"applied": True, "versions": {"price": 3}, "history_only": []}
    assert outputs["fs_rollback"] == ["4"] and outputs["fs_delete"] == ["1"]  # (redis-cli, not on a terminal)
    assert ops.get_features("p:7", ["price"]) == {}  # the lines ran in order: put, rollback, delete


def test_the_ops_commands(ops, server, namespace, capsys) -> None:
    common = ["--redis-url", server.url, "--namespace", namespace]

    def run(*words: str) -> tuple[int, str, str]:
        code = main([*words, *common])
        out = capsys.readouterr()
        return code, out.out, out.err

    code, out, _ = run("put", "product:1", "price=949.99", "name=iPhone", 'tags=["a", "b"]', "text_embedding=[0.1, 0.2]")
    assert code == 0 and "price" in out
    assert run("put", "product:1", "--json", '{"price": 5}', "--json-out", "--write-id", "w1")[1].count('"price": 2') == 1
    assert json.loads(run("put", "product:1", "--json", '{"price": 5}', "--json-out", "--write-id", "w1")[1])["applied"] is False
    code, out, _ = run("get", "product:1")
    assert code == 0 and "iPhone" in out and "float32[2]" in out and '["a", "b"]' in out
    shown = json.loads(run("get", "product:1", "price", "--json")[1])
    assert shown == {"price": {"value": 5, "version": 2, "event_time": shown["price"]["event_time"],
                               "expires_at": shown["price"]["expires_at"]}}
    code, _, err = run("get", "product:404")
    assert code == 3 and "product:404: no live features" in err
    code, out, _ = run("lineage", "product:1", "price")
    assert code == 0 and "current" in out and "949.99" in out and "source=cli" in out
    assert [v["version"] for v in json.loads(run("lineage", "product:1", "price", "--json")[1])["versions"]] == [2, 1]
    assert run("lineage", "product:1", "nothing")[0] == 3
    assert json.loads(run("rollback", "product:1", "price", "1", "--json")[1]) == {"version": 3}
    assert ops.get_features("product:1", ["price"]) == {"price": 949.99}
    assert run("delete", "product:1")[0] == 2 and run("delete", "product:1", "x", "--all")[0] == 2  # usage
    assert json.loads(run("delete", "product:1", "name", "--json")[1]) == {"deleted": 1}
    for i in range(5):
        ops.write_features(f"user:{i}", {"x": i})
    assert json.loads(run("ls", "--type", "user", "--json")[1]) == [f"user:{i}" for i in range(5)]
    assert len(json.loads(run("ls", "--limit", "2", "--json")[1])) == 2
    assert json.loads(run("ls", "--match", "1", "--json")[1]) == ["product:1", "user:1"]
    stats = json.loads(run("stats", "--json")[1])
    assert stats["types"]["user"]["entities"] == 5 and stats["types"]["product"]["bytes_per_entity"] > 0
    assert stats["library_loaded"] == stats["library_expected"]
    assert run("put", "product:1", "oops")[0] == 2 and run("put", "product:1", "--json", "[1]")[0] == 2


def test_stats_reads_a_sidecars_hit_rate() -> None:
    import http.server
    import threading

    from fsredis.cli.ops import _sidecar_rates

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = (b"# HELP fsredis_features_requested_total x\nfsredis_features_requested_total 200.0\n"
                    b"fsredis_features_found_total 150.0\n"
                    b'fsredis_http_requests_total{route="/v1/features/{entity}",method="GET",status="200"} 40.0\n')
            self.send_response(200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics) as httpd:
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        rates = _sidecar_rates(f"http://127.0.0.1:{httpd.server_address[1]}/")
        httpd.shutdown()
    assert rates == {"hit_rate": 0.75, "features_requested": 200.0, "http_requests": 40.0}


def test_the_printed_redis_cli_names_host_port_database_and_never_the_password() -> None:
    from fsredis.cli.ops import redis_cli

    assert redis_cli(FeatureStoreConfig()) == "redis-cli"
    assert redis_cli(FeatureStoreConfig(redis_url="redis://h1:7000/3")) == "redis-cli -h h1 -p 7000 -n 3"
    secret = redis_cli(FeatureStoreConfig(redis_url="rediss://ops:s3cret@h2:6380/0"))
    assert secret == "redis-cli --tls -h h2 -p 6380 --user ops --askpass" and "s3cret" not in secret
    assert redis_cli(FeatureStoreConfig(redis_url="redis://a:1,b:2", cluster=True)) == "redis-cli -h a -p 1 -c"
