"""Training sets from the offline history: a point-in-time join of labelled rows with the Parquet
files ``fsredis drain`` writes (:mod:`fsredis.drain`), run by DuckDB's ``ASOF JOIN``; Redis is
not involved.

The answer is the one an as-of read gives (:mod:`fsredis.history`), over every version the
history holds: per row and feature, the version with the newest event time at or before the
row's time (ties: the higher version), none when that version had expired by then. A deletion
erases what came before it, as it does online. A drained history keeps every version since the
change log was turned on, so nothing is beyond retention there; a snapshot (``export_history``)
keeps what Redis kept, and says *beyond retention* where Redis would.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fsredis.lazy import numpy as np

from fsredis import codec, export, training
from fsredis.errors import MissingDependency

_SHIFT = 1 << 48
"""Versions are below 2^47: (event ms, version) orders as event ms * 2^48 + version."""

# One feature: its versions not erased by a later deletion of the entity's feature, keyed by
# (event, version) so that the ASOF JOIN's "greatest key <= the row's" breaks ties by version;
# and per entity the newest event time trimmed before a snapshot (kind 'cut') not erased since.
# {versions} is h itself, or with a snapshot among the files, h without the versions the log
# holds too (the same entity, version and write id).
_QUERY = """
WITH h AS (
  SELECT entity, kind, epoch_ms(event_time) AS e, version, epoch_ms(expires_at) AS x, number, value, change, write_id
  FROM read_parquet(?, union_by_name = true)
), d AS (
  SELECT entity, max(change) AS erased FROM h WHERE kind = 'delete' GROUP BY entity
), c AS (
  SELECT h.entity, max(h.e) AS cut FROM h LEFT JOIN d ON h.entity = d.entity
  WHERE h.kind = 'cut' AND (d.erased IS NULL OR h.change > d.erased) GROUP BY h.entity
), v AS (
  SELECT h.entity, h.e::HUGEINT * {shift} + h.version AS k, h.e, h.x, h.number, h.value
  FROM {versions} h LEFT JOIN d ON h.entity = d.entity
  WHERE h.kind = 'version' AND (d.erased IS NULL OR h.change > d.erased)
), j AS (
  SELECT l.rid, l.t, v.e, v.x, v.number, v.value, c.cut,
         c.cut IS NOT NULL AND (v.e IS NULL OR v.e < c.cut) AS beyond
  FROM labels l ASOF LEFT JOIN v ON l.entity = v.entity AND l.t::HUGEINT * {shift} + {last} >= v.k
  LEFT JOIN c ON l.entity = c.entity
)
SELECT rid, beyond,
       CASE WHEN NOT beyond AND (x IS NULL OR x > t) THEN number END AS number,
       CASE WHEN NOT beyond AND (x IS NULL OR x > t) THEN value END AS value
FROM j
"""
_ONCE = ("(SELECT * FROM h QUALIFY kind <> 'version' "
         "OR row_number() OVER (PARTITION BY entity, version, write_id ORDER BY change) = 1)")


def duckdb() -> Any:
    try:
        import duckdb as module
    except ImportError:
        raise MissingDependency("joins over the offline history need DuckDB: pip install 'fsredis[offline]'") from None
    return module


def feature_files(source: str | os.PathLike[str], name: str) -> list[str]:
    """The Parquet files of ``name`` in an offline history directory."""
    return sorted(str(path) for path in (Path(source) / f"feature={name}").glob("*.parquet"))


def get_historical_features(
    source: str | os.PathLike[str], entity_df: Any, features: Sequence[str], *,
    timestamp_column: str = "event_timestamp", entity_column: str = "entity_id", mask: bool = False,
    format: str = "pandas", threads: int | None = None,
) -> Any:
    """The training set of ``entity_df`` from the offline history in ``source`` (a directory
    ``fsredis drain`` writes), shaped as the online :meth:`FeatureStore.get_historical_features`
    shapes it. ``threads``: DuckDB's worker threads (default: one per core)."""
    if not Path(source).is_dir():
        raise FileNotFoundError(f"no offline history at {source}")
    pa = export._require("pyarrow")
    frame, names, times, ids = training.labels(entity_df, features, timestamp_column, entity_column)
    rows = len(ids)
    connection = duckdb().connect(config={"threads": threads} if threads else {})
    try:
        connection.register("labels", pa.table({"rid": np.arange(rows, dtype=np.int64), "entity": ids, "t": times}))
        columns, beyond = {}, {}
        for name in names:
            columns[name], beyond[name] = _column(connection, feature_files(source, name), rows)
    finally:
        connection.close()
    return training.assemble(frame, columns, beyond, mask, format)


def _column(connection: Any, files: list[str], rows: int) -> tuple[np.ndarray, np.ndarray]:
    """One feature's answers, row by row: float64 (NaN: none) when every answer is a number,
    else objects (None: none); and where they are beyond retention."""
    beyond = np.zeros(rows, dtype=bool)
    if not files:
        return np.full(rows, None, dtype=object), beyond
    snapshot = any(Path(f).name.startswith("snapshot-") for f in files)
    query = _QUERY.format(shift=_SHIFT, last=_SHIFT - 1, versions=_ONCE if snapshot else "h")
    relation = connection.sql(query, params=[files])
    table = relation.to_arrow_table() if hasattr(relation, "to_arrow_table") else relation.arrow()
    rid = table.column("rid").to_numpy()
    beyond[rid] = table.column("beyond").to_numpy(zero_copy_only=False)
    values = table.column("value")
    present = values.is_valid().to_numpy(zero_copy_only=False)
    numbers = table.column("number")
    if present.any() and numbers.null_count == values.null_count:
        out = np.full(rows, np.nan)
        out[rid] = numbers.to_numpy(zero_copy_only=False)
        return out, beyond
    out = np.full(rows, None, dtype=object)
    for at, raw in zip(rid[present], values.filter(values.is_valid()).to_pylist()):
        out[at] = codec.decode_value(raw)
    return out, beyond


def fill_beyond_retention(
    result: Any, features: Sequence[str], source: str | os.PathLike[str], *, timestamp_column: str,
    entity_column: str, mask: bool, format: str,
) -> Any:
    """An online training set (a DataFrame with ``<feature>__beyond_retention`` columns) with the
    cells beyond online retention answered from the offline history in ``source``, where that
    history can tell (else they stay empty and marked); shaped as ``mask`` and ``format`` ask."""
    names = list(features)
    marks = [f"{name}__beyond_retention" for name in names]
    rows = np.flatnonzero(result[marks].to_numpy().any(axis=1)) if len(result) else np.array([], dtype=np.int64)
    columns = {name: result[name].to_numpy(copy=True) for name in names}
    beyond = {name: result[mark].to_numpy(copy=True) for name, mark in zip(names, marks)}
    if len(rows):
        asked = result.iloc[rows][[entity_column, timestamp_column]]
        found = get_historical_features(source, asked, names, timestamp_column=timestamp_column,
                                        entity_column=entity_column, mask=True)
        for name in names:
            fill = beyond[name][rows] & ~found[f"{name}__beyond_retention"].to_numpy()
            if not fill.any():
                continue
            values = found[name].to_numpy()[fill]
            column = columns[name].astype(object)
            column[rows[fill]] = [None if isinstance(v, float) and np.isnan(v) else v for v in values]
            columns[name] = column.astype(np.float64) if export._numeric(list(column)) else column
            beyond[name][rows[fill]] = False
    frame = result.drop(columns=[*names, *marks])
    return training.assemble(frame, columns, beyond, mask, format)
