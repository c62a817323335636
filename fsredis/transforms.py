"""Built-in transforms for product-like raw data: ``name``, ``description``, ``category``, ``price``.

``product_transforms()`` returns all of them (a store registers them unless configured with
``builtin_transforms=False``):

=======================  ==========================  ==================================================
transform                inputs                      outputs
=======================  ==========================  ==================================================
``text_stats_name``      name                        ``name_length``, ``name_word_count``
``text_stats_description`` description               ``description_length``, ``description_word_count``
``category_normalized``  category                    ``category`` (trimmed, lower case, single spaces)
``price_features``       price                       ``price`` (float), ``price_log`` (ln(1 + price)),
                                                     ``price_bucket`` (index among ``PRICE_BUCKETS``)
``text_embedding``       name, description           ``text_embedding``: float32, ``dim`` values
=======================  ==========================  ==================================================

The text embedding uses the hashing trick: every word and word pair of the lower-cased text is
hashed (BLAKE2b, so the same on every machine and run) to one of ``dim`` slots with a sign, the
counts summed and the vector scaled to unit length. No model, no download; texts sharing words get
close vectors. To use a real model instead, register a transform with the same output::

    model = SentenceTransformer("all-MiniLM-L6-v2")
    fs.transforms.remove("text_embedding")

    @fs.transform(name="text_embedding", version="minilm-l6-v2", inputs=["name", "description"],
                  outputs=["text_embedding"])
    def embed(name, description):
        return model.encode(f"{name}. {description}", normalize_embeddings=True).astype("float32")
"""

from __future__ import annotations

import bisect
import hashlib
import math
import re

from fsredis.lazy import numpy as np

from fsredis.compute import Transform

PRICE_BUCKETS = (0.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0)
"""Lower edges of the price buckets: ``price_bucket`` is the index of the last edge <= price."""
DEFAULT_EMBEDDING_DIM = 64

_WORD = re.compile(r"\w+", re.UNICODE)
_SPACES = re.compile(r"[\s_]+")


def _text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{field} must be a string, got {type(value).__name__}")
    return value


def text_stats(field: str) -> Transform:
    """``<field>_length`` (characters) and ``<field>_word_count`` of a text field."""

    def stats(value: object) -> dict[str, int]:
        text = _text(field, value)
        return {f"{field}_length": len(text), f"{field}_word_count": len(_WORD.findall(text))}

    return Transform(f"text_stats_{field}", "1", (field,), (f"{field}_length", f"{field}_word_count"), stats)


def normalize_category(value: object) -> str:
    """Trimmed, lower case, runs of spaces and underscores as one space: ``" Home_Garden "`` ->
    ``"home garden"``."""
    text = _SPACES.sub(" ", _text("category", value)).strip().lower()
    if not text:
        raise ValueError("category is empty")
    return text


def price_features(value: object) -> dict[str, float | int]:
    """``price`` as a float, ``price_log`` = ln(1 + price), ``price_bucket`` (see PRICE_BUCKETS)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"price must be a number, got {type(value).__name__}")
    price = float(value)
    if not math.isfinite(price) or price < 0:
        raise ValueError(f"price must be a finite number >= 0, got {value!r}")
    return {
        "price": price,
        "price_log": math.log1p(price),
        "price_bucket": bisect.bisect_right(PRICE_BUCKETS, price) - 1,
    }


def hashed_embedding(text: str, dim: int = DEFAULT_EMBEDDING_DIM) -> np.ndarray:
    """A unit-length float32 vector of ``dim`` values for ``text`` by the hashing trick (zeros for
    a text without words)."""
    words = _WORD.findall(text.lower())
    tokens = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    vector = np.zeros(dim, dtype=np.float64)
    for token in tokens:
        digest = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
        vector[digest % dim] += 1.0 if digest >> 63 else -1.0
    norm = np.linalg.norm(vector)
    return (vector / norm if norm else vector).astype(np.float32)


def text_embedding(dim: int = DEFAULT_EMBEDDING_DIM) -> Transform:
    """``text_embedding`` of ``name`` and ``description`` (hashing trick, ``dim`` values)."""
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim is an integer >= 1, got {dim!r}")

    def embed(name: object, description: object) -> np.ndarray:
        return hashed_embedding(f"{_text('name', name)} {_text('description', description)}", dim)

    return Transform("text_embedding", f"hash-{dim}", ("name", "description"), ("text_embedding",), embed)


def product_transforms(dim: int = DEFAULT_EMBEDDING_DIM) -> list[Transform]:
    """Every built-in transform, with a ``dim``-value text embedding."""
    return [
        text_stats("name"),
        text_stats("description"),
        Transform("category_normalized", "1", ("category",), ("category",), normalize_category),
        Transform("price_features", "1", ("price",), ("price", "price_log", "price_bucket"), price_features),
        text_embedding(dim),
    ]
