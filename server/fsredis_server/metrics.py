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

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, generate_latest

from fsredis.prometheus import LATENCY_BUCKETS, for_registry

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fsredis_http_requests_total", "HTTP requests by route, method and status.",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "fsredis_http_request_duration_seconds", "Time to answer an HTTP request, in seconds.",
            ["route", "method"], registry=self.registry, buckets=LATENCY_BUCKETS,
        )
        self.redis_up = Gauge(
            "fsredis_redis_up", "1 when Redis answered the last check with the library loaded, else 0.",
            registry=self.registry,
        )
        self.connection_failures = Counter(
            "fsredis_redis_connection_failures_total", "Background checks of Redis that failed.",
            registry=self.registry,
        )
        self.pool_in_use = Gauge(
            "fsredis_redis_pool_in_use", "Store operations holding a Redis connection now.", registry=self.registry,
        )
        self.pool_size = Gauge("fsredis_redis_pool_size", "Connections the store may open.", registry=self.registry)
        self.library = Info(
            "fsredis_library", "The Lua library version loaded on Redis, and the registry version it enforces.",
            registry=self.registry,
        )
        self.drain_entries = Counter("fsredis_drain_entries_total", "Change-log entries drained to the offline history.",
                                     registry=self.registry)
        self.drain_rows = Counter("fsredis_drain_rows_total", "Rows written to the offline history.", registry=self.registry)
        self.drain_errors = Counter("fsredis_drain_errors_total", "Drain passes that failed (tried again).",
                                    registry=self.registry)
        self.drain_pass = Gauge("fsredis_drain_last_pass_timestamp_seconds",
                                "When the drainer last finished a pass (the log is drained up to then).", registry=self.registry)
        self.store = for_registry(self.registry)
        """The client operation metrics (``store.export_metrics(registry)`` feeds the same)."""

    def track_pool(self, in_use: Callable[[], float], size: int) -> None:
        self.pool_in_use.set_function(in_use)
        self.pool_size.set(size)

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))
