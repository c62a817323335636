"""Training sets: a point-in-time join of labelled rows with the history each entity keeps.

For each row ``(entity, timestamp)`` of the caller's frame, each feature's value is the one an
as-of read at that timestamp gives (:mod:`fsredis.history`): the version with the newest event
time at or before it, absent when it had expired by then, and *beyond retention* — never another
version — when ``max_versions`` trimmed a version that could be the answer. The store sends each
distinct entity's kept history once (``fs_get_history``, 500 entities a call, per hash slot on a
cluster); the rows of a reply's entities are then answered together, one ``numpy.searchsorted``
per feature (:class:`fsredis.history.Histories`). Entities are taken in chunks, so memory holds
the frame, the result and one chunk of histories.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from fsredis.lazy import numpy as np

from fsredis import commands, export
from fsredis.errors import ValidationError
from fsredis.history import Histories

CHUNK_ENTITIES = 2_000
"""Distinct entities whose histories are read before their rows are answered."""

Progress = Callable[[int, int], None]
"""progress(rows answered so far, rows in all)."""


def timestamps_ms(column: Any, name: str) -> np.ndarray:
    """int64 ms since the epoch of a pandas column of timezone-aware datetimes or of seconds
    since the epoch. Naive datetimes are refused, as for ``as_of``: whose clock they mean cannot
    be known; so are missing times."""
    pd = export._require("pandas")
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        if getattr(column.dtype, "tz", None) is None:
            raise ValidationError(name, "as_of", "timestamps must be timezone-aware (e.g. tz_localize('UTC'))")
        if column.isna().any():
            raise ValidationError(name, "as_of", "a row has no timestamp")
        return ((column - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(dtype=np.int64)
    if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
        seconds = column.to_numpy(dtype=np.float64)
        if not np.isfinite(seconds).all():
            raise ValidationError(name, "as_of", "a row's timestamp is missing or not finite")
        return np.round(seconds * 1000).astype(np.int64)
    raise ValidationError(name, "as_of", f"timestamps are timezone-aware datetimes or seconds since the epoch, not {column.dtype}")


class Labels(NamedTuple):
    """The caller's labelled rows, checked: the frame, the feature names, each row's time (ms)
    and entity id."""

    frame: Any
    names: list[str]
    times: np.ndarray
    ids: np.ndarray


def labels(frame: Any, features: Sequence[str], timestamp_column: str, entity_column: str) -> Labels:
    """Check the inputs of a point-in-time join (a pandas DataFrame or a pyarrow Table)."""
    pd = export._require("pandas")
    if hasattr(frame, "to_pandas") and not isinstance(frame, pd.DataFrame):  # a pyarrow Table
        frame = frame.to_pandas()
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"entity_df is a pandas DataFrame or a pyarrow Table, not {type(frame).__name__}")
    for column in (entity_column, timestamp_column):
        if column not in frame.columns:
            raise ValueError(f"entity_df has no column {column!r} (columns: {list(frame.columns)})")
    names = commands.check_names(list(features))
    clash = [name for name in names if name in frame.columns]
    if clash:
        raise ValueError(f"entity_df already has columns named like features: {clash}")
    times = timestamps_ms(frame[timestamp_column], timestamp_column)
    return Labels(frame, names, times, frame[entity_column].astype(str).to_numpy())


class Join:
    """One point-in-time join: the frame's rows grouped by entity, the answers as they come."""

    def __init__(self, frame: Any, features: Sequence[str], timestamp_column: str, entity_column: str) -> None:
        pd = export._require("pandas")
        self.frame, self.names, self.times, ids = labels(frame, features, timestamp_column, entity_column)
        self.rows = {entity: positions for entity, positions in pd.Series(np.arange(len(ids))).groupby(ids).indices.items()}
        self.total, self.done = len(ids), 0
        self.columns = {name: np.full(len(ids), None, dtype=object) for name in self.names}
        self.beyond = {name: np.zeros(len(ids), dtype=bool) for name in self.names}

    def chunks(self, size: int = CHUNK_ENTITIES) -> Iterator[list[str]]:
        """The distinct entities, ``size`` at a time."""
        entities = list(self.rows)
        for start in range(0, len(entities), size):
            yield entities[start : start + size]

    def answer(self, entities: Sequence[str], histories: dict[str, Histories]) -> None:
        """Fill the rows of ``entities`` from their histories (:func:`history.decode_histories`)."""
        groups = [self.rows[entity] for entity in entities]
        positions = np.concatenate(groups)
        owner = np.repeat(np.arange(len(groups), dtype=np.int64), [len(group) for group in groups])
        times = self.times[positions]
        for name in self.names:
            picked, beyond = histories[name].at(owner, times)
            live = picked >= 0
            if live.any():
                self.columns[name][positions[live]] = histories[name].values[picked[live]]
            if beyond.any():
                self.beyond[name][positions[beyond]] = True
        self.done += len(positions)

    def result(self, mask: bool, format: str = "pandas") -> Any:
        """The frame with the answers (:func:`assemble`)."""
        columns = {}
        for name in self.names:
            column = self.columns[name]
            columns[name] = column.astype(np.float64) if export._numeric(list(column)) else column
        return assemble(self.frame, columns, self.beyond, mask, format)


def assemble(frame: Any, columns: dict[str, np.ndarray], beyond: dict[str, np.ndarray], mask: bool,
             format: str = "pandas") -> Any:
    """``frame`` with one column per feature (numbers as float64 with NaN for missing, other
    values as objects with None); ``attrs["beyond_retention"]`` counts per feature the rows left
    empty for that reason, and with ``mask`` a boolean column ``<feature>__beyond_retention``
    marks them. ``format="arrow"``: the same as a pyarrow Table (the counts in its schema
    metadata, ``b"fsredis.beyond_retention"``, as JSON)."""
    pd = export._require("pandas")
    out = frame.copy()
    for name, column in columns.items():
        out[name] = pd.Series(column, index=out.index, dtype=column.dtype)
        if mask:
            out[f"{name}__beyond_retention"] = beyond[name]
    out.attrs["beyond_retention"] = {name: int(beyond[name].sum()) for name in columns}
    if format == "pandas":
        return out
    pa = export._require("pyarrow")
    table = pa.Table.from_pandas(out, preserve_index=False)
    meta = {**(table.schema.metadata or {}), b"fsredis.beyond_retention": json.dumps(out.attrs["beyond_retention"]).encode()}
    return table.replace_schema_metadata(meta)
