"""ServerSettings: where the sidecar listens, who may write, and which store it serves."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fsredis import FeatureStoreConfig
from fsredis.config import read_env, redacted_url

ENV_PREFIX = "FSREDIS_SERVER_"
URL_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel")
MASK = "***"


class ConfigError(ValueError):
    """A setting that cannot work; ``fsredis serve`` prints it on one line and exits with 2."""


@dataclass(repr=False)
class ServerSettings:
    """Settings of the sidecar. ``from_env()`` reads ``FSREDIS_SERVER_<FIELD>``, and the store's
    settings from ``FSREDIS_<FIELD>`` (e.g. ``FSREDIS_REDIS_URL``). ``repr()`` shows no secret."""

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
    request_timeout: float = 1.0
    """Seconds a request (and a background check) waits for Redis before it answers 503
    FSUNAVAILABLE, whatever the store's socket timeouts and retries would allow."""
    max_batch: int = 10_000
    """Most entity ids one batch read may ask for."""
    max_body_bytes: int = 16 * 1024 * 1024
    """Largest request body accepted, counted after decompression (gzip, deflate)."""
    log_values: bool = False
    """Log feature values of refused writes (off: logs carry names, rules and ids only)."""
    console: bool = True
    """Serve the web console at ``/ui`` (read-only unless ``token`` is set and given in the page)."""
    workers: int = 0
    """Sidecar processes on the port (``fsredis serve --workers``); 0: one per core."""
    drain_dir: str | None = None
    """Drain the store's change log (``change_log``) into this offline history directory, as
    ``fsredis drain`` does, in a thread of the sidecar; None: no draining. Only one process holds
    a directory: other sidecars with the same one wait and take over if it stops."""
    drain_interval: float = 5.0
    """Seconds between drain passes when the log is short."""
    drain_settle: float = 2.0
    """Entries younger than this (server time) wait for the next pass (``fsredis drain --settle``)."""
    store: FeatureStoreConfig = field(default_factory=FeatureStoreConfig)
    """The store the sidecar serves; its ``redis_url`` is where Redis is."""

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be 1-65535, not {self.port}")
        if self.token is not None and len(self.token) < 16:
            raise ConfigError(f"the token must be at least 16 characters (it has {len(self.token)})")
        for name in ("check_interval", "request_timeout", "drain_interval"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0 seconds, not {getattr(self, name)!r}")
        for name, least in (("shutdown_timeout", 0), ("max_batch", 1), ("max_body_bytes", 1), ("drain_settle", 0),
                            ("workers", 0)):
            if not getattr(self, name) >= least:
                raise ConfigError(f"{name} must be >= {least}, not {getattr(self, name)!r}")
        url = self.store.redis_url
        if url is not None and urlsplit(url).scheme not in URL_SCHEMES:
            raise ConfigError(f"the Redis URL {redacted_url(url)!r} needs a scheme: "
                              f"{', '.join(s + '://' for s in URL_SCHEMES)} (e.g. redis://localhost:6379/0)")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServerSettings:
        """Settings from ``FSREDIS_SERVER_*`` (and the store's from ``FSREDIS_*``), then
        ``overrides``; ConfigError naming the variable when one does not parse."""
        import os

        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            variable = ENV_PREFIX + f.name.upper()
            if f.name != "store" and f.name not in overrides and variable in environ:
                try:
                    values.update(read_env(cls, ENV_PREFIX, {variable: environ[variable]}, skip={"store"}))
                except ValueError:
                    raise ConfigError(f"{variable}={environ[variable]!r} is not a valid {f.type}") from None
        if "store" not in overrides:
            values["store"] = FeatureStoreConfig.from_env(environ)
        values.update(overrides)
        return cls(**values)

    def public(self) -> dict[str, Any]:
        """The settings without secrets, for the startup log line."""
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in ("token", "store")}
        shown["auth"] = "bearer" if self.token else "off"
        shown["redis"] = redacted_url(self.store.redis_url or f"redis://{self.store.redis_host}:{self.store.redis_port}")
        shown["namespace"] = self.store.namespace
        return shown

    def secrets(self) -> list[str]:
        """The secret strings of these settings (to scrub from a message before it is logged)."""
        found = [self.token, self.store.password, urlsplit(self.store.redis_url or "").password]
        found += [v for k, v in parse_qsl(urlsplit(self.store.redis_url or "").query) if "password" in k]
        return [s for s in found if s]

    def __repr__(self) -> str:
        shown = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.name not in ("token", "store")]
        token = MASK if self.token else None
        return f"ServerSettings({', '.join(shown)}, token={token!r}, store={_store_repr(self.store)})"


def _store_repr(store: FeatureStoreConfig) -> str:
    """The store's settings with the password, the URL's credentials and ``redis_kwargs``' values
    masked (all of them: stricter than FeatureStoreConfig's own repr, which shows harmless ones)."""
    shown = []
    for f in dataclasses.fields(store):
        value = getattr(store, f.name)
        if f.name == "password" and value is not None:
            value = MASK
        elif f.name == "redis_url" and value is not None:
            value = redacted_url(value)
        elif f.name == "redis_kwargs":
            value = {k: MASK for k in value}
        shown.append(f"{f.name}={value!r}")
    return f"FeatureStoreConfig({', '.join(shown)})"
