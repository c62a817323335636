"""Prometheus metrics of the client, for any process: ``store.export_metrics()``.

The in-process :class:`~fsredis.metrics.Metrics` of a store (``enable_monitoring``) feed these
collectors too once exported. Several stores in one process share one set of collectors per
``CollectorRegistry`` (Prometheus refuses a metric name registered twice). The sidecar exports the
same names, so dashboards and alerts work for both. Needs ``prometheus-client`` (the ``server``
extra installs it).
"""

from __future__ import annotations

import weakref
from typing import Any

from fsredis.errors import MissingDependency, ValidationError

LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Seconds; fine below a millisecond, where single reads live."""

_shared: weakref.WeakKeyDictionary[Any, PrometheusMetrics] = weakref.WeakKeyDictionary()


class PrometheusMetrics:
    """The client's collectors on one registry (names follow Prometheus conventions)."""

    def __init__(self, registry: Any) -> None:
        try:
            from prometheus_client import Counter, Histogram
        except ImportError:
            raise MissingDependency("Prometheus metrics need prometheus-client: pip install 'fsredis[server]'") from None
        self.operation_seconds = Histogram(
            "fsredis_operation_duration_seconds", "Time of fsredis client operations, in seconds.",
            ["operation"], registry=registry, buckets=LATENCY_BUCKETS,
        )
        self.operation_errors = Counter(
            "fsredis_operation_errors_total", "fsredis client operations that raised.", ["operation", "error"],
            registry=registry,
        )
        self.features_requested = Counter(
            "fsredis_features_requested_total", "Features asked for by reads.", registry=registry,
        )
        self.features_found = Counter(
            "fsredis_features_found_total", "Features returned by reads (live, present).", registry=registry,
        )
        self.validation_errors = Counter(
            "fsredis_validation_errors_total", "Writes refused by a validation rule.", ["rule"], registry=registry,
        )
        self.transform_seconds = Histogram(
            "fsredis_transform_duration_seconds", "Time of one transform run, in seconds.", ["transform"],
            registry=registry, buckets=LATENCY_BUCKETS,
        )

    def observe(self, operation: str, seconds: float, error: BaseException | None) -> None:
        self.operation_seconds.labels(operation).observe(seconds)
        if error is not None:
            self.operation_errors.labels(operation, type(error).__name__).inc()
            if isinstance(error, ValidationError):
                self.validation_errors.labels(error.rule).inc()

    def lookup(self, requested: int, found: int) -> None:
        self.features_requested.inc(requested)
        self.features_found.inc(found)

    def computation(self, transform: str, seconds: float) -> None:
        self.transform_seconds.labels(transform).observe(seconds)


def for_registry(registry: Any = None) -> PrometheusMetrics:
    """The collectors on ``registry`` (default: prometheus_client's global one), made once."""
    if registry is None:
        try:
            from prometheus_client import REGISTRY
        except ImportError:
            raise MissingDependency("Prometheus metrics need prometheus-client: pip install 'fsredis[server]'") from None
        registry = REGISTRY
    metrics = _shared.get(registry)
    if metrics is None:
        metrics = _shared[registry] = PrometheusMetrics(registry)
    return metrics
