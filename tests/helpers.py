"""Helpers the test modules share (fixtures live in conftest.py): the project and its CLI, lookups
in a rendered plan, the sandbox's parts and a running sandbox, the service's in-memory doubles and
the AWS target over moto and botocore's Stubber. Test modules import from here, never from each other.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import boto3
import pytest
from botocore.stub import Stubber

with warnings.catch_warnings():  # starlette 1.x nudges toward httpx2; httpx is what is pinned here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: F401 - the service tests' client, imported from here

from meridian.engine.policy import Analyzer, Subject, effective_config, evaluate
from meridian.sandbox import core
from meridian.targets import aws as aws_target
from service.auth import key_digest, new_api_key
from service.objects import ObjectsUnavailable, StorageFull
from service.quotas import TenantQuota
from service.settings import ServiceSettings, TenantEntry
from service.store import Unavailable

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("us", "eu", "apac")
PROJECT_FILES = ("Pulumi.yaml", "Pulumi.us.yaml", "Pulumi.eu.yaml", "Pulumi.apac.yaml", "__main__.py")


# --- the project and its CLI -----------------------------------------------------------------------


@dataclass
class Cli:
    code: int
    out: str
    err: str


def meridian_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "meridian", *args]


def run_meridian(*args: str, cwd: Path = ROOT, timeout: float = 300, env: dict[str, str] | None = None) -> Cli:
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run(meridian_cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    return Cli(proc.returncode, proc.stdout, proc.stderr)


def full_project_copy(dest: Path) -> Path:
    """A copy of everything a user's checkout gives the CLI: the program, the service it renders,
    the policy pack (reports and state then land in the copy, not in this checkout)."""
    for name in PROJECT_FILES:
        shutil.copy(ROOT / name, dest / name)
    for cell in ROOT.glob("Pulumi.*-cell-*.yaml"):  # a zone's cells come with it: its front door serves their tenants
        shutil.copy(cell, dest / cell.name)
    for part in ("components", "stackconfig", "service", "policies"):
        shutil.copytree(ROOT / part, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


# --- a rendered plan -------------------------------------------------------------------------------


def judge_mutated_valid_stack(analyzer, mutation) -> list:
    """The whole pack's violations, through the analyzer protocol, on the synthetic stack that passes
    every rule (tests/policydata) with one mutation applied."""
    from tests.policydata import valid_stack  # test data, imported where it is used

    resources = valid_stack()
    mutation(resources)
    return evaluate(analyzer, [Subject.from_dict(r) for r in resources])


class RememberingAnalyzer:
    """An analyzer that answers a per-resource Analyze request it was already sent, under the same
    configuration, with the violations the pack returned for it then: a replayed plan with one
    resource mutated sends the pack that resource and the whole stack, not all ~500 resources again
    (per-resource Analyze was two thirds of every replay's CPU). The pack's per-resource rules are
    functions of the request (resource, options, provider) and the configuration alone;
    AnalyzeStack always goes to the pack. `forget()` when the configuration changes."""

    def __init__(self, analyzer: Analyzer):
        self.analyzer = analyzer
        self.answers: dict[bytes, list] = {}

    def forget(self) -> None:
        self.answers.clear()

    def analyze(self, subject, providers) -> list:
        key = self.analyzer.analyze_request(subject, providers).SerializeToString(deterministic=True)
        if key not in self.answers:
            self.answers[key] = self.analyzer.analyze(subject, providers)
        return list(self.answers[key])

    def analyze_stack(self, subjects, providers) -> list:
        return self.analyzer.analyze_stack(subjects, providers)


@contextlib.contextmanager
def plan_judge(previews: dict):
    """One analyzer of the pack for a module's replays of the real plans: yields
    `run(mutation=None, stack="us", settings=None)`, which evaluates a copy of `stack`'s rendered plan
    (from the `previews` fixture) with `mutation(resources)` applied, through the analyzer protocol,
    under policies/config/<stack>.json with `settings` (rule -> settings) laid over it. Resources the
    mutation left as they were get the pack's answer to the same request under the same config
    (RememberingAnalyzer)."""
    with Analyzer(ROOT / "policies") as analyzer:
        info, configured, remembering = analyzer.wait_ready(), [], RememberingAnalyzer(analyzer)

        def run(mutation=None, stack: str = "us", settings: dict | None = None) -> list:
            config = json.loads((ROOT / "policies" / "config" / f"{stack}.json").read_text())
            for rule, values in (settings or {}).items():
                config[rule] = {**config.get(rule, {}), **values}
            if configured != [config]:  # reconfigure only when the config changes
                analyzer.configure(effective_config(info, config, stack))
                configured[:] = [config]
                remembering.forget()
            resources = json.loads(json.dumps(previews[stack].plan["resources"]))
            if mutation:
                mutation(resources)
            return evaluate(remembering, [Subject.from_dict(r) for r in resources])

        yield run


def assert_mandatory(violations: list, rule: str, what: str) -> None:
    """`rule` drew at least one mandatory violation, each saying what must hold."""
    hits = [v for v in violations if v.policy == rule and v.level == "mandatory"]
    assert hits, f"{rule} missed: {what}; got {[(v.policy, v.level, v.message) for v in violations]}"
    assert all(" must " in v.message for v in hits), hits


def both(*mutations):
    """One plan mutation made of several, applied in order."""

    def mutate(resources):
        for m in mutations:
            m(resources)

    return mutate


def attack_and_twin_tests(attacks: list, twins: list):
    """The two parametrised tests of a review replayed on a real plan through the module's `judge`
    fixture: each attack `(what, mutation, rule)` is a mandatory violation of its rule, each message
    saying what must hold; each legitimate twin `(what, mutation)` passes the whole pack. A module
    binds them to its own test names."""

    @pytest.mark.parametrize("what,mutation,rule", attacks, ids=[a[0] for a in attacks])
    def attack_is_mandatory(judge, what, mutation, rule):
        found = judge(mutation)
        hits = [v for v in found if v.policy == rule and v.level == "mandatory"]
        assert hits and all(" must " in v.message for v in hits), (what, [(v.policy, v.level, v.message) for v in found])

    @pytest.mark.parametrize("what,mutation", twins, ids=[t[0] for t in twins])
    def twin_passes(judge, what, mutation):
        assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what

    return attack_is_mandatory, twin_passes


def of_type(plan: dict, token: str, region: str | None = None) -> list[dict]:
    """The plan's resources of one type token (in one region if given)."""
    return [r for r in plan["resources"] if r["type"] == token and (region is None or r["region"] == region)]


def by_urn(plan: dict) -> dict[str, dict]:
    return {r["urn"]: r for r in plan["resources"]}


# Runs the real program in a fresh process (SDK state is global) and pickles its Plan (argv: project dir, stack, out).
PLAN_SCRIPT = r"""
import pickle, sys
from pathlib import Path
from meridian.engine.plan import Plan
from meridian.engine.run import run_program
run = run_program(Path(sys.argv[1]), sys.argv[2])
Path(sys.argv[3]).write_bytes(pickle.dumps(Plan("meridian", sys.argv[2], run.registrations, run.outputs)))
"""


def recorded_plan(out_dir: Path, stack: str = "us"):
    """The stack's Plan from an offline run of the real program, and its typed config."""
    import pickle

    from stackconfig import load_stack

    out = out_dir / f"{stack}.pickle"
    proc = subprocess.run(
        [sys.executable, "-c", PLAN_SCRIPT, str(ROOT), stack, str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return pickle.loads(out.read_bytes()), load_stack(ROOT, stack)


# Runs the real program in a fresh process (SDK state is global) and dumps what the analyzer is sent
# (argv: project dir, stack, and "first-preview" for the first-preview view).
REGISTRATIONS_SCRIPT = """
import json, sys
from pathlib import Path
from google.protobuf import json_format
from meridian.engine.run import run_program
run = run_program(Path(sys.argv[1]), sys.argv[2], first_preview=sys.argv[3:] == ["first-preview"])
json.dump([{"urn": r.urn, "type": r.type, "name": r.name, "custom": r.custom, "parent": r.parent or None,
            "provider": r.provider_urn or None, "inputs": json_format.MessageToDict(r.inputs),
            "dependencies": r.dependencies, "propertyDependencies": r.property_dependencies, "protect": r.protect}
           for r in run.registrations], sys.stdout)
"""


def until(fn, timeout: float, step: float = 0.05):
    """Call fn until it returns a truthy value or `timeout` passes; return the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


# --- the sandbox's real parts ----------------------------------------------------------------------

STACK = "us"  # the stack every sandbox test brings up
TIME_SCALE = 20.0  # 10 s health checks every 500 ms: a failover in a second or two
CI_INSTALLS = "CI installs the Debian packages postgresql and haproxy before `make test`: .ci/run, .github/workflows/preview.yml"


def missing_part(what: str) -> NoReturn:
    """A sandbox part is not installed: the test skips on a developer's machine and fails under CI
    (CI=true), where a skip would hide that the sandbox tests never ran."""
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"sandbox part missing under CI: {what} ({CI_INSTALLS})", pytrace=False)
    pytest.skip(f"sandbox part not installed: {what}")


# The markers of the test being set up (conftest's pytest_runtest_setup): a sandbox started by a
# test not marked `sandbox` would run in `make test-fast`, whose promise is "no processes, a minute".
running_test_markers: set[str] = set()


def require_sandbox_marker() -> None:
    if running_test_markers and "sandbox" not in running_test_markers:
        pytest.fail("this test starts sandbox parts but is not marked `sandbox`: add @pytest.mark.sandbox", pytrace=False)


def require_sandbox_parts() -> None:
    """PostgreSQL's server binaries and HAProxy, or missing_part naming what is absent; only for
    tests marked `sandbox`."""
    require_sandbox_marker()
    try:
        core.check_parts()
    except core.SandboxMissing as exc:
        missing_part(str(exc))


def require_haproxy() -> str:
    """The haproxy executable, or missing_part."""
    try:
        return core.find_haproxy()
    except core.SandboxMissing as exc:
        missing_part(str(exc))


@contextlib.contextmanager
def running_sandbox(prefix: str, *extra: str, stack: str = STACK, time_scale: float = TIME_SCALE):
    """A fresh sandbox of `stack` (fault proxies on) in its own state dir; yields that dir."""
    require_sandbox_parts()
    state_dir = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(state_dir, 0o755)  # the postgres user must reach the data dirs
    cli = run_meridian(
        "sandbox",
        "up",
        "--stack",
        stack,
        "--state-dir",
        str(state_dir),
        "--time-scale",
        str(time_scale),
        "--fault-proxies",
        *extra,
        timeout=120,
    )
    try:
        assert cli.code == 0, cli.out + cli.err
        yield state_dir
    finally:
        down = run_meridian("sandbox", "down", "--stack", stack, "--state-dir", str(state_dir), "--wipe", timeout=120)
        shutil.rmtree(state_dir, ignore_errors=True)
        assert down.code == 0, down.out + down.err


# --- the service in memory -------------------------------------------------------------------------


class MemoryStore:
    """The Store protocol in memory. It refuses what PostgreSQL refuses (NUL, lone surrogates,
    integers outside int8) with an error that is no `Unavailable`, as asyncpg's would be: input
    the app lets through unchecked becomes a 500 here as it would against the real database."""

    def __init__(self):
        self.rows: list[dict] = []
        self.down = False
        self.writes_down = False
        self.calls = 0  # every call that would reach the database

    async def start(self):
        pass

    async def close(self):
        pass

    def _check(self, *values):
        self.calls += 1
        if self.down:
            raise Unavailable("ConnectionRefusedError: down")
        for v in values:
            _as_postgres_would(v)

    async def insert_events(self, tenant, events):
        self._check(tenant, events)
        if self.writes_down:
            raise Unavailable("InternalClientError: no read-write host")
        ids = []
        for type_, payload in events:
            row = {
                "id": len(self.rows) + 1,
                "tenant": tenant,
                "type": type_,
                "payload": payload,
                "created_at": "2026-12-02T08:00:00+00:00",
            }
            self.rows.append(row)
            ids.append(row["id"])
        return ids

    async def list_events(self, tenant, after, limit, type_):
        self._check(tenant, after, limit, type_)
        return [r for r in self.rows if r["tenant"] == tenant and r["id"] > after and (type_ is None or r["type"] == type_)][
            :limit
        ]

    async def get_event(self, tenant, event_id):
        self._check(tenant, event_id)
        return next((r for r in self.rows if r["tenant"] == tenant and r["id"] == event_id), None)

    async def health(self):
        if self.down:
            return {"db": "unreachable", "error": "down", "writes": "unavailable", "write_error": "down"}
        out = {"db": "reachable", "db_role": "primary"}
        return {**out, "writes": "unavailable", "write_error": "no primary"} if self.writes_down else {**out, "writes": "ok"}


class MemoryObjects:
    """The ObjectStore protocol in memory, keyed by tenant as S3Objects' scoped sessions are; every
    call counts on `store.calls` (a call that would reach the tenant's data)."""

    def __init__(self, store: MemoryStore):
        self.store = store
        store.objects = self  # for tests holding only the store
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.preused: dict[str, int] = {}  # bytes a tenant holds besides these blobs (to reach a quota)

    def _check(self):
        self.store.calls += 1
        if self.store.down:
            raise ObjectsUnavailable("EndpointConnectionError: down")

    async def put(self, tenant, key, body, limit_bytes):
        self._check()
        used = self.preused.get(tenant, 0) + sum(len(b) for (t, _), b in self.blobs.items() if t == tenant)
        if used - len(self.blobs.get((tenant, key), b"")) + len(body) > limit_bytes:
            raise StorageFull(used, limit_bytes)
        self.blobs[(tenant, key)] = body
        return {"key": key, "size": len(body), "etag": "e"}

    async def get(self, tenant, key):
        self._check()
        return self.blobs.get((tenant, key))

    async def delete(self, tenant, key):
        self._check()
        return self.blobs.pop((tenant, key), None) is not None

    async def list(self, tenant, prefix, after, limit):
        self._check()
        keys = sorted(k for t, k in self.blobs if t == tenant and k.startswith(prefix) and (after is None or k > after))
        return [{"key": k, "size": len(self.blobs[(tenant, k)])} for k in keys[:limit]], len(keys) > limit


def _as_postgres_would(value) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise OverflowError(f"value out of int64 range: {value}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not valid jsonb")
    elif isinstance(value, str):
        if "\x00" in value:
            raise ValueError("invalid byte sequence for encoding UTF8: 0x00")
        value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError, as asyncpg's encoder does
    elif isinstance(value, dict):
        for k, v in value.items():
            _as_postgres_would(k)
            _as_postgres_would(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _as_postgres_would(v)


TENANTS = {"acme": TenantQuota(1000, 20000, 1), "globex": TenantQuota(200, 5000, 1), "initech": TenantQuota(50, 1000, 1)}
KEYS = {t: new_api_key(t) for t in TENANTS}


def service_settings() -> ServiceSettings:
    return ServiceSettings(
        "us-east-1",
        "primary",
        "postgresql://x",
        "postgresql://x",
        tuple(TenantEntry(t, "p", (key_digest(KEYS[t]),), q) for t, q in TENANTS.items()),
    )


UNLIMITED = {t: TenantQuota(10**9, 10**9, 1) for t in TENANTS}


def auth(tenant):
    return {"Authorization": f"Bearer {KEYS[tenant]}"}


# --- the AWS target: Route 53 on moto, RDS and FIS on botocore's Stubber -----------------------------


ACCOUNT = "123456789012"


def member(region, cluster, writer):
    return {"DBClusterArn": f"arn:aws:rds:{region}:{ACCOUNT}:cluster:{cluster}", "IsWriter": writer}


MOTO_SERVICES = ("route53", "sts", "ssm")  # moto holds real state for these (the checks, the identity, the lock)


class Cloud:
    """Clients for the target: moto Route 53, STS and SSM, stubbed RDS / FIS; every call recorded in order."""

    def __init__(self, outputs):
        self.calls: list[tuple[str, str, str]] = []
        self.stubs: dict[tuple[str, str], Stubber] = {}
        self.clients: dict[tuple[str, str], object] = {}
        self.outputs = outputs

    def factory(self, service, region):
        if (service, region) in self.clients:
            return self.clients[(service, region)]
        client = boto3.client(service, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
        client.meta.events.register("before-call.*.*", lambda model, **_: self.calls.append((service, region, model.name)))
        if service not in MOTO_SERVICES:
            stub = Stubber(client)
            stub.activate()
            self.stubs[(service, region)] = stub
        self.clients[(service, region)] = client
        return client

    def stub(self, service, region) -> Stubber:
        if (service, region) not in self.stubs:
            self.factory(service, region)
        return self.stubs[(service, region)]

    def mutating(self):
        return [c for c in self.calls if not c[2].startswith(("Describe", "Get", "List"))]

    def done(self):
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()


def make_target(previews, stack, tmp_path, *, health_checks=True):
    """The target over the outputs the engine rendered, with the health checks made real in moto."""
    outputs = json.loads(json.dumps(previews[stack].plan["outputs"]))
    cloud = Cloud(outputs)
    if health_checks:
        r53 = boto3.client("route53", region_name="us-east-1")
        for role in ("PRIMARY", "SECONDARY"):
            created = r53.create_health_check(
                CallerReference=role,
                HealthCheckConfig={
                    "Type": "HTTPS",
                    "FullyQualifiedDomainName": f"{role.lower()}.example.com",
                    "Port": 443,
                    "ResourcePath": "/healthz",
                    "RequestInterval": 10,
                    "FailureThreshold": 3,
                },
            )
            outputs["dr"]["health_check_ids"][role] = created["HealthCheck"]["Id"]
    path = tmp_path / f"{stack}-outputs.json"
    path.write_text(json.dumps(outputs))
    target = aws_target.from_stack(stack, ROOT, outputs=path, client_factory=cloud.factory, poll_s=0, wait_s=5)
    target._state_file = tmp_path / "aws-experiments.json"
    return target, cloud, outputs


def inverted(outputs) -> bool:
    r53 = boto3.client("route53", region_name="us-east-1")
    return r53.get_health_check(HealthCheckId=outputs["dr"]["health_check_ids"]["PRIMARY"])["HealthCheck"]["HealthCheckConfig"][
        "Inverted"
    ]


def aurora_ids(outputs):
    first = lambda host: host.split(".", 1)[0]  # noqa: E731
    return first(outputs["regions"]["primary"]["db_writer_endpoint"]), first(outputs["regions"]["dr"]["db_reader_endpoint"])


def globals_response(outputs, writer_role):
    primary, dr = aurora_ids(outputs)
    regions = {role: outputs["regions"][role]["region"] for role in ("primary", "dr")}
    return {
        "GlobalClusters": [
            {
                "GlobalClusterIdentifier": "us-db",
                "GlobalClusterMembers": [
                    member(regions["primary"], primary, writer_role == "primary"),
                    member(regions["dr"], dr, writer_role == "dr"),
                ],
            }
        ]
    }


# --- drills --------------------------------------------------------------------------------------


def dead_pid() -> int:
    """The pid of a process that has ended (a crashed drill's)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def ops_only(drill):
    """The drill's steps with their checks removed: checks read the live front door, not AWS."""
    return dataclasses.replace(drill, steps=tuple(dataclasses.replace(s, check=None) for s in drill.steps))


def run_ops(drill, target, tmp_path):
    """Execute `drill` on `target` with its records under tmp_path; the run's final state."""
    from rich.console import Console

    from meridian.drills.machine import Run, claim, execute, release
    from meridian.drills.measure import Objectives

    root = tmp_path / "drills"
    run_dir, state = claim(root, drill, "aws", resume=False)
    run = Run(drill, target, "us", Objectives(300, 900, 1), run_dir, Console(file=open(os.devnull, "w")), state)
    execute(run)
    release(root)
    return run.state


def fail_verification(run):
    """A drill step check that always fails (a verification that did not hold)."""
    raise RuntimeError("verification failed on purpose")


def small_raw_config(**values):
    """A minimal valid eu stack config as the parser gets it (RawConfig), with `values` replacing
    whole top-level sections: for tests of one section's rules."""
    from stackconfig import RawConfig

    doc = {
        "zone": "eu",
        "regions": {
            "primary": {"region": "eu-west-1", "cidr": "10.0.0.0/16"},
            "dr": {"region": "eu-central-1", "cidr": "10.1.0.0/16"},
        },
        "workload": {"image_tag": "1.0.0"},
        "failover": {"api_zone": "eu.example.com", "hosted_zone_id": "Z123"},
        "plans": {"starter": {"quota": {"gql_qps": 1, "ingest_eps": 1, "storage_gb": 1}}},
        "tenants": [{"id": "acme", "plan": "starter", "monthly_budget_usd": 10}],
        "cost": {"cost_center": "cc", "stack_cap_usd": 100},
        "cluster": {"public_access_cidrs": ["203.0.113.0/28"], "deploy_role_arn": "arn:aws:iam::123456789012:role/deploy"},
        **values,
    }
    return RawConfig(doc, {}, default_source="Pulumi.eu.yaml")


def wait_ok(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30):
    """The first 200 from `url` (polled), failing with the pod's log if its process exits or time runs out."""
    import httpx

    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the pod's process exited ({proc.returncode}):\n{log.read_text()[-3000:]}"
        try:
            r = httpx.get(url, timeout=1)
            if r.status_code == 200:
                return r
            last = f"{r.status_code} {r.text[:300]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered 200 (last: {last}):\n{log.read_text()[-3000:]}")
