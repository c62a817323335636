"""export_features in every format, against a real store."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fsredis import MissingDependency


@pytest.fixture
def filled(store):
    store.write_features("a", {"price": 1.5, "cat": "x", "vec": np.ones(4), "flag": True})
    store.write_features("b", {"price": 2, "vec": np.zeros(4)})
    return store


def test_pandas(filled) -> None:
    frame = filled.export_features(["a", "b", "c"], ["price", "cat", "vec"], format="pandas")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == ["a", "b", "c"] and frame.index.name == "entity_id"
    assert list(frame.columns) == ["price", "cat", "vec"]
    assert frame.loc["a", "price"] == 1.5 and frame.loc["b", "price"] == 2 and np.isnan(frame.loc["c", "price"])
    assert frame.loc["a", "cat"] == "x" and pd.isna(frame.loc["b", "cat"])
    np.testing.assert_array_equal(frame.loc["b", "vec"], np.zeros(4))


def test_arrow(filled) -> None:
    table = filled.export_features(["a", "b"], ["price", "vec", "flag"], format="arrow")
    assert isinstance(table, pa.Table)
    assert table.column_names == ["entity_id", "price", "vec", "flag"]
    assert table.schema.field("vec").type == pa.list_(pa.float32(), 4)
    assert table.column("price").to_pylist() == [1.5, 2.0]
    assert table.column("flag").to_pylist() == [True, None]


def test_numpy(filled) -> None:
    arrays = filled.export_features(["a", "b", "c"], ["price", "vec", "cat"], format="numpy")
    assert list(arrays["entity_id"]) == ["a", "b", "c"]
    assert arrays["price"].dtype == np.float64 and np.isnan(arrays["price"][2])
    assert arrays["vec"].shape == (3, 4) and arrays["vec"].dtype == np.float32
    assert np.isnan(arrays["vec"][2]).all()
    assert list(arrays["cat"]) == ["x", None, None]


def test_dict(filled) -> None:
    rows = filled.export_features(["a", "b"], ["price"], format="dict")
    assert rows == {"a": {"price": 1.5}, "b": {"price": 2}}


def test_unknown_format(filled) -> None:
    with pytest.raises(ValueError, match="format must be one of"):
        filled.export_features(["a"], ["price"], format="xlsx")


def test_missing_extra_is_a_clear_error(filled, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # what an install without the extra sees
    with pytest.raises(MissingDependency, match=r"pip install 'fsredis\[export\]'"):
        filled.export_features(["a"], ["price"], format="arrow")
