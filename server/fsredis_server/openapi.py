"""The OpenAPI 3 document served at ``/openapi.json``; a test keeps it in step with ROUTES."""

from __future__ import annotations

import functools
from typing import Any

from fsredis import __version__


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _body(schema: str) -> dict[str, Any]:
    media = {"schema": _ref(schema)}
    return {"required": True, "content": {"application/json": media, "application/msgpack": media}}


def _ok(schema: str, description: str = "OK") -> dict[str, Any]:
    media = {"schema": _ref(schema)}
    return {"description": description, "content": {"application/json": media, "application/msgpack": media}}


CODES: list[tuple[int, str, str]] = [
    (400, "FSBADREQUEST", "the request cannot be read: malformed body, wrong shape, a field of the wrong type"),
    (400, "FSVALIDATION", "a value, entity id, feature name or query parameter breaks a rule; nothing was written"),
    (400, "FSTRANSFORM", "a transform failed on the raw data"),
    (400, "FSBATCH", "some entities of a batch write were refused"),
    (400, "FSSCHEMA", "a feature definition or registry change is invalid"),
    (401, "FSUNAUTHORIZED", "the route needs Authorization: Bearer <token>"),
    (403, "FSFORBIDDEN", "the token is not valid"),
    (403, "FSPERMISSION", "the Redis user of the sidecar lacks an ACL permission (named in 'permission')"),
    (404, "FSNOTFOUND", "no such route, entity, feature or version"),
    (405, "FSMETHOD", "the path exists but not with this method (the Allow header lists those that do)"),
    (409, "FSCONFLICT", "the registry changed concurrently"),
    (413, "FSTOOLARGE", "the body is larger than max_body_bytes, counted after decompression"),
    (500, "FSINTERNAL", "an unexpected failure; the details are in the log under the request id"),
    (500, "FSERROR", "an unexpected error of the store"),
    (500, "FSCORRUPT", "a stored value cannot be read back (written around the library's checks, or "
                       "damaged); 'entity' and 'feature' name it"),
    (503, "FSUNAVAILABLE", "Redis is unreachable or did not answer within request_timeout; a write may or "
                           "may not have been applied (retry it with the same write_id)"),
    (503, "FSLIBRARY", "the Lua library on Redis is missing or of another version"),
    (507, "FSFULL", "Redis is out of memory"),
]
"""Every (HTTP status, error code) the sidecar answers with, and what it means (a test compares
it with the code, :func:`fsredis_server.errors.answers`, and with the README)."""

_RESPONSES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
              409: "Conflict", 413: "TooLarge", 500: "Internal", 503: "Unavailable", 507: "Full"}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/{_RESPONSES[s]}"} for s in statuses}


_REDIS = (400, 401, 403, 500, 503)
"""What any route that calls Redis may answer besides its own: bad input, auth, a failure, Redis
unavailable (or not answering within request_timeout)."""
_BODY = (413,)
_ENTITY = {"name": "entity", "in": "path", "required": True,
           "description": "`<type>:<id>` or `<id>` (any path segment; an invalid one is 400 FSVALIDATION)",
           "schema": {"type": "string", "maxLength": 321}}
_FEATURE = {"name": "feature", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 128}}
_NAMES = {"name": "names", "in": "query", "required": False, "description": "feature names, comma separated",
          "schema": {"type": "string"}}
_AS_OF = {"name": "as_of", "in": "query", "required": False,
          "description": "read the features as they were then: seconds since the epoch, or an ISO 8601 time with "
                         "its offset. Per feature the version with the newest event time at or before it; the "
                         "features whose value then the kept history cannot tell are listed in beyond_retention",
          "schema": {"type": "string"}}
_DRY_RUN = {"name": "dry_run", "in": "query", "required": False,
            "description": "true, false, 1 or 0 (any case); anything else is 400 FSVALIDATION",
            "schema": {"type": "boolean", "default": False}}


def _op(summary: str, responses: dict[str, Any], *, params: list[Any] | None = None, body: str | None = None,
        write: bool = False, tag: str = "features", errors: tuple[int, ...] = _REDIS) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag],
                          "responses": {**responses, **_errors(*errors, *(_BODY if body else ()))}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = _body(body)
    if write:
        op["security"] = [{"bearer": []}]
    return op


def _limit(default: int, most: int) -> dict[str, Any]:
    return {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": most,
                                                       "default": default}}


@functools.cache
def spec() -> dict[str, Any]:
    value = {"description": "a number, string, bool, null, list; an embedding (array of numbers in JSON, "
                            "little-endian float bytes in msgpack); a timestamp (ISO 8601 in JSON)"}
    features = {"type": "object", "additionalProperties": value}
    return {
        "openapi": "3.0.3",
        "info": {"title": "fsredis sidecar", "version": __version__,
                 "description": "HTTP access to an fsredis feature store. Every data rule runs in Redis. "
                                "Errors are JSON with a stable code (components/responses); a path that "
                                "exists answers another method with 405 FSMETHOD, an unknown path with "
                                "404 FSNOTFOUND."},
        "paths": {
            "/healthz": {"get": _op("Liveness", {"200": {"description": "the process is alive"}},
                                    tag="operations", errors=())},
            "/readyz": {"get": _op("Readiness: Redis answered the last check and runs this build's library",
                                   {"200": {"description": "ready"}, "503": {"description": "not ready (the reason "
                                                                                        "is in the body)"}},
                                   tag="operations", errors=())},
            "/metrics": {"get": _op("Prometheus metrics", {"200": {"description": "text exposition format"}},
                                    tag="operations", errors=())},
            "/openapi.json": {"get": _op("This document", {"200": {"description": "OpenAPI 3"}}, tag="operations",
                                         errors=())},
            "/v1/features/{entity}": {
                "get": _op("Read features of one entity", {"200": _ok("Features"), "404": _ok("Error", "nothing found")},
                           params=[_ENTITY, _NAMES, _AS_OF]),
                "put": _op("Write features of one entity, atomically and versioned", {"200": _ok("Written")},
                           params=[_ENTITY], body="WriteRequest", write=True, errors=(*_REDIS, 507)),
                "delete": _op("Delete features (all when names is absent)", {"200": _ok("Deleted")},
                              params=[_ENTITY, _NAMES], write=True),
            },
            "/v1/features:batch": {
                "post": _op("Read features of many entities", {"200": _ok("Batch")}, body="BatchRequest"),
            },
            "/v1/ingest": {
                "post": {**_op("Write a stream of rows, 500 at a time as they arrive; refused rows are counted, "
                               "not fatal", {"200": _ok("Ingested")}, write=True, errors=(*_REDIS, 400, 413, 507),
                               params=[{"name": "source", "in": "query", "required": False,
                                        "schema": {"type": "string"}, "description": "lineage source of every row"}]),
                         "requestBody": {"required": True, "content": {
                             "application/x-ndjson": {"schema": _ref("IngestRow")},
                             "application/msgpack": {"schema": _ref("IngestRow")}}}},
            },
            "/v1/compute/{entity}": {
                "post": _op("Run the transforms on raw data and write their outputs", {"200": _ok("Computed")},
                            params=[_ENTITY], body="ComputeRequest", write=True, errors=(*_REDIS, 507)),
            },
            "/v1/lineage/{entity}/{feature}": {
                "get": _op("Versions of one feature, newest first", {"200": _ok("Lineage"), "404": _ok("Error")},
                           params=[_ENTITY, _FEATURE, {"name": "limit", "in": "query", "schema": {"type": "integer",
                                                                                                  "minimum": 1}}]),
            },
            "/v1/rollback/{entity}/{feature}": {
                "post": _op("Write an earlier version's value again as a new version",
                            {"200": _ok("RolledBack"), "404": _ok("Error")},
                            params=[_ENTITY, _FEATURE], body="RollbackRequest", write=True, errors=(*_REDIS, 507)),
            },
            "/v1/registry": {
                "get": _op("The schema registry of the namespace", {"200": _ok("Registry")}, tag="registry"),
                "put": _op("Apply a registry (dry_run=true: only diff)", {"200": _ok("Changes"),
                                                                         "409": _ok("Error")},
                           params=[_DRY_RUN], body="RegistryPut", write=True, tag="registry"),
            },
            "/v1/registry/history": {
                "get": _op("The newest registry changes, newest first", {"200": _ok("RegistryHistory")},
                           params=[_limit(20, 1000)], tag="registry"),
            },
            "/v1/entities": {
                "get": _op("Entity ids found by SCAN (every primary of a cluster), sorted; bounded by limit and "
                           "by the request's deadline", {"200": _ok("Entities")},
                           params=[{"name": "type", "in": "query", "schema": {"type": "string"},
                                    "description": "only this entity type"},
                                   {"name": "match", "in": "query", "schema": {"type": "string"},
                                    "description": "a glob on the id (default *)"}, _limit(100, 1000)]),
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                name: {"description": "; ".join(f"{code}: {text}" for s, code, text in CODES if s == status),
                       "content": {"application/json": {"schema": _ref("Error")}}}
                for status, name in _RESPONSES.items()
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": sorted({code for _, code, _ in CODES}),
                                 "description": "; ".join(f"{code} ({status})" for status, code, _ in CODES)},
                        "message": {"type": "string"},
                        "feature": {"type": "string", "description": "the feature concerned; absent when none is"},
                        "entity": {"type": "string", "description": "the entity id concerned (rule entity_id: "
                                                                    "an invalid id; rule entity: nothing found)"},
                        "rule": {"type": "string"},
                        "parameter": {"type": "string", "description": "the query parameter that did not parse"},
                        "transform": {"type": "string"}}}}},
                "Features": {"type": "object", "properties": {
                    "entity_id": {"type": "string"}, "features": features,
                    "beyond_retention": {"type": "array", "items": {"type": "string"},
                                         "description": "with as_of only: features whose value then the kept "
                                                        "history cannot tell (max_versions trimmed it)"}}},
                "WriteRequest": {"type": "object", "required": ["features"], "properties": {
                    "features": features, "ttl": {"description": "seconds, or {name: seconds}"},
                    "source": {"type": "string"}, "write_id": {"type": "string"},
                    "lineage": {"type": "object"},
                    "event_time": {"description": "when the values were true: seconds since the epoch, or an "
                                   "ISO 8601 time with its offset; default the server's time. An older event "
                                   "than the current value's goes to history only"}}},
                "Written": {"type": "object", "properties": {
                    "entity_id": {"type": "string"}, "written": {"type": "array", "items": {"type": "string"}},
                    "applied": {"type": "boolean", "description": "false: this write_id was applied before"},
                    "versions": {"type": "object", "additionalProperties": {"type": "integer"},
                                 "description": "the version each feature got"},
                    "history_only": {"type": "array", "items": {"type": "string"},
                                     "description": "features whose event was older than their current value's"}}},
                "Deleted": {"type": "object", "properties": {"entity_id": {"type": "string"},
                                                             "deleted": {"type": "integer"}}},
                "BatchRequest": {"type": "object", "required": ["entity_ids"], "properties": {
                    "entity_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "names": {"type": "array", "items": {"type": "string"}},
                    "as_of": {"description": "read the features as they were then (seconds since the epoch or "
                                             "ISO 8601 with its offset; see the as_of query parameter)"}}},
                "Batch": {"type": "object", "properties": {
                    "entities": {"type": "object", "additionalProperties": features},
                    "beyond_retention": {"type": "object", "description": "with as_of only: entity id -> features "
                                         "whose value then the kept history cannot tell",
                                         "additionalProperties": {"type": "array", "items": {"type": "string"}}},
                    "errors": {"type": "object", "description": "only when stored values cannot be read: entity id "
                               "-> {code: FSCORRUPT, feature, message}; those features are absent from entities",
                               "additionalProperties": {"type": "object"}}}},
                "IngestRow": {"type": "object", "required": ["entity_id", "features"],
                              "description": "one row of the stream: a line of NDJSON, or one msgpack object",
                              "properties": {"entity_id": {"type": "string"}, "features": features,
                                             "event_time": {"description": "seconds since the epoch or ISO 8601"},
                                             "write_id": {"type": "string"}}},
                "Ingested": {"type": "object", "properties": {
                    "rows": {"type": "integer"}, "written": {"type": "integer"},
                    "already_applied": {"type": "integer"}, "history_only": {"type": "integer"},
                    "rejected": {"type": "integer"},
                    "errors": {"type": "array", "items": {"type": "object"},
                               "description": "the first refused rows: {row, entity_id, code, message}"}}},
                "ComputeRequest": {"type": "object", "required": ["raw_data"], "properties": {
                    "raw_data": {"type": "object"}, "source": {"type": "string"}, "write_id": {"type": "string"}}},
                "Computed": {"type": "object", "properties": {"entity_id": {"type": "string"},
                                                              "computed": {"type": "boolean"}}},
                "Lineage": {"type": "object", "properties": {
                    "entity_id": {"type": "string"}, "feature": {"type": "string"},
                    "current_version": {"type": "integer"}, "expires_at": {"type": "number", "nullable": True},
                    "versions": {"type": "array", "items": {"type": "object"}}}},
                "RollbackRequest": {"type": "object", "required": ["version"], "properties": {
                    "version": {"type": "integer", "minimum": 1}, "write_id": {"type": "string"}}},
                "RolledBack": {"type": "object", "properties": {"entity_id": {"type": "string"},
                                                                "feature": {"type": "string"},
                                                                "version": {"type": "integer"}}},
                "Registry": {"type": "object", "properties": {"version": {"type": "integer"},
                                                              "strict": {"type": "boolean"},
                                                              "groups": {"type": "object"}}},
                "RegistryPut": {"type": "object", "required": ["registry"], "properties": {
                    "registry": {"type": "object", "description": "the features.yaml structure"},
                    "force": {"type": "boolean"}, "author": {"type": "string"}}},
                "RegistryHistory": {"type": "object", "properties": {"history": {"type": "array", "items": {
                    "type": "object", "properties": {"version": {"type": "integer"}, "at": {"type": "number"},
                                                     "by": {"type": "string"},
                                                     "changes": {"type": "array", "items": {"type": "object"}}}}}}},
                "Entities": {"type": "object", "properties": {
                    "entities": {"type": "array", "items": {"type": "string"}},
                    "complete": {"type": "boolean", "description": "false: the limit stopped the scan"}}},
                "Changes": {"type": "object", "properties": {"version": {"type": "integer"},
                                                             "changes": {"type": "array", "items": {"type": "object"}}}},
            },
        },
    }
