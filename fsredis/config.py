"""FeatureStoreConfig: where Redis is, and how features are kept."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fsredis import limits
from fsredis.keys import check_namespace

ENV_PREFIX = "FSREDIS_"
TRANSPORTS = ("fcall", "evalsha")
READ_PATHS = ("direct", "function")


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
    """``redis://[user:password@]host:port/db`` or ``rediss://...`` for TLS; wins over host/port.
    Through Sentinel: ``redis+sentinel://[user:password@]host:26379,host2:26379/<master name>[/db]``
    (``rediss+sentinel://`` for TLS): the client asks the sentinels where the primary is, and again
    after a failover; the credentials are the data nodes' (``sentinel_password`` is the sentinels')."""
    username: str | None = None
    """ACL user name (Redis 6+); deploy/users.acl has one per role (serving, writer, admin)."""
    password: str | None = None
    """Password (for ``username``, or the default user). Never shown by ``repr``/``str``."""
    ssl: bool = False
    """Use TLS. A ``rediss://`` URL turns it on; with a ``redis://`` URL it makes the URL ``rediss://``."""
    ssl_ca_certs: str | None = None
    """CA bundle (PEM) to verify the server's certificate with; None: the system's CAs. TLS only."""
    ssl_certfile: str | None = None
    """Client certificate (PEM) for mutual TLS (a server with ``tls-auth-clients yes``). TLS only."""
    ssl_keyfile: str | None = None
    """Private key (PEM) of ``ssl_certfile``, unless that file holds it too. TLS only."""
    ssl_check_hostname: bool = True
    """Check that the server's certificate names the host connected to. Off, only the name check is
    skipped: the certificate must still be signed by ``ssl_ca_certs``."""
    read_from_replicas: bool = False
    """On a cluster, send reads (single and batch) to a replica of the entity's primary when it has
    one (a read it cannot serve goes to the primary). A replica may lag behind its primary by the
    replication delay: a read may miss the latest writes (never an expired value: expiry is checked
    against the replica's own clock)."""
    sentinel_username: str | None = None
    """ACL user name on the sentinels, when they have their own (``sentinel_password``)."""
    sentinel_password: str | None = None
    """Password of the sentinels (``requirepass`` in sentinel.conf); the data nodes' is ``password``
    or the URL's. Never shown by ``repr``/``str``."""
    cluster: bool = False
    """Talk to a Redis Cluster; ``redis_url`` (or host/port) names any of its nodes, or several
    (``redis://host1:7000,host2:7000,host3:7000``): the client starts while any of them answers."""

    namespace: str = "fs"
    """Prefix of every key, so several stores (or tests) can share a server."""
    default_ttl: float | None = 3600
    """Seconds a scalar feature lives after its write; None: no expiry."""
    embedding_ttl: float | None = 86400
    """Seconds an embedding lives after its write; None: no expiry."""
    enable_versioning: bool = True
    """Keep older versions and a record per write (lineage, rollback). Version numbers count
    either way."""
    max_versions: int = 10
    """Versions kept per (entity, feature), the current one included; older ones are dropped."""
    enable_monitoring: bool = True
    """Count calls, errors, latencies and hit rate in-process (``get_performance_metrics``)."""
    embedding_dtype: str = "float32"
    """How float64 embeddings are stored: ``float32`` or ``float16`` (float16 input stays float16)."""
    embedding_features: tuple[str, ...] = ("*_embedding",)
    """Name patterns (``fnmatch``, e.g. ``*_embedding``, ``vec_*``) of features whose values,
    given as a list or tuple of numbers, are stored as embeddings (float arrays, with
    ``embedding_ttl``) like a ``numpy.ndarray`` is; a list to any other feature stays a list.
    ``FSREDIS_EMBEDDING_FEATURES`` takes them comma-separated; empty: none."""
    max_value_bytes: int = 4 * 1024 * 1024
    """Largest encoded value accepted for one feature; checked inside Redis."""
    builtin_transforms: bool = True
    """Register the built-in product transforms (fsredis/transforms.py) for
    ``compute_and_store_features``: text statistics, category, price, a hashed text embedding."""
    text_embedding_dim: int = 64
    """Values in the built-in ``text_embedding``."""

    transport: str = "fcall"
    """``fcall`` (Redis Functions, FCALL/FCALL_RO) or ``evalsha`` (scripts, EVALSHA/EVALSHA_RO)."""
    read_path: str = "direct"
    """How ``get_features`` reads named features of one entity: ``direct``, one plain ``HMGET``
    whose expired values the client drops against an upper bound of the server's clock
    (fsredis/clock.py), or ``function``, ``fs_get`` checking expiry inside Redis. A cluster, and
    reads of every feature (no names), always use ``function``."""
    change_log: bool = False
    """Append every version a write makes (and every delete) to a change log inside Redis, a
    stream per cluster slot beside its entities, for ``fsredis drain`` to move to the offline
    history (Parquet). Off by default; while on, the log grows until drained."""
    dedup_window: float = 300.0
    """Seconds during which a write id is remembered, so a retried write is not applied twice."""
    retries: int = 3
    """Times a command is re-sent after a connection error or timeout (writes are idempotent)."""
    min_replicas: int = 0
    """Replicas that must confirm a write (``WAIT``) before it is acknowledged; else the write
    raises NotReplicated (applied on the primary, it may or may not survive a failover). 0: the
    primary's answer is enough (a failover may then lose acknowledged writes). Per call too."""
    replica_timeout: float = 1.0
    """Seconds to wait for those replicas (within the write's own deadline)."""
    read_timeout: float = 1.0
    """Seconds a read (get, batch get, lineage, export, health check) may take in all, retries
    included; then StoreUnavailable. A call's own ``timeout=`` replaces it."""
    write_timeout: float = 10.0
    """Seconds a write may take in all; within them a write is retried (it carries a write id,
    applied at most once), then StoreUnavailable."""
    socket_timeout: float | None = 5.0
    """Seconds to wait for a reply before the attempt counts as failed (also within the deadlines
    above, which cut an attempt short)."""
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
        self._settle_tls()
        if self.read_from_replicas and not self.cluster:
            raise ValueError("read_from_replicas needs cluster=True (the replicas of each slot's primary)")
        if not self.sentinel and len(self.startup_nodes()[1]) > 0 and not self.cluster:
            raise ValueError("a redis_url with several hosts names the nodes of a cluster: set cluster=True")
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport must be one of {TRANSPORTS}, not {self.transport!r}")
        if self.read_path not in READ_PATHS:
            raise ValueError(f"read_path must be one of {READ_PATHS}, not {self.read_path!r}")
        if isinstance(self.embedding_features, str) or not all(isinstance(p, str) and p for p in self.embedding_features):
            raise ValueError(f"embedding_features is a tuple of name patterns, not {self.embedding_features!r}")
        self.embedding_features = tuple(self.embedding_features)
        if self.embedding_dtype not in ("float32", "float16"):
            raise ValueError(f"embedding_dtype must be 'float32' or 'float16', not {self.embedding_dtype!r}")
        if not isinstance(self.max_versions, int) or not 1 <= self.max_versions <= limits.MAX_VERSIONS:
            raise ValueError(f"max_versions must be an integer from 1 to {limits.MAX_VERSIONS}")
        if not 0 <= self.dedup_window * 1000 <= limits.WINDOW_MS:
            raise ValueError(f"dedup_window must be 0 to {limits.WINDOW_MS // 1000} seconds (7 days)")
        if not isinstance(self.max_value_bytes, int) or not 1 <= self.max_value_bytes <= limits.VALUE_BYTES:
            raise ValueError(f"max_value_bytes must be an integer from 1 to {limits.VALUE_BYTES}")
        for name in ("default_ttl", "embedding_ttl"):
            ttl = getattr(self, name)
            if ttl is not None and not ttl > 0:
                raise ValueError(f"{name} must be a positive number of seconds or None, not {ttl!r}")
        if not isinstance(self.text_embedding_dim, int) or self.text_embedding_dim < 1:
            raise ValueError("text_embedding_dim must be an integer >= 1")
        for name in ("read_timeout", "write_timeout"):
            seconds = getattr(self, name)
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 3600:
                raise ValueError(f"{name} must be a number of seconds above 0 and at most 3600, not {seconds!r}")
        if not isinstance(self.min_replicas, int) or isinstance(self.min_replicas, bool) or not 0 <= self.min_replicas <= 100:
            raise ValueError(f"min_replicas must be an integer from 0 to 100, not {self.min_replicas!r}")
        if isinstance(self.replica_timeout, bool) or not isinstance(self.replica_timeout, (int, float)) or not 0 < self.replica_timeout <= 3600:
            raise ValueError(f"replica_timeout must be a number of seconds above 0 and at most 3600, not {self.replica_timeout!r}")
        if self.retries < 0 or self.dedup_window < 0 or self.max_value_bytes < 1 or self.max_connections < 1:
            raise ValueError("retries and dedup_window must be >= 0, max_value_bytes and max_connections >= 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> FeatureStoreConfig:
        """Build a config from ``FSREDIS_*`` variables (e.g. ``FSREDIS_REDIS_URL``,
        ``FSREDIS_DEFAULT_TTL=none``), then ``overrides``; unset fields keep their defaults."""
        values = read_env(cls, ENV_PREFIX, environ, skip={"redis_kwargs"})
        values.update(overrides)
        return cls(**values)

    def _settle_tls(self) -> None:
        # One switch for TLS: the URL's scheme and ``ssl`` always agree (redis-py takes TLS from the
        # scheme of a URL, and fails with a TypeError when given ssl=True beside a redis:// URL).
        scheme, sep, rest = (self.redis_url or "").partition("://")
        if sep and scheme.lower().endswith("+sentinel"):
            if scheme.lower() not in ("redis+sentinel", "rediss+sentinel"):
                raise ValueError(f"a Sentinel URL is redis+sentinel:// or rediss+sentinel://, not {scheme}://")
            self.ssl = self.ssl or scheme.lower() == "rediss+sentinel"
            if self.cluster:
                raise ValueError("a cluster has no sentinels: use cluster=True with redis:// URLs of its nodes")
            self.sentinel_nodes()  # (a malformed one is refused now, not at the first call)
            return
        if sep and scheme.lower() == "rediss":
            self.ssl = True
        elif sep and self.ssl and scheme.lower() == "redis":
            self.redis_url = f"rediss://{rest}"
        elif sep and self.ssl:
            raise ValueError(f"ssl=True needs a redis:// or rediss:// URL, not {scheme}://")
        given = [name for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile") if getattr(self, name)]
        if given and not self.ssl:
            raise ValueError(f"{', '.join(given)} need TLS: set ssl=True or use a rediss:// URL")
        if self.ssl_keyfile and not self.ssl_certfile:
            raise ValueError("ssl_keyfile is the key of ssl_certfile: give both")

    def __repr__(self) -> str:
        # No secret is shown: passwords (field, URL, redis_kwargs) become ***; files by path only.
        shown = (f"{f.name}={_shown(f.name, getattr(self, f.name))!r}" for f in dataclasses.fields(self) if f.repr)
        return f"{type(self).__name__}({', '.join(shown)})"

    @property
    def sentinel(self) -> bool:
        """True when ``redis_url`` names sentinels (``redis+sentinel://``)."""
        return (self.redis_url or "").partition("://")[0].lower().endswith("+sentinel")

    def sentinel_nodes(self) -> tuple[list[tuple[str, int]], str, int, str | None, str | None]:
        """The sentinels (host, port), the master name, the database, and the data nodes' user
        and password, from a ``redis+sentinel://`` URL."""
        from urllib.parse import unquote

        _, _, rest = (self.redis_url or "").partition("://")
        location, _, path = rest.partition("/")
        userinfo, at, hosts = location.rpartition("@")
        user, colon, password = userinfo.partition(":")
        sentinels = _host_ports(hosts.split(","), "sentinels")
        master, _, db = path.strip("/").partition("/")
        if not master:
            raise ValueError("a redis+sentinel:// URL names the master after the hosts: .../<master name>[/db]")
        if db and not db.isdigit():
            raise ValueError(f"the database of a redis+sentinel:// URL is a number, not {db!r}")
        return (sentinels, unquote(master), int(db or 0), unquote(user) if at and user else None,
                unquote(password) if at and colon else None)

    def startup_nodes(self) -> tuple[str | None, list[tuple[str, int]]]:
        """``redis_url`` with its first host only, and the (host, port) of the others
        (``redis://a:7000,b:7001`` -> ``redis://a:7000``, ``[("b", 7001)]``)."""
        scheme, sep, rest = (self.redis_url or "").partition("://")
        location, slash, path = rest.partition("/")
        userinfo, at, hosts = location.rpartition("@")
        if not sep or "," not in hosts:
            return self.redis_url, []
        first, *others = hosts.split(",")
        return f"{scheme}://{userinfo}{at}{first}{slash}{path}", _host_ports(others, "hosts")

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
        if self.ssl:
            if not self.redis_url:  # a rediss:// URL says so itself
                options["ssl"] = True
            for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
                if getattr(self, name):
                    options[name] = getattr(self, name)
            options["ssl_check_hostname"] = self.ssl_check_hostname
        options["max_connections"] = self.max_connections
        options.update(self.redis_kwargs)
        return options


def _host_ports(entries: list[str], what: str) -> list[tuple[str, int]]:
    """``host:port`` entries of a URL as (host, port) pairs (an IPv6 host in brackets)."""
    found = []
    for entry in entries:
        host, colon, port = entry.strip().rpartition(":")
        if not colon or not host or not port.isdigit():
            raise ValueError(f"the {what} of redis_url are host:port, separated by commas; not {entry!r}")
        found.append((host.strip("[]"), int(port)))
    return found


_SECRET_WORDS = ("password", "passwd", "secret", "token", "credential")


def redacted_url(url: str | None) -> str | None:
    """``url`` with its password (and any password in the query) shown as ``***``:
    ``redis://app:s3cret@host:6379/0`` -> ``redis://app:***@host:6379/0``. A user part without a
    ``:`` is masked whole (it is often a password written in the wrong place), and so is all
    before the last ``@`` of something that is not a URL."""
    if not url:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        return f"***@{url.rpartition('@')[2]}" if "@" in url else url
    location, slash, path = rest.partition("/")
    userinfo, at, host = location.rpartition("@")
    if at:
        user, colon, _ = userinfo.partition(":")
        location = f"{user}:***@{host}" if colon else f"***@{host}"
    path, question, query = path.partition("?")
    if question:
        pairs = [p.partition("=") for p in query.split("&")]
        query = "&".join(
            f"{k}={'***' if any(w in k.lower() for w in _SECRET_WORDS) else v}" if eq else k for k, eq, v in pairs
        )
    return f"{scheme}://{location}{slash}{path}{question}{query}"


def _shown(name: str, value: Any) -> Any:
    """A config value as ``repr`` shows it: secrets masked."""
    if value is None:
        return None
    if name == "redis_url":
        return redacted_url(value)
    if any(word in name.lower() for word in _SECRET_WORDS):
        return "***"
    if isinstance(value, Mapping):
        return {k: _shown(str(k), v) for k, v in value.items()}
    return value


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
            values[f.name] = _parse(prefix + f.name.upper(), raw, str(f.type))
    return values


def _parse(variable: str, raw: str, annotation: str) -> Any:
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
        if annotation.startswith("tuple[str"):  # a comma-separated list
            return tuple(part.strip() for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{variable}={raw!r} is not a valid {annotation}") from None
    return text
