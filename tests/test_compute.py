"""Computation hooks: transforms, compute_and_store_features, built-in product transforms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fsredis import BatchWriteError, FeatureDefinition, Transform, TransformError, ValidationError
from fsredis.compute import Transforms
from fsredis.transforms import PRICE_BUCKETS, hashed_embedding, normalize_category, product_transforms

PRODUCT = {
    "name": "Trail running shoe",
    "description": "A light trail running shoe with a grippy sole",
    "category": "  Sports_Outdoors ",
    "price": 89.5,
}


def test_the_product_example_computes_and_stores_every_builtin_feature(store) -> None:
    assert store.compute_and_store_features("product:123", PRODUCT)
    got = store.get_features("product:123")
    embedding = got.pop("text_embedding")
    assert got == {
        "name_length": 18, "name_word_count": 3,
        "description_length": 45, "description_word_count": 9,
        "category": "sports outdoors",
        "price": 89.5, "price_log": pytest.approx(math.log1p(89.5)), "price_bucket": 4,  # [50, 100)
    }
    assert embedding.dtype == np.float32 and embedding.shape == (64,)
    assert np.array_equal(embedding, hashed_embedding(f"{PRODUCT['name']} {PRODUCT['description']}"))
    metrics = store.get_performance_metrics()
    assert metrics["computations"] == 5 and metrics["average_computation_time"] > 0
    assert set(metrics["transforms"]) == {t.name for t in product_transforms()}


def test_lineage_records_transform_version_and_inputs(store) -> None:
    store.compute_and_store_features("product:1", {"price": 10, "name": "x"}, source="catalogue")
    price = store.get_feature_lineage("product:1", "price_log")["versions"][0]
    assert price["transform"] == "price_features" and price["transform_version"] == "1"
    assert price["inputs"] == ["price"] and price["source"] == "catalogue"
    name = store.get_feature_lineage("product:1", "name_length")["versions"][0]
    assert name["transform"] == "text_stats_name" and name["inputs"] == ["name"]
    assert "features" not in name  # per-feature lineage is merged, not stored whole


def test_only_transforms_with_all_inputs_run(store) -> None:
    store.compute_and_store_features("product:2", {"name": "Lamp"})  # no description: no embedding
    assert set(store.get_features("product:2")) == {"name_length", "name_word_count"}
    with pytest.raises(TransformError, match=r"no transform applies to the fields \['colour'\]"):
        store.compute_and_store_features("product:2", {"colour": "red"})


def test_user_transforms_and_their_errors(store) -> None:
    store.transforms.clear()

    @store.transform(name="ratio", version=2, inputs=["clicks", "views"], outputs=["ctr"])
    def ratio(clicks, views):
        return clicks / views

    @store.transform(name="shape", inputs=["views"], outputs=["a", "b"])
    def shape(views):
        return {"a": views} if views > 100 else {"a": views, "b": 1}

    assert ratio(1, 4) == 0.25  # still a plain function
    store.compute_and_store_features("user:1", {"clicks": 1, "views": 4})
    assert store.get_features("user:1") == {"ctr": 0.25, "a": 4, "b": 1}
    assert store.get_feature_lineage("user:1", "ctr")["versions"][0]["transform_version"] == "2"

    with pytest.raises(TransformError, match=r"transform=ratio@2: raised ZeroDivisionError") as caught:
        store.compute_and_store_features("user:1", {"clicks": 1, "views": 0})
    assert caught.value.transform == "ratio@2"
    with pytest.raises(TransformError, match=r"shape@1: returned the wrong outputs \(missing \['b'\]"):
        store.compute_and_store_features("user:1", {"clicks": 1, "views": 200})
    with pytest.raises(ValidationError, match="computed by transform ratio@2"):  # a client-side check
        store.compute_and_store_features("user:1", {"clicks": math.inf, "views": 1})
    assert store.get_feature_lineage("user:1", "ctr")["current_version"] == 1  # nothing more written


def test_a_registered_rule_refuses_a_computed_value_naming_the_transform(store) -> None:
    store.register_features("product", [FeatureDefinition("price_bucket", "int", max=3)])
    with pytest.raises(ValidationError) as caught:
        store.compute_and_store_features("product:3", {"price": 500.0, "name": "TV"})
    assert caught.value.rule == "max" and "computed by transform price_features@1" in str(caught.value)
    assert store.get_features("product:3") == {}  # name_length etc. were not written either


def test_the_batch_form(store) -> None:
    rows = {f"product:{i}": {"price": float(i), "name": f"item {i}"} for i in range(5)}
    assert store.compute_and_store_features_batch(rows)
    batch = store.get_features_batch(list(rows), ["price_bucket", "name_word_count"])
    assert batch["product:4"] == {"price_bucket": 0, "name_word_count": 2}
    with pytest.raises(TransformError, match="price_features@1: raised ValueError"):
        store.compute_and_store_features_batch({"product:9": {"price": -1.0}})
    store.register_features("product", [FeatureDefinition("price", "float", max=2)], force=True)  # 3.0, 4.0 stored
    with pytest.raises(BatchWriteError) as caught:
        store.compute_and_store_features_batch({"product:10": {"price": 1.0}, "product:11": {"price": 3.0}})
    assert caught.value.written == ["product:10"]
    assert "computed by transform price_features@1" in str(caught.value.errors["product:11"])


def test_transform_registration_rules() -> None:
    transforms = Transforms(product_transforms())
    with pytest.raises(ValueError, match="both produce"):
        transforms.add(Transform("other", "1", ("x",), ("price",), lambda x: x))
    transforms.add(Transform("price_features", "2", ("price",), ("price",), float))  # replaces by name
    assert transforms["price_features"].version == "2"
    for bad in ({"inputs": ()}, {"outputs": "ab"}, {"inputs": ("a", "a")}):
        with pytest.raises(ValueError):
            Transform(**{"name": "t", "version": "1", "inputs": ("a",), "outputs": ("b",), "function": str, **bad})


def test_builtin_helpers() -> None:
    assert normalize_category(" Home__Garden  ") == "home garden"
    with pytest.raises(ValueError):
        normalize_category("   ")
    first = hashed_embedding("red shoe", 32)
    assert np.array_equal(first, hashed_embedding("Red  shoe!", 32))  # case and punctuation fold
    assert float(np.linalg.norm(first)) == pytest.approx(1.0)
    assert not hashed_embedding("", 8).any()
    close = float(first @ hashed_embedding("red shoe sale", 32))
    far = float(first @ hashed_embedding("garden hose", 32))
    assert close > far
    assert len(PRICE_BUCKETS) == 11
