"""Bad input of every kind: a typed error naming the feature and the rule, and nothing written."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import numpy as np
import pytest

from fsredis import FeatureStoreConfig, ValidationError
from tests.conftest import entity_keys_in

BAD_VALUES = [
    ("nan", float("nan"), "finite"),
    ("inf", float("inf"), "finite"),
    ("neg_inf", -float("inf"), "finite"),
    ("np_nan", np.float64("nan"), "finite"),
    ("bytes", b"raw", "type"),
    ("dict", {"a": 1}, "type"),
    ("set", {1, 2}, "type"),
    ("decimal", Decimal("1.5"), "type"),
    ("object", object(), "type"),
    ("nested_list", [[1, 2]], "type"),
    ("list_with_nan", [1.0, float("nan")], "finite"),
    ("naive_datetime", datetime(2026, 1, 1), "timezone"),
    ("nat", np.datetime64("NaT"), "finite"),
    ("huge_int", 2**64, "range"),
    ("surrogate", "\udc80", "encoding"),
    ("int_embedding", np.arange(4), "dtype"),
    ("bool_embedding", np.ones(4, dtype=bool), "dtype"),
    ("complex_embedding", np.ones(4, dtype=np.complex64), "dtype"),
    ("object_embedding", np.array(["a", "b"], dtype=object), "dtype"),
    ("matrix_embedding", np.ones((2, 3)), "shape"),
    ("empty_embedding", np.ones(0), "shape"),
    ("nan_embedding", np.array([1.0, np.nan]), "finite"),
    ("overflowing_embedding", np.array([1e300]), "finite"),
]


@pytest.mark.parametrize("name,value,rule", BAD_VALUES, ids=[case[0] for case in BAD_VALUES])
def test_bad_values_are_refused_whole(store, server, config, name, value, rule) -> None:
    with pytest.raises(ValidationError) as caught:
        store.write_features("e1", {"good": 1, name: value})
    assert caught.value.feature == name
    assert caught.value.rule == rule
    assert name in str(caught.value) and rule in str(caught.value)
    assert entity_keys_in(server, config.namespace) == []


BAD_NAMES = [
    ("", "name"),
    ("has space", "name"),
    ("1starts_with_digit", "name"),
    ("hash#sign", "name"),
    ("brace{", "name"),
    ("x" * 129, "name"),
    ("ünïcode", "name"),
]


@pytest.mark.parametrize("name,rule", BAD_NAMES, ids=["empty", "space", "digit", "hash", "brace", "long", "unicode"])
def test_bad_feature_names_are_refused_by_the_server(store, server, config, name, rule) -> None:
    store.write_features("e1", {"good": 1})
    with pytest.raises(ValidationError) as caught:
        store.write_features("e1", {"good": 2, name: 1})
    assert (caught.value.feature, caught.value.rule) == (name, rule)
    assert store.get_features("e1") == {"good": 1}


def test_longest_name_is_accepted(store) -> None:
    store.write_features("e1", {"x" * 128: 1, "a.b-c_d": 2})
    assert store.get_features("e1", ["x" * 128, "a.b-c_d"]) == {"x" * 128: 1, "a.b-c_d": 2}


def test_non_string_feature_name(store, server, config) -> None:
    with pytest.raises(ValidationError) as caught:
        store.write_features("e1", {"a": 1, 7: 2})
    assert caught.value.rule == "name"
    assert entity_keys_in(server, config.namespace) == []


BAD_IDS = [
    (123, "int"),
    (None, "none"),
    (b"bytes", "bytes"),
    ("", "empty"),
    ("has space", "space"),
    ("tab\there", "tab"),
    ("a{b", "open-brace"),
    ("a}b", "close-brace"),
    ("a:b:c", "two-colons"),
    ("9user:1", "type-starts-with-digit"),
    (":1", "empty-type"),
    ("user:", "empty-id"),
    ("us er:1", "space-in-type"),
    ("x" * 257, "long"),
    ("nul\x00", "control"),
]


@pytest.mark.parametrize("entity_id", [case[0] for case in BAD_IDS], ids=[case[1] for case in BAD_IDS])
def test_bad_entity_ids(store, server, config, entity_id) -> None:
    with pytest.raises(ValidationError) as caught:
        store.write_features(entity_id, {"a": 1})
    assert caught.value.rule == "entity_id"
    with pytest.raises(ValidationError):
        store.get_features(entity_id, ["a"])
    with pytest.raises(ValidationError):
        store.get_features_batch(["ok", entity_id], ["a"])
    assert entity_keys_in(server, config.namespace) == []


def test_unicode_entity_ids_are_fine(store) -> None:
    store.write_features("café-☕-1", {"a": 1})
    assert store.get_features("café-☕-1", ["a"]) == {"a": 1}


def test_oversized_value(open_store, server, namespace, transport) -> None:
    store = open_store(FeatureStoreConfig(redis_url=server.url, namespace=namespace, transport=transport,
                                          max_value_bytes=1000))
    store.write_features("e1", {"fits": "x" * 900})
    with pytest.raises(ValidationError) as caught:
        store.write_features("e1", {"other": 1, "blob": "x" * 1001})
    assert (caught.value.feature, caught.value.rule) == ("blob", "size")
    with pytest.raises(ValidationError) as caught:
        store.write_features("e1", {"vec": np.ones(251, dtype=np.float32)})
    assert caught.value.rule == "size"
    assert store.get_features("e1") == {"fits": "x" * 900}


@pytest.mark.parametrize("ttl", [0, -5, float("nan"), "60", True, {"a": 0}], ids=repr)
def test_bad_ttls(store, server, config, ttl) -> None:
    with pytest.raises(ValidationError) as caught:
        store.write_features("e1", {"a": 1}, ttl=ttl)
    assert caught.value.rule == "ttl"
    assert entity_keys_in(server, config.namespace) == []


@pytest.mark.parametrize("features", [{}, [("a", 1)], None], ids=["empty", "list", "none"])
def test_features_must_be_a_non_empty_mapping(store, features) -> None:
    with pytest.raises(ValidationError):
        store.write_features("e1", features)


def test_lineage_and_rollback_need_string_names(store) -> None:
    with pytest.raises(ValidationError) as caught:
        store.get_feature_lineage("e1", 5)
    assert caught.value.rule == "name"
    with pytest.raises(ValidationError):
        store.rollback_feature("e1", None, 1)


def test_feature_names_must_be_a_list(store) -> None:
    with pytest.raises(ValidationError):
        store.get_features("e1", "price")
    with pytest.raises(ValidationError):
        store.get_features_batch("e1", ["price"])


def test_bad_lineage_fields(store, server, config) -> None:
    with pytest.raises(ValidationError) as caught:
        store.write_features("e1", {"a": 1}, lineage={"inputs": {"nested": "dict"}})
    assert caught.value.feature == "lineage.inputs"
    assert entity_keys_in(server, config.namespace) == []


def test_batch_write_validates_everything_before_sending(store, server, config) -> None:
    with pytest.raises(ValidationError) as caught:
        store.write_features_batch({"a": {"x": 1}, "b": {"x": float("nan")}})
    assert caught.value.feature == "x"
    assert entity_keys_in(server, config.namespace) == []


def test_batch_write_reports_entities_refused_by_the_server(store) -> None:
    from fsredis import BatchWriteError

    with pytest.raises(BatchWriteError) as caught:
        store.write_features_batch({"a": {"x": 1}, "b": {"bad name": 1}, "c": {"x": 3}})
    assert list(caught.value.errors) == ["b"]
    assert isinstance(caught.value.errors["b"], ValidationError)
    assert caught.value.written == ["a", "c"]
    assert store.get_features_batch(["a", "b", "c"], ["x"]) == {"a": {"x": 1}, "b": {}, "c": {"x": 3}}


@pytest.mark.parametrize("name", ["#min", "#keep", "price#1"])
def test_reserved_names_are_refused_on_every_path(store, name) -> None:
    store.write_features("e1", {"price": 1.0}, ttl=60)
    store.write_features("e1", {"price": 2.0}, ttl=60)
    for call in (
        lambda: store.get_features("e1", [name]),
        lambda: store.get_features_batch(["e1"], ["price", name]),
        lambda: store.get_feature_lineage("e1", name),
        lambda: store.rollback_feature("e1", name, 1),
        lambda: store.delete_features("e1", [name]),
    ):
        with pytest.raises(ValidationError) as caught:
            call()
        assert (caught.value.feature, caught.value.rule) == (name, "name")
    assert store.get_features("e1") == {"price": 2.0}


def test_a_ttl_for_a_feature_not_written_is_refused(store, server, config) -> None:
    with pytest.raises(ValidationError) as caught:
        store.write_features("e1", {"price": 1.0}, ttl={"prcie": 60})
    assert (caught.value.feature, caught.value.rule) == ("prcie", "ttl")
    assert entity_keys_in(server, config.namespace) == []
