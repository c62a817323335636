"""Export read features as a DataFrame, an Arrow table, numpy arrays, or plain dicts.

``pandas`` and ``pyarrow`` come with the ``export`` extra (``pip install 'fsredis[export]'``).
Rows are entities (in the order asked), columns are features; a missing or expired feature is
a null (NaN in numeric numpy/pandas columns). Embedding columns hold one array per row; in numpy
and Arrow they are a 2-D float array / a fixed-size list when every row has the same dimension.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fsredis.lazy import numpy as np

from fsredis.errors import MissingDependency

Rows = Mapping[str, Mapping[str, Any]]
FORMATS = ("pandas", "arrow", "numpy", "dict")


def converter(format: str) -> Callable[[Rows, Sequence[str]], Any]:
    """The conversion for ``format``; raises ValueError or MissingDependency before any I/O."""
    if format == "pandas":
        _require("pandas")
        return to_pandas
    if format == "arrow":
        _require("pyarrow")
        return to_arrow
    if format == "numpy":
        return to_numpy
    if format == "dict":
        return lambda rows, names: {e: dict(found) for e, found in rows.items()}
    raise ValueError(f"format must be one of {FORMATS}, not {format!r}")


def _require(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(
            f"exporting as {module} needs the optional dependency {module}: pip install 'fsredis[export]'"
        ) from None


def _embedding_dim(column: list[Any]) -> int | None:
    """The common length when every present value is a 1-D array of it, else None."""
    present = [v for v in column if v is not None]
    if not present or not all(isinstance(v, np.ndarray) for v in present):
        return None
    dims = {v.shape[0] for v in present}
    return dims.pop() if len(dims) == 1 else None


def _numeric(column: list[Any]) -> bool:
    present = [v for v in column if v is not None]
    return bool(present) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)


def _objects(column: list[Any]) -> np.ndarray:
    # Item by item: a list of equal-length arrays would otherwise be broadcast into 2-D.
    array = np.empty(len(column), dtype=object)
    for i, value in enumerate(column):
        array[i] = value
    return array


def to_numpy(rows: Rows, names: Sequence[str]) -> dict[str, np.ndarray]:
    """``{"entity_id": ids, name: column, ...}``: numbers as float64 with NaN for missing,
    same-size embeddings as a 2-D float32 array with NaN rows, anything else as objects."""
    ids = list(rows)
    out: dict[str, np.ndarray] = {"entity_id": np.array(ids, dtype=object)}
    for name in names:
        column = [rows[e].get(name) for e in ids]
        dim = _embedding_dim(column)
        if dim is not None:
            stacked = np.full((len(ids), dim), np.nan, dtype=np.float32)
            for i, value in enumerate(column):
                if value is not None:
                    stacked[i] = value
            out[name] = stacked
        elif _numeric(column):
            out[name] = np.array([np.nan if v is None else v for v in column], dtype=np.float64)
        else:
            out[name] = _objects(column)
    return out


def to_pandas(rows: Rows, names: Sequence[str]) -> Any:
    """A DataFrame indexed by ``entity_id`` with one column per feature."""
    pd = _require("pandas")
    ids = list(rows)
    data = {}
    for name in names:
        column = [rows[e].get(name) for e in ids]
        data[name] = column if _numeric(column) else _objects(column)
    return pd.DataFrame(data, index=pd.Index(ids, name="entity_id"), columns=list(names))


def to_arrow(rows: Rows, names: Sequence[str]) -> Any:
    """A pyarrow Table: ``entity_id`` then one column per feature."""
    pa = _require("pyarrow")
    ids = list(rows)
    columns = {"entity_id": pa.array(ids, type=pa.string())}
    for name in names:
        column = [rows[e].get(name) for e in ids]
        dim = _embedding_dim(column)
        if dim is not None:
            value_type = pa.float16() if any(
                v is not None and v.dtype == np.float16 for v in column
            ) else pa.float32()
            columns[name] = pa.array(column, type=pa.list_(value_type, dim))
        elif any(isinstance(v, np.ndarray) for v in column):
            columns[name] = pa.array(column, type=pa.list_(pa.float32()))
        else:
            columns[name] = pa.array(column)
    return pa.table(columns)
