"""The reference service's HTTP API.

    GET  /livez                                   process is up (no dependencies)
    GET  /healthz                                 deep: the region's database reachable and its role known; 503 if not
    POST /v1/tenants/{tenant}/events              write events {"events": [{"type", "payload"}]} (or one event); 201 {"ids"}
    GET  /v1/tenants/{tenant}/events?after=&limit=&type=   read, from the region's own node (the replica in dr)
    GET  /v1/tenants/{tenant}/events/{id}         one event

Every /v1 request carries its tenant's API key (`Authorization: Bearer KEY` or `X-API-Key: KEY`).
No key or an unknown key: 401. A key for another tenant than the path names: 404, with the same
body as an absent resource, so a caller learns nothing about other tenants. Queries are scoped by
the key's tenant, never by the path. Over quota: 429 `{"error": "quota_exceeded", ...}` + Retry-After.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from service.auth import KeyRing, key_from_headers
from service.quotas import QuotaBook, retry_after_header
from service.settings import ServiceSettings
from service.store import Store, Unavailable

log = logging.getLogger("service")
access = logging.getLogger("service.access")

MAX_EVENTS_PER_REQUEST = 1000
MAX_BODY_BYTES = 1 << 20
MAX_LIMIT = 1000
QUIET_PATHS = ("/healthz", "/livez")


def _error(status: int, error: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"error": error, **extra}, status_code=status, headers=headers)


NOT_FOUND = {"error": "not_found"}


class AccessLog:
    """Pure ASGI middleware: one structured line per request (BaseHTTPMiddleware costs too much)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        state = {"status": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            await send(message)

        scope.setdefault("state", {})
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            # health checks every second would drown the log: only their failures are logged
            if scope["path"] not in QUIET_PATHS or state["status"] >= 400:
                route = scope.get("route")
                access.info("request", extra={
                    "method": scope["method"], "path": scope["path"], "route": getattr(route, "path", None),
                    "status": state["status"], "tenant": scope["state"].get("tenant"),
                    "dur_ms": round((time.perf_counter() - start) * 1000, 3),
                    "rid": scope["state"].get("rid"),
                })


def create_app(settings: ServiceSettings, store: Store, quotas: QuotaBook | None = None) -> Starlette:
    ring = KeyRing({d: t.id for t in settings.tenants for d in t.key_sha256})
    book = quotas or QuotaBook({t.id: t.quota for t in settings.tenants})
    where = {"region": settings.region, "role": settings.role}

    def authorize(request: Request, kind: str, cost: int = 1) -> tuple[str | None, JSONResponse | None]:
        request.scope["state"]["rid"] = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        tenant = ring.tenant_of(key_from_headers(request.headers))
        if tenant is None:
            return None, _error(401, "unauthorized", {"WWW-Authenticate": "Bearer"}, message="missing or unknown API key")
        request.scope["state"]["tenant"] = tenant
        if request.path_params["tenant"] != tenant:
            # the same answer as for an absent resource: no oracle for other tenants' existence
            return None, JSONResponse(NOT_FOUND, status_code=404)
        wait = book.take(tenant, kind, cost)
        if wait > 0:
            limit = book.limit_of(tenant, kind)
            name = "ingest_eps" if kind == "write" else "gql_qps"
            if wait == float("inf"):
                return None, _error(413, "batch_too_large", message=f"{cost} events exceed the {name} burst of {limit}")
            return None, _error(429, "quota_exceeded", {"Retry-After": retry_after_header(wait)},
                                tenant=tenant, quota=name, limit=limit, retry_after_s=round(wait, 3))
        return tenant, None

    def unavailable(exc: Exception) -> JSONResponse:
        log.warning("database unavailable", extra={"error": str(exc)})
        return _error(503, "db_unavailable", {"Retry-After": "1"}, message=str(exc), **where)

    async def livez(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", **where})

    async def healthz(request: Request) -> JSONResponse:
        h = await store.health()
        ok = h.get("db") == "reachable" and h.get("db_role") in ("primary", "replica")
        return JSONResponse({"status": "ok" if ok else "unhealthy", **where, **h}, status_code=200 if ok else 503)

    async def write_events(request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, "body_too_large", message=f"at most {MAX_BODY_BYTES} bytes")
        events, problem = _parse_events(body)
        # key and tenant are checked before the body's validity is reported: no oracle to unauthenticated callers
        tenant, denied = authorize(request, "write", max(1, len(events)))
        if denied:
            return denied
        if problem:
            return _error(400, "bad_request", message=problem)
        try:
            ids = await store.insert_events(tenant, events)
        except Unavailable as exc:
            return unavailable(exc)
        return JSONResponse({"ids": ids, **where}, status_code=201)

    async def list_events(request: Request) -> JSONResponse:
        tenant, denied = authorize(request, "read")
        if denied:
            return denied
        try:
            after = int(request.query_params.get("after", "0"))
            limit = int(request.query_params.get("limit", "100"))
        except ValueError:
            return _error(400, "bad_request", message="after and limit must be integers")
        if not 1 <= limit <= MAX_LIMIT or after < 0:
            return _error(400, "bad_request", message=f"limit must be 1..{MAX_LIMIT} and after >= 0")
        try:
            events = await store.list_events(tenant, after, limit, request.query_params.get("type"))
        except Unavailable as exc:
            return unavailable(exc)
        return JSONResponse({"events": events, **where})

    async def get_event(request: Request) -> JSONResponse:
        tenant, denied = authorize(request, "read")
        if denied:
            return denied
        try:
            event_id = int(request.path_params["event_id"])
        except ValueError:
            return JSONResponse(NOT_FOUND, status_code=404)
        if not 0 < event_id < 2**63:
            return JSONResponse(NOT_FOUND, status_code=404)
        try:
            event = await store.get_event(tenant, event_id)
        except Unavailable as exc:
            return unavailable(exc)
        return JSONResponse(event if event else NOT_FOUND, status_code=200 if event else 404)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await store.start()
        log.info("service started", extra={"tenants": len(settings.tenants)})
        try:
            yield
        finally:
            await store.close()

    routes = [
        Route("/livez", livez),
        Route("/healthz", healthz),
        Route("/v1/tenants/{tenant}/events", write_events, methods=["POST"]),
        Route("/v1/tenants/{tenant}/events", list_events, methods=["GET"]),
        Route("/v1/tenants/{tenant}/events/{event_id}", get_event, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(AccessLog)
    return app


def _parse_events(body: bytes) -> tuple[list[tuple[str, dict]], str | None]:
    import json

    try:
        doc = json.loads(body or b"null")
    except ValueError:
        return [], "body must be JSON"
    items = doc.get("events") if isinstance(doc, dict) and "events" in doc else [doc]
    if not isinstance(items, list) or not items:
        return [], 'body must be {"events": [{"type": str, "payload": object}, ...]} or one event'
    if len(items) > MAX_EVENTS_PER_REQUEST:
        return [], f"at most {MAX_EVENTS_PER_REQUEST} events per request"
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str) or not 0 < len(item["type"]) <= 100:
            return [], f"events[{i}].type must be a string of 1..100 characters"
        payload = item.get("payload", {})
        if not isinstance(payload, dict):
            return [], f"events[{i}].payload must be an object"
        out.append((item["type"], payload))
    return out, None
