"""Bulk loading: DataFrames, Arrow tables and Parquet or CSV files into the store (``fs.ingest``).

A load is read as Arrow record batches (``batch_rows`` rows at a time, so a file larger than
memory streams through), each column encoded at once where numpy can (floats, timestamps,
embeddings), then written by ``fs_write_batch``: 500 rows a call, several calls a round trip
(one call per slot on a cluster). Every row is one atomic, versioned write of its entity with
its own event time.

Re-running a load adds nothing twice. A load has an identity: its ``source`` name when given,
else a file's path, size and modification time (an in-memory object without a ``source`` has a
new one each call). Under that identity the store keeps a checkpoint, the number of rows done
(``<ns>:{ingest}:<digest>``, kept ``dedup_window``, 24 h by default); a run of the same load
starts after it. The rows of the round trip in flight when a run died are protected by their
write ids: a digest of the identity, the row's position and the row itself, which the Lua write
applies at most once within ``dedup_window``. Rows the registry refuses are collected (count,
examples, an optional NDJSON reject file) instead of stopping the load, unless
``on_error="raise"``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fsredis.lazy import numpy as np

from fsredis import codec, commands, limits
from fsredis.commands import Call, Operation, WriteResult
from fsredis.errors import FeatureStoreError, IngestError, MissingDependency, ValidationError

if TYPE_CHECKING:
    import pyarrow as pa

ROWS_PER_CALL = 500
"""Rows (entity writes) per fs_write_batch call."""
CALLS_PER_ROUND = 8
"""fs_write_batch calls sent together, before their replies are read."""
BATCH_ROWS = 20_000
"""Rows read and encoded at a time: what bounds a load's memory."""
EXAMPLES = 10
"""Refused rows quoted in a report."""
ROWS_PER_ENTITY = 200
"""Rows of one entity in one round trip at most: fewer than the 256 write ids an entity remembers,
so the round in flight when a run dies is covered by its write ids whatever the rows' order."""

Row = tuple[Any, str, "int | None", list[Any], int, str]
"""An encoded row: entity keys, write id, event time (ms, None: the server's), name/value pairs,
its number in the source (0-based) and its entity id."""


@dataclass(frozen=True)
class IngestProgress:
    """How far a load has come, given to ``progress`` after every round trip."""

    rows: int
    """Rows read so far."""
    total: int | None
    """Rows in the source, when known before reading it (Parquet: yes; CSV, iterables: no)."""
    written: int
    rejected: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass
class IngestReport:
    """What a load did."""

    source: str
    rows: int = 0
    """Rows read."""
    written: int = 0
    """Rows written (each one atomic write of its entity)."""
    features: int = 0
    """Feature values written."""
    history_only: int = 0
    """Feature values recorded in history only: older events than their entity's current value."""
    already_applied: int = 0
    """Rows whose write id had been applied before (a re-run): nothing written again."""
    empty: int = 0
    """Rows without any value (every feature null): nothing to write."""
    rejected: int = 0
    """Rows refused (a value, a registered rule, an entity id): nothing of them written."""
    examples: list[tuple[int, str, str]] = field(default_factory=list)
    """The first refused rows: (row number, entity id, why)."""
    reject_file: str | None = None
    resumed: int = 0
    """Rows an earlier run of the same load had done (its checkpoint): skipped."""
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def features_per_second(self) -> float:
        return self.features / self.seconds if self.seconds > 0 else 0.0


def _arrow() -> Any:
    try:
        import pyarrow
    except ImportError:  # pragma: no cover - the [ingest] extra brings it
        raise MissingDependency("ingest needs pyarrow: pip install 'fsredis[ingest]'") from None
    return pyarrow


def record_batches(data: Any, batch_rows: int) -> tuple[Iterator[pa.RecordBatch], int | None, str, str | None]:
    """The source as record batches of at most ``batch_rows`` rows, its row count when known, a
    name for it (a path, or the kind of object), and for files an identity that changes with their
    content (path, size, modification time of each file)."""
    pa = _arrow()
    if isinstance(data, (str, os.PathLike)):
        import pyarrow.dataset as ds

        path = os.fspath(data)
        name = os.path.basename(path.rstrip("/")).lower()
        kind = "csv" if name.endswith((".csv", ".csv.gz", ".tsv")) else "parquet"
        dataset = ds.dataset(path, format=kind)
        total = dataset.count_rows() if kind == "parquet" else None
        stats = [(f, os.stat(f)) for f in sorted(dataset.files)]
        identity = "\n".join(f"{os.path.abspath(f)}|{s.st_size}|{s.st_mtime_ns}" for f, s in stats)
        return iter(dataset.to_batches(batch_size=batch_rows)), total, os.path.abspath(path), identity
    if type(data).__module__.startswith("pandas") and hasattr(data, "to_records"):
        table = pa.Table.from_pandas(data, preserve_index=False)
        return iter(table.to_batches(batch_rows)), table.num_rows, "DataFrame", None
    if isinstance(data, pa.Table):
        return iter(data.to_batches(batch_rows)), data.num_rows, "Table", None
    if isinstance(data, pa.RecordBatch):
        return iter([data]), data.num_rows, "RecordBatch", None
    if isinstance(data, Iterable):
        def each() -> Iterator[pa.RecordBatch]:
            for part in data:
                if isinstance(part, pa.RecordBatch):
                    yield part
                else:
                    table = part if isinstance(part, pa.Table) else pa.Table.from_pandas(part, preserve_index=False)
                    yield from table.to_batches(batch_rows)

        return each(), None, "batches", None
    raise TypeError(
        "ingest takes a pandas DataFrame, a pyarrow Table or RecordBatch, an iterable of those, "
        f"or the path of a Parquet or CSV file (or a directory of them), not {type(data).__name__}"
    )


def _floats(name: str, column: pa.Array) -> list[Any]:
    """msgpack float64 of every cell, built by numpy (nulls: None; NaN or infinity: refused)."""
    values = column.to_numpy(zero_copy_only=False).astype(np.float64)
    packed = np.empty(len(values), dtype=[("tag", "u1"), ("value", ">f8")])
    packed["tag"] = 0xCB
    packed["value"] = values
    raw = packed.tobytes()
    out: list[Any] = [raw[i : i + 9] for i in range(0, len(raw), 9)]
    bad = ~np.isfinite(values)
    if bad.any():
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        for i in np.flatnonzero(bad):
            out[i] = ValidationError(name, "finite", f"{values[i]!r} is not stored; use null for missing") if valid[i] else None
    return out


def _timestamps_us(column: pa.Array) -> np.ndarray:
    """int64 microseconds since the epoch (a timestamp without a zone is taken as UTC)."""
    pa = _arrow()
    return column.cast(pa.timestamp("us", tz=column.type.tz)).to_numpy(zero_copy_only=False).astype("datetime64[us]").astype(np.int64)


def encode_column(name: str, column: pa.Array, embedding_dtype: str) -> list[Any]:
    """One column's cells as stored values (bytes), None where null (no value in that row), or
    the ValidationError that refuses the row. Floats, timestamps and embeddings (lists of floats)
    are encoded by numpy a column at a time; other kinds value by value (codec.encode_value)."""
    pa = _arrow()
    kind = column.type
    if pa.types.is_floating(kind):
        return _floats(name, column)
    if pa.types.is_timestamp(kind):
        micros = _timestamps_us(column)
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        return [codec.TIMESTAMP + int(m).to_bytes(8, "little", signed=True) if ok else None for m, ok in zip(micros, valid)]
    if (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)) and pa.types.is_floating(kind.value_type):
        out: list[Any] = []
        for cell in column:
            if not cell.is_valid:
                out.append(None)
                continue
            try:
                out.append(codec.encode_value(name, cell.values.to_numpy(zero_copy_only=False), embedding_dtype))
            except ValidationError as exc:
                out.append(exc)
        return out
    out = []
    encode = codec.encode_value
    for value in column.to_pylist():
        if value is None:
            out.append(None)
            continue
        try:
            out.append(encode(name, value, embedding_dtype))
        except ValidationError as exc:
            out.append(exc)
    return out


def _event_ms(name: str, column: pa.Array) -> list[Any]:
    """Each row's event time in ms: None where null (the server's time), a ValidationError that
    refuses the row where it is not finite or lies beyond LIMITS.time_ms of the epoch."""
    pa = _arrow()
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_timestamp(column.type):
        ms = (_timestamps_us(column) // 1000).astype(np.float64)
    elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        ms = np.round(column.to_numpy(zero_copy_only=False).astype(np.float64) * 1000)
    else:
        raise ValueError(f"event_time_column {name!r} holds {column.type}: timestamps or seconds since the epoch")
    good = np.isfinite(ms) & (np.abs(ms) <= limits.TIME_MS)
    bad = ValidationError(name, "event_time", f"event times are finite and within {limits.TIME_MS // 31_536_000_000} years of 1970")
    return [(int(m) if fine else bad) if ok else None for m, ok, fine in zip(ms, valid, good)]


def _rounds(rows: list[Row], step: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each round trip: ``step`` rows, fewer when an entity reaches
    ROWS_PER_ENTITY rows in it; one empty round when there are no rows (progress still moves)."""
    start, seen = 0, {}
    for i, row in enumerate(rows):
        count = seen.get(row[5], 0) + 1
        if i - start == step or count > ROWS_PER_ENTITY:
            yield start, i
            start, seen, count = i, {}, 1
        seen[row[5]] = count
    yield start, len(rows)


@dataclass
class _Load:
    """The state of one load while it runs."""

    report: IngestReport
    on_error: str
    reject: Any = None
    started: float = field(default_factory=time.perf_counter)

    def refuse(self, row: int, entity: str, why: str) -> None:
        report = self.report
        report.rejected += 1
        if len(report.examples) < EXAMPLES:
            report.examples.append((row, entity, why))
        if self.reject is not None:
            self.reject.write(json.dumps({"row": row, "entity_id": entity, "error": why}) + "\n")
        if self.on_error == "raise":
            raise IngestError(f"row {row} ({entity}) was refused: {why}", report)


class IngestOperations:
    """``ingest`` and ``write_rows``, mixed into the stores (fsredis/client.py)."""

    if TYPE_CHECKING:
        config: Any
        _policy: commands.Policy
        _cluster: bool

        def _run(self, operation: str, steps: Operation, timeout: float | None = None, size: int = 1) -> Any: ...

        def _send_many(self, calls: list[Call], replicas: int = 0) -> Operation: ...

        def _plain(self, request: Any) -> Operation: ...

        def _keys(self, entity_id: str) -> Any: ...

    def ingest(
        self,
        data: Any,
        *,
        entity_column: str,
        entity_type: str | None = None,
        event_time_column: str | None = None,
        features: Sequence[str] | None = None,
        source: str | None = None,
        ttl: Any = None,
        on_error: str = "collect",
        reject_file: str | os.PathLike[str] | None = None,
        progress: Callable[[IngestProgress], None] | None = None,
        dedup_window: float = 86_400.0,
        batch_rows: int = BATCH_ROWS,
    ) -> Any:
        """Load rows of features: a pandas DataFrame, a pyarrow Table or RecordBatch, an iterable
        of those, or the path of a Parquet file, CSV file or directory of them.

        Each row is one atomic, versioned write of the entity in ``entity_column`` (prefixed
        ``<entity_type>:`` when given) with the values of ``features`` (default: every other
        column but ``event_time_column``); a null cell writes nothing for that feature. Lists of
        floats are embeddings; timestamps without a zone are taken as UTC. ``event_time_column``
        (timestamps, or seconds since the epoch) gives each row's event time (default: the
        server's). ``source`` (default: the path, or the kind of object) is recorded as lineage
        and names the load in its write ids, so running the same load again (after a crash,
        within ``dedup_window`` seconds) adds no version twice. Refused rows are counted and
        quoted in the report, and written to ``reject_file`` (NDJSON) when given; with
        ``on_error="raise"`` the first one raises IngestError. ``progress(IngestProgress)`` is
        called after every round trip. Returns an :class:`IngestReport`.
        """
        if on_error not in ("collect", "raise"):
            raise ValueError(f"on_error is 'collect' or 'raise', not {on_error!r}")
        if not isinstance(batch_rows, int) or batch_rows < 1:
            raise ValueError("batch_rows is an integer >= 1")
        return self._run("ingest", self._ingest(
            data, entity_column, entity_type, event_time_column, features, source, ttl, on_error,
            reject_file, progress, dedup_window, batch_rows,
        ))

    def _ingest(  # type: ignore[no-untyped-def]
        self, data, entity_column, entity_type, event_time_column, features, source, ttl, on_error,
        reject_file, progress, dedup_window, batch_rows,
    ) -> Operation:
        batches, total, name, identity = record_batches(data, batch_rows)
        label = source if source is not None else name
        identity = source if source is not None else identity
        policy = dataclasses.replace(self._policy, dedup_window_ms=round(dedup_window * 1000))
        meta = commands.pack_meta(label, None)
        ttl_option = commands.batch_ttl(ttl)
        load = _Load(IngestReport(source=label, reject_file=os.fspath(reject_file) if reject_file else None), on_error)
        report = load.report
        # Under a stable identity the rows done are checkpointed; else ids are unique to this call.
        tag = (identity or os.urandom(16).hex()).encode()
        checkpoint = None
        if identity is not None:
            checkpoint = f"{self.config.namespace}:{{ingest}}:{hashlib.blake2b(tag, digest_size=12).hexdigest()}"
            report.resumed = int((yield from self._plain(("HGET", checkpoint, "rows"))) or 0)
        step = ROWS_PER_CALL * CALLS_PER_ROUND
        if reject_file is not None:
            load.reject = open(reject_file, "w", encoding="utf-8")
        try:
            for batch in batches:
                first = report.rows
                report.rows += batch.num_rows
                if report.rows <= report.resumed:
                    continue
                if first < report.resumed:  # the checkpoint falls inside this batch
                    batch, first = batch.slice(report.resumed - first), report.resumed
                rows = self._encode_batch(batch, first, entity_column, entity_type, event_time_column, features, tag, load)
                for start, end in _rounds(rows, step):
                    yield from self._write_round(rows[start:end], policy, ttl_option, meta, load)
                    done = rows[end][4] if end < len(rows) else report.rows
                    if checkpoint is not None:
                        yield from self._plain([("HSET", checkpoint, "rows", done, "source", label),
                                                ("PEXPIRE", checkpoint, policy.dedup_window_ms or 1)])
                    if progress is not None:
                        progress(IngestProgress(done, total, report.written, report.rejected, time.perf_counter() - load.started))
        finally:
            if load.reject is not None:
                load.reject.close()
            report.seconds = time.perf_counter() - load.started
        return report

    def _encode_batch(  # type: ignore[no-untyped-def]
        self, batch, first, entity_column, entity_type, event_time_column, features, tag, load
    ) -> list[Row]:
        """The rows of one record batch, encoded; ``first`` is the number of its first row in
        the source. Rows refused here (a value, an entity id, an event time) are reported."""
        schema_names = batch.schema.names
        if entity_column not in schema_names:
            raise ValueError(f"entity_column {entity_column!r} is not a column of the source ({schema_names})")
        if event_time_column is not None and event_time_column not in schema_names:
            raise ValueError(f"event_time_column {event_time_column!r} is not a column of the source")
        names = list(features) if features is not None else [
            n for n in schema_names if n not in (entity_column, event_time_column)
        ]
        missing = [n for n in names if n not in schema_names]
        if missing:
            raise ValueError(f"features {missing} are not columns of the source")
        dtype = self._policy.embedding_dtype
        columns = [encode_column(n, batch.column(n), dtype) for n in names]
        events = _event_ms(event_time_column, batch.column(event_time_column)) if event_time_column else [None] * batch.num_rows
        prefix = f"{entity_type}:" if entity_type else ""
        rows: list[Row] = []
        for i, (ident, event) in enumerate(zip(batch.column(entity_column).to_pylist(), events)):
            number = first + i
            entity = f"{prefix}{ident}"
            pairs: list[Any] = []
            why = str(event) if type(event) is ValidationError else None
            if ident is None:
                why = str(ValidationError(entity_column, "entity_id", "the entity id is null"))
            for name, cells in zip(names, columns):
                cell = cells[i]
                if cell is None:
                    continue
                if type(cell) is ValidationError:
                    why = why or str(cell)
                    break
                pairs += (name, cell)
            if why is None:
                try:
                    keys = self._keys(entity)
                except ValidationError as exc:
                    why = str(exc)
            if why is not None:
                load.refuse(number, entity, why)
                continue
            if not pairs:
                load.report.empty += 1
                continue
            # The write id: the load's identity, the row's position, the row itself.
            digest = hashlib.blake2b(tag, digest_size=16)
            digest.update(b"\0%d\0%s\0%d" % (number, entity.encode(), -2**63 if event is None else event))
            for k in range(0, len(pairs), 2):
                value = pairs[k + 1]
                digest.update(b"\0%s\0%d\0" % (pairs[k].encode(), len(value)))
                digest.update(value)
            rows.append((keys, digest.hexdigest(), event, pairs, number, entity))
        return rows

    def _send_rows(self, rows: Sequence[Any], entity_ids: Sequence[str], policy: commands.Policy, ttl: Any,
                   meta: bytes, replicas: int | None = None) -> Operation:
        """Write rows encoded by commands.write_row (keys, write id, event ms, pairs, ...) with
        fs_write_batch: a call per 500 rows (per slot on a cluster), all in one round trip. Returns
        one WriteResult, or the FeatureStoreError that refused it, per row; and the errors that
        refused whole calls (connection, deadline, malformed: their rows carry them too)."""
        groups = commands.batch_groups(range(len(rows)), [row[0] for row in rows], self._cluster)
        calls = [commands.write_batch([rows[i][:4] for i in positions], policy, ttl=ttl, meta=meta) for positions, _ in groups]
        outcomes: list[Any] = [None] * len(rows)
        whole: list[FeatureStoreError] = []
        replicas = self.config.min_replicas if replicas is None else replicas
        for (positions, _), reply in zip(groups, (yield from self._send_many(calls, replicas))):
            if isinstance(reply, FeatureStoreError):
                whole.append(reply)
                for i in positions:
                    outcomes[i] = reply
                continue
            names, entities = [rows[i][3][::2] for i in positions], [entity_ids[i] for i in positions]
            for i, outcome in zip(positions, commands.decode_write_batch(names, reply, entities)):
                outcomes[i] = outcome
        return outcomes, whole

    def _write_round(self, rows: list[Row], policy: commands.Policy, ttl: Any, meta: bytes, load: _Load) -> Operation:
        """Write up to CALLS_PER_ROUND calls of rows in one round trip; count what each did."""
        outcomes, whole = yield from self._send_rows(rows, [row[5] for row in rows], policy, ttl, meta)
        if whole:
            raise whole[0]  # a whole call was refused or failed: the load stops there
        report = load.report
        for row, outcome in zip(rows, outcomes):
            if isinstance(outcome, WriteResult):
                if outcome.applied:
                    report.written += 1
                    report.features += len(outcome.versions)
                    report.history_only += len(outcome.history_only)
                else:
                    report.already_applied += 1
            else:
                load.refuse(row[4], row[5], str(outcome))

    def write_rows(
        self, rows: Iterable[Mapping[str, Any]], *, source: str | None = None, ttl: Any = None,
    ) -> Any:
        """Write rows ``{"entity_id", "features", "event_time"?, "write_id"?}`` in few round trips:
        each row one atomic, versioned write (an entity may come more than once: its rows apply in
        order). Returns one WriteResult, or the FeatureStoreError that refused it, per row."""
        rows = list(rows)
        return self._run("write_rows", self._write_rows(rows, source, ttl), None, len(rows))

    def _write_rows(self, rows: list[Mapping[str, Any]], source: str | None, ttl: Any) -> Operation:
        encoded: list[Any] = []
        for row in rows:
            try:
                encoded.append(commands.write_row(
                    self._keys(row["entity_id"]), row["features"], self._policy,
                    write_id=row.get("write_id") or commands.new_write_id(), event_time=row.get("event_time"),
                ))
            except ValidationError as exc:
                encoded.append(exc)
        good = [i for i, row in enumerate(encoded) if not isinstance(row, FeatureStoreError)]
        out: list[Any] = list(encoded)
        outcomes, _ = yield from self._send_rows(
            [encoded[i] for i in good], [rows[i]["entity_id"] for i in good], self._policy,
            commands.batch_ttl(ttl), commands.pack_meta(source, None),
        )
        for i, outcome in zip(good, outcomes):
            out[i] = outcome
        return out
