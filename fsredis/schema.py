"""Feature definitions and the schema registry.

A :class:`FeatureDefinition` says what one feature may hold (dtype, range, allowed values,
length, nullability, embedding size) and how long it lives. Definitions are grouped by entity
type (``product``, ``user``): the group of ``product:123`` is ``product``. A :class:`Registry` is
all groups of a namespace plus its ``strict`` setting; it lives in Redis (``<ns>:{registry}``,
versioned, every change logged) and is compiled into the Lua library, where ``fs_write`` and
``fs_rollback`` enforce it for every writer. :meth:`FeatureDefinition.validate` applies the same
rules in Python, to check data before sending it; the tests hold the two to the same verdicts.

The declarative form (``features.yaml``, applied by ``fsredis apply``)::

    strict: false            # true: features that are not registered are refused
    groups:
      product:
        price:    {dtype: float, min: 0, description: List price in EUR, owner: pricing}
        category: {dtype: string, allowed: [books, electronics, toys]}
        tags:     {dtype: list, items: string, max_length: 16}
        text_embedding: {dtype: embedding, dim: 64, precision: float32, ttl: 86400}
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fsredis import codec, limits
from fsredis.errors import SchemaError, ValidationError
from fsredis.keys import check_group

DTYPES = ("int", "float", "string", "bool", "timestamp", "embedding", "list")
ITEM_DTYPES = ("int", "float", "string", "bool")
PRECISIONS = {"float32": (codec.EMBEDDING_F32, 4), "float16": (codec.EMBEDDING_F16, 2)}
MAX_DIM = (limits.VALUE_BYTES - 4) // 4
"""Most values of an embedding (134,217,727: its float32 blob fits the largest value)."""
MAX_TTL = limits.TTL_MS // 1000
"""Longest registered TTL in seconds (100 years, as every TTL)."""
NEVER = "never"
"""``ttl: never``: the feature does not expire, whatever the store's defaults."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")
_NUMERIC = ("int", "float")
# Which constraints each dtype takes (list constraints apply to the items, max_length to the list).
_CONSTRAINTS = {
    "int": {"min", "max", "allowed"},
    "float": {"min", "max"},
    "string": {"allowed", "max_length"},
    "bool": set(),
    "timestamp": set(),
    "embedding": {"dim", "precision"},
    "list": {"items", "min", "max", "allowed", "max_length"},
}
_FIELD_ORDER = ("dtype", "items", "dim", "precision", "min", "max", "allowed", "max_length", "nullable",
                "ttl", "description", "owner", "tags")


@dataclass(frozen=True)
class FeatureDefinition:
    """What one feature may hold. Invalid definitions raise SchemaError naming the feature."""

    name: str
    dtype: str
    """``int``, ``float``, ``string`` (categorical when ``allowed`` is set), ``bool``,
    ``timestamp``, ``embedding`` or ``list`` (of ``items``)."""
    items: str | None = None
    """The dtype of a list's items: ``int``, ``float``, ``string`` or ``bool``."""
    dim: int | None = None
    """An embedding's exact number of values."""
    precision: str = "float32"
    """An embedding's stored float type: ``float32`` or ``float16``."""
    min: float | None = None
    """Smallest allowed value (int, float, and numeric list items)."""
    max: float | None = None
    """Largest allowed value (int, float, and numeric list items)."""
    allowed: tuple[Any, ...] | None = None
    """The only values allowed (int, string, and list items of those)."""
    max_length: int | None = None
    """Most characters of a string, most items of a list."""
    nullable: bool = False
    """Whether None may be written."""
    ttl: float | str | None = None
    """Seconds the feature lives after a write, ``"never"``, or None for the store's defaults.
    A ``ttl`` given to a write call still wins."""
    description: str = ""
    owner: str = ""
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        def bad(text: str) -> SchemaError:
            return SchemaError(f"feature {self.name!r}: {text}")

        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise bad("names are 1-128 characters of A-Z a-z 0-9 _ . - and start with a letter or _")
        if self.dtype not in DTYPES:
            raise bad(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        given = {f for f in ("items", "dim", "min", "max", "allowed", "max_length") if getattr(self, f) is not None}
        if self.precision != "float32":
            given.add("precision")
        stray = given - _CONSTRAINTS[self.dtype]
        if stray:
            raise bad(f"{', '.join(sorted(stray))} does not apply to dtype {self.dtype}")
        if self.dtype == "embedding":
            if not _is_int(self.dim) or not 1 <= self.dim <= MAX_DIM:  # type: ignore[operator]
                raise bad(f"an embedding needs dim, its number of values (an integer from 1 to {MAX_DIM})")
            if self.precision not in PRECISIONS:
                raise bad(f"precision is float32 or float16, not {self.precision!r}")
        if self.dtype == "list" and self.items not in ITEM_DTYPES:
            raise bad(f"a list needs items, the dtype of its items: one of {', '.join(ITEM_DTYPES)}")
        scalar = self.items if self.dtype == "list" else self.dtype
        for bound in ("min", "max"):
            value = getattr(self, bound)
            if value is not None:
                if scalar not in _NUMERIC:
                    raise bad(f"{bound} applies to numbers, not {scalar} items")
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise bad(f"{bound} must be a finite number, not {value!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise bad(f"min {self.min} is greater than max {self.max}")
        if self.allowed is not None:
            if isinstance(self.allowed, (str, bytes)) or not isinstance(self.allowed, Iterable):
                raise bad("allowed is a list of values")
            allowed = tuple(self.allowed)
            want = {"int": int, "string": str}.get(scalar)  # type: ignore[arg-type]
            if want is None:
                raise bad(f"allowed applies to int and string values, not {scalar}")
            if not allowed or any(type(v) is not want for v in allowed):
                raise bad(f"allowed is a non-empty list of {scalar} values")
            object.__setattr__(self, "allowed", tuple(dict.fromkeys(allowed)))
        if self.max_length is not None and (not _is_int(self.max_length) or self.max_length < 0):
            raise bad("max_length is an integer >= 0")
        if not isinstance(self.nullable, bool):
            raise bad("nullable is true or false")
        if self.ttl is not None and self.ttl != NEVER:
            if isinstance(self.ttl, bool) or not isinstance(self.ttl, (int, float)) or not 0.001 <= self.ttl <= MAX_TTL:
                raise bad(f"ttl is a number of seconds from 0.001 to {MAX_TTL} (100 years), 'never', or empty, not {self.ttl!r}")
        if not isinstance(self.tags, (list, tuple)) or not all(isinstance(t, str) for t in self.tags):
            raise bad("tags is a list of strings")
        object.__setattr__(self, "tags", tuple(self.tags))
        for text in ("description", "owner"):
            if not isinstance(getattr(self, text), str):
                raise bad(f"{text} is a string")

    # -- forms ------------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> FeatureDefinition:
        """A definition from its YAML/JSON form (the fields of this class but ``name``)."""
        if not isinstance(data, Mapping):
            raise SchemaError(f"feature {name!r}: a definition is a mapping, got {type(data).__name__}")
        unknown = set(data) - set(_FIELD_ORDER)
        if unknown:
            raise SchemaError(f"feature {name!r}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
        if "dtype" not in data:
            raise SchemaError(f"feature {name!r}: dtype is required")
        return cls(name=name, **_plain(data))

    def to_dict(self) -> dict[str, Any]:
        """The YAML/JSON form: every field that differs from its default, in a fixed order."""
        out: dict[str, Any] = {}
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for key in _FIELD_ORDER:
            value = getattr(self, key)
            if key == "dtype" or value != defaults[key]:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out

    def compiled(self) -> dict[str, Any]:
        """The rules as the Lua library holds them (``lua/lib/check_rules.lua`` reads them)."""
        rules: dict[str, Any] = {"t": self.dtype}
        if self.nullable:
            rules["null"] = True
        if self.dtype == "embedding":
            tag, size = PRECISIONS[self.precision]
            rules["tag"] = tag
            rules["bytes"] = 4 + size * self.dim  # type: ignore[operator]
        if self.items:
            rules["items"] = self.items
        for key, short in (("min", "min"), ("max", "max"), ("max_length", "maxlen")):
            if getattr(self, key) is not None:
                rules[short] = getattr(self, key)
        if self.allowed is not None:
            rules["allowed"] = {value: True for value in self.allowed}
        if self.ttl is not None:
            rules["ttl"] = -1 if self.ttl == NEVER else max(1, round(float(self.ttl) * 1000))
        return rules

    def storage_change(self, new: FeatureDefinition) -> str | None:
        """Why data written under this definition would not be read as ``new`` expects (a dtype,
        item dtype, dimension or precision change), or None when it would."""
        for key in ("dtype", "items", "dim", "precision"):
            if getattr(self, key) != getattr(new, key):
                return f"{key} changes from {getattr(self, key)} to {getattr(new, key)}"
        return None

    # -- the rules, in Python ----------------------------------------------------------------------

    def validate(self, value: Any) -> None:
        """Raise ValidationError (naming this feature and the rule) unless ``value`` may be written;
        the same verdict the Lua write gives. Embeddings are checked as this definition stores them."""
        self.validate_encoded(codec.encode_value(self.name, value, self.precision))

    def validate_encoded(self, raw: bytes) -> None:
        """:meth:`validate` for a value already encoded by :mod:`fsredis.codec`."""
        name = self.name
        if raw == b"\xc0":
            if not self.nullable:
                raise ValidationError(name, "nullable", "the value is null and the feature is not nullable")
            return
        kind = _kind(raw)
        if self.dtype == "embedding":
            tag, size = PRECISIONS[self.precision]
            if raw[:4] != tag:
                raise ValidationError(name, "dtype", f"expected a {self.precision} embedding, got {kind}")
            if len(raw) != 4 + size * self.dim:  # type: ignore[operator]
                got = (len(raw) - 4) // size
                raise ValidationError(name, "dim", f"the embedding has {got} values, the schema wants {self.dim}")
            return
        if not _fits(kind, self.dtype):
            raise ValidationError(name, "dtype", f"expected {self.dtype}, got {kind}")
        if self.dtype in ("bool", "timestamp"):
            return
        value = codec.decode_value(raw)
        if self.dtype == "list":
            if self.max_length is not None and len(value) > self.max_length:
                raise ValidationError(name, "max_length", f"{len(value)} items, more than the maximum {self.max_length}")
            for i, item in enumerate(value, 1):
                if not _item_fits(item, self.items):  # type: ignore[arg-type]
                    raise ValidationError(name, "items", f"item {i} ({item!r}) is not {self.items}")
                self._check_scalar(item, f"item {i} ")
            return
        self._check_scalar(value, "")
        if self.dtype == "string" and self.max_length is not None and len(value) > self.max_length:
            raise ValidationError(name, "max_length", f"{len(value)} characters, more than the maximum {self.max_length}")

    def _check_scalar(self, value: Any, what: str) -> None:
        if self.min is not None and value < self.min:
            raise ValidationError(self.name, "min", f"{what}{value!r} is below the minimum {self.min}")
        if self.max is not None and value > self.max:
            raise ValidationError(self.name, "max", f"{what}{value!r} is above the maximum {self.max}")
        if self.allowed is not None and value not in self.allowed:
            raise ValidationError(self.name, "allowed", f"{what}{value!r} is not one of the allowed values")


def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """A definition's fields as JSON and YAML readers give them, made plain: a null field is an
    absent one, an empty map of tags no tags, an integral float where an integer belongs (``dim:
    64.0``, ``1e1``) that integer. The Lua library reads stored definitions the same way."""
    out = {key: value for key, value in data.items() if value is not None}
    for key in ("dim", "max_length"):
        if isinstance(out.get(key), float) and out[key].is_integer():
            out[key] = int(out[key])
    if isinstance(out.get("tags"), Mapping) and not out["tags"]:
        out["tags"] = []
    scalar = out.get("items") if out.get("dtype") == "list" else out.get("dtype")
    allowed = out.get("allowed")
    if scalar == "int" and isinstance(allowed, list) and all(
            type(v) in (int, float) and float(v).is_integer() for v in allowed):
        out["allowed"] = [int(v) for v in allowed]
    return out


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(raw: bytes) -> str:
    """What an encoded value is, in the words of the errors (the Lua library uses the same)."""
    b = raw[0]
    if b == 0xC1:
        return {codec.EMBEDDING_F32: "a float32 embedding", codec.EMBEDDING_F16: "a float16 embedding",
                codec.TIMESTAMP: "timestamp"}.get(raw[:4], "unknown")
    if b <= 0x7F or b >= 0xE0 or 0xCC <= b <= 0xD3:
        return "int"
    if b in (0xCA, 0xCB):
        return "float"
    if b in (0xC2, 0xC3):
        return "bool"
    if 0xA0 <= b <= 0xBF or 0xD9 <= b <= 0xDB:
        return "string"
    if 0x90 <= b <= 0x9F or b in (0xDC, 0xDD):
        return "list"
    return "map" if 0x80 <= b <= 0x8F or b in (0xDE, 0xDF) else "unknown"


def _fits(kind: str, dtype: str) -> bool:
    return kind == dtype or (dtype == "float" and kind == "int")


def _item_fits(item: Any, items: str) -> bool:
    kind = type(item)
    if items == "int":
        return kind is int or (kind is float and item.is_integer())
    if items == "float":
        return kind is int or kind is float
    return kind is {"string": str, "bool": bool}[items]


@dataclass
class Registry:
    """The definitions of a namespace, by group (entity type), and its ``strict`` setting.

    ``version`` counts the changes applied in Redis (0: never applied)."""

    groups: dict[str, dict[str, FeatureDefinition]] = field(default_factory=dict)
    strict: bool = False
    version: int = 0
    broken: dict[str, str] = field(default_factory=dict)
    """Stored definitions that cannot be read (``group:name`` -> why), when read with
    ``from_hash(..., tolerant=True)``: the library refuses every write of those features until
    the definition is fixed, and stays loadable for everyone else."""

    def __post_init__(self) -> None:
        for group, features in self.groups.items():
            check_group(group)
            for name, definition in features.items():
                if definition.name != name:
                    raise SchemaError(f"group {group}: key {name!r} holds the definition of {definition.name!r}")

    def get(self, group: str, name: str) -> FeatureDefinition | None:
        return self.groups.get(group, {}).get(name)

    def definitions(self, group: str | None = None) -> list[FeatureDefinition]:
        """Every definition, or those of one group, ordered by group then name."""
        chosen = [group] if group is not None else sorted(self.groups)
        return [d for g in chosen for _, d in sorted(self.groups.get(g, {}).items())]

    # -- YAML / dict -------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Registry:
        data = data or {}
        if not isinstance(data, Mapping):
            raise SchemaError("a registry file is a mapping with 'groups' (and optionally 'strict')")
        unknown = set(data) - {"strict", "groups"}
        if unknown:
            raise SchemaError(f"unknown top-level field(s): {', '.join(sorted(map(str, unknown)))}")
        strict = data.get("strict", False)
        if not isinstance(strict, bool):
            raise SchemaError("strict is true or false")
        groups: dict[str, dict[str, FeatureDefinition]] = {}
        given = data.get("groups") or {}
        if not isinstance(given, Mapping):
            raise SchemaError("groups maps entity types to their features")
        for group, features in given.items():
            try:
                check_group(group)
            except ValueError as exc:
                raise SchemaError(str(exc)) from None
            if not isinstance(features, Mapping):
                raise SchemaError(f"group {group}: a group maps feature names to definitions")
            groups[group] = {
                name: FeatureDefinition.from_dict(name, definition) for name, definition in features.items()
            }
        return cls(groups, strict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "strict": self.strict,
            "groups": {g: {n: d.to_dict() for n, d in sorted(f.items())} for g, f in sorted(self.groups.items())},
        }

    @classmethod
    def from_yaml(cls, text: str) -> Registry:
        """A registry from ``features.yaml`` text (safe YAML: plain data only)."""
        import yaml  # type: ignore[import-untyped]

        try:
            return cls.from_dict(yaml.safe_load(text))
        except yaml.YAMLError as exc:
            raise SchemaError(f"not valid YAML: {exc}") from None

    @classmethod
    def load(cls, path: str) -> Registry:
        with open(path, encoding="utf-8") as f:
            return cls.from_yaml(f.read())

    def to_yaml(self) -> str:
        import yaml  # type: ignore[import-untyped]

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True))

    # -- Redis form --------------------------------------------------------------------------------

    def fields(self) -> dict[str, str]:
        """The hash ``<ns>:{registry}`` without its ``#`` fields: ``group:name`` -> JSON."""
        return {
            f"{g}:{n}": json.dumps(d.to_dict(), sort_keys=True, separators=(",", ":"))
            for g, features in self.groups.items()
            for n, d in features.items()
        }

    @classmethod
    def from_hash(cls, raw: Mapping[bytes, bytes], tolerant: bool = False) -> Registry:
        """The registry stored in ``<ns>:{registry}`` (an empty hash: an empty registry).

        An unreadable definition raises SchemaError, or with ``tolerant`` is kept in ``broken``."""
        groups: dict[str, dict[str, FeatureDefinition]] = {}
        broken: dict[str, str] = {}
        flags: dict[str, str] = {}
        for raw_key, raw_value in raw.items():
            key = raw_key.decode(errors="replace")
            if key.startswith("#"):
                flags[key] = raw_value.decode(errors="replace")
                continue
            group, _, name = key.partition(":")
            try:
                check_group(group)
                definition = FeatureDefinition.from_dict(name, json.loads(raw_value.decode()))
            except (ValueError, TypeError) as exc:  # SchemaError and UnicodeDecodeError are ValueErrors
                if not tolerant:
                    raise SchemaError(f"the stored definition {key} is unreadable: {exc}") from None
                broken[key] = str(exc)[:300]
            else:
                groups.setdefault(group, {})[name] = definition
        version = flags.get("#version", "0")
        return cls(groups, flags.get("#strict") == "1", int(version) if version.isdigit() else 0, broken)

    def compiled(self, namespace: str) -> dict[str, Any]:
        """This registry as the Lua library's table: rules by key prefix ``<ns>:<group>:``."""
        out: dict[str, Any] = {
            f"{namespace}:{group}:": {"strict": self.strict, "features": {n: d.compiled() for n, d in features.items()}}
            for group, features in self.groups.items()
        }
        for key, why in self.broken.items():
            group, _, name = key.partition(":")
            features = out.setdefault(f"{namespace}:{group}:", {"strict": self.strict, "features": {}})["features"]
            features[name] = {"broken": why}
        return out


@dataclass(frozen=True)
class Change:
    """One difference between two registries."""

    kind: str
    """``added``, ``changed``, ``removed`` (a feature) or ``strict`` (the setting)."""
    group: str
    feature: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    breaking: str | None = None
    """Why existing data would not fit (only for ``changed``), else None."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        sign = {"added": "+", "removed": "-", "changed": "~", "strict": "~"}[self.kind]
        if self.kind == "strict":
            return f"{sign} strict: {self.before} -> {self.after}"
        text = f"{sign} {self.group}:{self.feature}"
        if self.kind == "changed":
            keys = sorted(set(self.before or {}) | set(self.after or {}))
            moved = [k for k in keys if (self.before or {}).get(k) != (self.after or {}).get(k)]
            text += " (" + ", ".join(f"{k}: {(self.before or {}).get(k)!r} -> {(self.after or {}).get(k)!r}" for k in moved) + ")"
        elif self.after is not None:
            text += f" {json.dumps(self.after)}"
        if self.breaking:
            text += f" [breaking: {self.breaking}]"
        return text


def diff(current: Registry, desired: Registry) -> list[Change]:
    """What turns ``current`` into ``desired``, ordered by group and feature."""
    changes: list[Change] = []
    if current.strict != desired.strict:
        changes.append(Change("strict", "", "", {"strict": current.strict}, {"strict": desired.strict}))
    for group in sorted(set(current.groups) | set(desired.groups)):
        old, new = current.groups.get(group, {}), desired.groups.get(group, {})
        for name in sorted(set(old) | set(new)):
            before, after = old.get(name), new.get(name)
            if before == after:
                continue
            if before is None:
                changes.append(Change("added", group, name, None, after.to_dict()))  # type: ignore[union-attr]
            elif after is None:
                changes.append(Change("removed", group, name, before.to_dict(), None))
            else:
                changes.append(Change("changed", group, name, before.to_dict(), after.to_dict(), before.storage_change(after)))
    return changes


def with_definitions(current: Registry, group: str, definitions: Iterable[FeatureDefinition | Mapping[str, Any]]) -> Registry:
    """``current`` with ``definitions`` added to (or replacing those of the same name in) ``group``."""
    check_group(group)
    groups = {g: dict(f) for g, f in current.groups.items()}
    target = groups.setdefault(group, {})
    for item in definitions:
        definition = item if isinstance(item, FeatureDefinition) else FeatureDefinition(**item)
        target[definition.name] = definition
    replaced = {f"{group}:{name}" for name in target}  # a definition given mends a broken one
    broken = {key: why for key, why in current.broken.items() if key not in replaced}
    return Registry(groups, current.strict, current.version, broken)


def without_definitions(current: Registry, group: str, names: Iterable[str]) -> Registry:
    """``current`` without the definitions ``names`` of ``group`` (a group left empty goes too)."""
    drop = set(names)
    groups = {g: {n: d for n, d in f.items() if g != group or n not in drop} for g, f in current.groups.items()}
    dropped = {f"{group}:{name}" for name in drop}
    broken = {key: why for key, why in current.broken.items() if key not in dropped}
    return Registry({g: f for g, f in groups.items() if f}, current.strict, current.version, broken)


def compile_registries(registries: Mapping[str, Registry]) -> str:
    """The Lua table ``REGISTRY`` of lua/lib/registry.lua for every namespace's registry."""
    groups: dict[str, Any] = {}
    strict: list[str] = []
    for namespace, registry in sorted(registries.items()):
        groups.update(registry.compiled(namespace))
        if registry.strict:
            strict.append(f"{namespace}:")
    versions = {ns: r.version for ns, r in sorted(registries.items())}
    return to_lua({"groups": groups, "strict": strict, "versions": versions, "empty": not groups and not strict})


def to_lua(value: Any) -> str:
    """A Lua literal for plain data (dict, list, str, bytes, int, float, bool, None).

    Strings are escaped byte by byte (``\\ddd`` for anything but plain printable ASCII), so no
    value from a registry can end the literal early; floats are written exactly (``repr``)."""
    if value is None:
        return "nil"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SchemaError(f"{value!r} cannot be compiled")
        return repr(value)
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return '"' + "".join(chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\{b:03d}" for b in value) + '"'
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"[{to_lua(k)}] = {to_lua(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "{" + ", ".join(to_lua(v) for v in value) + "}"
    raise SchemaError(f"{type(value).__name__} cannot be compiled")
