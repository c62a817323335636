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


_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
    "503": {"$ref": "#/components/responses/Unavailable"},
}
_ENTITY = {"name": "entity", "in": "path", "required": True, "description": "`<type>:<id>` or `<id>`",
           "schema": {"type": "string", "maxLength": 321}}
_FEATURE = {"name": "feature", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 128}}
_NAMES = {"name": "names", "in": "query", "required": False, "description": "feature names, comma separated",
          "schema": {"type": "string"}}


def _op(summary: str, responses: dict[str, Any], *, params: list[Any] | None = None, body: str | None = None,
        write: bool = False, tag: str = "features") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": {**responses, **_ERRORS}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = _body(body)
    if write:
        op["security"] = [{"bearer": []}]
    return op


@functools.cache
def spec() -> dict[str, Any]:
    value = {"description": "a number, string, bool, null, list; an embedding (array of numbers in JSON, "
                            "little-endian float bytes in msgpack); a timestamp (ISO 8601 in JSON)"}
    features = {"type": "object", "additionalProperties": value}
    return {
        "openapi": "3.0.3",
        "info": {"title": "fsredis sidecar", "version": __version__,
                 "description": "HTTP access to an fsredis feature store. Every data rule runs in Redis."},
        "paths": {
            "/healthz": {"get": _op("Liveness", {"200": {"description": "the process is alive"}}, tag="operations")},
            "/readyz": {"get": _op("Readiness: Redis reachable and the library loaded",
                                   {"200": {"description": "ready"}}, tag="operations")},
            "/metrics": {"get": _op("Prometheus metrics", {"200": {"description": "text exposition format"}},
                                    tag="operations")},
            "/openapi.json": {"get": _op("This document", {"200": {"description": "OpenAPI 3"}}, tag="operations")},
            "/v1/features/{entity}": {
                "get": _op("Read features of one entity", {"200": _ok("Features"), "404": _ok("Error", "nothing found")},
                           params=[_ENTITY, _NAMES]),
                "put": _op("Write features of one entity, atomically and versioned", {"200": _ok("Written")},
                           params=[_ENTITY], body="WriteRequest", write=True),
                "delete": _op("Delete features (all when names is absent)", {"200": _ok("Deleted")},
                              params=[_ENTITY, _NAMES], write=True),
            },
            "/v1/features:batch": {
                "post": _op("Read features of many entities", {"200": _ok("Batch")}, body="BatchRequest"),
            },
            "/v1/compute/{entity}": {
                "post": _op("Run the transforms on raw data and write their outputs", {"200": _ok("Computed")},
                            params=[_ENTITY], body="ComputeRequest", write=True),
            },
            "/v1/lineage/{entity}/{feature}": {
                "get": _op("Versions of one feature, newest first", {"200": _ok("Lineage"), "404": _ok("Error")},
                           params=[_ENTITY, _FEATURE, {"name": "limit", "in": "query", "schema": {"type": "integer",
                                                                                                  "minimum": 1}}]),
            },
            "/v1/rollback/{entity}/{feature}": {
                "post": _op("Write an earlier version's value again as a new version",
                            {"200": _ok("RolledBack"), "404": _ok("Error")},
                            params=[_ENTITY, _FEATURE], body="RollbackRequest", write=True),
            },
            "/v1/registry": {
                "get": _op("The schema registry of the namespace", {"200": _ok("Registry")}, tag="registry"),
                "put": _op("Apply a registry (dry_run=true: only diff)", {"200": _ok("Changes"),
                                                                         "409": _ok("Error")},
                           params=[{"name": "dry_run", "in": "query", "schema": {"type": "boolean"}}],
                           body="RegistryPut", write=True, tag="registry"),
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {
                name: {"description": text, "content": {"application/json": {"schema": _ref("Error")}}}
                for name, text in (("BadRequest", "validation or request error"), ("Unauthorized", "no token"),
                                   ("Forbidden", "wrong token"), ("Unavailable", "Redis unreachable"))
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message"],
                    "properties": {"code": {"type": "string", "description": "FSVALIDATION, FSNOTFOUND, ..."},
                                   "message": {"type": "string"}, "feature": {"type": "string"},
                                   "rule": {"type": "string"}, "transform": {"type": "string"}}}}},
                "Features": {"type": "object", "properties": {"entity_id": {"type": "string"}, "features": features}},
                "WriteRequest": {"type": "object", "required": ["features"], "properties": {
                    "features": features, "ttl": {"description": "seconds, or {name: seconds}"},
                    "source": {"type": "string"}, "write_id": {"type": "string"},
                    "lineage": {"type": "object"}}},
                "Written": {"type": "object", "properties": {"entity_id": {"type": "string"},
                                                             "written": {"type": "array", "items": {"type": "string"}}}},
                "Deleted": {"type": "object", "properties": {"entity_id": {"type": "string"},
                                                             "deleted": {"type": "integer"}}},
                "BatchRequest": {"type": "object", "required": ["entity_ids"], "properties": {
                    "entity_ids": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "names": {"type": "array", "items": {"type": "string"}}}},
                "Batch": {"type": "object", "properties": {"entities": {"type": "object",
                                                                        "additionalProperties": features}}},
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
                "Changes": {"type": "object", "properties": {"version": {"type": "integer"},
                                                             "changes": {"type": "array", "items": {"type": "object"}}}},
            },
        },
    }
