"""The change log: what a write appends to its slot's stream, and the rows the offline history
keeps of it.

With ``change_log`` on, every write (``fs_write``, ``fs_write_batch``, ``fs_rollback``) appends
one entry per entity to the stream ``<ns>:{<tag>}:log`` of the entity's slot, in the same Lua
call as the write itself: a version is in the log exactly when it is in the entity, whatever
crashes. ``fs_delete`` appends the features it deleted. Layout (docs/storage_format.md, "Change
log")::

    "#"   int48 server time ms | int48 event time ms
    "#k"  the entity key      "#w" the write id ('' for none)      "#m" the meta (msgpack map)
    <name>  a new version as a current value is stored: int48 expiry ms (0: never) | int48 event
            ms | int48 version | int48 record | encoded value;  or '' for a deleted feature

This module turns entries into :data:`SCHEMA` rows, one per version or deletion; it does no I/O.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fsredis import codec
from fsredis.commands import feature_lineage
from fsredis.errors import CorruptValue
from fsredis.keys import entity_of

SEQUENCE_SPAN = 1_000_000
"""``change`` = stream id ms * SEQUENCE_SPAN + seq: one int64 that orders an entity's changes."""

COLUMNS = (
    "entity", "kind", "version", "event_time", "ingested_at", "expires_at", "number", "value",
    "write_id", "lineage", "change",
)
VERSION, DELETE, CUT = "version", "delete", "cut"
"""Kinds of row: a version; a deletion of the feature (value, history, counter); and in a
snapshot (:mod:`fsredis.snapshot`), the newest event time of the versions Redis had trimmed."""


def schema() -> Any:
    """The pyarrow schema of a feature's offline history (the feature is the partition,
    ``feature=<name>``): one row per version, deletion or cut (``kind``)."""
    import pyarrow as pa

    stamp = pa.timestamp("ms", tz="UTC")
    return pa.schema([
        ("entity", pa.string()),          # the entity id, e.g. "product:123"
        ("kind", pa.string()),            # VERSION, DELETE or CUT
        ("version", pa.int64()),          # null but for a version
        ("event_time", stamp),            # when the value was true (a cut: the newest trimmed)
        ("ingested_at", stamp),           # the server's time of the write
        ("expires_at", stamp),            # null: never
        ("number", pa.float64()),         # the value when it is an int or float, else null
        ("value", pa.binary()),           # the encoded value (docs/storage_format.md, "Values")
        ("write_id", pa.string()),
        ("lineage", pa.string()),         # JSON: the write's meta with the feature's own entries
        ("change", pa.int64()),           # order of the entity's changes (see SEQUENCE_SPAN)
    ])


def _int48(raw: bytes, at: int) -> int:
    return int.from_bytes(raw[at : at + 6], "little", signed=True)


def change_of(entry_id: bytes | str) -> int:
    """The ``change`` number of a stream entry id ``<ms>-<seq>``."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    if int(seq) >= SEQUENCE_SPAN:
        raise ValueError(f"stream entry {text}: more than {SEQUENCE_SPAN} entries in one ms")
    return int(ms) * SEQUENCE_SPAN + int(seq)


def next_id(entry_id: bytes | str) -> str:
    """The smallest stream id after ``entry_id`` (for ``XTRIM MINID``)."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return f"{ms}-{int(seq) + 1}"


def _lineage(meta: Any, name: str) -> str | None:
    """The lineage of one feature's version as JSON (commands.feature_lineage), or None."""
    fields = feature_lineage(meta, name)
    return json.dumps(fields, default=_jsonable, sort_keys=True) if fields else None


class _Lineages:
    """:func:`_lineage` of one write's features, the shared part made once."""

    def __init__(self, meta: Any) -> None:
        self.meta = meta
        own = meta.get("features") if isinstance(meta, dict) else None
        self.own = own if isinstance(own, dict) else {}
        self.shared = _lineage(meta, "") if not self.own else None

    def of(self, name: str) -> str | None:
        if not self.own:
            return self.shared
        return _lineage(self.meta, name)


_FLOAT64 = struct.Struct(">d")


def _number(value: bytes) -> float | None:
    """An encoded value as float64 when it is an int or a float (the ``number`` column)."""
    if len(value) == 9 and value[0] == 0xCB:  # a msgpack float64, the common case
        return float(_FLOAT64.unpack_from(value, 1)[0])
    decoded = codec.decode_value(value)
    return float(decoded) if isinstance(decoded, (int, float)) and not isinstance(decoded, bool) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


class Rows:
    """Rows of the offline history, by feature, as columns (lists) ready for pyarrow."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.features: dict[str, list[tuple[Any, ...]]] = {}
        self.count = 0

    def add(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        """The rows of one stream entry, all or none: CorruptValue for one that is not a change-log
        entry (no header, no entity key of this namespace, a field that cannot be read)."""
        try:
            rows = list(self._rows(entry_id, fields))
        except CorruptValue:
            raise
        except Exception as error:  # whatever was written there (msgpack errors, a map nested too deep, ...)
            raise CorruptValue("-", "-", f"change-log entry {entry_id!r} cannot be read: "
                                         f"{type(error).__name__}: {error}", "log") from None
        for name, row in rows:
            self._append(name, row)

    def _rows(self, entry_id: bytes, fields: dict[bytes, bytes]) -> Iterator[tuple[str, tuple[Any, ...]]]:
        head, key = fields.get(b"#"), fields.get(b"#k", b"").decode("utf-8", "replace")
        entity = entity_of(key, self.namespace)
        if head is None or len(head) != 12 or entity is None:
            raise CorruptValue(key or "-", "-", f"change-log entry {entry_id!r} has no header or entity key", "log")
        now, event = _int48(head, 0), _int48(head, 6)
        write_id = fields.get(b"#w", b"").decode("utf-8", "replace") or None
        packed_meta = fields.get(b"#m", b"")
        meta = codec.unpack(packed_meta) if packed_meta not in (b"", b"\x80") else None
        change = change_of(entry_id)
        lineages = _Lineages(meta)
        for raw_name, stored in fields.items():
            if raw_name.startswith(b"#"):
                continue
            name = raw_name.decode()
            if stored:
                if len(stored) < 24:
                    raise CorruptValue(entity, name, f"change-log entry {entry_id!r}: a version of {len(stored)} bytes", "log")
                value = stored[24:]
                expires, at, version, _ = codec.read_head(stored)
                yield name, (entity, VERSION, version, at, now, expires or None, _number(value), value, write_id,
                             lineages.of(name), change)
            else:
                yield name, (entity, DELETE, None, event, now, None, None, None, None, None, change)

    def add_version(self, entity: str, name: str, raw: Sequence[Any], change: int) -> None:
        """The row of one version as ``fs_lineage`` returns it: (version, event ms, expiry ms,
        write time ms, write id, meta, value)."""
        version, event, expires, written, write_id, meta, value = raw
        unpacked = codec.unpack(meta) if meta not in (b"", b"\x80", None) else None
        row = (entity, VERSION, int(version), int(event), int(written), int(expires) or None, _number(value), value,
               write_id.decode("utf-8", "replace") if write_id else None, _lineage(unpacked, name), change)
        self._append(name, row)

    def add_cut(self, entity: str, name: str, cut: int, change: int) -> None:
        """A CUT row: Redis trimmed versions of the feature, the newest with event time ``cut`` ms
        (``change``: when this was seen, so that a later deletion erases it)."""
        self._append(name, (entity, CUT, None, cut, None, None, None, None, None, None, change))

    def _append(self, name: str, row: tuple[Any, ...]) -> None:
        rows = self.features.get(name)
        if rows is None:
            rows = self.features[name] = []
        rows.append(row)
        self.count += 1

    def tables(self) -> dict[str, Any]:
        """Feature name -> pyarrow Table of its rows (:func:`schema`)."""
        import pyarrow as pa

        out, shape = {}, schema()
        for name, rows in self.features.items():
            columns = zip(*rows)  # (rows of tuples to columns, in C)
            out[name] = pa.table({column: list(cells) for column, cells in zip(COLUMNS, columns)}, schema=shape)
        return out

    def write(self, root: Path, file_name: str) -> int:
        """Write each feature's rows to ``root/feature=<name>/<file_name>``, on disk (fsync) when
        this returns; the number of files."""
        import pyarrow.parquet as pq

        count = 0
        for name, table in self.tables().items():
            folder = root / f"feature={name}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / file_name
            pq.write_table(table, path, compression="zstd")
            fsync(path)
            fsync(folder)
            count += 1
        fsync(root)
        return count


def fsync(path: Path) -> None:
    """Flush a file or a directory to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
