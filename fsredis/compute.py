"""Computation hooks: transforms that derive features from raw data.

A transform is a plain function registered with its name, version, input fields and output
features::

    @fs.transform(name="price_features", version="2", inputs=["price"], outputs=["price_log"])
    def price_features(price):
        return {"price_log": math.log1p(price)}

``compute_and_store_features(entity_id, raw_data)`` runs every transform whose inputs are all
in ``raw_data`` (inputs are passed positionally, in the order declared), checks that each returned
exactly its outputs, and writes all outputs in one atomic write. Each value's lineage records
``transform``, ``transform_version`` and ``inputs``. A transform that raises or returns the wrong
shape stops the call with :class:`TransformError` naming it, before anything is written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from fsredis.errors import TransformError

__all__ = ["Transform", "Transforms", "TransformError"]


@dataclass(frozen=True)
class Transform:
    """A registered transform: ``function(*inputs) -> {output: value}``."""

    name: str
    version: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    function: Callable[..., Any]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("a transform needs a name")
        for what in ("inputs", "outputs"):
            names = getattr(self, what)
            if isinstance(names, str) or not all(isinstance(n, str) and n for n in names) or not names:
                raise ValueError(f"transform {self.name}: {what} is a non-empty list of names")
            if len(set(names)) != len(names):
                raise ValueError(f"transform {self.name}: {what} repeats a name")
            object.__setattr__(self, what, tuple(names))
        object.__setattr__(self, "version", str(self.version))
        if not callable(self.function):
            raise ValueError(f"transform {self.name}: the function is not callable")

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    def lineage(self) -> dict[str, Any]:
        """What each output's version records (in its write's lineage) about how it was computed."""
        return {"transform": self.name, "transform_version": self.version, "inputs": list(self.inputs)}

    def run(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """The outputs for ``raw`` (which holds every input); TransformError on failure or shape."""
        try:
            result = self.function(*(raw[name] for name in self.inputs))
        except Exception as exc:  # a user's function: any failure is reported as the transform's
            raise TransformError(self.label, f"raised {type(exc).__name__}: {exc}") from exc
        if not isinstance(result, Mapping):
            if len(self.outputs) != 1:
                raise TransformError(
                    self.label, f"returned {type(result).__name__}, expected a mapping of {list(self.outputs)}"
                )
            result = {self.outputs[0]: result}
        if set(result) != set(self.outputs):
            missing = sorted(set(self.outputs) - set(result))
            extra = sorted(map(str, set(result) - set(self.outputs)))
            raise TransformError(self.label, f"returned the wrong outputs (missing {missing}, unexpected {extra})")
        return dict(result)


class Transforms:
    """The transforms of one store, by name; no two may produce the same output."""

    def __init__(self, transforms: Iterable[Transform] = ()) -> None:
        self._by_name: dict[str, Transform] = {}
        for transform in transforms:
            self.add(transform)

    def add(self, transform: Transform) -> Transform:
        """Register ``transform``, replacing one of the same name."""
        for other in self._by_name.values():
            shared = set(other.outputs) & set(transform.outputs)
            if other.name != transform.name and shared:
                raise ValueError(f"transforms {other.name} and {transform.name} both produce {sorted(shared)}")
        self._by_name[transform.name] = transform
        return transform

    def remove(self, name: str) -> None:
        del self._by_name[name]

    def clear(self) -> None:
        self._by_name.clear()

    def __iter__(self) -> Any:
        return iter(list(self._by_name.values()))

    def __len__(self) -> int:
        return len(self._by_name)

    def __getitem__(self, name: str) -> Transform:
        return self._by_name[name]

    def decorator(
        self, *, name: str | None = None, version: str | int = "1", inputs: Sequence[str], outputs: Sequence[str]
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """``@store.transform(...)``: register the decorated function; it stays callable as is."""

        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            self.add(Transform(name or function.__name__, str(version), tuple(inputs), tuple(outputs), function))
            return function

        return register

    def compute(
        self, raw: Mapping[str, Any], observe: Callable[[str, float], None] | None = None
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """Run the transforms whose inputs are all in ``raw``: (features, lineage per feature).

        Raises TransformError when one fails, or when none applies (nothing would be written)."""
        if not isinstance(raw, Mapping):
            raise TransformError("-", f"raw data is a mapping of field -> value, got {type(raw).__name__}")
        features: dict[str, Any] = {}
        lineage: dict[str, dict[str, Any]] = {}
        for transform in self._by_name.values():
            if not all(name in raw for name in transform.inputs):
                continue
            started = perf_counter()
            outputs = transform.run(raw)
            if observe is not None:
                observe(transform.name, perf_counter() - started)
            features.update(outputs)
            meta = transform.lineage()
            lineage.update({name: meta for name in outputs})
        if not features:
            known = ", ".join(f"{t.label}({', '.join(t.inputs)})" for t in self) or "none"
            raise TransformError("-", f"no transform applies to the fields {sorted(map(str, raw))}; registered: {known}")
        return features, lineage
