"""``fsredis serve --workers N``: N sidecar processes on one port, and a supervisor.

Each worker is a whole sidecar (``fsredis_server.serve``) bound with ``SO_REUSEPORT``: the kernel
spreads connections over them, so the sidecar uses as many cores as it has workers. Their
Prometheus metrics go to files in a directory of the supervisor's (``PROMETHEUS_MULTIPROC_DIR``)
and any worker's ``/metrics`` adds up all of them (prometheus-client's multiprocess mode).

The supervisor starts the workers (``spawn``: a fresh interpreter each), starts again one that
dies (at most ``RESTARTS`` in a minute, else it stops all and exits 1), and on SIGTERM or SIGINT
passes SIGTERM on, gives them ``shutdown_timeout`` seconds to finish their requests, kills what is
left and removes the metrics directory.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from typing import Any

from fsredis_server import logs
from fsredis_server.settings import ServerSettings

RESTARTS = 5
"""Worker deaths in a minute after which the supervisor gives up."""


def _worker(settings: ServerSettings) -> None:
    from fsredis_server import serve

    serve(settings, reuse_port=True)


def run(settings: ServerSettings, count: int) -> int:
    """Run ``count`` workers until SIGTERM/SIGINT; 0 after a clean stop, 1 after giving up."""
    log = logs.logger()
    shared = tempfile.mkdtemp(prefix="fsredis-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = shared  # (inherited by the workers, read at their import)
    context = multiprocessing.get_context("spawn")
    stopping: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda number, _frame: stopping.append(number))

    def start() -> Any:
        process = context.Process(target=_worker, args=(settings,), name="fsredis-worker", daemon=False)
        process.start()
        return process

    workers = [start() for _ in range(count)]
    log.info("sidecar workers started", workers=count, pids=[w.pid for w in workers],
             listen=f"http://{settings.host}:{settings.port}")
    deaths: list[float] = []
    code = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for i, process in enumerate(workers):
                if process.exitcode is None or stopping:
                    continue
                _forget(process.pid)
                deaths = [t for t in deaths if t > time.monotonic() - 60] + [time.monotonic()]
                if len(deaths) > RESTARTS:
                    log.error("sidecar workers keep dying; stopping", exitcode=process.exitcode)
                    code = 1
                    stopping.append(0)
                    break
                log.warning("a sidecar worker died; starting another", pid=process.pid, exitcode=process.exitcode)
                workers[i] = start()
    finally:
        for process in workers:
            if process.exitcode is None:
                process.terminate()  # SIGTERM: the worker finishes its requests (shutdown_timeout)
        deadline = time.monotonic() + settings.shutdown_timeout + 5
        for process in workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                process.kill()
                process.join(5)
        shutil.rmtree(shared, ignore_errors=True)
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        log.info("sidecar workers stopped", workers=count)
    return code


def _forget(pid: int | None) -> None:
    """Drop a dead worker's live gauges from the shared metrics."""
    if pid is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
