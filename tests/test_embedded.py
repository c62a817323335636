"""The embedded server: starts on a free port, keeps data, and never outlives its parent."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from fsredis import FeatureStore
from fsredis.embedded import EmbeddedServer, ServerError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_embedded_store_starts_and_stops_its_server() -> None:
    store = FeatureStore.embedded(persistence=False)
    server = store.server
    assert server is not None and server.running
    assert server.url.startswith("redis://127.0.0.1:")
    store.write_features("e1", {"a": 1})
    assert store.get_features("e1", ["a"]) == {"a": 1}
    pid, data_dir = server.pid, server.data_dir
    store.close()
    assert not server.running and not _alive(pid)
    assert not data_dir.exists()


def test_data_dir_keeps_data_across_servers(tmp_path) -> None:
    with FeatureStore.embedded(data_dir=str(tmp_path)) as store:
        store.write_features("e1", {"a": "durable"})
    assert (tmp_path / "appendonlydir").is_dir()
    with FeatureStore.embedded(data_dir=str(tmp_path)) as store:
        assert store.get_features("e1", ["a"]) == {"a": "durable"}
    assert tmp_path.exists()  # a given directory is never removed


def test_two_servers_get_different_ports() -> None:
    with EmbeddedServer(persistence=False) as one, EmbeddedServer(persistence=False) as two:
        assert one.port != two.port
        with one.client() as first, two.client() as second:
            assert first.ping() and second.ping()


def test_no_orphan_when_the_parent_is_killed(tmp_path) -> None:
    code = (
        "import sys, time\n"
        "from fsredis.embedded import EmbeddedServer\n"
        "server = EmbeddedServer(persistence=False).start()\n"
        "print(server.pid, server.data_dir, flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as parent:
        child, data_dir = parent.stdout.readline().split()
        _kill_and_check(parent, int(child))
    shutil.rmtree(data_dir)  # (a parent killed with -9 cleans nothing up: its directory is ours to remove)


def _kill_and_check(parent: subprocess.Popen, child: int) -> None:
    assert _alive(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_a_port_in_use_fails_loudly() -> None:
    with EmbeddedServer(persistence=False) as taken:
        late = EmbeddedServer(port=taken.port, persistence=False, startup_timeout=3)
        made = late.data_dir
        with pytest.raises(ServerError, match="did not start"):
            late.start()
        assert not made.exists()  # a failed first start leaves no directory behind
