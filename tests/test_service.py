"""The reference service without a database: quotas, keys, tenant isolation, errors (fast).

`MemoryStore` (tests/helpers.py) is a test double of `service.store.Store`; the same behaviours run against real
PostgreSQL in tests/test_sandbox_integration.py.
"""

from __future__ import annotations

import math
import string
import urllib.parse
import warnings

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

with warnings.catch_warnings():  # starlette 1.x nudges toward httpx2; httpx is what is pinned here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from service.app import create_app
from service.auth import KeyRing, key_digest, key_from_headers, new_api_key
from service.objects import GIB
from service.quotas import QuotaBook, TenantQuota, TokenBucket, retry_after_header
from tests.helpers import KEYS, TENANTS, MemoryObjects, MemoryStore, auth, service_settings

# --- token bucket arithmetic --------------------------------------------------------------------

rates = st.floats(min_value=0.5, max_value=5000, allow_nan=False)
times = st.lists(st.tuples(st.floats(min_value=0, max_value=5, allow_nan=False), st.integers(1, 20)), min_size=1, max_size=60)


@given(rate=rates, steps=times)
def test_bucket_never_grants_more_than_burst_plus_refill(rate, steps):
    b = TokenBucket(rate, rate, stamp=0.0)
    now, granted = 0.0, 0.0
    for dt, n in steps:
        now += dt
        if b.take(n, now) == 0.0:
            granted += n
    assert granted <= rate + rate * now + 1e-6


@given(rate=rates, n=st.integers(1, 50), spent=st.floats(min_value=0, max_value=1, allow_nan=False))
def test_retry_after_is_exactly_when_the_request_fits(rate, n, spent):
    assume(n <= rate)
    b = TokenBucket(rate, rate, stamp=0.0)
    b.tokens = rate * (1 - spent)
    wait = b.take(n, 0.0)
    if wait == 0.0:
        return
    assert wait > 0
    # "A moment before" must be one the token count can represent: a deficit of a few ulps of the
    # count (found by hypothesis: spent = 2.2e-16) refills within the float's rounding of it.
    assume(wait * rate > 1e-9)  # the deficit, in tokens
    assert b.take(n, wait * 0.999) > 0  # not a moment before
    assert b.take(n, wait + 1e-9) == 0.0  # and then it fits


def test_bucket_refuses_a_request_larger_than_its_burst():
    assert TokenBucket(10, 10).take(11, 0.0) == math.inf


def test_bucket_rejects_zero_rate():
    with pytest.raises(ValueError):
        TokenBucket(0, 1)


@given(st.floats(min_value=1e-9, max_value=1e6, allow_nan=False))
def test_retry_after_header_rounds_up_to_whole_seconds(wait):
    assert int(retry_after_header(wait)) == max(1, math.ceil(wait))


def test_quota_book_keeps_tenants_apart():
    clock = [0.0]
    book = QuotaBook({"a": TenantQuota(5, 100, 1), "b": TenantQuota(5, 100, 1)}, clock=lambda: clock[0])
    assert all(book.take("a", "read") == 0 for _ in range(5))
    assert book.take("a", "read") > 0
    assert book.take("b", "read") == 0  # a's burst does not touch b
    assert book.take("a", "write", 100) == 0  # nor a's writes
    clock[0] = 0.2
    assert book.take("a", "read") == 0  # refilled 1 token


# --- keys ---------------------------------------------------------------------------------------


def test_keys_are_checked_by_digest():
    k = new_api_key("acme")
    ring = KeyRing({key_digest(k): "acme"})
    assert ring.tenant_of(k) == "acme"
    assert ring.tenant_of(k + "x") is None
    assert ring.tenant_of("") is None and ring.tenant_of(None) is None
    assert new_api_key("acme") != k


def test_key_from_headers():
    assert key_from_headers({"authorization": "Bearer abc"}) == "abc"
    assert key_from_headers({"authorization": "bearer  abc "}) == "abc"
    assert key_from_headers({"x-api-key": "xyz"}) == "xyz"
    assert key_from_headers({}) is None


# --- the app over an in-memory store ------------------------------------------------------------


@pytest.fixture
def env():
    store = MemoryStore()
    clock = [0.0]
    book = QuotaBook(TENANTS, clock=lambda: clock[0])
    with TestClient(create_app(service_settings(), store, book, MemoryObjects(store))) as client:
        yield client, store, clock


def test_write_then_read_own_events(env):
    client, _, _ = env
    r = client.post(
        "/v1/tenants/acme/events", json={"events": [{"type": "a", "payload": {"n": 1}}, {"type": "b"}]}, headers=auth("acme")
    )
    assert r.status_code == 201 and len(r.json()["ids"]) == 2
    r = client.get("/v1/tenants/acme/events?type=a", headers=auth("acme"))
    assert [e["payload"] for e in r.json()["events"]] == [{"n": 1}]
    eid = r.json()["events"][0]["id"]
    assert client.get(f"/v1/tenants/acme/events/{eid}", headers=auth("acme")).json()["id"] == eid


def test_no_key_or_unknown_key_is_401(env):
    client, _, _ = env
    assert client.get("/v1/tenants/acme/events").status_code == 401
    r = client.get("/v1/tenants/acme/events", headers={"X-API-Key": "nope"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_another_tenants_data_is_404_and_never_returned(env):
    client, _, _ = env
    eid = client.post(
        "/v1/tenants/acme/events", json={"type": "secret", "payload": {"s": "acme-only"}}, headers=auth("acme")
    ).json()["ids"][0]
    for path in ("/v1/tenants/acme/events", f"/v1/tenants/acme/events/{eid}"):
        r = client.get(path, headers=auth("globex"))
        assert r.status_code == 404 and "acme-only" not in r.text
    # globex's own path never shows acme's event either, even by its id
    assert client.get(f"/v1/tenants/globex/events/{eid}", headers=auth("globex")).status_code == 404
    r = client.post("/v1/tenants/acme/events", json={"type": "x"}, headers=auth("globex"))
    assert r.status_code == 404


def test_read_quota_429_with_retry_after_and_neighbour_unaffected(env):
    client, _, _ = env
    codes = [client.get("/v1/tenants/initech/events", headers=auth("initech")).status_code for _ in range(60)]
    assert codes[:50] == [200] * 50 and set(codes[50:]) == {429}
    r = client.get("/v1/tenants/initech/events", headers=auth("initech"))
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert body["error"] == "quota_exceeded" and body["quota"] == "gql_qps" and body["limit"] == 50
    assert all(client.get("/v1/tenants/globex/events", headers=auth("globex")).status_code == 200 for _ in range(100))


def test_write_quota_counts_events_and_refills(env):
    client, _, clock = env
    batch = {"events": [{"type": "e"}] * 600}
    assert client.post("/v1/tenants/initech/events", json=batch, headers=auth("initech")).status_code == 201
    r = client.post("/v1/tenants/initech/events", json=batch, headers=auth("initech"))
    assert r.status_code == 429 and r.json()["quota"] == "ingest_eps"
    clock[0] += float(r.headers["retry-after"])
    assert client.post("/v1/tenants/initech/events", json=batch, headers=auth("initech")).status_code == 201


def test_batch_over_the_burst_is_413_not_429(env):
    client, _, _ = env
    r = client.post("/v1/tenants/initech/events", json={"events": [{"type": "e"}] * 1001}, headers=auth("initech"))
    assert r.status_code in (400, 413)


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"events": []}', b'{"type": 3}', b'{"type": "a", "payload": [1]}', b'{"events": "x"}']
)
def test_bad_bodies_are_400(env, body):
    client, _, _ = env
    r = client.post("/v1/tenants/acme/events", content=body, headers=auth("acme"))
    assert r.status_code == 400 and r.json()["error"] == "bad_request"


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "after=-1", "limit=x"])
def test_bad_queries_are_400(env, query):
    client, _, _ = env
    assert client.get(f"/v1/tenants/acme/events?{query}", headers=auth("acme")).status_code == 400


def test_database_down_is_503_with_retry_after_and_unhealthy(env):
    client, store, _ = env
    assert client.get("/healthz").json()["db_role"] == "primary"
    store.down = True
    r = client.post("/v1/tenants/acme/events", json={"type": "x"}, headers=auth("acme"))
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    h = client.get("/healthz")
    assert h.status_code == 503 and h.json()["status"] == "unhealthy"
    assert client.get("/livez").status_code == 200


# --- objects -----------------------------------------------------------------------------------


def test_objects_round_trip_under_the_tenants_own_key_space(env):
    client, store, _ = env
    r = client.put("/v1/tenants/acme/objects/reports/2026/q4.csv", content=b"a,b\n1,2\n", headers=auth("acme"))
    assert r.status_code == 201 and r.json()["key"] == "reports/2026/q4.csv" and r.json()["size"] == 8
    got = client.get("/v1/tenants/acme/objects/reports/2026/q4.csv", headers=auth("acme"))
    assert got.status_code == 200 and got.content == b"a,b\n1,2\n"
    assert got.headers["content-type"] == "application/octet-stream"
    listed = client.get("/v1/tenants/acme/objects?prefix=reports/", headers=auth("acme")).json()
    assert listed["objects"] == [{"key": "reports/2026/q4.csv", "size": 8}] and listed["truncated"] is False
    assert client.delete("/v1/tenants/acme/objects/reports/2026/q4.csv", headers=auth("acme")).status_code == 204
    assert client.get("/v1/tenants/acme/objects/reports/2026/q4.csv", headers=auth("acme")).status_code == 404
    assert client.delete("/v1/tenants/acme/objects/reports/2026/q4.csv", headers=auth("acme")).status_code == 404


def test_another_tenants_objects_are_404_and_never_returned(env):
    client, store, _ = env
    client.put("/v1/tenants/acme/objects/secret", content=b"acme-only", headers=auth("acme"))
    for method in ("GET", "DELETE", "PUT"):
        r = client.request(method, "/v1/tenants/acme/objects/secret", content=b"x", headers=auth("globex"))
        assert r.status_code == 404 and "acme-only" not in r.text
    assert client.get("/v1/tenants/acme/objects", headers=auth("globex")).status_code == 404
    # globex's own key space has no such object: objects are stored per tenant, never by path alone
    assert client.get("/v1/tenants/globex/objects/secret", headers=auth("globex")).status_code == 404
    assert client.get("/v1/tenants/globex/objects", headers=auth("globex")).json()["objects"] == []
    assert store.objects.blobs == {("acme", "secret"): b"acme-only"}


@pytest.mark.parametrize("key", ["..", "a/../b", "a//b", ".hidden", "a/./b", "%00x", "a b", "x" * 513])
def test_object_keys_outside_the_contract_are_400(env, key):
    client, _, _ = env
    # dots percent-encoded: the client would resolve `..` itself; a proxy may pass them on as they are
    path = urllib.parse.quote(key, safe="/").replace(".", "%2E")
    r = client.put(f"/v1/tenants/acme/objects/{path}", content=b"x", headers=auth("acme"))
    assert r.status_code == 400 and r.json()["error"] == "bad_request", (key, r.status_code, r.text)


def test_storage_quota_is_the_settings_storage_gb_429_with_retry_after(env):
    client, store, _ = env
    store.objects.preused["initech"] = TENANTS["initech"].storage_gb * GIB - 10
    assert client.put("/v1/tenants/initech/objects/fits", content=b"x" * 10, headers=auth("initech")).status_code == 201
    r = client.put("/v1/tenants/initech/objects/over", content=b"x", headers=auth("initech"))
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert (body["error"], body["quota"], body["limit"]) == ("quota_exceeded", "storage_gb", TENANTS["initech"].storage_gb)
    # replacing an object counts its new size only; the neighbour's storage is its own
    assert client.put("/v1/tenants/initech/objects/fits", content=b"y" * 10, headers=auth("initech")).status_code == 201
    assert client.put("/v1/tenants/globex/objects/over", content=b"x", headers=auth("globex")).status_code == 201


def test_object_writes_spend_the_ingest_quota(env):
    client, _, clock = env
    codes = [
        client.put(f"/v1/tenants/initech/objects/k{i}", content=b"x", headers=auth("initech")).status_code for i in range(1001)
    ]
    assert codes[:1000] == [201] * 1000 and codes[1000] == 429
    r = client.put("/v1/tenants/initech/objects/k", content=b"x", headers=auth("initech"))
    assert r.status_code == 429 and r.json()["quota"] == "ingest_eps"


def test_object_storage_down_or_absent_is_503(env):
    client, store, _ = env
    store.down = True
    r = client.get("/v1/tenants/acme/objects/x", headers=auth("acme"))
    assert r.status_code == 503 and r.json()["error"] == "storage_unavailable" and r.headers["retry-after"] == "1"
    with TestClient(create_app(service_settings(), MemoryStore())) as bare:
        r = bare.put("/v1/tenants/acme/objects/x", content=b"x", headers=auth("acme"))
        assert r.status_code == 503 and r.json()["error"] == "storage_unavailable"


# --- fuzz: whatever the tenant, key and path, no response carries another tenant's data ----------

tenant_like = st.one_of(
    st.sampled_from(sorted(TENANTS)),
    st.from_regex(r"[a-z][a-z0-9-]{1,12}", fullmatch=True),
    st.text(string.printable, min_size=1, max_size=20),
)
key_like = st.one_of(st.sampled_from(sorted(TENANTS)).map(KEYS.get), st.text(string.printable, max_size=40))
suffix_like = st.one_of(
    st.just("/events"),
    st.integers(-2, 40).map(lambda i: f"/events/{i}"),
    st.sampled_from(["/events?limit=1000", "/events?after=0&type=t", "/events/", "/events/x"]),
)


@pytest.mark.slow
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(path_tenant=tenant_like, key=key_like, suffix=suffix_like)
def test_fuzz_tenant_isolation(env, path_tenant, key, suffix):
    client, store, _ = env
    if not store.rows:
        for t in TENANTS:
            client.post(f"/v1/tenants/{t}/events", json={"events": [{"type": "t", "payload": {"owner": t}}] * 5}, headers=auth(t))
    owner = next((t for t, k in KEYS.items() if k == key), None)
    url = f"/v1/tenants/{urllib.parse.quote(path_tenant, safe='')}{suffix}"
    r = client.get(url, headers={"X-API-Key": key} if key.isprintable() and "\n" not in key else {})
    if owner is None:
        assert r.status_code in (401, 404)  # 404 only where no route matches
        assert "owner" not in r.text
        return
    if path_tenant != owner:
        assert r.status_code in (404, 429) and "owner" not in r.text
        return
    if r.status_code == 200:
        doc = r.json()
        events = doc.get("events", [doc])
        assert all(e["tenant"] == owner and e["payload"]["owner"] == owner for e in events)
