"""`fsredis serve` as a real process: HTTP in and out, Redis going away and coming back, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from fsredis.embedded import free_port
from tests.conftest import start_server

TOKEN = "e2e-token-0123456789abcdef"
VALUE = 12345.678  # must never appear in the logs


def call(port: int, method: str, path: str, body: Any = None, token: str | None = None,
         timeout: float = 10.0) -> tuple[int, dict[str, Any] | str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    text = raw.decode()
    return status, json.loads(text) if text.startswith("{") else text


def wait_for(port: int, path: str, status: int, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if call(port, "GET", path, timeout=2.0)[0] == status:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{path} never answered {status}")


class Sidecar:
    """``fsredis serve`` as a child process on a free port; its output goes to a file (a full pipe
    would block it) and is in ``out`` once the ``with`` block ends (the process killed if alive)."""

    def __init__(self, log_path, *args: str, **env: str) -> None:
        self.port = free_port()
        self.out = ""
        self._log = log_path.open("w+")
        environ = {k: v for k, v in os.environ.items() if not k.startswith("FSREDIS_")}
        environ.update(env)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fsredis", "serve", "--port", str(self.port), *args],
            stdout=self._log, stderr=subprocess.STDOUT, env=environ, text=True,
        )

    def __enter__(self) -> Sidecar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:  # (SIGTERM first: it stops its servers and removes its files)
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.seek(0)
        self.out = self._log.read()
        self._log.close()


@pytest.fixture
def redis_with_data(tmp_path):
    server = start_server("valkey", data_dir=tmp_path / "redis", persistence=True)
    yield server
    server.stop()


def test_serve_end_to_end(redis_with_data, tmp_path) -> None:
    sidecar = Sidecar(tmp_path / "out.log", "--redis-url", redis_with_data.url, "--namespace", "e2e", "--workers", "1",
                      FSREDIS_SERVER_TOKEN=TOKEN, FSREDIS_SERVER_CHECK_INTERVAL="0.2", FSREDIS_SOCKET_TIMEOUT="1",
                      FSREDIS_SOCKET_CONNECT_TIMEOUT="1", FSREDIS_RETRIES="1")
    port = sidecar.port
    with sidecar:
        wait_for(port, "/readyz", 200)
        assert call(port, "PUT", "/v1/features/product:1", {"features": {"price": VALUE}})[0] == 401
        status, _ = call(port, "PUT", "/v1/features/product:1", {"features": {"price": VALUE}}, token=TOKEN)
        assert status == 200
        assert call(port, "GET", "/v1/features/product:1")[1] == {"entity_id": "product:1", "features": {"price": VALUE}}
        metrics = call(port, "GET", "/metrics")[1]
        assert "fsredis_features_found_total 1.0" in metrics and "fsredis_redis_up 1.0" in metrics

        redis_with_data.stop()  # Redis goes away: readiness flips, calls fail fast, nothing hangs
        wait_for(port, "/readyz", 503)
        started = time.monotonic()
        status, body = call(port, "GET", "/v1/features/product:1")
        assert status == 503 and body["error"]["code"] == "FSUNAVAILABLE"  # type: ignore[index]
        assert time.monotonic() - started < 8
        assert "fsredis_redis_up 0.0" in call(port, "GET", "/metrics")[1]
        assert call(port, "GET", "/healthz")[0] == 200  # alive all along
        hang_up_and_garble(port)

        redis_with_data.start()  # back on the same port, with its data (AOF)
        wait_for(port, "/readyz", 200)
        assert call(port, "GET", "/v1/features/product:1")[1]["features"] == {"price": VALUE}  # type: ignore[index]

        # SIGTERM while a long request is in flight: it still gets its answer, then the process exits.
        slow: dict[str, Any] = {}
        ids = [f"product:{i}" for i in range(10_000)]
        worker = threading.Thread(target=lambda: slow.update(result=call(
            port, "POST", "/v1/features:batch", {"entity_ids": ids, "names": ["price"]}, timeout=30),
            finished=time.monotonic()))
        worker.start()
        time.sleep(0.05)
        sidecar.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        worker.join(timeout=30)
        status, body = slow["result"]
        assert slow["finished"] > signalled  # it was in flight when the signal came
        assert status == 200 and body["entities"]["product:1"] == {"price": VALUE}  # type: ignore[index]
        assert sidecar.process.wait(timeout=20) == 0
    out = sidecar.out
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]  # every line is JSON
    assert lines[0]["event"] == "sidecar starting" and lines[0]["auth"] == "bearer" and TOKEN not in out
    assert lines[0]["listen"] == f"http://127.0.0.1:{port}" and lines[0]["redis_answered"] is True
    assert "Traceback" not in out
    assert [line for line in lines if line.get("status") == 499 and line["method"] == "PUT"]
    assert [line for line in lines if line.get("logger") == "aiohttp.server" and line.get("error")]
    assert not [line for line in lines if str(line.get("status", "")).startswith("5") and line["event"] == "request"
                and line["path"] != "/readyz" and line["path"] != "/v1/features/product:1"]
    requests = [line for line in lines if line["event"] == "request"]
    assert requests and all(len(line["request_id"]) == 32 for line in requests)
    assert {"redis not ready", "redis ready", "sidecar stopped"} <= {line["event"] for line in lines}
    assert str(VALUE) not in out


def hang_up_and_garble(port: int) -> None:
    """A client that leaves in the middle of its body, and one that does not speak HTTP."""
    for request in (b"PUT /v1/features/p:1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                    b"Content-Length: 100\r\n\r\n{" % TOKEN.encode(),
                    b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad header line\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(request)
            time.sleep(0.1)
    time.sleep(0.2)


@pytest.mark.parametrize(("args", "env", "says"), [
    (("--redis-url", "localhost:6379"), {}, "scheme"),
    (("--redis-url", "redis://127.0.0.1:1/0"), {"FSREDIS_SERVER_PORT": "abc"}, "FSREDIS_SERVER_PORT"),
    (("--redis-url", "redis://127.0.0.1:1/0"), {"FSREDIS_SERVER_TOKEN": "short"}, "16 characters"),
    (("--redis-url", "redis://127.0.0.1:1/0"), {"FSREDIS_SERVER_MAX_BATCH": "-1"}, "max_batch"),
    (("--redis-url", "redis://127.0.0.1:1/0", "--token-file", "/nonexistent/token"), {}, "/nonexistent/token"),
    (("--redis-url", "localhost:hunter2-secret@x:1"), {}, "scheme"),
])
def test_configuration_mistakes_exit_2_with_one_line(args, env, says) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FSREDIS_")}
    result = subprocess.run([sys.executable, "-m", "fsredis", "serve", *args], env={**environ, **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr and "hunter2" not in result.stderr


def test_serve_without_a_url_runs_on_an_embedded_valkey(tmp_path) -> None:
    with Sidecar(tmp_path / "out.log") as sidecar:
        port = sidecar.port
        wait_for(port, "/readyz", 200)
        assert call(port, "PUT", "/v1/features/user:1", {"features": {"age": 31}})[0] == 200
        assert call(port, "GET", "/v1/features/user:1")[1]["features"] == {"age": 31}  # type: ignore[index]
        sidecar.process.send_signal(signal.SIGTERM)
        assert sidecar.process.wait(timeout=20) == 0
    out = sidecar.out
    first = json.loads(out.splitlines()[0])
    assert first["event"].startswith("started an embedded Valkey") and first["url"].startswith("redis://127.0.0.1:")
    embedded_port = int(first["url"].rsplit(":", 1)[1].split("/")[0])
    with pytest.raises(OSError):  # the embedded server stopped with the sidecar
        socket.create_connection(("127.0.0.1", embedded_port), timeout=1).close()


def _workers(pid: int) -> list[int]:
    """The sidecar workers under the supervisor ``pid`` (spawned interpreters, not its Valkey)."""
    found = []
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:  # (gone meanwhile)
            continue
        if b"multiprocessing.spawn" in command and b"spawn_main" in command:
            found.append(int(child))
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_workers_share_the_port_their_metrics_and_their_stop(tmp_path) -> None:
    sidecar = Sidecar(tmp_path / "out.log", "--workers", "2", FSREDIS_SERVER_CHECK_INTERVAL="0.2")
    port = sidecar.port
    with sidecar:
        wait_for(port, "/readyz", 200, seconds=60)
        workers = _workers(sidecar.process.pid)
        assert len(workers) == 2
        deadline = time.monotonic() + 60  # both serving: each has written its pool size (64 each)
        while "fsredis_redis_pool_size 128.0" not in call(port, "GET", "/metrics")[1]:
            assert time.monotonic() < deadline, "the second worker never started"
            time.sleep(0.2)
        assert call(port, "PUT", "/v1/features/product:1", {"features": {"price": 1.5}})[0] == 200
        for _ in range(60):  # a new connection each: the kernel spreads them over the workers
            assert call(port, "GET", "/v1/features/product:1")[0] == 200
        served = 'fsredis_http_requests_total{method="GET",route="/v1/features/{entity}",status="200"} 60.0'
        for _ in range(4):  # whichever worker answers /metrics adds up both
            metrics = call(port, "GET", "/metrics")[1]
            shown = [line for line in metrics.splitlines() if line.startswith(("fsredis_http_requests_total", "fsredis_redis_"))]
            assert served in metrics and "fsredis_redis_pool_size 128.0" in metrics and "fsredis_redis_up 1.0" in metrics, shown
        os.kill(workers[0], signal.SIGKILL)  # one dies: the supervisor starts another
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (len(_workers(sidecar.process.pid)) < 2 or workers[0] in _workers(sidecar.process.pid)):
            time.sleep(0.2)
        replaced = _workers(sidecar.process.pid)
        assert len(replaced) == 2 and workers[0] not in replaced and workers[1] in replaced
        wait_for(port, "/readyz", 200, seconds=60)
        assert call(port, "GET", "/v1/features/product:1")[1] == {"entity_id": "product:1", "features": {"price": 1.5}}
        sidecar.process.send_signal(signal.SIGTERM)
        assert sidecar.process.wait(timeout=60) == 0
        assert not any(_alive(pid) for pid in replaced)
    assert "sidecar workers started" in sidecar.out and "a sidecar worker died; starting another" in sidecar.out
    assert "sidecar workers stopped" in sidecar.out
