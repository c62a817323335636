"""The command line: redis-cli/valkey-cli FCALL on the documented keys, and the fsredis command."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import msgpack
import numpy as np
import pytest

from fsredis import FeatureStore, FeatureStoreConfig
from fsredis.cli import main
from fsredis.embedded import default_binary
from tests.conftest import start_server

VALKEY_CLI = str(Path(default_binary()).with_name("valkey-cli"))
ROOT = Path(__file__).resolve().parent.parent


def cli_for(server) -> str:
    if "redis-server" in server.binary:
        found = shutil.which("redis-cli")
        if not found:
            pytest.skip("redis-cli is not installed")
        return found
    return VALKEY_CLI


def run_cli(server, *args: str) -> bytes:
    result = subprocess.run([cli_for(server), "-p", str(server.port), "--no-raw", *args],
                            capture_output=True, check=True, timeout=30)
    return result.stdout


def raw_cli(server, *args: str) -> bytes:
    result = subprocess.run([cli_for(server), "-p", str(server.port), "--raw", *args],
                            capture_output=True, check=True, timeout=30)
    return result.stdout


def test_fcall_on_the_documented_key_format(server, namespace) -> None:
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        store.write_features("product-9", {"price": 12.5, "category": "books", "vec": np.ones(2)}, source="cli-test")
        store.write_features("product-9", {"price": 14.0})
    e = f"{namespace}:{{product-9}}:e"
    out = raw_cli(server, "FCALL_RO", "fs_get", "1", e, "category", "nope").split(b"\n")
    assert msgpack.unpackb(out[0]) == "books" and out[1] == b""
    out = raw_cli(server, "FCALL", "fs_get", "1", e, "price")
    assert msgpack.unpackb(out.rstrip(b"\n")) == 14.0
    listing = run_cli(server, "FCALL_RO", "fs_lineage", "1", e, "price", "10")
    assert listing.startswith(b"1) (integer) 2\n2) (integer) 2\n")  # latest and current version
    assert b"cli-test" in listing  # lineage of version 1
    batch = run_cli(server, "FCALL_RO", "fs_get_batch", "1", e, "category")
    assert b"\\xa5books" in batch


def _options(**extra) -> bytes:
    return msgpack.packb({"id": "w1", "max_versions": 5, "dedup_ms": 1000, "max_bytes": 1000, **extra})


def test_cli_writes_obey_the_same_rules(server, namespace) -> None:
    key = f"{namespace}:{{e}}:e"
    result = subprocess.run(
        [cli_for(server).encode(), b"-p", str(server.port).encode(), b"FCALL", b"fs_write", b"1", key.encode(),
         _options(), b"", b"ok", msgpack.packb(1), b"bad", b""],
        capture_output=True, timeout=30,
    )
    assert b"FSVALIDATION feature=bad rule=encoding" in result.stdout + result.stderr
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        assert store.get_features("e") == {}


def test_lua_rules_for_values_written_without_the_client(server, namespace) -> None:
    key = f"{namespace}:{{e}}:e"
    with server.client() as client:
        def write(name: str, value: bytes, **options):
            return client.fcall("fs_write", 1, key, _options(id="w-" + name, **options), b"\x80", name, value)

        for name, value, rule in [
            ("nan", msgpack.packb(float("nan")), "finite"),
            ("inf", msgpack.packb(float("inf")), "finite"),
            ("two_objects", msgpack.packb(1) + msgpack.packb(2), "encoding"),
            ("garbage", b"\xc1zz\x00", "encoding"),
            ("odd_f32", b"\xc1e4\x00" + b"\x00" * 6, "encoding"),
            ("short_ts", b"\xc1t\x00\x00" + b"\x00" * 4, "encoding"),
            ("too_big", msgpack.packb("x" * 2000), "size"),
        ]:
            with pytest.raises(Exception, match=f"FSVALIDATION feature={name} rule={rule}"):
                write(name, value)
        with pytest.raises(Exception, match="rule=ttl"):
            write("zero_ttl", msgpack.packb(1), ttl={"zero_ttl": 0})
        with pytest.raises(Exception, match="FSARG"):
            write("a", msgpack.packb(1), ttl=0)
        with pytest.raises(Exception, match="FSARG"):
            client.fcall("fs_write", 1, key, _options(id=""), b"\x80", "a", msgpack.packb(1))
        with pytest.raises(Exception, match="FSARG"):
            client.fcall("fs_write", 1, key, _options(), b"not msgpack", "a", msgpack.packb(1))
        with pytest.raises(Exception, match="FSARG"):
            client.fcall("fs_write", 1, key, _options(colour="red"), b"\x80", "a", msgpack.packb(1))
        assert client.exists(key) == 0


def test_fsredis_load_functions_and_info(server, namespace, capsys) -> None:
    with server.client() as client:
        if client.function_list(library="fsredis"):
            client.function_delete("fsredis")
    assert main(["load-functions", "--redis-url", server.url]) == 0
    assert "loaded fsredis library" in capsys.readouterr().out
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        store.write_features_batch({f"e{i}": {"vec": np.ones(768), "price": 1.0} for i in range(5)})
        assert main(["info", "--redis-url", server.url, "--namespace", namespace]) == 0
        out = capsys.readouterr().out
        assert f"loaded {store.library.version}" in out
        assert "entities: 5" in out
        assert "bytes per entity" in out


def test_info_looks_without_installing_and_a_down_server_is_one_line(capsys) -> None:
    fresh = start_server("valkey")
    try:
        assert main(["info", "--redis-url", fresh.url]) == 0
        out = capsys.readouterr().out
        assert "library:  not loaded" in out and "fsredis load-functions" in out and "None" not in out
        with fresh.client() as client:
            assert client.function_list() == []  # it only looked
    finally:
        fresh.stop()
    assert main(["info", "--redis-url", "redis://127.0.0.1:1/0"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and captured.err.startswith("fsredis info: error:")


def test_commands_that_need_a_server_say_so(capsys) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FSREDIS_REDIS_URL"}
    result = subprocess.run([sys.executable, "-m", "fsredis", "info"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode != 0 and "--redis-url" in result.stderr


def test_unreachable_server_is_a_clean_error(capsys) -> None:
    assert main(["load-functions", "--redis-url", "redis://127.0.0.1:1/0"]) == 1
    assert "error" in capsys.readouterr().err


def test_demo_runs_on_an_embedded_server() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FSREDIS_")}
    result = subprocess.run([sys.executable, "-m", "fsredis", "demo"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("fsredis demo: started an embedded Valkey at redis://127.0.0.1:")
    for expected in ("rolled price back to v1 as v4", "last_click expired", "ValidationError", "cache_hit_rate",
                     "status': 'healthy'", "product:0", "refused whole: ValidationError: feature=price rule=min",
                     "by transform price_features@1 from ['price']", "as of day 10: {'price': 18.0, 'clicks_7d': 7}",
                     "each label row sees the values of its own time"):
        assert expected in result.stdout, expected


def test_demo_on_a_given_server(server) -> None:
    assert main(["demo", "--redis-url", server.url, "--namespace", "demo-test"]) == 0


def test_fsredis_apply_diff_and_registry(server, namespace, tmp_path, capsys) -> None:
    target = ["--redis-url", server.url, "--namespace", namespace]
    assert main(["diff", str(ROOT / "features.yaml"), "--exit-code", *target]) == 2
    assert "+ product:price" in capsys.readouterr().out
    assert main(["apply", str(ROOT / "features.yaml"), "--author", "ci", *target]) == 0
    assert "registry version 1" in capsys.readouterr().out
    assert main(["diff", str(ROOT / "features.yaml"), "--exit-code", *target]) == 0
    assert "no changes" in capsys.readouterr().out

    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as store:
        store.write_features("product:1", {"price": 3.0})
    changed = tmp_path / "features.yaml"
    changed.write_text((ROOT / "features.yaml").read_text().replace("price: {dtype: float, min: 0,", "price: {dtype: string,"))
    assert main(["diff", str(changed), *target]) == 0
    assert "breaking: dtype changes from float to string" in capsys.readouterr().out
    assert main(["apply", str(changed), *target]) == 1  # the feature has data
    assert "product:price (dtype changes from float to string)" in capsys.readouterr().err
    assert main(["apply", str(changed), "--force", *target]) == 0
    capsys.readouterr()

    assert main(["registry", "--history", "5", *target]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# namespace {namespace!r}, registry version 2")
    assert "price:\n      dtype: string" in out and "by ci:" in out
    assert main(["apply", str(tmp_path / "missing.yaml"), *target]) == 1
    assert "No such file" in capsys.readouterr().err


def test_reading_an_entity_from_the_command_line_never_imports_numpy(server, namespace) -> None:
    """``fsredis get`` answers with JSON made in Lua: numpy (~80 ms to import) stays unloaded, so
    the command starts fast. A write of an embedding then loads it on first use."""
    with FeatureStore(FeatureStoreConfig(redis_url=server.url, namespace=namespace)) as fs:
        fs.write_features("product:1", {"price": 2.5, "text_embedding": np.ones(4, dtype=np.float32)})
    script = (
        "import sys\n"
        "from fsredis.cli import main\n"
        f"code = main(['get', 'product:1', '--redis-url', {server.url!r}, '--namespace', {namespace!r}, '--json'])\n"
        "print('numpy loaded:', 'numpy' in sys.modules, 'exit:', code)\n"
        "from fsredis import FeatureStore, FeatureStoreConfig\n"
        f"fs = FeatureStore(FeatureStoreConfig(redis_url={server.url!r}, namespace={namespace!r}))\n"
        "print(type(fs.get_features('product:1')['text_embedding']).__name__, 'numpy' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True).stdout
    assert '"price"' in out and "numpy loaded: False exit: 0" in out
    assert out.strip().endswith("ndarray True")


def test_numpy_loads_once_for_threads_that_first_use_it_together() -> None:
    """The lazy numpy of fsredis.lazy, first touched by 16 threads at once: each sees numpy's own
    objects (the import lock serialises the import; no half-made module is seen)."""
    script = (
        "import sys, threading\n"
        "from fsredis.lazy import numpy as np\n"
        "assert 'numpy' not in sys.modules\n"
        "barrier, seen = threading.Barrier(16), []\n"
        "def use():\n"
        "    barrier.wait()\n"
        "    seen.append((np.ndarray, np.frombuffer(b'\\0' * 8, dtype='<f4').sum(), np.float32))\n"
        "threads = [threading.Thread(target=use) for _ in range(16)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "import numpy\n"
        "assert seen == [(numpy.ndarray, 0.0, numpy.float32)] * 16, seen\n"
        "print('ok', repr(np))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok <lazily imported module 'numpy'>"
