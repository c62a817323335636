"""FeatureStoreConfig: where Redis is, and how features are kept."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fsredis.keys import check_namespace

ENV_PREFIX = "FSREDIS_"
TRANSPORTS = ("fcall", "evalsha")


@dataclass
class FeatureStoreConfig:
    """Settings of a :class:`~fsredis.FeatureStore`. ``from_env()`` reads ``FSREDIS_<FIELD>``."""

    redis_host: str = "localhost"
    """Host of a standalone Redis/Valkey; ignored when ``redis_url`` is set."""
    redis_port: int = 6379
    """Port of a standalone Redis/Valkey; ignored when ``redis_url`` is set."""
    redis_db: int = 0
    """Database number (standalone only)."""
    redis_url: str | None = None
    """``redis://[user:password@]host:port/db`` or ``rediss://...`` for TLS; wins over host/port."""
    username: str | None = None
    """ACL user name (Redis 6+)."""
    password: str | None = None
    """Password (for ``username``, or the default user)."""
    ssl: bool = False
    """Use TLS (``rediss://`` in ``redis_url`` does the same)."""
    ssl_ca_certs: str | None = None
    """CA bundle to verify the server's certificate with, when TLS is on."""
    cluster: bool = False
    """Talk to a Redis Cluster; ``redis_url`` (or host/port) names any of its nodes."""

    namespace: str = "fs"
    """Prefix of every key, so several stores (or tests) can share a server."""
    default_ttl: float | None = 3600
    """Seconds a scalar feature lives after its write; None: no expiry."""
    embedding_ttl: float | None = 86400
    """Seconds an embedding lives after its write; None: no expiry."""
    enable_versioning: bool = True
    """Keep a history record per write (lineage, rollback). Version numbers count either way."""
    max_versions: int = 10
    """History records kept per (entity, feature), newest first."""
    enable_monitoring: bool = True
    """Count calls, errors, latencies and hit rate in-process (``get_performance_metrics``)."""
    embedding_dtype: str = "float32"
    """How float64 embeddings are stored: ``float32`` or ``float16`` (float16 input stays float16)."""
    max_value_bytes: int = 4 * 1024 * 1024
    """Largest encoded value accepted for one feature; checked inside Redis."""
    builtin_transforms: bool = True
    """Register the built-in product transforms (fsredis/transforms.py) for
    ``compute_and_store_features``: text statistics, category, price, a hashed text embedding."""
    text_embedding_dim: int = 64
    """Values in the built-in ``text_embedding``."""

    transport: str = "fcall"
    """``fcall`` (Redis Functions, FCALL/FCALL_RO) or ``evalsha`` (scripts, EVALSHA/EVALSHA_RO)."""
    dedup_window: float = 300.0
    """Seconds during which a write id is remembered, so a retried write is not applied twice."""
    retries: int = 3
    """Times a command is re-sent after a connection error or timeout (writes are idempotent)."""
    socket_timeout: float | None = 5.0
    """Seconds to wait for a reply before the attempt counts as failed."""
    socket_connect_timeout: float | None = 2.0
    """Seconds to wait for a connection."""
    max_connections: int = 64
    """Connections per client; when all are busy a call waits for one (``pool_timeout``)."""
    pool_timeout: float | None = 10.0
    """Seconds a call waits for a free connection before StoreUnavailable; None: forever."""
    redis_kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra keyword arguments passed to the redis-py client as they are."""

    def __post_init__(self) -> None:
        check_namespace(self.namespace)
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {self.transport!r}")
        if self.embedding_dtype not in ("float32", "float16"):
            raise ValueError(f"embedding_dtype must be 'float32' or 'float16', not {self.embedding_dtype!r}")
        if not isinstance(self.max_versions, int) or self.max_versions < 1:
            raise ValueError("max_versions must be an integer >= 1")
        for name in ("default_ttl", "embedding_ttl"):
            ttl = getattr(self, name)
            if ttl is not None and not ttl > 0:
                raise ValueError(f"{name} must be a positive number of seconds or None, not {ttl!r}")
        if not isinstance(self.text_embedding_dim, int) or self.text_embedding_dim < 1:
            raise ValueError("text_embedding_dim must be an integer >= 1")
        if self.retries < 0 or self.dedup_window < 0 or self.max_value_bytes < 1 or self.max_connections < 1:
            raise ValueError("retries and dedup_window must be >= 0, max_value_bytes and max_connections >= 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> FeatureStoreConfig:
        """Build a config from ``FSREDIS_*`` variables (e.g. ``FSREDIS_REDIS_URL``,
        ``FSREDIS_DEFAULT_TTL=none``), then ``overrides``; unset fields keep their defaults."""
        values = read_env(cls, ENV_PREFIX, environ, skip={"redis_kwargs"})
        values.update(overrides)
        return cls(**values)

    def redis_options(self) -> dict[str, Any]:
        """Keyword arguments for redis-py's client constructors (``from_url`` or direct)."""
        options: dict[str, Any] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
        }
        if self.username is not None:
            options["username"] = self.username
        if self.password is not None:
            options["password"] = self.password
        if self.ssl and not (self.redis_url or "").startswith("rediss://"):
            options["ssl"] = True
        if self.ssl_ca_certs:
            options["ssl_ca_certs"] = self.ssl_ca_certs
        options["max_connections"] = self.max_connections
        options.update(self.redis_kwargs)
        return options


def read_env(
    cls: Any, prefix: str, environ: Mapping[str, str] | None = None, skip: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The fields of dataclass ``cls`` set in ``environ`` (default ``os.environ``) as
    ``<prefix><FIELD>``, parsed by their annotation (bool, int, float, str, optionally None)."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        raw = environ.get(prefix + f.name.upper())
        if raw is not None and f.name not in skip:
            values[f.name] = _parse(f.name, raw, str(f.type))
    return values


def _parse(name: str, raw: str, annotation: str) -> Any:
    text = raw.strip()
    if "None" in annotation and text.lower() in ("", "none", "null"):
        return None
    try:
        if annotation.startswith("bool"):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if annotation.startswith("int"):
            return int(text)
        if annotation.startswith("float"):
            return float(text)
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {annotation}") from None
    return text
