"""The paths the service serves. `app` routes them; `meridian preflight` checks the workload's probes
against them without loading Starlette or asyncpg (a preview needs neither)."""

from __future__ import annotations

LIVEZ = "/livez"
HEALTHZ = "/healthz"
OPENAPI = "/openapi.json"
EVENTS = "/v1/tenants/{tenant}/events"
EVENT = "/v1/tenants/{tenant}/events/{event_id}"
OBJECTS = "/v1/tenants/{tenant}/objects"
OBJECT = "/v1/tenants/{tenant}/objects/{key:path}"

SERVED = frozenset({LIVEZ, HEALTHZ, OPENAPI, EVENTS, EVENT, OBJECTS, OBJECT})
