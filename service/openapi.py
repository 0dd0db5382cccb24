"""The service's OpenAPI 3.1 description, built from the app's own routes and `service.validation`'s bounds.

`document(routes)` refuses to build when a route has no description or a description no route
(path or method differing), so the contract served at `/openapi.json` cannot drift from the
code; tests/test_service_contract.py fuzzes the app against it (Schemathesis).
"""

from __future__ import annotations

import re

from service.validation import (
    DEFAULT_LIMIT,
    INT64_MAX,
    MAX_BODY_BYTES,
    MAX_EVENTS_PER_REQUEST,
    MAX_JSON_DEPTH,
    MAX_LIMIT,
    MAX_OBJECT_KEY_CHARS,
    MAX_TYPE_CHARS,
    OBJECT_KEY_PATTERN,
    OBJECT_PREFIX_PATTERN,
    STORABLE_PATTERN,
    TENANT_PATTERN,
)

VERSION = "1.0.0"


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str, headers: dict | None = None) -> dict:
    out = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


RETRY_AFTER = {
    "Retry-After": {
        "description": "whole seconds to wait before retrying",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}
STORABLE = "strings and keys without NUL (U+0000) or lone surrogates (U+D800-U+DFFF), which PostgreSQL cannot store"

SCHEMAS: dict[str, dict] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {
                "type": "string",
                "description": "a stable code: bad_request, body_too_large, "
                "batch_too_large, unauthorized, not_found, method_not_allowed, quota_exceeded, db_unavailable, "
                "region_passive, storage_unavailable, over_budget, internal_error",
            },
            "message": {"type": "string", "description": "what is wrong, where, and what is allowed"},
            "request_id": {"type": "string", "description": "on 500: the id the server logged the fault under"},
        },
    },
    "QuotaExceeded": {
        "allOf": [
            _ref("Error"),
            {
                "type": "object",
                "required": ["tenant", "quota", "limit", "retry_after_s"],
                "properties": {
                    "tenant": {"type": "string"},
                    "quota": {"enum": ["gql_qps", "ingest_eps", "storage_gb"]},
                    "limit": {"type": "integer"},
                    "retry_after_s": {"type": "number", "minimum": 0},
                },
            },
        ],
    },
    "Unavailable": {
        "allOf": [
            _ref("Error"),
            {
                "type": "object",
                "required": ["region", "role"],
                "properties": {"region": {"type": "string"}, "role": {"enum": ["primary", "dr"]}},
            },
        ],
    },
    "StorableString": {"type": "string", "pattern": STORABLE_PATTERN},
    "JsonValue": {
        "description": f"any JSON value; {STORABLE}; numbers finite",
        "anyOf": [
            {"type": "null"},
            {"type": "boolean"},
            {"type": "number"},
            _ref("StorableString"),
            {"type": "array", "items": _ref("JsonValue")},
            _ref("Payload"),
        ],
    },
    "Payload": {
        "type": "object",
        "description": f"any JSON object; {STORABLE}",
        "propertyNames": {"pattern": STORABLE_PATTERN},
        "additionalProperties": _ref("JsonValue"),
    },
    "EventType": {"type": "string", "minLength": 1, "maxLength": MAX_TYPE_CHARS, "pattern": STORABLE_PATTERN},
    "NewEvent": {
        "type": "object",
        "required": ["type"],
        "additionalProperties": False,
        "properties": {"type": _ref("EventType"), "payload": {**_ref("Payload"), "default": {}}},
    },
    "EventBatch": {
        "type": "object",
        "required": ["events"],
        "additionalProperties": False,
        "properties": {"events": {"type": "array", "minItems": 1, "maxItems": MAX_EVENTS_PER_REQUEST, "items": _ref("NewEvent")}},
    },
    "Event": {
        "type": "object",
        "required": ["id", "tenant", "type", "payload", "created_at"],
        "properties": {
            "id": {"type": "integer", "format": "int64", "minimum": 1, "maximum": INT64_MAX},
            "tenant": {"type": "string"},
            "type": {"type": "string"},
            "payload": {"type": "object"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "Where": {
        "type": "object",
        "required": ["region", "role"],
        "properties": {"region": {"type": "string"}, "role": {"enum": ["primary", "dr"]}},
    },
    "Written": {
        "allOf": [
            _ref("Where"),
            {
                "type": "object",
                "required": ["ids"],
                "properties": {"ids": {"type": "array", "items": {"type": "integer", "format": "int64", "minimum": 1}}},
            },
        ]
    },
    "EventList": {
        "allOf": [
            _ref("Where"),
            {
                "type": "object",
                "required": ["events"],
                "properties": {"events": {"type": "array", "maxItems": MAX_LIMIT, "items": _ref("Event")}},
            },
        ]
    },
    "StoredObject": {
        "allOf": [
            _ref("Where"),
            {
                "type": "object",
                "required": ["key", "size", "etag"],
                "properties": {"key": {"type": "string"}, "size": {"type": "integer", "minimum": 0}, "etag": {"type": "string"}},
            },
        ]
    },
    "ObjectList": {
        "allOf": [
            _ref("Where"),
            {
                "type": "object",
                "required": ["objects", "truncated"],
                "properties": {
                    "objects": {
                        "type": "array",
                        "maxItems": MAX_LIMIT,
                        "items": {
                            "type": "object",
                            "required": ["key", "size"],
                            "properties": {"key": {"type": "string"}, "size": {"type": "integer", "minimum": 0}},
                        },
                    },
                    "truncated": {"type": "boolean", "description": "more keys follow the last one (pass it as `after`)"},
                },
            },
        ]
    },
    "Live": {"allOf": [_ref("Where"), {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}]},
    "Health": {
        "allOf": [
            _ref("Where"),
            {
                "type": "object",
                "required": ["status", "db", "writes"],
                "properties": {
                    "status": {"enum": ["ok", "unhealthy"]},
                    "db": {"enum": ["reachable", "unreachable"], "description": "the region's own node (reads)"},
                    "db_role": {"enum": ["primary", "replica"], "description": "that node's role"},
                    "writes": {
                        "enum": ["ok", "forwarding", "passive", "unavailable"],
                        "description": "the write path: ok (a writable node), forwarding (an Aurora secondary "
                        "forwarding writes), passive (a passive region's replica, not promoted), unavailable",
                    },
                    "write_path": {"enum": ["direct", "forwarded", "passive"], "description": "how writes reach the writer"},
                    "problems": {"type": "array", "items": {"type": "string"}, "description": "why unhealthy"},
                    "error": {"type": "string"},
                    "write_error": {"type": "string"},
                },
            },
        ]
    },
}

ERRORS = {
    "400": _json(_ref("Error"), "input outside this contract: the message names what, where, and what is allowed"),
    "401": _json(
        _ref("Error"), "missing or unknown API key", {"WWW-Authenticate": {"required": True, "schema": {"const": "Bearer"}}}
    ),
    "403": _json(
        _ref("Error"),
        "over_budget: the tenant's spend has reached its monthly budget; new object writes are refused until it is "
        "under it again (a new month, a higher budget); reads go on",
    ),
    "404": _json(_ref("Error"), "no such resource; also another tenant's path (the same body: no oracle)"),
    "429": _json(_ref("QuotaExceeded"), "over the tenant's plan quota", RETRY_AFTER),
    "500": _json(_ref("Error"), "a fault of the service (logged under request_id); never an input's verdict"),
    "503": _json(
        _ref("Unavailable"),
        "the database cannot serve now (down, failing over, no primary), or a write to a passive region (region_passive)",
        RETRY_AFTER,
    ),
    "503-objects": _json(
        _ref("Unavailable"), "object storage cannot serve now (unreachable, throttling, not configured)", RETRY_AFTER
    ),
}


def _params(*names: str) -> list[dict]:
    table = {
        "tenant": {
            "name": "tenant",
            "in": "path",
            "required": True,
            "description": "the API key's own tenant id",
            "schema": {"type": "string", "pattern": TENANT_PATTERN},
        },
        "event_id": {
            "name": "event_id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "format": "int64", "minimum": 1, "maximum": INT64_MAX},
        },
        "after": {
            "name": "after",
            "in": "query",
            "description": "cursor: events with id > after",
            "schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": INT64_MAX, "default": 0},
        },
        "limit": {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        },
        "type": {"name": "type", "in": "query", "description": "only events of this type", "schema": _ref("EventType")},
        "key": {
            "name": "key",
            "in": "path",
            "required": True,
            "description": "the object's key inside the tenant's prefix",
            "schema": {"type": "string", "minLength": 1, "maxLength": MAX_OBJECT_KEY_CHARS, "pattern": OBJECT_KEY_PATTERN},
        },
        "prefix": {
            "name": "prefix",
            "in": "query",
            "description": "only keys starting with this",
            "schema": {"type": "string", "maxLength": MAX_OBJECT_KEY_CHARS, "pattern": OBJECT_PREFIX_PATTERN},
        },
        "after_key": {
            "name": "after",
            "in": "query",
            "description": "cursor: keys after this one",
            "schema": {"type": "string", "maxLength": MAX_OBJECT_KEY_CHARS, "pattern": OBJECT_PREFIX_PATTERN},
        },
    }
    return [table[n] for n in names]


def _errors(*codes: str) -> dict:
    return {c: ERRORS[c] for c in codes}


def _object_errors(*codes: str) -> dict:
    """The object API's errors: its 503 is object storage's, not the database's."""
    return {c: ERRORS["503-objects" if c == "503" else c] for c in codes}


OBJECT_NOTE = (
    "Stored in the tenant's own bucket and prefix (pool: the region's shared bucket under `tenants/t-<id>/`; "
    "silo: the tenant's own bucket), SSE-KMS under the tenant's own key, through credentials scoped to the tenant."
)


SECURED = [{"bearer": []}, {"apiKey": []}]

# route name -> (path, method, operation): one entry per route of service.app
OPERATIONS: dict[str, tuple[str, str, dict]] = {
    "livez": (
        "/livez",
        "get",
        {
            "summary": "Liveness: the process answers (no dependencies checked)",
            "security": [],
            "responses": {"200": _json(_ref("Live"), "up")},
        },
    ),
    "healthz": (
        "/healthz",
        "get",
        {
            "summary": "Deep health of this region: the front door's check (Route 53 / HAProxy)",
            "security": [],
            "description": "By the region's role. primary: 200 only while it serves reads (its own node "
            "reachable, role known) AND writes (a writable node, or its own Aurora secondary forwarding "
            "them). dr: 200 while it could take over: its own replica (or promoted node) answers and its "
            "write path is what a passive region has (forwarding on its Aurora secondary; or none until "
            "promotion, reported as writes: passive and not counted).",
            "responses": {
                "200": _json(_ref("Health"), "serving what the region's role needs"),
                "503": _json(_ref("Health"), "cannot serve what the region's role needs now", RETRY_AFTER),
            },
        },
    ),
    "openapi": (
        "/openapi.json",
        "get",
        {
            "summary": "This description",
            "security": [],
            "responses": {"200": _json({"type": "object"}, "the OpenAPI 3.1 document")},
        },
    ),
    "write_events": (
        "/v1/tenants/{tenant}/events",
        "post",
        {
            "summary": "Write events (one, or a batch)",
            "security": SECURED,
            "parameters": _params("tenant"),
            "requestBody": {
                "required": True,
                "x-max-body-bytes": MAX_BODY_BYTES,
                "x-max-json-depth": MAX_JSON_DEPTH,
                "description": f"at most {MAX_BODY_BYTES} bytes and {MAX_JSON_DEPTH} levels of nested arrays/objects; {STORABLE}",
                "content": {"application/json": {"schema": {"anyOf": [_ref("EventBatch"), _ref("NewEvent")]}}},
            },
            "responses": {
                "201": _json(_ref("Written"), "stored, through the region's write path"),
                **_errors("400", "401", "404"),
                "413": _json(
                    _ref("Error"), f"body over {MAX_BODY_BYTES} bytes, or a batch larger than the tenant's ingest burst"
                ),
                **_errors("429", "500", "503"),
            },
        },
    ),
    "list_events": (
        "/v1/tenants/{tenant}/events",
        "get",
        {
            "summary": "Read events in id order from the region's own node",
            "security": SECURED,
            "parameters": _params("tenant", "after", "limit", "type"),
            "responses": {
                "200": _json(_ref("EventList"), "events with id > after"),
                **_errors("400", "401", "404", "429", "500", "503"),
            },
        },
    ),
    "get_event": (
        "/v1/tenants/{tenant}/events/{event_id}",
        "get",
        {
            "summary": "One event",
            "security": SECURED,
            "parameters": _params("tenant", "event_id"),
            "responses": {"200": _json(_ref("Event"), "the event"), **_errors("400", "401", "404", "429", "500", "503")},
        },
    ),
    "list_objects": (
        "/v1/tenants/{tenant}/objects",
        "get",
        {
            "summary": "List the tenant's objects in key order",
            "description": OBJECT_NOTE,
            "security": SECURED,
            "parameters": _params("tenant", "prefix", "after_key", "limit"),
            "responses": {
                "200": _json(_ref("ObjectList"), "keys after `after`, at most `limit`"),
                **_object_errors("400", "401", "404", "429", "500", "503"),
            },
        },
    ),
    "put_object": (
        "/v1/tenants/{tenant}/objects/{key}",
        "put",
        {
            "summary": "Store an object (replaces one of the same key); counts against ingest_eps and storage_gb",
            "description": OBJECT_NOTE,
            "security": SECURED,
            "parameters": _params("tenant", "key"),
            "requestBody": {
                "required": True,
                "x-max-body-bytes": MAX_BODY_BYTES,
                "description": f"the object's bytes, at most {MAX_BODY_BYTES}",
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
            "responses": {
                "201": _json(_ref("StoredObject"), "stored"),
                **_object_errors("400", "401", "403", "404"),
                "413": _json(_ref("Error"), f"body over {MAX_BODY_BYTES} bytes"),
                **_object_errors("429", "500", "503"),
            },
        },
    ),
    "get_object": (
        "/v1/tenants/{tenant}/objects/{key}",
        "get",
        {
            "summary": "Read an object",
            "description": OBJECT_NOTE,
            "security": SECURED,
            "parameters": _params("tenant", "key"),
            "responses": {
                "200": {
                    "description": "the object's bytes",
                    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                },
                **_object_errors("400", "401", "404", "429", "500", "503"),
            },
        },
    ),
    "delete_object": (
        "/v1/tenants/{tenant}/objects/{key}",
        "delete",
        {
            "summary": "Delete an object (a delete marker in the versioned bucket)",
            "description": OBJECT_NOTE,
            "security": SECURED,
            "parameters": _params("tenant", "key"),
            "responses": {"204": {"description": "deleted"}, **_object_errors("400", "401", "404", "429", "500", "503")},
        },
    ),
}

_CONVERTOR = re.compile(r"\{(\w+):\w+\}")


def openapi_path(route_path: str) -> str:
    """A Starlette path as OpenAPI names it: `{key:path}` is `{key}`."""
    return _CONVERTOR.sub(r"{\1}", route_path)


def document(routes) -> dict:
    """The OpenAPI document for `routes` (Starlette Routes named as in OPERATIONS); ValueError on any mismatch."""
    paths: dict[str, dict] = {}
    described = dict(OPERATIONS)
    for route in routes:
        spec = described.pop(route.name, None)
        if spec is None:
            raise ValueError(f"route {route.name} ({route.path}) has no OpenAPI description in service/openapi.py")
        path, method, operation = spec
        methods = {m.lower() for m in route.methods} - {"head"}
        if path != openapi_path(route.path) or methods != {method}:
            raise ValueError(f"route {route.name}: {sorted(methods)} {route.path} but described as {method} {path}")
        paths.setdefault(path, {})[method] = {"operationId": route.name, **operation}
    if described:
        raise ValueError(f"described but not routed: {sorted(described)}")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "meridian reference service",
            "version": VERSION,
            "description": "Tenant-aware events and objects API. Every answer but an object's bytes is JSON; errors are "
            '`{"error": code, "message": ...}`. Every response carries `X-Request-Id` (the '
            "caller's, when it matches `^[A-Za-z0-9._-]{1,64}$`, else a fresh one).",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "the tenant's API key"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
