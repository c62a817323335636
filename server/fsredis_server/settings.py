"""ServerSettings: where the sidecar listens, who may write, and which store it serves."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fsredis import FeatureStoreConfig
from fsredis.config import read_env

ENV_PREFIX = "FSREDIS_SERVER_"


@dataclass
class ServerSettings:
    """Settings of the sidecar. ``from_env()`` reads ``FSREDIS_SERVER_<FIELD>``, and the store's
    settings from ``FSREDIS_<FIELD>`` (e.g. ``FSREDIS_REDIS_URL``)."""

    host: str = "127.0.0.1"
    """Address to listen on (``0.0.0.0`` in a container)."""
    port: int = 8080
    token: str | None = None
    """Bearer token every write route requires (PUT, DELETE, POST compute/rollback, registry);
    None: no authentication (for loopback use)."""
    protect_reads: bool = False
    """Require the token on reads too (GET features, batch, lineage, registry)."""
    shutdown_timeout: float = 10.0
    """Seconds in-flight requests get to finish after SIGTERM before connections are closed."""
    check_interval: float = 1.0
    """Seconds between the background checks of Redis (readiness, connection gauge)."""
    max_batch: int = 10_000
    """Most entity ids one batch read may ask for."""
    max_body_bytes: int = 16 * 1024 * 1024
    """Largest request body accepted."""
    log_values: bool = False
    """Log feature values of refused writes (off: logs carry names, rules and ids only)."""
    store: FeatureStoreConfig = field(default_factory=FeatureStoreConfig)
    """The store the sidecar serves; its ``redis_url`` is where Redis is."""

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1-65535, not {self.port}")
        if self.token is not None and len(self.token) < 16:
            raise ValueError("a token must be at least 16 characters")
        if self.shutdown_timeout < 0 or self.check_interval <= 0 or self.max_batch < 1:
            raise ValueError("shutdown_timeout >= 0, check_interval > 0 and max_batch >= 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        values = read_env(cls, ENV_PREFIX, environ, skip={"store"})
        values.setdefault("store", FeatureStoreConfig.from_env(environ))
        values.update(overrides)
        return cls(**values)

    def public(self) -> dict[str, Any]:
        """The settings without secrets, for the startup log line."""
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("token", "store")}
        shown["auth"] = "bearer" if self.token else "off"
        shown["redis"] = self.store.redis_url or f"{self.store.redis_host}:{self.store.redis_port}"
        if "@" in shown["redis"]:  # credentials in a URL
            scheme, _, rest = shown["redis"].partition("://")
            shown["redis"] = f"{scheme}://***@{rest.rpartition('@')[2]}"
        shown["namespace"] = self.store.namespace
        return shown
