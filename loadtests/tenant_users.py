"""Tenant-aware users: each simulated user is one tenant of the stack (its API key and plan from
`--tenants-file`, the sandbox manifest, or the stack's outputs on AWS), spread round-robin over the
tenants. The plan sets the read/write mix. A 429 is the tenant's quota at work: the user waits what
`Retry-After` says before its next request, and the request counts as throttled, not failed (the
gate still counts one below the tenant's plan quota as an error). A request still in flight when
the run stops is recorded as a failed one (a timeout), so a hang cannot vanish from the data.

Used by loadtests/locustfile.py (with the SLO gate) and, bare, by benchmarks/slo_bench.py.
"""

from __future__ import annotations

import itertools
import json
import random
import sys
import time
from collections import deque
from contextlib import contextmanager
from pathlib import Path

import gevent
from locust import FastHttpUser, events, task
from locust.exception import StopUser

from meridian.errors import MeridianError
from meridian.slo.evaluate import MAX_EVENTS_PER_WRITE

# read/write mix per plan: (list, get one, write) weights; bigger plans ingest more
PLAN_MIX = {"starter": (75, 15, 10), "pro": (60, 15, 25), "enterprise": (50, 15, 35)}
DEFAULT_MIX = PLAN_MIX["starter"]
THINK_S = (0.1, 0.5)  # pause between a user's requests
MAX_BATCH = MAX_EVENTS_PER_WRITE  # the gate's under-quota test assumes no write carries more events
READ_AFTER_S = 1.0  # get-by-id only for events written this long ago (the dr region reads a replica)

_tenants: list = []
_next_tenant = itertools.count()


@events.test_start.add_listener
def _load_tenants(environment, **_kw) -> None:
    """Tenants with their keys, once per process (master, worker or standalone)."""
    opts = environment.parsed_options
    try:
        rows = _tenant_rows(environment, opts)
    except (MeridianError, OSError, ValueError) as exc:
        # no sandbox, no keys, an unreadable tenants file: bad input (exit 2), not an SLO breach
        sys.stderr.write(f"error: no tenants to load: {exc}\n")
        environment.process_exit_code = getattr(exc, "exit_code", 2)
        environment.runner.quit()  # before any user is spawned: none could run (no tenants, maybe no host)
        return
    _tenants[:] = sorted(rows, key=lambda r: r["id"])


def _tenant_rows(environment, opts) -> list[dict]:
    if opts.tenants_file:
        return json.loads(Path(opts.tenants_file).read_text())
    from meridian.project import find_project_dir
    from meridian.targets import open_target

    project = find_project_dir(Path(opts.project_dir) if opts.project_dir else Path(__file__).resolve().parent)
    options = {"state_dir": Path(opts.state_dir)} if opts.state_dir and opts.target == "sandbox" else {}
    target = open_target(opts.target, opts.stack, project, **options)
    if not environment.host:
        environment.host = target.endpoint()
    return [{"id": t.id, "plan": t.plan, "api_key": t.api_key} for t in target.tenants()]


class StoppedInFlight(Exception):
    """A request that had no answer when the run stopped: recorded as a failed request (a timeout)."""


def _body_ok(check, resp) -> bool:
    # a body that does not parse is a failed request, recorded as one (not an exception that drops it)
    try:
        return bool(check(resp))
    except (ValueError, TypeError, AttributeError):
        return False


class TenantUser(FastHttpUser):
    """One tenant's client: reads and writes its own events, honours Retry-After."""

    # set from the objectives by the SLO plugin (meridian.slo.objectives.client_timeout_s, hang_after_s)
    hang_after_s = 0.0

    def wait_time(self) -> float:
        return max(random.uniform(*THINK_S), self.blocked_until - time.time())

    def on_start(self) -> None:
        if not _tenants:
            raise StopUser("no tenants: pass --tenants-file or run against a target that has them")
        self.tenant = _tenants[next(_next_tenant) % len(_tenants)]
        self.mix = PLAN_MIX.get(self.tenant["plan"], DEFAULT_MIX)
        self.headers = {"Authorization": f"Bearer {self.tenant['api_key']}"}
        self.base = f"/v1/tenants/{self.tenant['id']}/events"
        self.written: deque[tuple[float, int]] = deque(maxlen=100)
        self.blocked_until = 0.0

    def context(self) -> dict:
        return {"tenant": self.tenant["id"]}

    @task
    def act(self) -> None:
        op = random.choices((self.list_events, self.get_event, self.write_events), weights=self.mix)[0]
        op()

    @contextmanager
    def _in_flight(self, request_type: str, name: str):
        """Locust kills a user still waiting for an answer when the run stops (`--stop-timeout`)
        and reports nothing for its request: report it here as failed when it had waited longer
        than `hang_after_s`, so a hang stays in the data. One cut off sooner says nothing about
        latency (it was just sent) and is left out."""
        start = time.time()
        try:
            yield
        except gevent.GreenletExit:
            if time.time() - start < self.hang_after_s:
                raise
            self.environment.events.request.fire(
                request_type=request_type,
                name=name,
                response_time=(time.time() - start) * 1000,
                response_length=0,
                response=None,
                context=self.context(),
                exception=StoppedInFlight(f"no answer after {time.time() - start:.1f} s when the run stopped"),
                start_time=start,
            )
            raise

    def _judge(self, resp, expected: int, check=None) -> None:
        if resp.status_code == 429:
            self.blocked_until = time.time() + float(resp.headers.get("Retry-After", "1"))
            resp.success()  # the quota at work: recorded as throttled, not as a failure
        elif resp.status_code != expected:
            resp.failure(f"HTTP {resp.status_code}, expected {expected}")
        elif check is not None and not _body_ok(check, resp):
            resp.failure("unexpected body")
        else:
            resp.success()

    def list_events(self) -> None:
        with (
            self._in_flight("GET", "/v1/tenants/[tenant]/events"),
            self.client.get(
                self.base, params={"limit": 20}, headers=self.headers, name="/v1/tenants/[tenant]/events", catch_response=True
            ) as resp,
        ):
            self._judge(resp, 200, lambda r: isinstance(r.json().get("events"), list))

    def get_event(self) -> None:
        ready = [i for at, i in self.written if at < time.time() - READ_AFTER_S]
        if not ready:
            return self.list_events()
        with (
            self._in_flight("GET", "/v1/tenants/[tenant]/events/[id]"),
            self.client.get(
                f"{self.base}/{random.choice(ready)}",
                headers=self.headers,
                name="/v1/tenants/[tenant]/events/[id]",
                catch_response=True,
            ) as resp,
        ):
            self._judge(resp, 200, lambda r: "id" in r.json())

    def write_events(self) -> None:
        n = random.randint(1, MAX_BATCH)
        body = {"events": [{"type": "load", "payload": {"seq": k, "at": time.time()}} for k in range(n)]}
        with (
            self._in_flight("POST", "/v1/tenants/[tenant]/events"),
            self.client.post(
                self.base, json=body, headers=self.headers, name="/v1/tenants/[tenant]/events", catch_response=True
            ) as resp,
        ):
            self._judge(resp, 201, lambda r: len(r.json().get("ids", [])) == n)
            if resp.status_code == 201 and _body_ok(lambda r: r.json()["ids"], resp):
                now = time.time()
                self.written.extend((now, i) for i in resp.json()["ids"])
