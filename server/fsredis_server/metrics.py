"""The sidecar's Prometheus metrics, on a registry of its own (one per app).

HTTP: ``fsredis_http_requests_total{route,method,status}``,
``fsredis_http_request_duration_seconds{route,method}``. Redis: ``fsredis_redis_up``,
``fsredis_redis_connection_failures_total``, ``fsredis_redis_pool_in_use``,
``fsredis_redis_pool_size``, ``fsredis_library_info{version,registry_version}``. The drainer
(``drain_dir``): ``fsredis_drain_entries_total``, ``fsredis_drain_rows_total``,
``fsredis_drain_errors_total``, ``fsredis_drain_last_pass_timestamp_seconds``. The store's own
operation metrics (``fsredis_operation_duration_seconds``, ``fsredis_features_requested_total``,
``fsredis_features_found_total``, ``fsredis_validation_errors_total``,
``fsredis_transform_duration_seconds``) come from fsredis/prometheus.py, the same names any
process using the client can export. ``deploy/prometheus/alerts.yml`` alerts on them.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from fsredis.prometheus import LATENCY_BUCKETS, for_registry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def multiprocess() -> bool:
    """Whether this process is one of several workers (``fsredis serve --workers N``): their
    metrics live in files of ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.shared = multiprocess()
        self.requests = Counter(
            "fsredis_http_requests_total", "HTTP requests by route, method and status.",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "fsredis_http_request_duration_seconds", "Time to answer an HTTP request, in seconds.",
            ["route", "method"], registry=self.registry, buckets=LATENCY_BUCKETS,
        )
        # (Across workers: up only if every live worker's last check was, pool figures summed.)
        self.redis_up = Gauge(
            "fsredis_redis_up", "1 when Redis answered the last check with the library loaded, else 0.",
            registry=self.registry, multiprocess_mode="livemin",
        )
        self.connection_failures = Counter(
            "fsredis_redis_connection_failures_total", "Background checks of Redis that failed.",
            registry=self.registry,
        )
        self.pool_in_use = Gauge(
            "fsredis_redis_pool_in_use", "Store operations holding a Redis connection now.", registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.pool_size = Gauge("fsredis_redis_pool_size", "Connections the store may open.", registry=self.registry,
                               multiprocess_mode="livesum")
        about = "The Lua library version loaded on Redis, and the registry version it enforces."
        # (An Info cannot be shared by workers: there, a gauge of 1 with the same name and labels.)
        self._library = (Gauge("fsredis_library_info", about, ["version", "registry_version"], registry=self.registry,
                               multiprocess_mode="livemax") if self.shared
                         else Info("fsredis_library", about, registry=self.registry))
        self._library_labels: tuple[str, str] | None = None
        self.drain_entries = Counter("fsredis_drain_entries_total", "Change-log entries drained to the offline history.",
                                     registry=self.registry)
        self.drain_rows = Counter("fsredis_drain_rows_total", "Rows written to the offline history.", registry=self.registry)
        self.drain_quarantined = Counter("fsredis_drain_quarantined_total",
                                         "Stream entries that were not change-log entries, set aside in _quarantine/.",
                                         registry=self.registry)
        self.drain_errors = Counter("fsredis_drain_errors_total", "Drain passes that failed (tried again).",
                                    registry=self.registry)
        self.drain_pass = Gauge("fsredis_drain_last_pass_timestamp_seconds",
                                "When the drainer last finished a pass (the log is drained up to then).", registry=self.registry,
                                multiprocess_mode="livemax")
        self.store = for_registry(self.registry)
        """The client operation metrics (``store.export_metrics(registry)`` feeds the same)."""

    def track_pool(self, in_use: Callable[[], float], size: int) -> None:
        self.pool_size.set(size)
        if self.shared:  # (a function cannot be read from another worker: refresh_pool sets it)
            self._in_use = in_use
        else:
            self.pool_in_use.set_function(in_use)

    def refresh_pool(self) -> None:
        """Workers: write the connections in use now (the background check calls it)."""
        if self.shared and hasattr(self, "_in_use"):
            self.pool_in_use.set(self._in_use())

    def library(self, version: str, registry_version: str) -> None:
        """The library and registry versions the last check saw."""
        if not self.shared:
            self._library.info({"version": version, "registry_version": registry_version})
            return
        if self._library_labels not in (None, (version, registry_version)):
            self._library.labels(*self._library_labels).set(0)
        self._library.labels(version, registry_version).set(1)
        self._library_labels = (version, registry_version)

    def exposition(self) -> bytes:
        if not self.shared:
            return bytes(generate_latest(self.registry))
        from prometheus_client import multiprocess as shared

        gathered = CollectorRegistry()
        shared.MultiProcessCollector(gathered)
        return bytes(generate_latest(gathered))
