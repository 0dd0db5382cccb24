"""Every input gets a clear status from the service (in process, fast): the four inputs of issue 17
that were 500s (NUL in an event type or payload, a deeply nested body, a cursor beyond int64) and
their relatives are 400s naming what and where; a fault of ours is a logged 500 with a request id;
a database outage is 503 + Retry-After; /healthz also judges the write path.

The store is tests/helpers.py's MemoryStore, which refuses what PostgreSQL refuses: input the
app let through unchecked becomes a 500 here, as it did against the real database. The bounds are
written out (not imported) so these tests also run against code without `service.validation`.
"""

from __future__ import annotations

import logging
import warnings

import pytest

with warnings.catch_warnings():  # starlette 1.x nudges toward httpx2; httpx is what is pinned here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from service.app import create_app
from service.quotas import QuotaBook
from tests.helpers import UNLIMITED, MemoryStore, auth, service_settings

MAX_DEPTH = 32
INT64_MAX = 2**63 - 1
MAX_BODY = 1 << 20


@pytest.fixture
def env():
    store = MemoryStore()
    with TestClient(create_app(service_settings(), store, QuotaBook(UNLIMITED))) as client:
        yield client, store


def _bad_request(r, *words: str) -> dict:
    assert r.status_code == 400, (r.status_code, r.text)
    body = r.json()
    assert body["error"] == "bad_request" and body["message"]
    for w in words:
        assert w in body["message"], body["message"]
    return body


# --- the four inputs of issue 17 (500s before), and their relatives --------------------------------


def test_nul_in_an_event_type_is_400_naming_it(env):
    client, store = env
    r = client.post("/v1/tenants/acme/events", json={"events": [{"type": "ok"}, {"type": "a\x00b"}]}, headers=auth("acme"))
    _bad_request(r, "events[1].type", "NUL")
    assert store.rows == []  # nothing half written


def test_nul_inside_a_payload_is_400_naming_where(env):
    client, _ = env
    r = client.post("/v1/tenants/acme/events", json={"type": "t", "payload": {"a": [1, {"b": "x\x00"}]}}, headers=auth("acme"))
    _bad_request(r, "event.payload.a[1].b", "NUL")
    r = client.post("/v1/tenants/acme/events", json={"type": "t", "payload": {"k\x00": 1}}, headers=auth("acme"))
    _bad_request(r, "key", "NUL")


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 100_000])
def test_deeply_nested_body_is_400_before_parsing(env, depth):
    client, _ = env
    body = b'{"type": "t", "payload": {"a": ' + b"[" * depth + b"]" * depth + b"}}"
    _bad_request(client.post("/v1/tenants/acme/events", content=body, headers=auth("acme")), "nests deeper")


def test_nesting_at_the_limit_is_accepted(env):
    client, _ = env
    inner = MAX_DEPTH - 2  # the event object and its payload are two levels
    body = b'{"type": "t", "payload": {"a": ' + b"[" * (inner - 1) + b"]" * (inner - 1) + b"}}"
    assert client.post("/v1/tenants/acme/events", content=body, headers=auth("acme")).status_code == 201


@pytest.mark.parametrize("after", [str(INT64_MAX + 1), "9" * 40, "1" * 5000])
def test_cursor_beyond_int64_is_400(env, after):
    client, _ = env
    _bad_request(client.get(f"/v1/tenants/acme/events?after={after}", headers=auth("acme")), "after", str(INT64_MAX))


def test_cursor_at_int64_max_is_accepted(env):
    client, _ = env
    r = client.get(f"/v1/tenants/acme/events?after={INT64_MAX}", headers=auth("acme"))
    assert r.status_code == 200 and r.json()["events"] == []


@pytest.mark.parametrize(
    "body, where",
    [
        ('{"type": "\\ud800"}', "surrogate"),
        ('{"type": "t", "payload": {"x": "\\udfff"}}', "surrogate"),
        ('{"type": "t", "payload": {"x": 1e400}}', "out of range"),
        ('{"type": "t", "payload": {"x": NaN}}', "NaN"),
        ('{"type": "t", "payload": {"x": -Infinity}}', "Infinity"),
        ('{"type": "t", "extra": 1}', "unknown field"),
        ('{"events": [{"type": "t"}], "type": "t"}', "unknown field"),
        ('{"type": "' + "x" * 101 + '"}', "1..100"),
        ('"just a string"', "body must be"),
        (b'{"type": "\xff"}'.decode("latin-1"), "JSON"),
    ],
)
def test_other_unstorable_or_malformed_bodies_are_400(env, body, where):
    client, _ = env
    _bad_request(
        client.post(
            "/v1/tenants/acme/events", content=body.encode("latin-1" if "\xff" in body else "utf-8"), headers=auth("acme")
        ),
        where,
    )


@pytest.mark.parametrize(
    "query, word",
    [
        ("type=%00", "NUL"),
        ("type=" + "a" * 101, "type"),
        ("after=%D9%A3", "after"),
        ("after=1_0", "after"),
        ("after=+1", "after"),
        ("after=%201", "after"),
        ("limit=", "limit"),
        ("after=-1", "after"),
    ],
)
def test_bad_query_values_are_400(env, query, word):
    client, _ = env
    _bad_request(client.get(f"/v1/tenants/acme/events?{query}", headers=auth("acme")), word)


@pytest.mark.parametrize("event_id", ["0", str(INT64_MAX + 1), "x", "-1", "1.5", "%00"])
def test_event_ids_outside_int64_ids_are_400(env, event_id):
    client, _ = env
    _bad_request(client.get(f"/v1/tenants/acme/events/{event_id}", headers=auth("acme")), "event id")


def test_body_over_the_limit_is_413_declared_or_streamed(env):
    client, store = env
    big = b'{"type": "t", "payload": {"s": "' + b"x" * MAX_BODY + b'"}}'
    r = client.post("/v1/tenants/acme/events", content=big, headers=auth("acme"))
    assert r.status_code == 413 and r.json()["error"] == "body_too_large"
    r = client.post("/v1/tenants/acme/events", content=iter([big[:1000], big[1000:]]), headers=auth("acme"))  # chunked
    assert r.status_code == 413 and store.calls == 0


# --- statuses for the rest: faults, outages, unknown routes ---------------------------------------


class BrokenStore(MemoryStore):
    async def list_events(self, tenant, after, limit, type_):
        raise KeyError("a bug of ours")


def test_an_unexpected_exception_is_a_logged_500_with_its_request_id(caplog):
    with TestClient(create_app(service_settings(), BrokenStore(), QuotaBook(UNLIMITED))) as client:
        with caplog.at_level(logging.ERROR, logger="service"):
            r = client.get("/v1/tenants/acme/events", headers={**auth("acme"), "X-Request-Id": "req-42"})
    assert r.status_code == 500 and r.headers["x-request-id"] == "req-42"
    assert r.json() == {"error": "internal_error", "message": r.json()["message"], "request_id": "req-42"}
    faults = [rec for rec in caplog.records if rec.getMessage() == "unhandled exception"]
    assert faults and faults[0].rid == "req-42" and faults[0].exc_info[0] is KeyError


def test_database_down_is_503_with_retry_after_never_500(env):
    client, store = env
    store.down = True
    for r in (
        client.get("/v1/tenants/acme/events", headers=auth("acme")),
        client.get("/v1/tenants/acme/events/1", headers=auth("acme")),
        client.post("/v1/tenants/acme/events", json={"type": "t"}, headers=auth("acme")),
    ):
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json()["error"] == "db_unavailable" and r.json()["region"] == "us-east-1"


def test_request_ids_are_echoed_or_made(env):
    client, _ = env
    assert client.get("/livez", headers={"X-Request-Id": "abc.DEF_1-2"}).headers["x-request-id"] == "abc.DEF_1-2"
    made = client.get("/livez", headers={"X-Request-Id": "bad id\twith junk" * 10}).headers["x-request-id"]
    assert len(made) == 16 and made.isalnum()


def test_unknown_routes_and_methods_answer_json(env):
    client, _ = env
    r = client.get("/nope")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.delete("/v1/tenants/acme/events", headers=auth("acme"))
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed" and "GET" in r.headers["allow"]


# --- health: a region is healthy only while it can serve writes too -------------------------------


def test_healthz_is_503_when_writes_cannot_be_served_and_livez_stays_200(env):
    client, store = env
    assert client.get("/healthz").json() | {} == {
        "status": "ok",
        "region": "us-east-1",
        "role": "primary",
        "db": "reachable",
        "db_role": "primary",
        "writes": "ok",
    }
    store.writes_down = True  # the region's node answers reads; no primary takes writes
    h = client.get("/healthz")
    assert h.status_code == 503 and h.json()["writes"] == "unavailable" and h.headers["retry-after"] == "1"
    assert client.get("/v1/tenants/acme/events", headers=auth("acme")).status_code == 200  # reads still served
    assert client.get("/livez").status_code == 200
