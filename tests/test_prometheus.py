"""The client's Prometheus metrics in any process (store.export_metrics)."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from fsredis import FeatureDefinition, FeatureStoreConfig, ValidationError
from tests.conftest import make_store


def test_stores_export_operation_metrics_to_a_shared_registry(server, namespace, client_kind) -> None:
    registry = CollectorRegistry()
    config = FeatureStoreConfig(redis_url=server.url, namespace=namespace)
    first, second = make_store(client_kind, config), make_store(client_kind, config)
    try:
        first.export_metrics(registry)
        second.export_metrics(registry)  # the same collectors: no duplicate registration
        first.export_metrics(registry)  # idempotent
        first.register_features("p", [FeatureDefinition("x", "int", min=0)])
        first.write_features("p:1", {"x": 1})
        with pytest.raises(ValidationError):
            second.write_features("p:1", {"x": -1})
        second.get_features("p:1", ["x", "y"])
        first.compute_and_store_features("p:2", {"price": 2.0})
    finally:
        first.close()
        second.close()
    text = generate_latest(registry).decode()
    for line in (
        'fsredis_operation_duration_seconds_count{operation="write_features"} 2.0',
        'fsredis_operation_errors_total{error="ValidationError",operation="write_features"} 1.0',
        'fsredis_validation_errors_total{rule="min"} 1.0',
        "fsredis_features_requested_total 2.0",
        "fsredis_features_found_total 1.0",
        'fsredis_transform_duration_seconds_count{transform="price_features"} 1.0',
    ):
        assert line in text, line


def test_exporting_needs_monitoring(server, namespace) -> None:
    store = make_store("sync", FeatureStoreConfig(redis_url=server.url, namespace=namespace, enable_monitoring=False))
    try:
        with pytest.raises(ValueError, match="enable_monitoring"):
            store.export_metrics(CollectorRegistry())
    finally:
        store.close()
