"""Exceptions, and the mapping from the Lua library's error codes to them.

The Lua code raises replies such as ``FSVALIDATION feature=price rule=finite NaN ...``; the code
(first word) picks the class, ``feature=`` and ``rule=`` become attributes, the rest is the
detail. Every exception the package raises on purpose derives from :class:`FeatureStoreError`.
"""

from __future__ import annotations

import re

from redis import exceptions as redis_errors

__all__ = [
    "FeatureStoreError",
    "ValidationError",
    "NotFound",
    "SchemaError",
    "RegistryConflict",
    "TransformError",
    "LibraryError",
    "StoreUnavailable",
    "StoreFull",
    "BatchWriteError",
    "MissingDependency",
    "from_reply",
    "translate",
]


class FeatureStoreError(Exception):
    """Base of every error fsredis raises."""


class ValidationError(FeatureStoreError, ValueError):
    """A feature broke a rule; nothing of the write was stored.

    ``feature`` names the feature (or entity id), ``rule`` the rule it broke (``name``, ``type``,
    ``finite``, ``size``, ``dtype``, ``shape``, ``ttl``, ``entity_id``, ...).
    """

    def __init__(self, feature: str, rule: str, detail: str = "") -> None:
        self.feature = feature
        self.rule = rule
        self.detail = detail
        super().__init__(f"feature={feature} rule={rule}" + (f": {detail}" if detail else ""))


class NotFound(FeatureStoreError, LookupError):
    """The feature or version asked for does not exist (or is no longer kept)."""

    def __init__(self, feature: str, rule: str, detail: str = "") -> None:
        self.feature = feature
        self.rule = rule
        self.detail = detail
        super().__init__(f"feature={feature} rule={rule}" + (f": {detail}" if detail else ""))


class SchemaError(FeatureStoreError, ValueError):
    """A feature definition is invalid, or a registry change was refused (e.g. a dtype change of a
    feature that has data, without ``force``)."""


class RegistryConflict(SchemaError):
    """The registry changed between reading it and storing a change (``FSCONFLICT``)."""


class TransformError(FeatureStoreError, ValueError):
    """A transform failed or returned the wrong shape; nothing was written.

    ``transform`` is ``name@version`` (``-`` when no transform is to blame)."""

    def __init__(self, transform: str, detail: str) -> None:
        self.transform = transform
        self.detail = detail
        super().__init__(f"transform={transform}: {detail}")


class LibraryError(FeatureStoreError):
    """The Lua library could not be built, loaded, or called as expected."""


class StoreUnavailable(FeatureStoreError, ConnectionError):
    """Redis could not be reached (after the configured retries)."""


class StoreFull(FeatureStoreError):
    """Redis reached ``maxmemory`` (with ``noeviction``): the write was refused, nothing stored."""


class MissingDependency(FeatureStoreError, ImportError):
    """An optional dependency (an extra) is needed for this call."""


class BatchWriteError(FeatureStoreError):
    """Some entities of a batch write were refused; each entity is atomic, the batch is not.

    ``errors`` maps each refused entity id to its error; ``written`` lists the entities stored.
    """

    def __init__(self, errors: dict[str, FeatureStoreError], written: list[str]) -> None:
        self.errors = errors
        self.written = written
        first = next(iter(errors.items()))
        super().__init__(
            f"{len(errors)} of {len(errors) + len(written)} entities refused; "
            f"first: {first[0]}: {first[1]}"
        )


_REPLY = re.compile(r"^(FS[A-Z]+) (?:feature=(.*?) rule=(\S+) ?)?(.*?)(?: script: .*)?$", re.S)


def from_reply(message: str) -> FeatureStoreError | None:
    """The exception for an error reply of the Lua library, or None if it is not one of ours."""
    match = _REPLY.match(message)
    if not match:
        return None
    code, feature, rule, detail = match.groups()
    if code == "FSVALIDATION" and feature is not None:
        return ValidationError(feature, rule, detail)
    if code == "FSNOTFOUND" and feature is not None:
        return NotFound(feature, rule, detail)
    if code == "FSSCHEMA":
        return SchemaError(detail)
    if code == "FSCONFLICT":
        return RegistryConflict(detail)
    return LibraryError(f"{code} {detail}".strip())


def translate(exc: BaseException) -> FeatureStoreError:
    """The FeatureStoreError for an exception raised by redis-py (chained to it)."""
    error: FeatureStoreError
    if isinstance(exc, redis_errors.AuthenticationError):
        error = StoreUnavailable(f"Redis refused the credentials (username/password): {exc}")
    elif isinstance(exc, (redis_errors.ConnectionError, redis_errors.TimeoutError)):
        error = StoreUnavailable(f"Redis is unreachable: {exc}")
    elif isinstance(exc, redis_errors.OutOfMemoryError):
        error = StoreFull(f"Redis is out of memory (maxmemory): the write was refused, nothing stored: {exc}")
    elif isinstance(exc, redis_errors.NoPermissionError):
        error = LibraryError(
            f"the Redis user lacks a permission ({exc}); installing the library needs FUNCTION "
            "(and SCRIPT for evalsha): run `fsredis load-functions` as an admin user once"
        )
    else:
        error = from_reply(str(exc)) or FeatureStoreError(f"Redis replied: {exc}")
    error.__cause__ = exc
    return error
