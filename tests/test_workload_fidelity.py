"""The workload's pods, run for real from the plan: what the Deployment and the migration Job would
give a container (command, args, env, mounted Secret files) is what the sandbox takes from the plan
(meridian.sandbox.fromplan.load: the same rendering, the same cache) and the real service is started
with exactly that against a real PostgreSQL whose master login is the one the migration Job's
settings carry (its user the database resource's master user) and which, like RDS with
`rds.force_ssl`, accepts only TLS with a password.

What the engine cannot know before `up` is substituted as the sandbox substitutes it
(fromplan.local_substitutions) and listed: the database endpoints (a new cluster's hostname), the
pod's private port and address, AWS's endpoints and the pod's identity, the image's interpreter. A
wiring mismatch (a file the service never gets, a DSN it cannot use, a bind address the probes
cannot reach, a probe path it does not serve) fails here, offline.

The object API runs against a moto server set up from exactly the buckets, prefixes, key ARNs and
role ARNs the rendered settings name (meridian.sandbox.objectstore, IAM enforced); the pod's
Pod Identity credentials become the stand-in broker's key, its AWS endpoints the stand-in's.
moto evaluates no ABAC, so the region's one tenant role holds each tenant's literal session policy
here: tenant isolation at the S3 layer is tested in tests/test_tenant_data.py, per tenant role.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest

from meridian import ports as portlib
from meridian.sandbox import fromplan, procs
from meridian.sandbox import postgres as pglib

from .helpers import ROOT, missing_part, wait_ok

pytestmark = pytest.mark.slow  # the pods come from an offline run of the program

STACK = "us"
SETTINGS_PATH = "/etc/meridian/service.json"


@pytest.fixture(scope="module")
def planned() -> fromplan.PlannedWorkload:
    return fromplan.load(ROOT, STACK)


def _services(planned: fromplan.PlannedWorkload) -> list:
    """Each region's service container, as the plan's Deployments give it."""
    return [planned.services[role] for role in ("primary", "dr")]


def _master_login(planned: fromplan.PlannedWorkload) -> dict:
    """The login the migration Job's settings carry: the database resource's master user, its
    password and database (what the stand-in must accept, as RDS would from those inputs)."""
    admin = urlsplit(planned.migration_settings().admin_dsn)
    assert unquote(admin.username) == planned.master_user, "the migration does not log in as the database's master user"
    return {"user": planned.master_user, "password": unquote(admin.password), "database": admin.path.lstrip("/")}


class TlsPostgres:
    """A PostgreSQL like RDS with rds.force_ssl: TLS and a password, or no connection."""

    def __init__(self, root: Path):
        self.root = root
        self.pg = pglib.find_pg()
        self.user = pglib.run_as()
        self.port = portlib.allocate(["pg"])["pg"]
        self.ref = None

    def start(self) -> None:
        data = self.root / "pg"
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        pglib.check_traversable(self.root, self.user)
        data.mkdir()
        pglib.chown_tree(data, self.user)
        pglib.initdb(self.pg, self.user, data)
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                str(data / "server.key"),
                "-out",
                str(data / "server.crt"),
            ],
            check=True,
            capture_output=True,
        )
        os.chmod(data / "server.key", 0o600)
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(
                "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\npassword_encryption = 'scram-sha-256'\n"
            )
        # setup as the superuser over plain TCP; everyone else: TLS + password only (like rds.force_ssl=1)
        (data / "pg_hba.conf").write_text("host all postgres 127.0.0.1/32 trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n")
        pglib.chown_tree(data, self.user)
        self.ref, proc = procs.spawn("pg", pglib.server_argv(self.pg, data, self.port), self.root / "pg.log", user=self.user)
        asyncio.run(pglib.wait_ready(self.port, 30, proc))

    def create(self, user: str, password: str, database: str) -> None:
        import asyncpg

        async def go() -> None:
            conn = await asyncpg.connect(pglib.dsn(self.port, "postgres", "postgres"), ssl=False)
            try:
                # like RDS's master: may create roles (the migration creates the service's own user), no superuser
                await conn.execute(f'CREATE ROLE "{user}" LOGIN CREATEROLE PASSWORD $pw${password}$pw$')
                await conn.execute(f'GRANT pg_signal_backend TO "{user}"')  # rds_superuser has it
                await conn.execute(f'CREATE DATABASE "{database}" OWNER "{user}"')
            finally:
                await conn.close()

        asyncio.run(go())

    def stop(self) -> None:
        if self.ref is not None:
            import signal

            procs.stop(self.ref, signal.SIGINT)


@pytest.fixture(scope="module")
def database(planned):
    state = Path(tempfile.mkdtemp(prefix="meridian-fidelity-"))
    os.chmod(state, 0o755)  # the postgres user must reach the data dir
    try:
        db = TlsPostgres(state)
    except pglib.PostgresMissing as exc:
        missing_part(str(exc))
    try:
        db.start()
        writer = _master_login(planned)
        db.create(writer["user"], writer["password"], writer["database"])
        yield db
    finally:
        db.stop()
        shutil.rmtree(state, ignore_errors=True)


def _settings_dsns(container) -> dict[str, str]:
    """The DSNs of the settings file the container's `--config` names (the service's or the migration's)."""
    from meridian.sandbox.podrun import settings_path_of
    from service.settings import MigrationSettings, ServiceSettings

    doc = json.loads(container.file(settings_path_of(container)).content)
    if "admin_dsn" in doc:
        return {"admin_dsn": MigrationSettings.from_dict(doc).admin_dsn}
    settings = ServiceSettings.from_dict(doc)
    return {"write_dsn": settings.write_dsn, "read_dsn": settings.read_dsn}


def _rendered_settings(container):
    from service.settings import ServiceSettings

    return ServiceSettings.from_dict(json.loads(container.file(SETTINGS_PATH).content))


@pytest.fixture(scope="module")
def object_stand_in(planned, tmp_path_factory):
    """moto with exactly the buckets, keys and roles the rendered settings of both regions name."""
    from meridian.sandbox.objectstore import spec_from_settings

    spec = spec_from_settings(_rendered_settings(c) for c in _services(planned))
    root = tmp_path_factory.mktemp("objects")
    (root / "spec.json").write_text(json.dumps(spec))
    port = portlib.allocate(["objects"])["objects"]
    out = root / "out.json"
    argv = [sys.executable, "-m", "meridian.sandbox.objectstore", "--listen", f"127.0.0.1:{port}"]
    with open(root / "objects.log", "ab") as log:
        proc = subprocess.Popen([*argv, "--spec", str(root / "spec.json"), "--out", str(out)], cwd=ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 120
        while not out.exists():
            assert proc.poll() is None and time.monotonic() < deadline, (root / "objects.log").read_text()[-3000:]
            time.sleep(0.1)
        yield json.loads(out.read_text())
    finally:
        _stop(proc)


def _tenant_s3(objects: dict, data):
    """An S3 client on the tenant's own session (the broker assuming its role), as the service gets one."""
    import boto3

    broker = objects["broker"]
    base = boto3.session.Session(
        aws_access_key_id=broker["access_key_id"], aws_secret_access_key=broker["secret_access_key"], region_name="us-east-1"
    )
    creds = base.client("sts", endpoint_url=objects["endpoint"]).assume_role(
        RoleArn=data.role_arn, RoleSessionName="fidelity-check", Tags=[{"Key": "meridian-tenant", "Value": data.namespace}]
    )["Credentials"]
    return boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=objects["endpoint"],
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _run(planned, role: str, container, root: Path, db_port: int, *, port: int | None, objects: dict):
    """Start the container as the sandbox does: fromplan's one substitution (the database endpoints
    become the stand-in's port, AWS's endpoints and the pod's identity the object stand-in's), then podrun."""
    from meridian.sandbox.podrun import prepare, start

    assert any("aws:rds/" in urn for urn in container.secret_dependencies), "the settings do not come from the database resources"
    # one PostgreSQL stands in for every endpoint: each region's node and the Aurora writer endpoint
    addresses = fromplan.local_addresses(planned, nodes={"primary": db_port, "dr": db_port}, writer_endpoint=db_port)
    subs = fromplan.local_substitutions(planned, role, addresses=addresses, service_port=port, objects=objects)
    pod = prepare(container, root, subs)
    return pod, start(pod, root / "pod.log", cwd=ROOT)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.mark.sandbox
def test_migration_job_then_every_region_serves_from_what_the_plan_mounts(planned, database, object_stand_in, tmp_path):
    job = planned.migration
    pod, proc = _run(planned, "primary", job, tmp_path / "migrate", database.port, port=None, objects=object_stand_in)
    assert proc.wait(60) == 0, f"migration failed:\n{(tmp_path / 'migrate' / 'pod.log').read_text()[-3000:]}"
    assert any(s.startswith("app_secret:") for s in pod.substituted)

    deployments = _services(planned)
    assert [d.region for d in deployments] == ["us-east-1", "us-west-2"]
    _the_service_user_is_not_the_master(planned, deployments[0], database.port, object_stand_in)
    keys = planned.api_keys
    for i, (role, container) in enumerate(zip(("primary", "dr"), deployments, strict=True)):
        spec = container.spec
        (port_spec,) = spec["ports"]
        assert spec["readinessProbe"]["httpGet"]["port"] == spec["livenessProbe"]["httpGet"]["port"] == port_spec["containerPort"]
        local_port = portlib.allocate([f"svc-{i}"])[f"svc-{i}"]
        root = tmp_path / container.region
        pod, proc = _run(planned, role, container, root, database.port, port=local_port, objects=object_stand_in)
        try:
            assert any(s.startswith("write_dsn:") for s in pod.substituted) and any(
                s.startswith("read_dsn:") for s in pod.substituted
            )
            assert any(s.startswith("objects.endpoint_url:") for s in pod.substituted)
            assert any(s.startswith("db_secret:") for s in pod.substituted)
            base = f"http://127.0.0.1:{local_port}"
            ready = wait_ok(base + spec["readinessProbe"]["httpGet"]["path"], proc, root / "pod.log")
            assert ready.json()["region"] == container.region
            assert httpx.get(base + spec["livenessProbe"]["httpGet"]["path"]).status_code == 200
            # the keys the stack hands tenants open exactly their own data
            acme, globex = keys["acme"], keys["globex"]
            wrote = httpx.post(
                f"{base}/v1/tenants/acme/events",
                json={"type": "fidelity", "payload": {"region": container.region}},
                headers={"authorization": f"Bearer {acme}"},
            )
            assert wrote.status_code == 201, wrote.text
            assert httpx.get(f"{base}/v1/tenants/acme/events", headers={"authorization": f"Bearer {acme}"}).json()["events"]
            other = httpx.get(f"{base}/v1/tenants/acme/events", headers={"authorization": f"Bearer {globex}"})
            assert other.status_code in (403, 404), other.text
            # objects: stored where the rendered settings say, under the tenant's own key, read back
            for tenant, key in (("acme", acme), ("globex", globex)):
                url = f"{base}/v1/tenants/{tenant}/objects/fidelity/{container.region}.bin"
                body = f"{tenant} in {container.region}".encode()
                put = httpx.put(url, content=body, headers={"authorization": f"Bearer {key}"}, timeout=30)
                assert put.status_code == 201, put.text
                got = httpx.get(url, headers={"authorization": f"Bearer {key}"}, timeout=30)
                assert got.status_code == 200 and got.content == body
                (data,) = [t.data for t in _rendered_settings(container).tenants if t.id == tenant]
                head = _tenant_s3(object_stand_in, data).head_object(
                    Bucket=data.bucket, Key=f"{data.prefix}fidelity/{container.region}.bin"
                )
                assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", data.kms_key_arn)
            cross = httpx.get(
                f"{base}/v1/tenants/acme/objects/fidelity/{container.region}.bin", headers={"authorization": f"Bearer {globex}"}
            )
            assert cross.status_code == 404 and b"acme in" not in cross.content
            if i == 0:
                _a_rotated_password_is_picked_up(planned, database.port, object_stand_in, container.region, base, acme)
        finally:
            _stop(proc)


def _secrets_client(objects: dict, region: str, who: str):
    import boto3

    creds = objects[who]
    return boto3.client(
        "secretsmanager",
        region_name=region,
        endpoint_url=objects["endpoint"],
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
    )


def _app_password(objects: dict, region: str, stage: str = "AWSCURRENT") -> tuple[str, str]:
    """(user, password) as the service reads them: the region's secret, with the pod's identity."""
    value = json.loads(
        _secrets_client(objects, region, "broker").get_secret_value(SecretId=objects["db_secrets"][region], VersionStage=stage)[
            "SecretString"
        ]
    )
    return value["username"], value["password"]


def _a_rotated_password_is_picked_up(planned, db_port: int, objects: dict, region: str, base: str, api_key: str) -> None:
    """What AWS's single-user rotation does, step by step, while the service runs: the new password
    is set in the database first (AWSPENDING), then becomes AWSCURRENT. New connections (every old
    one is ended here) keep working at each step: the service reads the secret again when refused."""
    import asyncpg

    user, _ = _app_password(objects, region)
    writer = _master_login(planned)
    operator = _secrets_client(objects, region, "operator")
    arn = objects["db_secrets"][region]

    async def set_password_and_drop_sessions(password: str) -> None:
        conn = await asyncpg.connect(
            host="127.0.0.1",
            port=db_port,
            user=writer["user"],
            password=writer["password"],
            database=writer["database"],
            ssl="require",
        )
        try:
            literal = await conn.fetchval("SELECT quote_literal($1)", password)
            await conn.execute(f'ALTER ROLE "{user}" PASSWORD {literal}')
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", user)
        finally:
            await conn.close()

    def write_ok(tag: str) -> None:
        r = httpx.post(
            f"{base}/v1/tenants/acme/events",
            json={"type": "rotation", "payload": {"step": tag}},
            headers={"authorization": f"Bearer {api_key}"},
            timeout=30,
        )
        assert r.status_code == 201, f"{tag}: {r.status_code} {r.text}"

    pending = json.dumps({"engine": "postgres", "username": user, "password": "rotated-" + os.urandom(12).hex()})
    version = operator.put_secret_value(SecretId=arn, SecretString=pending, VersionStages=["AWSPENDING"])["VersionId"]
    asyncio.run(set_password_and_drop_sessions(json.loads(pending)["password"]))
    write_ok("between setSecret and finishSecret: AWSCURRENT is refused, AWSPENDING works")
    current = operator.describe_secret(SecretId=arn)["VersionIdsToStages"]
    (old,) = [v for v, stages in current.items() if "AWSCURRENT" in stages]
    operator.update_secret_version_stage(
        SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=version, RemoveFromVersionId=old
    )
    asyncio.run(set_password_and_drop_sessions(json.loads(pending)["password"]))
    write_ok("after finishSecret")
    assert _app_password(objects, region)[1] == json.loads(pending)["password"]
    # Secrets Manager replicates the new version to the other region's read-only copy; the stand-in's
    # copies are separate secrets, so do it here
    for other, other_arn in objects["db_secrets"].items():
        if other != region:
            _secrets_client(objects, other, "operator").put_secret_value(SecretId=other_arn, SecretString=pending)


def _the_service_user_is_not_the_master(planned, container, db_port: int, objects: dict) -> None:
    """The service logs in as the user the migration created (with its secret's password, over TLS)
    and can use the schema but not change it: never as the master user. Its DSNs carry no password."""
    import asyncpg

    write = urlsplit(_settings_dsns(container)["write_dsn"])
    assert write.password is None, "the settings carry the application user's password: it belongs in Secrets Manager"
    user, password = _app_password(objects, container.region)
    assert user == unquote(write.username)
    assert user != planned.master_user, "the service logs in as the database's master user"

    async def go() -> None:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=db_port, user=user, password=password, database=write.path.lstrip("/"), ssl="require"
        )
        try:
            await conn.execute("SELECT count(*) FROM events")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("CREATE TABLE not_yours (id int)")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute("DROP TABLE events")
        finally:
            await conn.close()

    asyncio.run(go())


def test_settings_bind_every_interface_and_match_the_container_port(planned):
    from service.settings import ServiceSettings

    for container in _services(planned):
        args = container.spec["args"]
        path = args[args.index("--config") + 1]
        mounted = container.file(path)
        assert mounted is not None and mounted.secret_urn, f"{container.owner_urn}: {path} is not mounted from a Secret"
        settings = ServiceSettings.from_dict(json.loads(mounted.content))
        assert settings.host == "0.0.0.0", "kubelet probes and the NLB reach the pod IP, not loopback"
        assert settings.port == container.spec["ports"][0]["containerPort"]
        assert settings.region == container.region
        assert mounted.mode & 0o040 and container.pod_security["fsGroup"] == container.pod_security["runAsUser"], (
            "the service's group must read its settings"
        )


def test_a_run_refuses_endpoints_left_unsubstituted(planned, tmp_path):
    from meridian.sandbox.podrun import Substitutions, Unsubstituted, prepare

    container = planned.services["primary"]
    with pytest.raises(Unsubstituted, match="rds.amazonaws.com"):
        prepare(container, tmp_path, Substitutions(), settings_path=SETTINGS_PATH)


def test_the_local_interpreter_is_not_remapped_onto_a_mount(planned, tmp_path):
    # the pod mounts an emptyDir at /tmp; a checkout (and so its venv) may live under /tmp too
    from meridian.sandbox.podrun import prepare

    container = planned.services["primary"]
    mounted = {m["mountPath"] for m in container.spec.get("volumeMounts") or []}
    assert "/tmp" in mounted, "this test needs the pod's /tmp mount"
    interpreter = "/tmp/some-checkout/.venv/bin/python"
    pod = prepare(
        container,
        tmp_path,
        dataclasses.replace(
            fromplan.local_substitutions(
                planned,
                "primary",
                addresses=fromplan.local_addresses(planned, nodes={"primary": 5432, "dr": 5432}, writer_endpoint=5432),
                service_port=None,
            ),
            interpreter=interpreter,
        ),
        settings_path=SETTINGS_PATH,
    )
    assert pod.argv[0] == interpreter


def test_the_plans_quotas_are_exactly_what_the_service_enforces(planned):
    """One source: the stack config's quotas, rendered into the settings, are the limits the service
    applies (429 quota_exceeded + Retry-After one past them), and nothing else carries a copy."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from service.app import create_app
    from stackconfig import load_stack
    from tests.helpers import MemoryObjects, MemoryStore

    cfg = load_stack(ROOT, STACK)
    keys = planned.api_keys
    for container in _services(planned):
        settings = _rendered_settings(container)
        assert {t.id: vars(t.quota) for t in settings.tenants} == {t.id: cfg.quota_of(t).model_dump() for t in cfg.tenants}
        store = MemoryStore()
        with TestClient(create_app(settings, store, objects=MemoryObjects(store), clock=lambda: 0.0)) as client:
            for t in cfg.tenants:
                quota = cfg.quota_of(t)
                auth = {"authorization": f"Bearer {keys[t.id]}"}
                reads = [client.get(f"/v1/tenants/{t.id}/events", headers=auth).status_code for _ in range(quota.gql_qps + 1)]
                assert reads[:-1] == [200] * quota.gql_qps and reads[-1] == 429, t.id
                batch = {"events": [{"type": "q"}] * min(quota.ingest_eps, 1000)}
                written = 0
                while written + len(batch["events"]) <= quota.ingest_eps:
                    assert client.post(f"/v1/tenants/{t.id}/events", json=batch, headers=auth).status_code == 201
                    written += len(batch["events"])
                over = client.put(f"/v1/tenants/{t.id}/objects/one-too-many", content=b"x", headers=auth)
                if written == quota.ingest_eps:
                    assert over.status_code == 429 and over.json()["quota"] == "ingest_eps", over.text
                    assert over.json()["limit"] == quota.ingest_eps and int(over.headers["retry-after"]) >= 1
