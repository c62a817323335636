"""Every error the sidecar answers: the exception -> (HTTP status, stable code) table, and the
JSON error body.

The codes are the Lua library's where it has one (``FSVALIDATION``, ``FSNOTFOUND``, ...); the
others say what HTTP went wrong. :func:`answers` lists every (status, code) pair the sidecar can
send, for the README and the OpenAPI document (a test keeps the three in step).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fsredis import (
    BatchWriteError,
    CorruptValue,
    FeatureStoreError,
    LibraryError,
    NotFound,
    PermissionDenied,
    RegistryConflict,
    SchemaError,
    StoreFull,
    StoreUnavailable,
    TransformError,
    ValidationError,
)


class BadRequest(Exception):
    """A request the API cannot read (malformed body, wrong shape); 400 FSBADREQUEST."""


class BadParameter(Exception):
    """A query parameter that does not parse; 400 FSVALIDATION naming the ``parameter``."""

    def __init__(self, parameter: str, rule: str, message: str) -> None:
        self.parameter = parameter
        self.rule = rule
        super().__init__(message)


class BodyTooLarge(Exception):
    """A body over ``max_body_bytes`` (counted after decompression); 413 FSTOOLARGE."""


class EntityNotFound(NotFound):
    """None of the requested features of an entity exists; 404 FSNOTFOUND with ``entity``."""

    def __init__(self, entity: str) -> None:
        super().__init__(entity, "entity")
        self.args = (f"no live features of {entity} (none requested exists)",)


class DeadlineExceeded(StoreUnavailable):
    """Redis did not answer within ``request_timeout``; 503 FSUNAVAILABLE like any outage."""


# Exception class -> (HTTP status, stable code), first match wins.
ERRORS: list[tuple[type[BaseException], int, str]] = [
    (BadRequest, 400, "FSBADREQUEST"),
    (BadParameter, 400, "FSVALIDATION"),
    (BodyTooLarge, 413, "FSTOOLARGE"),
    (ValidationError, 400, "FSVALIDATION"),
    (TransformError, 400, "FSTRANSFORM"),
    (BatchWriteError, 400, "FSBATCH"),
    (RegistryConflict, 409, "FSCONFLICT"),
    (SchemaError, 400, "FSSCHEMA"),
    (NotFound, 404, "FSNOTFOUND"),
    (StoreUnavailable, 503, "FSUNAVAILABLE"),
    (StoreFull, 507, "FSFULL"),
    (LibraryError, 503, "FSLIBRARY"),
    (PermissionDenied, 403, "FSPERMISSION"),
    (CorruptValue, 500, "FSCORRUPT"),
    (FeatureStoreError, 500, "FSERROR"),
]
# aiohttp's own answers (no route, wrong method, body too large) and the token check's.
HTTP_CODES = {401: "FSUNAUTHORIZED", 403: "FSFORBIDDEN", 404: "FSNOTFOUND", 405: "FSMETHOD", 413: "FSTOOLARGE"}
INTERNAL = (500, "FSINTERNAL")
"""Anything unexpected: the details are in the log under the request id, never in the answer."""

# Rules whose ValidationError/NotFound carries an entity id (not a feature) in ``.feature``, and
# rules whose ``.feature`` names no feature at all (a field of the call, a lineage key).
_ENTITY_RULES = frozenset({"entity_id", "entity"})
_NOT_A_FEATURE = frozenset({"features", "write_id", "lineage"})


def answers() -> set[tuple[int, str]]:
    """Every (HTTP status, code) pair an error answer of the sidecar can carry."""
    return {(status, code) for _, status, code in ERRORS} | set(HTTP_CODES.items()) | {INTERNAL}


def json_error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    """``{"error": {"code", "message", ...extra}}`` with ``status``."""
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)


def classify(exc: BaseException) -> tuple[int, str] | None:
    """The (status, code) of a known exception, None for an unexpected one."""
    for kind, status, code in ERRORS:
        if isinstance(exc, kind):
            return status, code
    return None


def details(exc: BaseException) -> dict[str, Any]:
    """The fields beside code and message: ``feature`` only when a feature is meant (an entity id
    goes in ``entity``), ``rule``, ``parameter``, ``transform``, a batch's ``written``/``refused``."""
    if isinstance(exc, (ValidationError, NotFound)):
        name, rule = exc.feature, exc.rule
        if rule in _ENTITY_RULES:
            return {"entity": name, "rule": rule}
        if name == "-" or rule in _NOT_A_FEATURE or name.startswith("lineage.") or (
                rule == "type" and name in ("feature_names", "entity_ids")):
            return {"rule": rule}
        return {"feature": name, "rule": rule}
    if isinstance(exc, BadParameter):
        return {"parameter": exc.parameter, "rule": exc.rule}
    if isinstance(exc, TransformError):
        return {"transform": exc.transform}
    if isinstance(exc, CorruptValue):
        return {"entity": exc.entity, "feature": exc.feature, "rule": exc.rule}
    if isinstance(exc, PermissionDenied):
        return {"permission": exc.permission} if exc.permission else {}
    if isinstance(exc, BatchWriteError):
        return {"written": exc.written, "refused": {e: str(err) for e, err in exc.errors.items()}}
    return {}
