"""In-process operation metrics: counts, errors, latency percentiles and the hit rate."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fsredis.lazy import numpy as np

LATENCY_WINDOW = 4096
"""How many recent latencies per operation the percentiles are computed from."""


@dataclass
class _Operation:
    calls: int = 0
    errors: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))


class Metrics:
    """Counters kept by one client. Not shared between processes; cheap enough for hot paths."""

    def __init__(self) -> None:
        self._ops: dict[str, _Operation] = {}
        self.features_requested = 0
        self.features_found = 0
        self.computation_seconds = 0.0
        self.computations = 0
        self._transforms: dict[str, list[float]] = {}
        self.exporters: list[Any] = []
        """Also fed with every count (fsredis/prometheus.py, ``store.export_metrics()``)."""

    def observe(self, operation: str, seconds: float, error: BaseException | None = None) -> None:
        """Count one call of ``operation`` that took ``seconds`` (and raised ``error``)."""
        op = self._ops.get(operation)
        if op is None:
            op = self._ops[operation] = _Operation()
        op.calls += 1
        if error is not None:
            op.errors += 1
        op.latencies.append(seconds)
        for exporter in self.exporters:
            exporter.observe(operation, seconds, error)

    def lookup(self, requested: int, found: int) -> None:
        """Count features asked for and features returned (the hit rate)."""
        self.features_requested += requested
        self.features_found += found
        for exporter in self.exporters:
            exporter.lookup(requested, found)

    def computation(self, transform: str, seconds: float) -> None:
        """Count one run of ``transform`` that took ``seconds``."""
        self.computations += 1
        self.computation_seconds += seconds
        totals = self._transforms.setdefault(transform, [0, 0.0])
        totals[0] += 1
        totals[1] += seconds
        for exporter in self.exporters:
            exporter.computation(transform, seconds)

    def snapshot(self) -> dict[str, Any]:
        """Everything as plain numbers; latencies in milliseconds."""
        operations = {}
        for name, op in sorted(self._ops.items()):
            ms = np.fromiter(op.latencies, dtype=np.float64) * 1000.0
            p50, p95, p99 = np.percentile(ms, [50, 95, 99]) if ms.size else (0.0, 0.0, 0.0)
            operations[name] = {
                "calls": op.calls,
                "errors": op.errors,
                "p50_ms": float(p50),
                "p95_ms": float(p95),
                "p99_ms": float(p99),
                "mean_ms": float(ms.mean()) if ms.size else 0.0,
            }
        requested = self.features_requested
        return {
            "operations": operations,
            "total_calls": sum(op.calls for op in self._ops.values()),
            "total_errors": sum(op.errors for op in self._ops.values()),
            "features_requested": requested,
            "features_found": self.features_found,
            "cache_hit_rate": self.features_found / requested if requested else 0.0,
            "computations": self.computations,
            "average_computation_time": (
                self.computation_seconds * 1000.0 / self.computations if self.computations else 0.0
            ),
            "transforms": {
                name: {"runs": int(runs), "average_ms": seconds * 1000.0 / runs}
                for name, (runs, seconds) in sorted(self._transforms.items())
            },
        }
