"""What the application holds for its life, under typed keys (``app[STORE]``, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fsredis import AsyncFeatureStore, Registry
from fsredis_server.metrics import ServerMetrics
from fsredis_server.settings import ServerSettings


@dataclass
class Readiness:
    """What the background check last saw of Redis."""

    ready: bool = False
    reason: str = "not checked yet"
    connected: bool = False
    library_version: str | None = None
    registry_version: int | None = None
    checked_at: float = 0.0
    reconciled_at: float = float("-inf")  # (monotonic) when the library was last installed on lagging nodes


@dataclass
class RegistryCache:
    """The namespace's registry, refreshed by the background check and after a PUT."""

    registry: Registry = field(default_factory=Registry)

    def definitions(self, entity_id: str) -> dict[str, Any]:
        group = entity_id.partition(":")[0] if ":" in entity_id else None
        return self.registry.groups.get(group, {}) if group else {}


SETTINGS = web.AppKey("settings", ServerSettings)
STORE = web.AppKey("store", AsyncFeatureStore)
METRICS = web.AppKey("metrics", ServerMetrics)
READINESS = web.AppKey("readiness", Readiness)
REGISTRY = web.AppKey("registry", RegistryCache)
