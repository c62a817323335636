"""numpy, imported when first used rather than when fsredis is imported.

``import fsredis`` would otherwise spend ~80 ms importing numpy, which a command line tool such as
``fsredis get`` never needs (its answer is JSON made in Lua). Modules write
``from fsredis.lazy import numpy as np`` and use ``np`` as usual; type checkers see numpy itself.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any


class LazyModule:
    """A module imported at the first attribute read. Python's import lock makes the import safe
    from several threads at once; each attribute read is then kept on this object, so later
    reads are plain attribute reads."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__"):  # (copy, pickle and introspection probes: not numpy's)
            raise AttributeError(attribute)
        value = getattr(importlib.import_module(self._name), attribute)
        setattr(self, attribute, value)
        return value

    def __repr__(self) -> str:
        return f"<lazily imported module {self._name!r}>"


if TYPE_CHECKING:
    import numpy
else:
    numpy = LazyModule("numpy")
