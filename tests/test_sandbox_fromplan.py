"""The sandbox's services come from the plan: the substitution between the plan's in-cluster
endpoints and the sandbox's processes (`podrun.sandbox_address_for`) is the only change, it touches
only a DSN's host and port, and a wiring mismatch fails before start."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from meridian.sandbox import fromplan, podrun
from service.settings import ServiceSettings

from .helpers import ROOT

pytestmark = pytest.mark.slow  # the plan comes from an offline run of the program

PORTS = {"nodes": {"primary": 15432, "dr": 15433}, "writer": 15434, "service": {"primary": 18080, "dr": 18081}}


@pytest.fixture(scope="module")
def planned() -> fromplan.PlannedWorkload:
    return fromplan.load(ROOT, "us")


@pytest.fixture(scope="module")
def apac() -> fromplan.PlannedWorkload:
    return fromplan.load(ROOT, "apac")


def _addresses(planned):
    return fromplan.local_addresses(planned, nodes=PORTS["nodes"], writer_endpoint=PORTS["writer"])


def _prepare(planned, role, tmp_path, container=None):
    subs = fromplan.local_substitutions(planned, role, addresses=_addresses(planned), service_port=PORTS["service"][role])
    return podrun.prepare(container or planned.services[role], tmp_path / role, subs)


def _endpoints(dsn: str) -> str:
    return urlsplit(dsn).netloc.rpartition("@")[2]


@pytest.mark.parametrize("stack", ["us", "apac"])
@pytest.mark.parametrize("role", ["primary", "dr"])
def test_the_rendered_dsns_go_through_sandbox_address_for_and_only_host_and_port_change(planned, apac, stack, role, tmp_path):
    """The exact DSNs the plan renders, as the sandbox runs them: scheme, user, database and the whole
    query (sslmode, target_session_attrs) byte for byte; only the endpoint becomes a local address."""
    plan = {"us": planned, "apac": apac}[stack]
    pod = _prepare(plan, role, tmp_path)
    rendered = plan.service_settings(role)
    local = ServiceSettings.load(podrun.local_path(pod, podrun.settings_path_of(plan.services[role])))
    for attr in ("write_dsn", "read_dsn"):
        before, after = urlsplit(getattr(rendered, attr)), urlsplit(getattr(local, attr))
        assert after._replace(netloc="") == before._replace(netloc=""), attr
        assert after.netloc.rpartition("@")[0] == before.netloc.rpartition("@")[0], attr
        addresses = _addresses(plan)
        keys = [  # a multi-host DSN: each endpoint in its order; writes an endpoint forwards have their own
            podrun.FORWARDED_WRITES + e if attr == "write_dsn" and podrun.FORWARDED_WRITES + e in addresses else e
            for e in _endpoints(getattr(rendered, attr)).split(",")
        ]
        assert _endpoints(getattr(local, attr)) == ",".join(podrun.sandbox_address_for(k, addresses) for k in keys)
    assert local.writes == rendered.writes
    # where each endpoint leads: the region's own node, or (an Aurora cluster's endpoints) the writer stand-in
    own = f"127.0.0.1:{PORTS['nodes'][role]}"
    assert _endpoints(local.read_dsn) == own
    writes_to = f"127.0.0.1:{PORTS['writer']}" if rendered.writes == "forwarded" else own
    assert set(_endpoints(local.write_dsn).split(",")) == {writes_to}


def test_sandbox_address_for_refuses_an_endpoint_without_a_stand_in():
    assert (
        podrun.sandbox_address_for("db.x.rds.amazonaws.com:5432", {"db.x.rds.amazonaws.com:5432": "127.0.0.1:1"}) == "127.0.0.1:1"
    )
    with pytest.raises(podrun.Unsubstituted, match="no local stand-in for the endpoint other:5432"):
        podrun.sandbox_address_for("other:5432", {"db.x.rds.amazonaws.com:5432": "127.0.0.1:1"})


@pytest.mark.parametrize("role", ["primary", "dr"])
def test_only_endpoints_port_and_bind_address_differ_from_what_the_plan_mounts(planned, role, tmp_path):
    pod = _prepare(planned, role, tmp_path)
    rendered = planned.service_settings(role)
    local = ServiceSettings.load(podrun.local_path(pod, podrun.settings_path_of(planned.services[role])))
    assert (local.host, local.port) == ("127.0.0.1", PORTS["service"][role])
    # everything else exactly as rendered: user, password, database, TLS, tenants and their key digests, quotas
    for attr in ("write_dsn", "read_dsn"):
        plan_url, local_url = urlsplit(getattr(rendered, attr)), urlsplit(getattr(local, attr))
        assert plan_url.netloc.rpartition("@")[0] == local_url.netloc.rpartition("@")[0]
        assert plan_url.path == local_url.path and "sslmode=require" in local_url.query
    assert (local.tenants, local.region, local.role, local.pool_max) == (
        rendered.tenants,
        rendered.region,
        rendered.role,
        rendered.pool_max,
    )
    assert pod.argv[1:] == ["-m", "service", "--config", podrun.local_path(pod, "/etc/meridian/service.json")]
    assert not podrun.AWS_HOST.search(json.dumps(local.to_dict()))


def test_a_settings_file_the_deployment_does_not_mount_fails_before_start(planned, tmp_path):
    broken = copy.deepcopy(planned.services["primary"])
    broken.spec["args"] = ["--config", "/etc/meridian/settings.json"]  # the program and the service disagree
    with pytest.raises(podrun.Unsubstituted, match="still names AWS endpoints"):
        _prepare(planned, "primary", tmp_path, broken)


def test_settings_the_service_cannot_load_fail_before_start(planned, tmp_path):
    broken = copy.deepcopy(planned.services["dr"])
    mounted = broken.file("/etc/meridian/service.json")
    doc = json.loads(mounted.content)
    doc.pop("read_dsn")
    mounted.content = json.dumps(doc)
    with pytest.raises(KeyError, match="read_dsn"):
        _prepare(planned, "dr", tmp_path, broken)


def test_the_migration_runs_the_plans_job_with_only_its_endpoint_substituted(planned, tmp_path):
    subs = fromplan.local_substitutions(planned, "primary", addresses=_addresses(planned), service_port=None)
    pod = podrun.prepare(planned.migration, tmp_path, subs)
    assert pod.argv[1:4] == ["-m", "service", "migrate"]
    local = json.loads((tmp_path / "etc/meridian/migrate.json").read_text())
    rendered = planned.migration_settings()
    assert urlsplit(local["admin_dsn"]).netloc.endswith(f"@127.0.0.1:{PORTS['writer']}")  # Aurora: the writer endpoint
    assert urlsplit(local["admin_dsn"]).query == urlsplit(rendered.admin_dsn).query
    assert urlsplit(local["admin_dsn"]).netloc.startswith(f"{planned.master_user}:")
    assert local["app_user"] == rendered.app_user != planned.master_user
    # no stand-in given: the secret stays the plan's (and the run would ask AWS for it)
    assert local["app_secret"] == {"arn": rendered.app_secret.arn, "region": rendered.app_secret.region, "endpoint_url": None}
    assert "password" not in json.dumps(local["app_secret"])
    # with the stand-in: its copy of the region's secret, through its endpoint
    made = {
        "endpoint": "http://127.0.0.1:1",
        "regions": {},
        "db_secrets": {rendered.app_secret.region: "arn:stand-in"},
        "broker": {"access_key_id": "k", "secret_access_key": "s"},
    }
    made["regions"][planned.service_settings("primary").objects.region] = {"tenants": {}}
    subs = fromplan.local_substitutions(planned, "primary", addresses=_addresses(planned), service_port=None, objects=made)
    pod = podrun.prepare(planned.migration, tmp_path / "with", subs)
    local = json.loads((tmp_path / "with/etc/meridian/migrate.json").read_text())
    assert local["app_secret"] == {
        "arn": "arn:stand-in",
        "region": rendered.app_secret.region,
        "endpoint_url": "http://127.0.0.1:1",
    }
    assert pod.env["AWS_ACCESS_KEY_ID"] == "k", "the Job reads the secret with the pod's identity"
    # the API's user is the one the migration creates
    assert urlsplit(planned.service_settings("primary").write_dsn).username == rendered.app_user


def test_the_plan_is_cached_per_program_hash(tmp_path, planned, monkeypatch):
    project = tmp_path / "p"
    for name in ("__main__.py", "Pulumi.yaml", "Pulumi.us.yaml", "Pulumi.us-cell-001.yaml"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, project / name)
    for package in ("components", "stackconfig", "service"):
        shutil.copytree(ROOT / package, project / package, ignore=shutil.ignore_patterns("__pycache__"))
    before = fromplan.program_hash(project, "us")
    assert before == fromplan.program_hash(ROOT, "us") and before != fromplan.program_hash(project, "eu")
    (project / "tests").mkdir()
    (project / "tests" / "x.py").write_text("# not the program\n")
    assert fromplan.program_hash(project, "us") == before
    workload = project / "components" / "workload.py"
    workload.write_text(workload.read_text().replace('BIND_HOST = "0.0.0.0"', 'BIND_HOST = "127.0.0.1"'))
    assert fromplan.program_hash(project, "us") != before, "a changed component must re-render the sandbox's services"
    changed = fromplan.program_hash(project, "us")
    cell = project / "Pulumi.us-cell-001.yaml"  # the zone's cell: its tenant file is what us's services serve
    cell.write_text(cell.read_text().replace("monthly_budget_usd: 400", "monthly_budget_usd: 500"))
    assert fromplan.program_hash(project, "us") != changed, "a changed cell must re-render the zone's tenant files"

    # a second load of an unchanged program reads the cache: no program run
    def no_run(*args, **kwargs):
        raise AssertionError("the program ran again for an unchanged plan")

    monkeypatch.setattr(subprocess, "run", no_run)
    again = fromplan.load(ROOT, "us")
    assert again.api_keys == planned.api_keys


@pytest.mark.parametrize("role", ["primary", "dr"])
def test_a_cells_tenant_file_is_written_where_the_pod_mounts_it_byte_for_byte(planned, role, tmp_path):
    """us lists the cell us-cell-001: its tenant file, as the cell's plan renders it for this region
    (a run of the cell's own program against the platform's outputs), lands in the pod's tenants
    directory unchanged; its tenants are not added to the inline settings."""
    cell = planned.cells["us-cell-001"]
    assert [t.id for t in cell.entries(role)] == ["vandelay", "stark", "wonka"]
    assert set(cell.api_keys) == {"vandelay", "stark", "wonka"}
    assert cell.entries(role)[1].data.bucket != cell.entries("dr" if role == "primary" else "primary")[1].data.bucket
    pod = _prepare(planned, role, tmp_path)
    local = ServiceSettings.load(podrun.local_path(pod, podrun.settings_path_of(planned.services[role])))
    assert (Path(local.tenant_files_dir) / "us-cell-001.json").read_text() == cell.tenant_files[role]
    assert {t.id for t in local.tenants} == {t.id for t in planned.service_settings(role).tenants}
    assert planned.tenant_stacks("us")["stark"] == "us-cell-001" and planned.tenant_stacks("us")["acme"] == "us"
