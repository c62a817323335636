"""Feature definitions, registry files and diffs, without a server (fsredis/schema.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fsredis import FeatureDefinition, Registry, SchemaError, ValidationError
from fsredis.schema import compile_registries, diff, to_lua, with_definitions

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"dtype": "decimal"}, "dtype must be one of"),
        ({"dtype": "embedding"}, "needs dim"),
        ({"dtype": "embedding", "dim": 0}, "needs dim"),
        ({"dtype": "embedding", "dim": 4, "precision": "float64"}, "precision is float32 or float16"),
        ({"dtype": "list"}, "needs items"),
        ({"dtype": "list", "items": "embedding"}, "needs items"),
        ({"dtype": "string", "min": 1}, "min does not apply to dtype string"),
        ({"dtype": "float", "allowed": [1.5]}, "allowed does not apply to dtype float"),
        ({"dtype": "int", "allowed": ["a"]}, "non-empty list of int"),
        ({"dtype": "int", "allowed": []}, "non-empty list of int"),
        ({"dtype": "int", "allowed": [True]}, "non-empty list of int"),
        ({"dtype": "float", "min": 2, "max": 1}, "greater than max"),
        ({"dtype": "float", "min": float("nan")}, "finite number"),
        ({"dtype": "list", "items": "string", "min": 0}, "min applies to numbers"),
        ({"dtype": "string", "max_length": -1}, "max_length is an integer >= 0"),
        ({"dtype": "bool", "nullable": "yes"}, "nullable is true or false"),
        ({"dtype": "int", "ttl": 0}, "ttl is a number of seconds"),
        ({"dtype": "int", "ttl": "forever"}, "ttl is a number of seconds"),
        ({"dtype": "int", "tags": "a"}, "tags is a list of strings"),
        ({"dtype": "timestamp", "max": 3}, "max does not apply"),
    ],
)
def test_invalid_definitions_name_the_feature_and_the_problem(fields, message) -> None:
    with pytest.raises(SchemaError, match=message) as caught:
        FeatureDefinition(name="f", **fields)
    assert "'f'" in str(caught.value)


def test_invalid_names_are_refused() -> None:
    for name in ("", "1abc", "a#b", "a b", "x" * 129):
        with pytest.raises(SchemaError, match="names are"):
            FeatureDefinition(name=name, dtype="int")


def test_dict_form_round_trips_and_omits_defaults() -> None:
    definition = FeatureDefinition(
        name="tags", dtype="list", items="string", allowed=("a", "b", "a"), max_length=3, ttl="never",
        description="d", owner="o", tags=["x"],
    )
    assert definition.allowed == ("a", "b")  # repeats dropped
    assert definition.to_dict() == {
        "dtype": "list", "items": "string", "allowed": ["a", "b"], "max_length": 3, "ttl": "never",
        "description": "d", "owner": "o", "tags": ["x"],
    }
    assert FeatureDefinition.from_dict("tags", definition.to_dict()) == definition
    with pytest.raises(SchemaError, match="unknown field"):
        FeatureDefinition.from_dict("x", {"dtype": "int", "maximum": 3})
    with pytest.raises(SchemaError, match="dtype is required"):
        FeatureDefinition.from_dict("x", {"min": 3})


def test_the_shipped_features_yaml_loads_and_round_trips() -> None:
    registry = Registry.load(str(ROOT / "features.yaml"))
    assert {"product", "user"} <= set(registry.groups)
    assert registry.get("product", "text_embedding").dim == 64  # type: ignore[union-attr]
    assert Registry.from_yaml(registry.to_yaml()) == registry
    assert Registry.from_hash({k.encode(): v.encode() for k, v in registry.fields().items()}).groups == registry.groups


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("groups: [1, 2]", "groups maps entity types to their features"),
        ("strict: maybe\n", "strict is true or false"),
        ("colour: red\n", "unknown top-level field"),
        ("groups:\n  'bad type!':\n    a: {dtype: int}\n", "entity type"),
        ("groups:\n  product:\n    a: 3\n", "a definition is a mapping"),
        ("groups: {product: [", "not valid YAML"),
        ("!!python/object:os.system {}", "not valid YAML"),
    ],
)
def test_bad_registry_files_are_refused_clearly(text, message) -> None:
    with pytest.raises(SchemaError, match=message):
        Registry.from_yaml(text)


def test_diff_lists_changes_and_marks_breaking_ones() -> None:
    current = Registry({"product": {
        "price": FeatureDefinition("price", "float", min=0),
        "color": FeatureDefinition("color", "string"),
        "vec": FeatureDefinition("vec", "embedding", dim=8),
    }})
    desired = with_definitions(current, "product", [
        FeatureDefinition("price", "float", min=1),   # compatible: existing data stays readable
        FeatureDefinition("vec", "embedding", dim=16),  # breaking: stored vectors have 8 values
        {"name": "stock", "dtype": "int"},
    ])
    desired.groups["product"].pop("color")
    desired.strict = True
    changes = diff(current, desired)
    assert [(c.kind, c.feature) for c in changes] == [
        ("strict", ""), ("removed", "color"), ("changed", "price"), ("added", "stock"), ("changed", "vec"),
    ]
    assert [c.feature for c in changes if c.breaking] == ["vec"]
    assert "dim changes from 8 to 16" in str(changes[-1])
    assert "min: 0 -> 1" in str(changes[2])
    assert diff(desired, desired) == []


def test_python_validation_names_the_rule() -> None:
    price = FeatureDefinition("price", "float", min=0, max=10)
    price.validate(3)  # ints are fine for a float feature
    for value, rule in ((-1, "min"), (11.5, "max"), ("3", "dtype"), (None, "nullable"), (True, "dtype")):
        with pytest.raises(ValidationError) as caught:
            price.validate(value)
        assert (caught.value.feature, caught.value.rule) == ("price", rule)
    vec = FeatureDefinition("vec", "embedding", dim=4, precision="float16")
    vec.validate(np.ones(4))  # stored as this definition's precision
    with pytest.raises(ValidationError, match="rule=dim"):
        vec.validate(np.ones(5))


def test_lua_literals_escape_everything() -> None:
    assert to_lua({"a": [1, 2.5, True, None]}) == '{["a"] = {1, 2.5, true, nil}}'
    assert to_lua('"]] \\ \n\x00é') == '"\\034]] \\092 \\010\\000\\195\\169"'
    with pytest.raises(SchemaError):
        to_lua(float("inf"))
    assert '["empty"] = true' in compile_registries({})
    compiled = compile_registries({"ns": Registry({"product": {"p": FeatureDefinition("p", "int")}}, strict=True, version=3)})
    assert '["ns:product:"]' in compiled and '"ns:"' in compiled and '["ns"] = 3' in compiled
