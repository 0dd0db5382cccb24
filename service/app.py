"""The reference service's HTTP API (the contract: `GET /openapi.json`, built by `service/openapi.py`).

    GET  /livez                                   process is up (no dependencies): the liveness probe
    GET  /healthz                                 deep: this region can serve what its role needs now; 503 if not
                                                  (primary: reads and writes; dr: take over, see `healthz`)
    GET  /openapi.json                            the OpenAPI 3.1 description of this API
    POST /v1/tenants/{tenant}/events              write events {"events": [{"type", "payload"}]} (or one event); 201 {"ids"}
    GET  /v1/tenants/{tenant}/events?after=&limit=&type=   read, from the region's own node (the replica in dr)
    GET  /v1/tenants/{tenant}/events/{id}         one event
    PUT  /v1/tenants/{tenant}/objects/{key}       store an object (bytes) in the tenant's bucket/prefix, under its KMS key
    GET  /v1/tenants/{tenant}/objects/{key}       read it back;  DELETE: remove it
    GET  /v1/tenants/{tenant}/objects?prefix=&after=&limit=   list the tenant's objects

Every /v1 request carries its tenant's API key (`Authorization: Bearer KEY` or `X-API-Key: KEY`).
No key or an unknown key: 401. A key for another tenant than the path names: 404, with the same
body as an absent resource, so a caller learns nothing about other tenants. Queries are scoped by
the key's tenant, never by the path; neither case touches the database. Over quota: 429
`{"error": "quota_exceeded", ...}` + Retry-After (rates: gql_qps per read, ingest_eps per event or
object written; storage_gb: the bytes under the tenant's prefix). A tenant over its monthly budget
(its keys tagged by the cap enforcer): an object PUT is 403 `over_budget` (no Retry-After: it lasts
until the tenant is under budget again), reads go on. Objects are reached only through
the tenant's own scoped credentials (`service/objects.py`). Input outside the contract: 400/413 naming what
and where (`service/validation.py`). The database unable to serve: 503 + Retry-After. A write to a
passive dr region (its RDS replica not promoted): 503 `region_passive` + Retry-After. Anything
else is a fault of ours: logged with its request id (`X-Request-Id`, echoed) and answered 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
import uuid
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route

from service import openapi, paths
from service.auth import key_from_headers
from service.objects import GIB, FollowsTenants, ObjectStore, ObjectsUnavailable, OverBudget, StorageFull
from service.quotas import QuotaBook, retry_after_header
from service.settings import ServiceSettings, VersionFault
from service.store import Passive, Store, Unavailable, readiness_problems
from service.tenants import TenantDirectory, TenantSet
from service.validation import (
    DEFAULT_LIMIT,
    INT64_MAX,
    MAX_LIMIT,
    REQUEST_ID_PATTERN,
    Invalid,
    int64_param,
    object_key,
    object_prefix,
    parse_events,
    read_body,
    type_param,
)

log = logging.getLogger("service")
access = logging.getLogger("service.access")

QUIET_PATHS = ("/healthz", "/livez")
VERSION_HEADER = b"x-meridian-version"
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def _error(status: int, error: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status, headers=headers)


# one body for "no such event" and "another tenant's path": no oracle for other tenants' existence
NOT_FOUND = {"error": "not_found", "message": "no such resource"}
INTERNAL = "internal_error"
STORAGE_RETRY_S = 60  # storage frees only when the tenant deletes: a retry before that is refused again
PASSIVE_RETRY_S = 30  # a passive region takes writes only after a promotion: minutes, not a blip


def request_id(scope) -> str:
    """The caller's X-Request-Id when it is a sane token, else a fresh one."""
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.fullmatch(text):
                return text
    return uuid.uuid4().hex[:16]


class AccessLog:
    """Pure ASGI middleware (BaseHTTPMiddleware costs too much): gives every request an id (echoed
    as X-Request-Id), turns an unexpected exception into a logged 500 with a JSON body, and writes
    one structured line per request."""

    def __init__(self, app, version: str = "stable", fault: VersionFault | None = None):
        self.app = app
        self.version = version.encode()
        self.fault = fault if fault is not None and fault.active else None
        self.rng = random.Random()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        if self.fault is not None and scope["path"].startswith("/v1/"):
            await asyncio.sleep(self.fault.latency_ms / 1000)
            if self.rng.random() < self.fault.error_rate:
                scope.setdefault("state", {})
                await _send_json(
                    send, 500, {"error": "injected_fault", "message": "rehearsal fault of this version"}, self.version
                )
                return
        state = {"status": 500, "started": False}
        scope.setdefault("state", {})
        rid = scope["state"]["rid"] = request_id(scope)

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                message["headers"] = [
                    *message.get("headers", ()),
                    (b"x-request-id", rid.encode()),
                    (VERSION_HEADER, self.version),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            log.exception("unhandled exception", extra={"rid": rid, "method": scope["method"], "path": scope["path"]})
            if state["started"]:
                raise  # the response is half sent: only the server can end the connection
            body = json.dumps(
                {"error": INTERNAL, "message": "internal error; quote the request id when reporting it", "request_id": rid}
            ).encode()
            await send_wrapper(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            # health checks every second would drown the log: only their failures are logged
            if scope["path"] not in QUIET_PATHS or state["status"] >= 400:
                route = scope.get("route")
                access.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "route": getattr(route, "path", None),
                        "status": state["status"],
                        "tenant": scope["state"].get("tenant"),
                        "dur_ms": round((time.perf_counter() - start) * 1000, 3),
                        "rid": rid,
                    },
                )


async def _send_json(send, status: int, body: dict, version: bytes) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), (VERSION_HEADER, version)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    """Starlette's own 404 (no route) and 405 (method), as JSON error bodies like every other answer."""
    error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = "no such resource" if exc.status_code == 404 else str(exc.detail)
    headers = exc.headers
    if exc.status_code == 405:
        # Starlette names only the first route's methods; one path is served by several routes here
        allowed = sorted({m for r in request.app.routes if r.matches(request.scope)[0] != Match.NONE for m in r.methods})
        headers = {"Allow": ", ".join(allowed)}
        message = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
    return JSONResponse({"error": error, "message": message}, status_code=exc.status_code, headers=headers)


def create_app(
    settings: ServiceSettings,
    store: Store,
    quotas: QuotaBook | None = None,
    objects: ObjectStore | None = None,
    clock: Callable[[], float] = time.monotonic,
    tenants: TenantDirectory | None = None,
) -> Starlette:
    """`tenants` default to the settings' (inline, plus the tenant files of `tenant_files_dir`,
    read now and followed every `tenant_poll_s` while the app runs); `quotas` default to theirs (the
    one source: the stack config, rendered into them), refilled by `clock`, kept in step with the
    tenants (a given book is used as it is); `objects` None: the object API answers 503 (no object
    storage configured)."""
    directory = tenants or TenantDirectory(settings.tenants, settings.tenant_files_dir)
    book = quotas or QuotaBook(directory.current.quotas(), clock=clock)
    where = {"region": settings.region, "role": settings.role}

    def serve(composed: TenantSet | None) -> None:
        """Swap in a new set with what follows it (quotas of an own book, object access), in one
        step of the event loop: no request sees a tenant without its quota or its data."""
        if composed is None:
            return
        directory.current = composed
        if quotas is None:
            book.set_quotas(composed.quotas())
        if isinstance(objects, FollowsTenants):
            objects.set_tenants(composed.data())

    serve(directory.reload())  # before the first request: the files as they are at start

    async def follow_tenant_files() -> None:
        """One task, one worker thread at a time: the request path never touches the files."""
        while True:
            await asyncio.sleep(settings.tenant_poll_s)
            try:
                serve(await asyncio.to_thread(directory.reload))
            except Exception:  # a bug here must not stop the following, nor the serving
                log.exception("tenant files reload failed; the tenants served stay as they were")

    def identify(request: Request) -> tuple[str | None, JSONResponse | None]:
        """The key's tenant, or the answer to give: decided before the body is read or anything
        reaches the database."""
        served = directory.current  # one set for the whole request, whatever a reload swaps in meanwhile
        tenant = served.tenant_of(key_from_headers(request.headers))
        if tenant is None:
            return None, _error(401, "unauthorized", "missing or unknown API key", {"WWW-Authenticate": "Bearer"})
        request.scope["state"]["tenant"] = tenant
        request.scope["state"]["storage_gb"] = served.entries[tenant].quota.storage_gb
        if request.path_params["tenant"] != tenant:
            return None, JSONResponse(NOT_FOUND, status_code=404)
        return tenant, None

    def charge(tenant: str, kind: str, cost: int = 1) -> JSONResponse | None:
        wait = book.take(tenant, kind, cost)
        if wait <= 0:
            return None
        limit = book.limit_of(tenant, kind)
        name = "ingest_eps" if kind == "write" else "gql_qps"
        if wait == float("inf"):
            return _error(413, "batch_too_large", f"{cost} events exceed the {name} burst of {limit}")
        return _error(
            429,
            "quota_exceeded",
            f"over the {name} quota of {limit}; retry after the Retry-After seconds",
            {"Retry-After": retry_after_header(wait)},
            tenant=tenant,
            quota=name,
            limit=limit,
            retry_after_s=round(wait, 3),
        )

    def authorize(request: Request, kind: str) -> tuple[str | None, JSONResponse | None]:
        tenant, denied = identify(request)
        return (tenant, denied) if denied else (tenant, charge(tenant, kind))

    def unavailable(exc: Exception) -> JSONResponse:
        log.warning("database unavailable", extra={"error": str(exc)})
        return _error(503, "db_unavailable", str(exc), {"Retry-After": "1"}, **where)

    def answers(handler):
        """The handler's contract errors and database outages as their JSON answers (400/413, 503)."""

        async def endpoint(request: Request) -> JSONResponse:
            try:
                return await handler(request)
            except Invalid as exc:
                return _error(exc.status, exc.error, exc.message)
            except Unavailable as exc:
                return unavailable(exc)
            except Passive as exc:
                return _error(503, "region_passive", str(exc), {"Retry-After": str(PASSIVE_RETRY_S)}, **where)
            except ObjectsUnavailable as exc:
                log.warning("object storage unavailable", extra={"error": str(exc)})
                return _error(503, "storage_unavailable", str(exc), {"Retry-After": "1"}, **where)
            except OverBudget as exc:  # the tenant's hard cap (components.cost): its own state, not a fault of ours
                return _error(403, "over_budget", str(exc), tenant=request.scope["state"]["tenant"])
            except StorageFull as exc:
                tenant, storage_gb = request.scope["state"]["tenant"], request.scope["state"]["storage_gb"]
                return _error(
                    429,
                    "quota_exceeded",
                    f"over the storage_gb quota of {storage_gb}: {exc.used} bytes stored; delete objects, then retry",
                    {"Retry-After": str(STORAGE_RETRY_S)},
                    tenant=tenant,
                    quota="storage_gb",
                    limit=storage_gb,
                    retry_after_s=STORAGE_RETRY_S,
                )

        return endpoint

    def object_store() -> ObjectStore:
        if objects is None:
            raise ObjectsUnavailable("no object storage is configured for this service")
        return objects

    async def livez(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", **where})

    async def healthz(request: Request) -> JSONResponse:
        """The readiness probe and Route 53's check, by the region's role (`readiness_problems`):
        the primary is healthy while it serves reads and writes; the dr region while it could take
        over (its own replica answers, its write path is what a passive region has: forwarding on
        its Aurora secondary, or none until promotion, declared `passive`). A region that could
        read but not take the writes its role needs would take traffic and 503 it."""
        h = await store.health()
        problems = readiness_problems(settings.role, settings.writes, h)
        ok = not problems
        return JSONResponse(
            {"status": "ok" if ok else "unhealthy", **where, **h, **({"problems": problems} if problems else {})},
            status_code=200 if ok else 503,
            headers=None if ok else {"Retry-After": "1"},
        )

    async def write_events(request: Request) -> JSONResponse:
        # the key first: an unauthenticated caller costs no body read or parse, and learns nothing
        tenant, denied = identify(request)
        if denied:
            return denied
        body = await read_body(request)
        try:
            events, problem = parse_events(body), None
        except Invalid as exc:
            events, problem = [], exc
        denied = charge(tenant, "write", max(1, len(events)))  # a refused body still costs one token
        if denied:
            return denied
        if problem:
            raise problem
        ids = await store.insert_events(tenant, events)
        return JSONResponse({"ids": ids, **where}, status_code=201)

    async def list_events(request: Request) -> JSONResponse:
        tenant, denied = authorize(request, "read")
        if denied:
            return denied
        q = request.query_params
        after = int64_param(q.get("after"), "after", default=0, minimum=0)
        limit = int64_param(q.get("limit"), "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        events = await store.list_events(tenant, after, limit, type_param(q.get("type")))
        return JSONResponse({"events": events, **where})

    async def get_event(request: Request) -> JSONResponse:
        tenant, denied = authorize(request, "read")
        if denied:
            return denied
        event_id = int64_param(request.path_params["event_id"], "event id", default=0, minimum=1, maximum=INT64_MAX)
        event = await store.get_event(tenant, event_id)
        return JSONResponse(event if event else NOT_FOUND, status_code=200 if event else 404)

    async def put_object(request: Request) -> JSONResponse:
        tenant, denied = identify(request)
        if denied:
            return denied
        key = object_key(request.path_params["key"])
        denied = charge(tenant, "write")
        if denied:
            return denied
        body = await read_body(request)
        stored = await object_store().put(tenant, key, body, request.scope["state"]["storage_gb"] * GIB)
        return JSONResponse({**stored, **where}, status_code=201)

    async def get_object(request: Request) -> Response:
        tenant, denied = authorize(request, "read")
        if denied:
            return denied
        body = await object_store().get(tenant, object_key(request.path_params["key"]))
        if body is None:
            return JSONResponse(NOT_FOUND, status_code=404)
        return Response(body, media_type="application/octet-stream")

    async def delete_object(request: Request) -> Response:
        tenant, denied = authorize(request, "write")
        if denied:
            return denied
        gone = await object_store().delete(tenant, object_key(request.path_params["key"]))
        return Response(status_code=204) if gone else JSONResponse(NOT_FOUND, status_code=404)

    async def list_objects(request: Request) -> JSONResponse:
        tenant, denied = authorize(request, "read")
        if denied:
            return denied
        q = request.query_params
        prefix = object_prefix(q.get("prefix"))
        after = object_prefix(q.get("after")) or None
        limit = int64_param(q.get("limit"), "limit", default=DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
        items, truncated = await object_store().list(tenant, prefix, after, limit)
        return JSONResponse({"objects": items, "truncated": truncated, **where})

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await store.start()
        log.info("service started", extra={"tenants": len(directory.current)})
        following = asyncio.create_task(follow_tenant_files()) if directory.directory is not None else None
        try:
            yield
        finally:
            if following is not None:
                following.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await following
            await store.close()

    async def openapi_json(request: Request) -> Response:
        return Response(contract_body, media_type="application/json")

    routes = [
        Route(paths.LIVEZ, livez, methods=["GET"], name="livez"),
        Route(paths.HEALTHZ, healthz, methods=["GET"], name="healthz"),
        Route(paths.OPENAPI, openapi_json, methods=["GET"], name="openapi"),
        Route(paths.EVENTS, answers(write_events), methods=["POST"], name="write_events"),
        Route(paths.EVENTS, answers(list_events), methods=["GET"], name="list_events"),
        Route(paths.EVENT, answers(get_event), methods=["GET"], name="get_event"),
        Route(paths.OBJECTS, answers(list_objects), methods=["GET"], name="list_objects"),
        Route(paths.OBJECT, answers(put_object), methods=["PUT"], name="put_object"),
        Route(paths.OBJECT, answers(get_object), methods=["GET"], name="get_object"),
        Route(paths.OBJECT, answers(delete_object), methods=["DELETE"], name="delete_object"),
    ]
    # built once, from these very routes: raises if a route and its description disagree
    contract_body = json.dumps(openapi.document(routes), sort_keys=True).encode()
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error})
    app.add_middleware(AccessLog, version=settings.version, fault=settings.fault)
    return app
