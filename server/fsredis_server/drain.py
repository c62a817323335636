"""The drainer inside the sidecar (``drain_dir``): ``fsredis drain`` in a thread, for the life of
the app (a ``cleanup_ctx``).

It runs on a synchronous store of its own (the work is Redis reads, Parquet files and fsyncs: a
thread keeps it off the event loop). Only one process holds a directory (fsredis/drain.py's lock
file): a sidecar that finds it held waits and tries again every ``drain_interval``, so that one
of several sidecars takes over when the holder stops.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

from aiohttp import web

from fsredis import FeatureStore
from fsredis.drain import DrainError, Drainer, DrainReport
from fsredis_server import logs
from fsredis_server.metrics import ServerMetrics
from fsredis_server.settings import ServerSettings
from fsredis_server.state import METRICS, SETTINGS

_log = logs.logger()


def _drain(settings: ServerSettings, metrics: ServerMetrics, stop: threading.Event) -> None:
    directory = settings.drain_dir
    assert directory is not None
    waiting = False  # (said once, not at every try)

    def passed(report: DrainReport) -> None:
        metrics.drain_entries.inc(report.entries)
        metrics.drain_rows.inc(report.rows)
        metrics.drain_pass.set(time.time())
        if report.quarantined:
            metrics.drain_quarantined.inc(report.quarantined)
            _log.warning("change-log entries quarantined", count=report.quarantined, batch=report.batch,
                         directory=f"{directory}/_quarantine")

    def failed(error: Exception) -> None:
        metrics.drain_errors.inc()
        _log.warning("drain pass failed; trying again", error=str(error))

    while not stop.is_set():
        try:
            with FeatureStore(settings.store) as store, Drainer(store, directory, settle=settings.drain_settle) as drainer:
                _log.info("drainer started", directory=directory, namespace=settings.store.namespace)
                waiting = False
                drainer.run(settings.drain_interval, stop=stop.is_set, on_batch=passed, on_error=failed,
                            on_pass=lambda: metrics.drain_pass.set(time.time()))
        except DrainError as error:
            if not waiting:
                _log.info("drainer waiting", directory=directory, reason=str(error))
                waiting = True
        except Exception as error:  # (never the end of the thread: the log would grow in Redis)
            metrics.drain_errors.inc()
            _log.error("drainer stopped by an error; starting again", error=f"{type(error).__name__}: {error}")
        stop.wait(settings.drain_interval)


async def drain_context(app: web.Application) -> AsyncIterator[None]:
    """Drain in a thread while the app runs (nothing without ``drain_dir``); stop with it."""
    settings = app[SETTINGS]
    if settings.drain_dir is None:
        yield
        return
    stop = threading.Event()
    worker = asyncio.ensure_future(asyncio.to_thread(_drain, settings, app[METRICS], stop))
    try:
        yield
    finally:
        stop.set()
        # A pass in progress finishes (its files and commit); bounded so that shutdown never hangs.
        done, _ = await asyncio.wait([worker], timeout=settings.shutdown_timeout + 5)
        if not done:
            _log.warning("the drainer did not stop in time; its pass is finished or redone by the next start")
        _log.info("drainer stopped")
