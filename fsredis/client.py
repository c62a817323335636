"""FeatureStore and AsyncFeatureStore: one set of operations, two thin executors.

Every public operation is written once, in :class:`_Operations`, as a generator that yields
requests (a :class:`~fsredis.commands.Call`, a plain :class:`~fsredis.commands.Command`, or a
list of them for a pipeline) and receives their replies. :class:`FeatureStore` drives those
generators with blocking I/O and returns the result; :class:`AsyncFeatureStore` drives them with
``await`` and its methods return awaitables. No method body exists twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from time import monotonic, perf_counter
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError, ResponseError

from fsredis import commands, history, schema, training
from fsredis.clock import ServerClock
from fsredis.commands import TTL, Call, Command, Durable, KeyScan, Operation, Policy, WriteResult, new_write_id
from fsredis.compute import Transforms
from fsredis.config import FeatureStoreConfig
from fsredis.deadline import DeadlinePassed, DeadlineRetry, deadline, with_deadlines
from fsredis.errors import (
    BatchReadError,
    BatchWriteError,
    FeatureStoreError,
    LibraryPermissionDenied,
    NotReplicated,
    PermissionDenied,
    StoreClosed,
    StoreUnavailable,
    ValidationError,
    translate,
)
from fsredis.keys import entity_keys
from fsredis.library import Library, bundled
from fsredis.metrics import Metrics
from fsredis.ingest import IngestOperations
from fsredis.migrate import MigrationOperations
from fsredis.snapshot import SnapshotOperations
from fsredis.registry import REGISTRY_ATTEMPTS, RegistryOperations, versions
from fsredis.routing import UNSETTLED, ClusterBatch, ReadMerger, as_redis_error, half_left, replica_share, wait_ms
from fsredis.transforms import product_transforms
from fsredis.transport import Transport

if TYPE_CHECKING:
    from fsredis.embedded import EmbeddedServer

ENTITY_KEY_CACHE = 4096
"""Entity ids whose key names a client keeps at hand."""
DEADLINE_ENTITIES = 1000
"""A batch call's deadline is its timeout once per this many entities (started)."""
TOPOLOGY_INTERVAL = 5.0
"""Seconds between refreshes of a cluster's slot map for the library checks (fs_version on
every primary): a primary joined by hand is found, and given the library, within them."""

_READS = frozenset({"get_features", "get_features_batch", "get_feature_lineage", "export_features", "health_check",
                    "show_features"})
_WRITES = frozenset({
    "write_features", "write_features_batch", "write_rows", "rollback_feature", "delete_features",
    "compute_and_store_features", "compute_and_store_features_batch",
})



def _retry(module: Any, config: FeatureStoreConfig) -> Any:
    # Sent again on ConnectionError/TimeoutError only; every write carries a write id that Lua
    # applies at most once, so a command re-sent after a lost reply cannot make a second version.
    # The sync client starts no attempt past the operation's deadline (fsredis/deadline.py); the
    # asyncio one runs each operation under asyncio's timeout.
    retry_class = DeadlineRetry if module is redis.retry else module.Retry
    return retry_class(ExponentialWithJitterBackoff(base=0.02, cap=0.5), config.retries)


def make_redis(config: FeatureStoreConfig, asyncio: bool = False) -> Any:
    """A redis-py client (sync or asyncio) for ``config``, returning bytes.

    When ``max_connections`` are busy a call waits up to ``pool_timeout`` for one, instead of
    failing at once as redis-py's default pool does: the sync client through a
    BlockingConnectionPool, the asyncio one through AsyncFeatureStore's semaphore in front of a
    plain pool (redis-py's asyncio BlockingConnectionPool costs ~40 us a call).
    """
    module = redis.asyncio if asyncio else redis
    retry_module = redis.asyncio.retry if asyncio else redis.retry
    options = config.redis_options()
    options.update(decode_responses=False, retry=_retry(retry_module, config))
    if config.cluster:
        if not asyncio and not config.ssl:  # (redis-py picks its own class for TLS cluster nodes)
            options["connection_class"] = with_deadlines(redis.Connection)
        url, others = config.startup_nodes()
        if others:  # the client starts while any of them answers
            node_class = module.cluster.ClusterNode
            options["startup_nodes"] = [node_class(host, port) for host, port in others]
        if url:
            return module.RedisCluster.from_url(url, **options)
        return module.RedisCluster(host=config.redis_host, port=config.redis_port, **options)
    if config.sentinel:
        return _through_sentinels(module, config, options, asyncio)
    if asyncio:
        pool_class = module.ConnectionPool
    else:
        pool_class = module.BlockingConnectionPool
        options["timeout"] = config.pool_timeout
    if config.redis_url:
        pool = pool_class.from_url(config.redis_url, **options)
    else:
        if options.pop("ssl", False):
            options["connection_class"] = module.SSLConnection
        pool = pool_class(host=config.redis_host, port=config.redis_port, db=config.redis_db, **options)
    if not asyncio:  # each send and read waits at most until the operation's deadline
        pool.connection_class = with_deadlines(pool.connection_class)
    return module.Redis(connection_pool=pool)


def _through_sentinels(module: Any, config: FeatureStoreConfig, options: dict[str, Any], asyncio: bool) -> Any:
    """A client of the primary the sentinels name (asked again after a failover: a connection to
    a former primary is dropped and re-made to the new one)."""
    sentinels, master, db, user, password = config.sentinel_nodes()
    asked = {"socket_timeout": config.socket_timeout, "socket_connect_timeout": config.socket_connect_timeout}
    if config.sentinel_username is not None:
        asked["username"] = config.sentinel_username
    if config.sentinel_password is not None:
        asked["password"] = config.sentinel_password
    if config.ssl:
        asked.update({k: v for k, v in options.items() if k.startswith("ssl")}, ssl=True)
        options["ssl"] = True
    options["db"] = db
    if user is not None:  # (the URL's, as redis-py's from_url lets them win)
        options["username"] = user
    if password is not None:
        options["password"] = password
    if not asyncio and not config.ssl:  # each send and read waits at most until the operation's deadline
        options["connection_class"] = with_deadlines(redis.sentinel.SentinelManagedConnection)
    manager = module.sentinel.Sentinel(sentinels, sentinel_kwargs=asked)
    return manager.master_for(master, redis_class=module.Redis, **options)


class _Operations(RegistryOperations, MigrationOperations, IngestOperations, SnapshotOperations):
    """The public API, written once; ``_run`` is supplied by the sync or async executor."""

    def __init__(
        self,
        config: FeatureStoreConfig | None = None,
        *,
        client: Any = None,
        server: EmbeddedServer | None = None,
        **overrides: Any,
    ) -> None:
        if config is None:
            config = FeatureStoreConfig.from_env(**overrides)
        elif overrides:
            config = dataclasses.replace(config, **overrides)
        self.config = config
        self.library: Library = bundled()
        self._transport = Transport(self.library, config.transport)
        self._policy = Policy.from_config(config)
        self._metrics = Metrics()
        self._monitor = config.enable_monitoring
        self._server = server
        self._library_checked = False
        self.transforms = Transforms(product_transforms(config.text_embedding_dim) if config.builtin_transforms else ())
        """The transforms ``compute_and_store_features`` runs (built-ins unless configured off)."""
        # Entity id -> its keys, for the ids seen most recently (hot entities skip the id check).
        self._keys = functools.lru_cache(maxsize=ENTITY_KEY_CACHE)(functools.partial(entity_keys, config.namespace))
        self._owns_pool = client is None
        self._redis = client if client is not None else make_redis(config, self._is_async)
        self._cluster = config.cluster
        self._direct = config.read_path == "direct" and not config.cluster
        self._clock = ServerClock()
        self._topology_at = monotonic()  # when the slot map was last refreshed on purpose
        # On a cluster, the batch reads of one node go as one fs_get_many call (fsredis/routing.py).
        self._merger = ReadMerger(
            {"fs_get_batch", self.library.shas.get("fs_get_batch", "fs_get_batch")},
            lambda keys, names: self._transport.command(commands.get_many(keys, names)),
            names=commands.GET_MANY_NAMES,
        ) if config.cluster else None
        # What the drivers call with a command tuple: on a cluster, routed to the node of the
        # call's key by us (redis-py would ask the server for the keys of every FCALL).
        self._execute = self._routed if config.cluster else self._redis.execute_command

    _is_async = False

    @property
    def redis(self) -> Any:
        """The underlying redis-py client."""
        return self._redis

    @property
    def server(self) -> EmbeddedServer | None:
        """The embedded server this store owns, if it was made by ``embedded()``."""
        return self._server

    def _run(self, operation: str, steps: Operation, timeout: float | None = None, size: int = 1) -> Any:  # pragma: no cover
        raise NotImplementedError

    _closed = False

    def _check_open(self, operation: str, steps: Operation) -> None:
        """StoreClosed once ``close()`` ran: redis-py would otherwise reconnect without a word."""
        if self._closed:
            steps.close()
            raise StoreClosed(f"{operation}: this {type(self).__name__} was closed; make a new one")

    def _budget(self, operation: str, timeout: float | None, size: int = 1) -> float | None:
        """Seconds the operation may take: ``timeout``, else read_timeout for reads and
        write_timeout for writes (None for admin operations: bounded by socket_timeout alone),
        once per DEADLINE_ENTITIES entities of a batch."""
        if timeout is None:
            if operation in _READS:
                timeout = self.config.read_timeout
            elif operation in _WRITES:
                timeout = self.config.write_timeout
            else:
                return None
        elif isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout is a number of seconds above 0, not {timeout!r}")
        return timeout * max(1, -(-size // DEADLINE_ENTITIES))

    # -- writes ---------------------------------------------------------------------------------

    def write_features(
        self,
        entity_id: str,
        features: Mapping[str, Any],
        *,
        ttl: TTL = None,
        source: str | None = None,
        write_id: str | None = None,
        lineage: Mapping[str, Any] | None = None,
        event_time: Any = None,
        min_replicas: int | None = None,
    ) -> Any:
        """Write several features of one entity atomically; each gets its next version.

        ``ttl`` (seconds, or a map of name -> seconds) overrides ``default_ttl`` /
        ``embedding_ttl``. ``source`` and ``lineage`` (extra fields such as ``producer`` or
        ``inputs``) are recorded once for the write. ``event_time`` (a timezone-aware datetime or
        seconds since the epoch; default: the server's time) is when the values were true: a value
        whose event is older than the current one's goes to history without replacing it.
        ``write_id`` makes the call idempotent: a write id already applied to this entity (within
        ``dedup_window``) is not applied again; one is generated when not given. Returns a
        :class:`~fsredis.commands.WriteResult` (always true) with the version of each feature.
        ``min_replicas`` (default: the config's) replicas must confirm the write within
        ``replica_timeout``, else NotReplicated. Raises ValidationError (nothing written).
        """
        return self._run(
            "write_features", self._write(entity_id, features, ttl, source, write_id, lineage, event_time, min_replicas)
        )

    def _write(self, entity_id, features, ttl, source, write_id, lineage, event_time, min_replicas) -> Operation:  # type: ignore[no-untyped-def]
        call = commands.write(
            self._keys(entity_id), features, self._policy, write_id=write_id or new_write_id(), ttl=ttl,
            meta=commands.pack_meta(source, lineage), event_time=event_time,
        )
        replicas = self._replicas(min_replicas)
        if not replicas:
            return commands.decode_write(list(features), (yield from self._send(call, entity_id)))
        [reply] = yield from self._send_many([call], replicas)
        if isinstance(reply, NotReplicated):
            reply.result = commands.decode_write(list(features), reply.result)
        if isinstance(reply, FeatureStoreError):
            raise commands.naming(reply, entity_id)
        return commands.decode_write(list(features), reply)

    def _replicas(self, min_replicas: int | None) -> int:
        """The replicas a write must reach: the call's ``min_replicas``, else the config's."""
        if min_replicas is None:
            return self.config.min_replicas
        if isinstance(min_replicas, bool) or not isinstance(min_replicas, int) or not 0 <= min_replicas <= 100:
            raise ValueError(f"min_replicas is an integer from 0 to 100, not {min_replicas!r}")
        return min_replicas

    def write_features_batch(
        self,
        rows: Mapping[str, Mapping[str, Any]],
        *,
        ttl: TTL = None,
        source: str | None = None,
        lineage: Mapping[str, Any] | None = None,
        event_time: Any = None,
        write_ids: Mapping[str, str] | None = None,
        min_replicas: int | None = None,
    ) -> Any:
        """Write many entities in few round trips: ``{entity_id: {name: value}}``.

        Every value is encoded before anything is sent, so a bad value raises ValidationError with
        nothing written. Each entity's write is atomic and versioned; the batch as a whole is not
        a transaction: if the server refuses some entities, BatchWriteError lists them and the
        ones written. ``write_ids`` (entity id -> write id) makes a retried batch add no version
        twice. With ``min_replicas`` (default: the config's), an entity whose node's replicas did
        not confirm it in time is NotReplicated (one of BatchWriteError's ``unknown``). Returns
        ``{entity_id: WriteResult}``.
        """
        return self._run(
            "write_features_batch",
            self._write_batch(rows, ttl, source, lineage, event_time, write_ids, self._replicas(min_replicas)),
            None, len(rows),
        )

    def _write_batch(self, rows, ttl, source, lineage, event_time, write_ids, replicas) -> Operation:  # type: ignore[no-untyped-def]
        meta = commands.pack_meta(source, lineage)
        ids = list(rows)
        given = write_ids or {}
        used = {e: given[e] if e in given else new_write_id() for e in ids}
        encoded = [
            commands.write_row(self._keys(e), rows[e], self._policy, write_id=used[e], event_time=event_time) for e in ids
        ]
        ttl_option = commands.batch_ttl(ttl)
        if isinstance(ttl_option, dict):  # each row takes the entries of its features; a name in none is a mistake
            strays = sorted(set(ttl_option).difference(*(row[3][::2] for row in encoded)))
            if strays:
                raise ValidationError(strays[0], "ttl", f"the ttl map names features no row of the batch has: {strays}")
        outcomes, _ = yield from self._send_rows(encoded, ids, self._policy, ttl_option, meta, replicas)
        results = {e: o for e, o in zip(ids, outcomes) if not isinstance(o, FeatureStoreError)}
        failed = {e: o for e, o in zip(ids, outcomes) if isinstance(o, FeatureStoreError)}
        if failed:
            raise BatchWriteError(failed, [e for e in ids if e in results], used)
        return WriteResults(results)

    def _apply_batch(self, ids: list[str], calls: list[Call], blame: Any = None) -> Operation:
        """Send one write per entity in a pipeline; BatchWriteError names the refused entities."""
        if not calls:
            return WriteResults()
        replies = yield from self._send_many(calls)
        failed = {e: blame(r) if blame else r for e, r in zip(ids, replies) if isinstance(r, FeatureStoreError)}
        if failed:
            raise BatchWriteError(failed, [e for e in ids if e not in failed])
        return WriteResults(
            (e, commands.decode_write(call.args[2::2], reply)) for e, call, reply in zip(ids, calls, replies)
        )

    def rollback_feature(
        self, entity_id: str, feature_name: str, version: int, *, source: str | None = "rollback",
        write_id: str | None = None,
    ) -> Any:
        """Write the value of ``version`` again as a new version; returns the new version number.

        History is append-only: the new version records ``rolled_back_from``. Raises NotFound
        when the version never existed or is no longer kept (see ``max_versions``).
        """
        return self._run("rollback_feature", self._rollback(entity_id, feature_name, version, source, write_id))

    def _rollback(self, entity_id, name, version, source, write_id) -> Operation:  # type: ignore[no-untyped-def]
        call = commands.rollback(
            self._keys(entity_id), name, version, self._policy,
            write_id=write_id or new_write_id(), meta=commands.pack_meta(source, None),
        )
        return commands.decode_rollback((yield from self._send(call, entity_id)))

    def show_features(self, entity_id: str, feature_names: Iterable[str] | None = None, *,
                      timeout: float | None = None) -> Any:
        """The live features of one entity as ``fs_show`` gives them to an operator: ``{name:
        {"value", "version", "event_time", "expires_at"}}`` with JSON values (timestamps as ISO
        8601 text, embeddings summarised as ``{"dtype", "dim", "norm", "head"}``)."""
        names = None if feature_names is None else commands.check_names(feature_names)
        return self._run("show_features", self._show(entity_id, names), timeout)

    def _show(self, entity_id, names) -> Operation:  # type: ignore[no-untyped-def]
        import json

        reply = yield from self._send(commands.show(self._keys(entity_id), names), entity_id)
        return json.loads(reply)["features"]

    def delete_features(self, entity_id: str, feature_names: Iterable[str] | None = None) -> Any:
        """Delete features (value, history, version counter), or the whole entity when
        ``feature_names`` is None. Returns how many features existed and were deleted."""
        return self._run("delete_features", self._delete(entity_id, feature_names))

    def _delete(self, entity_id, feature_names) -> Operation:  # type: ignore[no-untyped-def]
        keys = self._keys(entity_id)
        names = None if feature_names is None else commands.check_names(feature_names)
        if names == []:
            return 0
        return int((yield from self._send(commands.delete(keys, names, self._policy))))

    # -- computed features ------------------------------------------------------------------------

    def transform(
        self, *, name: str | None = None, version: str | int = "1", inputs: Sequence[str], outputs: Sequence[str]
    ) -> Any:
        """Decorator registering a transform for ``compute_and_store_features`` (fsredis/compute.py)."""
        return self.transforms.decorator(name=name, version=version, inputs=inputs, outputs=outputs)

    def compute_and_store_features(
        self,
        entity_id: str,
        raw_data: Mapping[str, Any],
        *,
        ttl: TTL = None,
        source: str | None = "compute",
        write_id: str | None = None,
    ) -> Any:
        """Run the transforms whose inputs are in ``raw_data`` and write all their outputs in one
        atomic write; each value's lineage records its transform, version and inputs. A failing
        transform raises TransformError, a refused value ValidationError naming the transform;
        either way nothing is written. Returns True."""
        return self._run("compute_and_store_features", self._compute(entity_id, raw_data, ttl, source, write_id))

    def _compute(self, entity_id, raw_data, ttl, source, write_id) -> Operation:  # type: ignore[no-untyped-def]
        call = self._computed_write(entity_id, raw_data, ttl, source, write_id or new_write_id())
        try:
            reply = yield from self._send(call, entity_id)
        except ValidationError as exc:
            raise self._blame(exc) from exc
        return commands.decode_write(call.args[2::2], reply)

    def compute_and_store_features_batch(
        self, rows: Mapping[str, Mapping[str, Any]], *, ttl: TTL = None, source: str | None = "compute"
    ) -> Any:
        """``compute_and_store_features`` for many entities (``{entity_id: raw_data}``) in one
        pipeline. Every transform runs before anything is sent; each entity's write is atomic, the
        batch is not (BatchWriteError lists refused and written entities). Returns True."""
        return self._run("compute_and_store_features_batch", self._compute_batch(rows, ttl, source), None, len(rows))

    def _compute_batch(self, rows, ttl, source) -> Operation:  # type: ignore[no-untyped-def]
        ids = list(rows)
        calls = [self._computed_write(e, rows[e], ttl, source, new_write_id()) for e in ids]
        return (yield from self._apply_batch(ids, calls, self._blame))

    def _computed_write(self, entity_id, raw_data, ttl, source, write_id) -> Call:  # type: ignore[no-untyped-def]
        keys = self._keys(entity_id)
        features, lineage = self.transforms.compute(raw_data, self._metrics.computation if self._monitor else None)
        try:
            return commands.write(
                keys, features, self._policy, write_id=write_id, ttl=ttl,
                meta=commands.pack_meta(source, None, lineage),
            )
        except ValidationError as exc:
            raise self._blame(exc) from exc

    def _blame(self, error: FeatureStoreError) -> FeatureStoreError:
        """A ValidationError of a computed feature, re-raised naming the transform behind it."""
        if not isinstance(error, ValidationError):
            return error
        for transform in self.transforms:
            if error.feature in transform.outputs:
                return ValidationError(error.feature, error.rule, f"{error.detail} (computed by transform {transform.label})")
        return error

    # -- reads ----------------------------------------------------------------------------------

    def get_features(
        self, entity_id: str, feature_names: Iterable[str] | None = None, *, as_of: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """Name -> value of the requested features of one entity (all live ones when None).

        Missing and expired features are absent from the result. Embeddings are read-only
        numpy arrays over the reply bytes. Raises StoreUnavailable when Redis has not answered
        within ``timeout`` seconds (default ``read_timeout``), CorruptValue when a stored value
        cannot be read.

        With ``as_of`` (a timezone-aware datetime, a numpy.datetime64 or seconds since the epoch),
        the features as they were then, from the kept history: per feature the version with the
        newest event time at or before it, absent when it had expired by then; an
        :class:`~fsredis.history.AsOf` whose ``beyond_retention`` names the features whose value
        then the kept history cannot tell (``max_versions`` cut it).
        """
        if as_of is not None:
            return self._run("get_features", self._get_one_as_of(entity_id, feature_names, as_of), timeout)
        return self._run("get_features", self._get(entity_id, feature_names), timeout)

    def _get(self, entity_id, feature_names) -> Operation:  # type: ignore[no-untyped-def]
        keys = self._keys(entity_id)
        names = None if feature_names is None else commands.check_names(feature_names)
        if names == []:
            return {}
        if names is not None and self._direct:
            clock = self._clock
            if clock.stale():
                sent = monotonic()
                clock.learn((yield from self._send(Command(("TIME",)))), sent)
            raw = yield from self._send(commands.get_direct(keys, names))
            found = commands.decode_direct(names, raw, clock.upper_ms(), entity_id)
        else:
            found = commands.decode_get(names, (yield from self._send(commands.get(keys, names), entity_id)), entity_id)
        if self._monitor:
            self._metrics.lookup(len(found) if names is None else len(names), len(found))
        return found

    def get_features_batch(
        self, entity_ids: Iterable[str], feature_names: Iterable[str] | None = None, *, as_of: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """Entity id -> (name -> value) for many entities, in as few round trips as possible.

        Every requested entity is a key of the result (an empty dict when nothing was found).
        When some stored values cannot be read, BatchReadError carries the result without them
        (``.results``) and names them (``.errors``). ``timeout`` (default ``read_timeout``) is
        the deadline per 1,000 entities. ``as_of``: as for :meth:`get_features`, each entity's
        result an :class:`~fsredis.history.AsOf`.
        """
        entity_ids = _sized(entity_ids)
        steps = self._get_batch(entity_ids, feature_names) if as_of is None else self._get_as_of(entity_ids, feature_names, as_of)
        return self._run("get_features_batch", steps, timeout, len(entity_ids))

    def _get_batch(self, entity_ids, feature_names) -> Operation:  # type: ignore[no-untyped-def]
        ids = list(dict.fromkeys(commands.check_names(entity_ids, "entity_ids")))
        keys = [self._keys(e) for e in ids]  # checks each id (the cache skips ids seen recently)
        if feature_names is None:
            replies = yield from self._send_many([commands.get(k, None) for k in keys])
            _raise_first(replies)
            result, readable = {}, True
            for e, reply in zip(ids, replies):
                result[e], clean = commands.decode_live(reply)
                readable = readable and clean
            requested = sum(len(found) for found in result.values())
        else:
            names = commands.check_names(feature_names)
            chunks = commands.batch_groups(ids, keys, self._cluster) if names else []
            calls = [commands.get_batch(k, names) for _, k in chunks]
            if len(calls) == 1:
                replies = [(yield from self._send(calls[0]))]
            else:
                replies = yield from self._send_many(calls)
                _raise_first(replies)
            result = {e: {} for e in ids}
            rows, readable = commands.decode_batches([chunk_ids for chunk_ids, _ in chunks], names, replies)
            result.update(rows)
            requested = len(ids) * len(names)
        unreadable = {}  # looked for only when some value did not decode (not on the hot path)
        if not readable:
            unreadable = {e: error for e, row in result.items() if (error := commands.corrupt(e, row)) is not None}
        if self._monitor:
            self._metrics.lookup(requested, sum(len(found) for found in result.values()))
        if unreadable:
            raise BatchReadError(result, unreadable)
        return result

    def _get_one_as_of(self, entity_id, feature_names, as_of) -> Operation:  # type: ignore[no-untyped-def]
        try:
            found = yield from self._get_as_of([entity_id], feature_names, as_of)
        except BatchReadError as exc:
            raise next(iter(exc.errors.values())) from None
        return found[entity_id]

    def _get_as_of(self, entity_ids, feature_names, as_of) -> Operation:  # type: ignore[no-untyped-def]
        ms = history.as_of_ms(as_of)
        ids = list(dict.fromkeys(commands.check_names(entity_ids, "entity_ids")))
        keys = [self._keys(e) for e in ids]
        if feature_names is None:  # each entity's own features: one HKEYS each first
            listed = yield from self._plain([("HKEYS", k.entity) for k in keys])
            groups = [([e], [k], history.feature_names(fields)) for e, k, fields in zip(ids, keys, listed)]
        else:
            names = commands.check_names(feature_names)
            groups = [(i, k, names) for i, k in commands.batch_groups(ids, keys, self._cluster)] if names else []
        groups = [group for group in groups if group[2]]
        replies = yield from self._send_many([history.get_as_of(k, names, ms) for _, k, names in groups])
        _raise_first(replies)
        result = {e: history.AsOf({}) for e in ids}
        readable, unreadable = True, {}
        for (chunk, _, names), reply in zip(groups, replies):  # (each group has its names)
            rows, errors, clean = history.decode_as_of([chunk], names, [reply])
            result.update(rows)
            unreadable.update(errors)
            readable = readable and clean
        if not readable:
            for e, row in result.items():
                if (error := commands.corrupt(e, row)) is not None:
                    unreadable.setdefault(e, error)
        if self._monitor:
            self._metrics.lookup(sum(len(names) * len(chunk) for chunk, _, names in groups),
                                 sum(len(found) for found in result.values()))
        if unreadable:
            raise BatchReadError(result, unreadable)
        return result

    def get_historical_features(
        self, entity_df: Any, features: Sequence[str], *, timestamp_column: str = "event_timestamp",
        entity_column: str = "entity_id", mask: bool = False, progress: training.Progress | None = None,
        format: str = "pandas", timeout: float | None = None, source: str | os.PathLike[str] | None = None,
        fill_from: str | os.PathLike[str] | None = None,
    ) -> Any:
        """A training set: ``entity_df`` (a pandas DataFrame or a pyarrow Table of labelled rows)
        with one column per feature, each row's values point-in-time correct — as
        ``get_features(entity, features, as_of=row's timestamp)`` answers, read from each distinct
        entity's kept history once.

        ``timestamp_column`` holds timezone-aware datetimes or seconds since the epoch (naive
        datetimes are refused: ValidationError, rule ``as_of``). A value missing at a row's time,
        or expired by then, is None (NaN in a numeric column). A feature whose value then the kept
        history cannot tell (``max_versions`` trimmed it) is left empty too and counted in
        ``result.attrs["beyond_retention"]``; ``mask=True`` adds a boolean column
        ``<feature>__beyond_retention``. ``progress(rows done, rows)`` is called after each chunk
        of entities. ``timeout``: seconds per 1,000 rows for the whole join; without it, each call
        to Redis is bounded by ``socket_timeout`` (a training set may take minutes).
        ``format="arrow"`` returns a pyarrow Table instead of a DataFrame.

        ``source``: the directory of an offline history (``fsredis drain``, ``export_history``):
        the same join runs there with DuckDB (``pip install 'fsredis[offline]'``) and Redis is not
        called (:func:`fsredis.offline.get_historical_features`). ``fill_from``: such a directory
        too, for the cells beyond online retention only (where it can tell).
        """
        if format not in ("pandas", "arrow"):
            raise ValueError(f"format must be 'pandas' or 'arrow', not {format!r}")
        if source is not None:  # (async: in a thread, as the join is DuckDB's work, not I/O)
            join = functools.partial(
                _offline_join, source, entity_df, features, timestamp_column=timestamp_column,
                entity_column=entity_column, mask=mask, format=format, progress=progress,
            )
            return asyncio.to_thread(join) if self._is_async else join()
        rows = len(entity_df) if hasattr(entity_df, "__len__") else 1  # (bounds the entities: the deadline's size)
        marked = mask or fill_from is not None
        steps = self._historical(entity_df, features, timestamp_column, entity_column, marked, progress,
                                 "pandas" if fill_from is not None else format)
        online = self._run("get_historical_features", steps, timeout, max(rows, 1))
        if fill_from is None:
            return online
        from fsredis import offline

        fill = functools.partial(offline.fill_beyond_retention, features=features, source=fill_from,
                                 timestamp_column=timestamp_column, entity_column=entity_column, mask=mask, format=format)
        if self._is_async:
            async def filled() -> Any:
                return await asyncio.to_thread(fill, await online)
            return filled()
        return fill(online)

    def _historical(self, entity_df, features, timestamp_column, entity_column, mask, progress, format) -> Operation:  # type: ignore[no-untyped-def]
        join = training.Join(entity_df, features, timestamp_column, entity_column)
        for chunk in join.chunks():
            keys = [self._keys(e) for e in chunk]
            groups = commands.batch_groups(chunk, keys, self._cluster)
            replies = yield from self._send_many([history.get_history(k, join.names) for _, k in groups])
            _raise_first(replies)
            for (ids, _), reply in zip(groups, replies):
                for entity, row in zip(ids, reply):
                    if isinstance(row, Exception):
                        raise commands.naming(row if isinstance(row, FeatureStoreError) else translate(row), entity)
                join.answer(ids, history.decode_histories(ids, join.names, reply))
            if progress is not None:
                progress(join.done, join.total)
        return join.result(mask, format)

    def get_feature_lineage(
        self, entity_id: str, feature_name: str, limit: int | None = None, *, timeout: float | None = None
    ) -> Any:
        """History of one feature, newest first (at most ``max_versions`` entries)::

            {"entity_id", "feature", "current_version", "expires_at",
             "versions": [{"version", "value", "timestamp", "source", "write_id",
                           "expires_at", "expired", ...lineage fields}, ...]}
        """
        return self._run("get_feature_lineage", self._lineage(entity_id, feature_name, limit), timeout)

    def _lineage(self, entity_id, name, limit) -> Operation:  # type: ignore[no-untyped-def]
        call = commands.lineage(self._keys(entity_id), name, limit or self._policy.history_limit)
        return commands.decode_lineage(entity_id, name, (yield from self._send(call, entity_id)))

    def export_features(
        self, entity_ids: Iterable[str], feature_names: Sequence[str] | None = None, format: str = "pandas",
        *, timeout: float | None = None,
    ) -> Any:
        """The features of many entities as ``"pandas"`` (DataFrame indexed by entity id),
        ``"arrow"`` (pyarrow Table), ``"numpy"`` (name -> array) or ``"dict"``; every live
        feature any of them has (in name order) unless ``feature_names`` are given."""
        entity_ids = _sized(entity_ids)
        return self._run("export_features", self._export(entity_ids, feature_names, format), timeout, len(entity_ids))

    def _export(self, entity_ids, feature_names, format) -> Operation:  # type: ignore[no-untyped-def]
        from fsredis import export

        convert = export.converter(format)
        names = None if feature_names is None else commands.check_names(feature_names)
        rows = yield from self._get_batch(entity_ids, names)
        if names is None:
            names = sorted({name for row in rows.values() for name in row})
        return convert(rows, names)

    # -- operations -----------------------------------------------------------------------------

    def health_check(self, *, install: bool = True) -> Any:
        """``{"status", "redis_connected", "server", "library_version", "registry_version",
        "ping_ms", ...}``; never raises for an unreachable server (status ``unhealthy``).
        ``registry_errors`` (status ``degraded``) names stored definitions of this namespace that
        cannot be read (``group:feature`` -> why); writes of those features are refused.
        ``registry_version`` is this namespace's registry version that the loaded library enforces
        (the lowest over a cluster's primaries). Like any first call, it installs the library
        where it is missing or outdated; with ``install=False`` it only looks, and a server
        without the library is ``degraded`` with ``library_version`` None and an ``error``
        saying so."""
        return self._run("health_check", self._health(install))

    def _look(self, request: Call | Command) -> Operation:
        """Send one request as it is, without installing the library first."""
        command = request.args if isinstance(request, Command) else self._transport.command(request)
        return (yield from self._plain(command))

    def _health(self, install: bool = True) -> Operation:
        send = self._send if install else self._look
        report: dict[str, Any] = {
            "status": "unhealthy",
            "redis_connected": False,
            "transport": self._transport.kind,
            "library_expected": self.library.version,
            "library_version": None,
        }
        try:
            started = perf_counter()
            yield from send(Command(("PING",)))  # (install: the first call installs the library where it is missing)
            report["ping_ms"] = (perf_counter() - started) * 1000.0
            report["redis_connected"] = True
            info = yield from send(Command(("INFO", "server")))
            name = "valkey" if "valkey_version" in info else "redis"
            report["server"] = {"name": name, "version": info.get(f"{name}_version", info.get("redis_version"))}
            try:
                loaded = yield from send(commands.version())
            except FeatureStoreError as exc:
                if install or not _missing(exc):
                    raise
                report.update(status="degraded", error="the fsredis library is not loaded (fsredis load-functions)")
                return report
            report["library_version"] = _loaded_version(loaded)
            report["status"] = "healthy" if report["library_version"] == self.library.version else "degraded"
            lagging = self._behind(loaded)
            if report["status"] == "healthy":  # another build may lack fs_registry_version
                enforced = yield from send(commands.registry_version(self.config.namespace))
                report["registry_version"] = min(enforced.values()) if isinstance(enforced, dict) else enforced
                stored = yield from self._registry(tolerant=True, send=send)
                lagging = self._behind(loaded, enforced, stored.version)
                if stored.broken:  # enforced as "refuse every write of the feature" until fixed
                    report["registry_errors"] = stored.broken
                    report["status"] = "degraded"
            if lagging:  # load_library() (the sidecar does it by itself) installs the current one
                report["lagging_nodes"] = lagging
                report["status"] = "degraded"
        except FeatureStoreError as exc:
            report["error"] = str(exc)
        return report

    def export_metrics(self, registry: Any = None) -> None:
        """Feed this store's operation metrics (latency per operation, errors, features requested
        and found, validation errors by rule, transform times) to Prometheus collectors on
        ``registry`` (default: prometheus_client's global registry), shared by every store that
        exports there. Needs ``enable_monitoring`` and prometheus-client."""
        if not self._monitor:
            raise ValueError("export_metrics needs enable_monitoring=True")
        from fsredis.prometheus import for_registry

        exporter = for_registry(registry)
        if exporter not in self._metrics.exporters:
            self._metrics.exporters.append(exporter)

    def get_performance_metrics(self) -> Any:
        """Per-operation calls, errors and latency percentiles (ms), ``cache_hit_rate`` (features
        found / requested) and ``average_computation_time`` (ms per feature computation)."""
        return self._run("", self._snapshot())

    def _snapshot(self) -> Operation:
        return self._metrics.snapshot()
        yield  # pragma: no cover - makes this a generator

    # -- the library and the wire -------------------------------------------------------------

    def load_library(self, only_if_changed: bool = False) -> Any:
        """Install the Lua library on the server: the Functions library always (so operators can
        ``FCALL``), and the scripts too with the ``evalsha`` transport. With ``only_if_changed``,
        only when the server's ``fs_version`` differs from this package's. Returns the version.

        Clients call this by themselves before their first command and whenever the server
        answers ``NOSCRIPT`` or ``Function not found``; ops use ``fsredis load-functions``.
        """
        return self._run("load_library", self._load_library(only_if_changed))

    def _load_library(self, only_if_changed: bool = False) -> Operation:
        try:
            if only_if_changed:
                try:
                    loaded = yield ("FCALL_RO", "fs_version", 0)
                except ResponseError as exc:
                    if not Transport.is_missing(exc):
                        raise
                    loaded = None
                if _loaded_version(loaded) == self.library.version:
                    self._library_checked = True
                    return self.library.version
            registries = yield from self._registries()
            for _ in range(REGISTRY_ATTEMPTS):
                source = self.library.with_registry(schema.compile_registries(registries)).source
                for command in self._transport.load_commands(source):
                    yield command
                # Compiled from what was read: load again if a registry changed (or came) since,
                # or if a primary does not run what was loaded (one the slot map did not know yet).
                latest = yield from self._registries()
                if versions(latest) == versions(registries) and (yield from self._everywhere(registries)):
                    break
                registries = latest
        except RedisError as exc:
            error = translate(exc)
            if isinstance(error, PermissionDenied) and not isinstance(error, LibraryPermissionDenied):
                error = LibraryPermissionDenied(
                    f"installing the fsredis library was refused ({error}): run `fsredis load-functions` "
                    "once as an admin user (fs-admin in deploy/users.acl)", error.permission, error.function,
                )
            raise error from exc
        self._library_checked = True
        return self.library.version

    def _everywhere(self, registries: Mapping[str, Any]) -> Operation:
        """True when every primary runs this library with the registry of this namespace as
        compiled from ``registries`` (always true on a single server: it was just loaded)."""
        if not self._cluster:
            return True
        try:
            loaded = yield ("FCALL_RO", "fs_version", 0)
            enforced = yield self._transport.command(commands.registry_version(self.config.namespace))
        except ResponseError as exc:
            if Transport.is_missing(exc):
                return False
            raise
        return not self._behind(loaded, enforced, versions(registries).get(self.config.namespace, 0))

    def _behind(self, loaded: Any, enforced: Any = None, registry: int = 0) -> dict[str, str]:
        """The primaries (node -> why) whose ``fs_version`` reply (``loaded``) is not this
        library, or whose ``fs_registry_version`` reply (``enforced``) is older than ``registry``:
        a node that missed a registry change enforces old rules."""
        lagging = {node: f"library {version}" for node, version in _per_node(loaded).items() if version != self.library.version}
        for node, version in (_per_node(enforced) if enforced is not None else {}).items():
            if version < registry:
                lagging[node] = f"registry version {version}, {registry} stored"
        return lagging

    def _send(self, request: Call | Command, entity_id: str | None = None) -> Operation:
        """Send one request; install the library first, and again if the server lost it. A
        CorruptValue the Lua library raises names ``entity_id``."""
        if not self._library_checked:
            yield from self._load_library(only_if_changed=True)
        command = request.args if isinstance(request, Command) else self._transport.command(request)
        try:
            try:
                return (yield command)
            except ResponseError as exc:
                if not Transport.is_missing(exc):
                    raise
            # The call never ran (the server had no such script/function): safe to send again.
            yield from self._load_library()
            return (yield command)
        except RedisError as exc:
            error = translate(exc)
            raise (commands.naming(error, entity_id) if entity_id else error) from exc

    def _plain(self, request: Any) -> Operation:
        """Send a plain request (a command tuple, a list of them, a KeyScan) as it is; errors
        (also those inside a pipeline's replies) raised as FeatureStoreError."""
        try:
            reply = yield request
        except RedisError as exc:
            raise translate(exc) from exc
        if isinstance(request, list):
            for item in reply:
                if isinstance(item, RedisError):
                    raise translate(item) from item
        return reply

    def _send_many(self, calls: list[Call], replicas: int = 0) -> Operation:
        """Send calls in one pipeline; replies in order, errors as FeatureStoreError instances.
        With ``replicas``, a write's reply stands only once that many replicas confirmed it,
        else it is NotReplicated (carrying the reply as ``result``)."""
        if not calls:
            return []
        if not self._library_checked:
            yield from self._load_library(only_if_changed=True)
        wire = [self._transport.command(call) for call in calls]
        timeout_ms = int(self.config.replica_timeout * 1000)

        def send(commands: list[tuple[Any, ...]]) -> Operation:
            if not replicas:
                return (yield commands), None
            return (yield Durable(commands, replicas, timeout_ms))

        try:
            replies, acks = yield from send(wire)
            missing = [i for i, r in enumerate(replies) if isinstance(r, Exception) and Transport.is_missing(r)]
            if missing:
                yield from self._load_library()
                again, again_acks = yield from send([wire[i] for i in missing])
                for n, i in enumerate(missing):
                    replies[i] = again[n]
                    if acks is not None:
                        acks[i] = again_acks[n]
        except RedisError as exc:
            raise translate(exc) from exc
        out = [translate(r) if isinstance(r, RedisError) else r for r in replies]
        if acks is not None:
            for i, reply in enumerate(out):
                if not isinstance(reply, FeatureStoreError) and acks[i] < replicas:
                    out[i] = NotReplicated(
                        f"applied on the primary, but {acks[i]} of {replicas} replicas confirmed it within "
                        f"{timeout_ms} ms: it may or may not survive a failover (safe to send again with the "
                        "same write id)", acks[i], replicas, reply,
                    )
        return out

    def _target(self, command: tuple[Any, ...], replica: bool = False) -> Any:
        """The node for ``command``: its key's primary (a replica of it for a read, when asked
        and there is one), every primary, or any node."""
        key = Transport.routing_key(command)
        if key is not None:
            if replica and self.config.read_from_replicas and command[0] in ("FCALL_RO", "EVALSHA_RO"):
                return self._redis.get_node_from_key(key, replica=True) or self._redis.get_node_from_key(key)
            return self._redis.get_node_from_key(key)
        # Explicit nodes: redis-py's asyncio cluster ignores node flags such as PRIMARIES here.
        return self._redis.get_primaries() if Transport.everywhere(command) else self._redis.get_random_node()

    def _topology_due(self, command: tuple[Any, ...]) -> bool:
        """Whether to refresh the slot map before a command every primary must run: always before
        installing the library (a primary joined since must get it too), else at most every
        TOPOLOGY_INTERVAL seconds (the checks of the library's version, e.g. by health_check)."""
        if not Transport.everywhere(command):
            return False
        now = monotonic()
        if command[0] in ("FUNCTION", "SCRIPT") or now - self._topology_at >= TOPOLOGY_INTERVAL:
            self._topology_at = now
            return True
        return False

    def _node_at(self, host: str, port: int) -> Any:
        """The cluster node at ``host:port`` (None when the slot map does not know it)."""
        return self._redis.get_node(host=host, port=port)

    def _routed(self, *command: Any) -> Any:  # pragma: no cover - each driver has its own
        raise NotImplementedError

    def _observe(self, operation: str, started: float, error: BaseException | None) -> None:
        if self._monitor and operation:
            self._metrics.observe(operation, perf_counter() - started, error)

    def _observed(self, operation: str) -> _Observed:
        """Count the operation's latency and outcome (errors included) in the metrics."""
        return _Observed(self, operation)

    @classmethod
    def embedded(cls, data_dir: str | None = None, *, persistence: bool = True, **overrides: Any) -> Any:
        """A store on a private Valkey server, started now and stopped by ``close()``.

        For demos, notebooks and tests; ``data_dir`` keeps the data (AOF) across restarts.
        """
        from fsredis.embedded import EmbeddedServer

        server = EmbeddedServer(data_dir=data_dir, persistence=persistence).start()
        try:
            return cls(FeatureStoreConfig(redis_url=server.url, **overrides), server=server)
        except BaseException:
            server.stop()
            raise


def _missing(error: FeatureStoreError) -> bool:
    """Whether an error says the library (a function or script of it) is not on the server."""
    return isinstance(error.__cause__, ResponseError) and Transport.is_missing(error.__cause__)


def _offline_join(source: Any, entity_df: Any, features: Sequence[str], *, progress: Any, **options: Any) -> Any:
    from fsredis import offline

    result = offline.get_historical_features(source, entity_df, features, **options)
    if progress is not None:
        progress(len(result), len(result))
    return result


@contextlib.contextmanager
def _replica_bound(node: Any) -> Any:
    """Around the I/O with a replica: at most its share of the deadline (fsredis/routing.py),
    and its passing is a timeout of the replica (its primary is asked next), not of the call."""
    share = replica_share(node)
    if share is None:
        yield
        return
    try:
        with deadline(share):
            yield
    except DeadlinePassed:
        raise redis.exceptions.TimeoutError(f"the replica did not answer within {share:.3f} s") from None


def _sentinels_of(client: Any) -> list[Any]:
    """The clients of the sentinels behind ``client`` (none unless it came from Sentinel)."""
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    return list(manager.sentinels) if manager is not None else []


def _with_acks(replies: list[Any]) -> tuple[list[Any], list[int]]:
    """A pipeline's replies whose last is a WAIT's: the others, and the replicas that confirmed
    each (none for an error)."""
    acks = replies.pop()
    acks = acks if isinstance(acks, int) else 0
    return replies, [0 if isinstance(reply, Exception) else acks for reply in replies]


def _per_node(reply: Any) -> dict[str, Any]:
    """A reply of a call every primary ran, as node name -> value (text for bytes); a single
    server's reply as ``{"-": value}``."""
    found = reply if isinstance(reply, dict) else {"-": reply}
    return {str(node): value.decode() if isinstance(value, bytes) else value for node, value in found.items()}


def _loaded_version(reply: Any) -> str | None:
    """The library version in an ``fs_version`` reply; on a cluster (one reply per primary) the
    common version, or all of them joined when the primaries differ (so it matches none)."""
    found = sorted(set(_per_node(reply).values()))
    return found[0] if len(found) == 1 else ", ".join(found)


class WriteResults(dict):  # type: ignore[type-arg]
    """Entity id -> WriteResult of a batch write; always true, as a bool result was."""

    def __bool__(self) -> bool:
        return True


def _sized(items: Iterable[Any]) -> Any:
    """``items`` as they are when they have a length (a list, a tuple, ...), else as a list."""
    return items if hasattr(items, "__len__") else list(items)


if sys.version_info >= (3, 11):
    _timeout = asyncio.timeout
else:  # pragma: no cover - Python 3.10

    @contextlib.asynccontextmanager
    async def _timeout(seconds: float) -> Any:
        task = asyncio.current_task()
        assert task is not None
        fired = False

        def cancel() -> None:
            nonlocal fired
            fired = True
            task.cancel()

        handle = asyncio.get_running_loop().call_later(seconds, cancel)
        try:
            yield
        except asyncio.CancelledError:
            if fired:
                raise asyncio.TimeoutError from None
            raise
        finally:
            handle.cancel()


class _Observed:
    """The context of one operation that counts its latency and outcome in the store's metrics
    (a class rather than a generator: it wraps every call, and costs a fraction)."""

    __slots__ = ("_store", "_operation", "_started")

    def __init__(self, store: _Operations, operation: str) -> None:
        self._store, self._operation = store, operation
        self._started = perf_counter() if store._monitor else 0.0

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        self._store._observe(self._operation, self._started, error)


def _raise_first(replies: Sequence[Any]) -> None:
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply


class FeatureStore(_Operations):
    """The blocking client. ``FeatureStore()`` reads ``FSREDIS_*`` variables, else localhost:6379;
    ``FeatureStore.embedded()`` starts a private Valkey for demos, notebooks and tests."""

    def _run(self, operation: str, steps: Operation, timeout: float | None = None, size: int = 1) -> Any:
        self._check_open(operation, steps)
        with self._observed(operation):
            try:
                # What an operation does before its first request (checks, encoding, transforms)
                # is not Redis's time: the deadline starts with the first request.
                request = next(steps)
            except StopIteration as done:
                return done.value
            with deadline(self._budget(operation, timeout, size)):
                return self._exchange(steps, request)

    def _exchange(self, steps: Operation, request: Any) -> Any:
        """Send the operation's requests and give it the replies; its result."""
        execute = self._execute
        try:
            while True:
                try:
                    if isinstance(request, list):
                        reply = self._pipeline(request)
                    elif type(request) is Durable:
                        reply = self._durable(request)
                    elif type(request) is KeyScan:
                        reply = list(itertools.islice(self._redis.scan_iter(match=request.match, count=1000), request.limit))
                    else:
                        reply = execute(*request)
                except UNSETTLED as exc:  # (a cluster without a node for the key raises no RedisError)
                    request = steps.throw(as_redis_error(exc))
                else:
                    request = steps.send(reply)
        except StopIteration as done:
            return done.value

    def _pipeline(self, wire: list[tuple[Any, ...]]) -> list[Any]:
        if self._cluster:
            return self._cluster_run(wire).replies
        pipe = self._redis.pipeline(transaction=False)
        for command in wire:
            pipe.execute_command(*command)
        return pipe.execute(raise_on_error=False)

    def _routed(self, *command: Any) -> Any:
        if Transport.routing_key(command) is None:  # the library everywhere, a node's own answer
            if self._topology_due(command):
                with contextlib.suppress(*UNSETTLED):
                    self._redis.nodes_manager.initialize()
            return self._redis.execute_command(*command, target_nodes=self._target(command))
        reply = self._cluster_run([command]).replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _durable(self, request: Durable) -> tuple[list[Any], list[int]]:
        if self._cluster:  # (each round's WAIT is cut to the deadline left: fsredis/routing.py)
            batch = self._cluster_run(request.wire, (request.replicas, request.timeout_ms))
            return batch.replies, batch.acks
        return _with_acks(self._pipeline([*request.wire, ("WAIT", request.replicas, wait_ms(request.timeout_ms))]))

    def _cluster_run(self, wire: list[tuple[Any, ...]], durable: tuple[int, int] | None = None) -> ClusterBatch:
        """``wire`` run on a cluster: one pipeline per node, all sent before any reply is read;
        what the cluster moved goes again until the deadline (fsredis/routing.py). ``durable``:
        (replicas, timeout ms) of a WAIT sent after each node's commands."""
        batch = ClusterBatch(wire, durable, self._merger)
        while True:
            self._node_pipelines(batch, batch.plan(self._target, self._node_at))
            wait_s = 0.0 if batch.done else batch.next_wait()
            if batch.done:
                return batch
            time.sleep(wait_s)
            if batch.refresh:
                batch.refresh = False
                share = half_left()  # (a node that stalls must not take the deadline with it)
                with contextlib.suppress(*UNSETTLED), contextlib.nullcontext() if share is None else deadline(share):
                    self._redis.nodes_manager.initialize()  # (if no node answers yet, the next round finds out)

    def _node_pipelines(self, batch: ClusterBatch, rounds: list[tuple[Any, list[int], list[tuple[Any, ...]]]]) -> None:
        sent: list[tuple[Any, ...]] = []
        try:
            for node, positions, wire in rounds:
                client = self._redis.get_redis_connection(node)
                pool = client.connection_pool
                connection = None
                try:
                    with _replica_bound(node):
                        connection = pool.get_connection()
                        connection.send_packed_command(connection.pack_commands(wire))
                except RedisError as exc:  # refused, broken or past the deadline: none of it was read
                    if connection is not None:
                        connection.disconnect()
                        pool.release(connection)
                    batch.take(positions, wire, [exc] * len(wire))
                    continue
                sent.append((node, client, pool, connection, positions, wire))
            while sent:
                node, client, pool, connection, positions, wire = sent[0]
                replies: list[Any] = []
                try:
                    with _replica_bound(node):
                        for command in wire:
                            try:
                                replies.append(client.parse_response(connection, command[0]))
                            except ResponseError as exc:
                                replies.append(exc)
                except RedisError as exc:  # the connection broke: the rest of its replies are unknown
                    connection.disconnect()
                    replies += [exc] * (len(wire) - len(replies))
                sent.pop(0)
                pool.release(connection)
                batch.take(positions, wire, replies)
        finally:  # interrupted (KeyboardInterrupt, ...): replies may be due on the rest, drop them
            for _, _, pool, connection, _, _ in sent:
                connection.disconnect()
                pool.release(connection)

    def close(self) -> None:
        """Close the connections, and stop the embedded server if this store owns one. Later
        calls raise StoreClosed. Closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            self._redis.close()
            if self._owns_pool and not self._cluster:
                self._redis.connection_pool.disconnect()
                for sentinel in _sentinels_of(self._redis):
                    sentinel.close()
        finally:
            if self._server is not None:
                self._server.stop()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncFeatureStore(_Operations):
    """The asyncio client: the methods of :class:`FeatureStore`, each returning an awaitable."""

    _is_async = True

    def __init__(self, config: FeatureStoreConfig | None = None, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        # At most max_connections operations at once, each using one connection at a time, so the
        # pool never runs out; the others wait here, up to pool_timeout.
        self._slots = asyncio.Semaphore(self.config.max_connections)
        self._busy = 0

    @property
    def in_flight(self) -> int:
        """Operations running now, each holding at most one connection (<= max_connections)."""
        return self._busy

    async def _run(  # type: ignore[override]
        self, operation: str, steps: Operation, timeout: float | None = None, size: int = 1
    ) -> Any:
        self._check_open(operation, steps)
        if self._slots.locked():
            try:
                await asyncio.wait_for(self._slots.acquire(), self.config.pool_timeout)
            except asyncio.TimeoutError:
                steps.close()
                raise StoreUnavailable(
                    f"no free connection within pool_timeout={self.config.pool_timeout}s "
                    f"(max_connections={self.config.max_connections})"
                ) from None
        else:
            await self._slots.acquire()
        self._busy += 1
        try:
            return await self._drive(operation, steps, self._budget(operation, timeout, size))
        finally:
            self._busy -= 1
            self._slots.release()

    async def _drive(self, operation: str, steps: Operation, budget: float | None) -> Any:
        with self._observed(operation):
            try:
                request = next(steps)  # the deadline starts with the first request, as in the sync client
            except StopIteration as done:
                return done.value
            if budget is None:
                return await self._exchange(steps, request)
            return await self._bounded(operation, steps, request, budget)

    async def _bounded(self, operation: str, steps: Operation, request: Any, budget: float) -> Any:
        """:meth:`_exchange` within ``budget`` seconds; past them the operation is told
        StoreUnavailable where it waits (health_check reports it, the others raise it)."""
        try:
            # The deadline is also told to what retries within the operation (fsredis/routing.py),
            # so that it gives up in time and says what became of each command.
            with deadline(budget):
                async with _timeout(budget):
                    return await self._exchange(steps, request)
        except asyncio.TimeoutError:
            error = StoreUnavailable(f"no answer from Redis within the deadline of {budget:g} s ({operation})")
        try:
            steps.throw(error)
        except StopIteration as done:
            return done.value
        steps.close()  # it asked for more: give up
        raise error

    async def _exchange(self, steps: Operation, request: Any) -> Any:
        """Send the operation's requests and give it the replies; its result."""
        execute = self._execute
        try:
            while True:
                try:
                    if isinstance(request, list):
                        reply = await self._pipeline(request)
                    elif type(request) is Durable:
                        reply = await self._durable(request)
                    elif type(request) is KeyScan:
                        reply = []
                        async for key in self._redis.scan_iter(match=request.match, count=1000):
                            reply.append(key)
                            if len(reply) == request.limit:
                                break
                    else:
                        reply = await execute(*request)
                except UNSETTLED as exc:  # (a cluster without a node for the key raises no RedisError)
                    request = steps.throw(as_redis_error(exc))
                else:
                    request = steps.send(reply)
        except StopIteration as done:
            return done.value

    async def _routed(self, *command: Any) -> Any:  # type: ignore[override]
        if Transport.routing_key(command) is None:  # the library everywhere, a node's own answer
            if self._topology_due(command):
                with contextlib.suppress(*UNSETTLED):
                    await self._redis.nodes_manager.initialize()
            return await self._redis.execute_command(*command, target_nodes=self._target(command))
        reply = (await self._cluster_run([command])).replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _durable(self, request: Durable) -> tuple[list[Any], list[int]]:
        if self._cluster:  # (each round's WAIT is cut to the deadline left: fsredis/routing.py)
            batch = await self._cluster_run(request.wire, (request.replicas, request.timeout_ms))
            return batch.replies, batch.acks
        return _with_acks(await self._pipeline([*request.wire, ("WAIT", request.replicas, wait_ms(request.timeout_ms))]))

    async def _cluster_run(self, wire: list[tuple[Any, ...]], durable: tuple[int, int] | None = None) -> ClusterBatch:
        """As the sync client's: one pipeline per node (concurrently, a connection each), and
        what the cluster moved goes again until the deadline (fsredis/routing.py)."""
        batch = ClusterBatch(wire, durable, self._merger)
        while True:
            await asyncio.gather(*(self._node_pipeline(batch, *group) for group in batch.plan(self._target, self._node_at)))
            wait_s = 0.0 if batch.done else batch.next_wait()
            if batch.done:
                return batch
            await asyncio.sleep(wait_s)
            if batch.refresh:
                batch.refresh = False
                # (a node that stalls must not take the deadline with it; if no node answers yet,
                # the next round finds out)
                with contextlib.suppress(asyncio.TimeoutError, *UNSETTLED):
                    await asyncio.wait_for(self._redis.nodes_manager.initialize(), half_left())

    async def _node_pipeline(self, batch: ClusterBatch, node: Any, positions: list[int], wire: list[tuple[Any, ...]]) -> None:
        from redis.asyncio.cluster import PipelineCommand

        stack = [PipelineCommand(i, *command) for i, command in enumerate(wire)]
        share = replica_share(node)
        try:
            if share is None:
                await node.execute_pipeline(stack)
            else:
                await asyncio.wait_for(node.execute_pipeline(stack), share)
            replies = [command.result for command in stack]
        except asyncio.TimeoutError:
            replies = [redis.exceptions.TimeoutError(f"the replica did not answer within {share:.3f} s")] * len(wire)
        except RedisError as exc:  # refused or broken before its replies were read
            replies = [exc] * len(wire)
        batch.take(positions, wire, replies)

    async def _pipeline(self, wire: list[tuple[Any, ...]]) -> list[Any]:
        if self._cluster:
            return (await self._cluster_run(wire)).replies
        pipe = self._redis.pipeline(transaction=False)
        for command in wire:
            pipe.execute_command(*command)
        return await pipe.execute(raise_on_error=False)

    async def close(self) -> None:
        """Close the connections, and stop the embedded server if this store owns one. Later
        calls raise StoreClosed. Closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._cluster:
                await self._redis.aclose()
            else:
                await self._redis.aclose(close_connection_pool=self._owns_pool)
                if self._owns_pool:
                    for sentinel in _sentinels_of(self._redis):
                        await sentinel.aclose()
        finally:
            if self._server is not None:
                self._server.stop()

    async def __aenter__(self) -> AsyncFeatureStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
