"""The service's tenants from files (service.tenants): inline tenants plus every tenant file of a
directory, followed by polling; a bad file or a duplicate id never drops a serving tenant. Also the
one rendering of a tenant entry the settings file and a cell's file share (components.workload), the
workload's mount of the cells' files, and the size of a 1,000-tenant cell file against the 1 MiB a
Kubernetes Secret may hold. The same, end to end in a running sandbox: tests/test_service_tenant_files_sandbox.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():  # starlette 1.x nudges toward httpx2; httpx is what is pinned here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from components.workload import (
    TENANT_FILE_KEY,
    TENANTS_DIR,
    DatabaseAccess,
    TenantDataAccess,
    WorkloadArgs,
    WorkloadTenant,
    pod_spec,
    render_settings,
    render_tenant_entries,
    tenant_file_secret_name,
)
from service.app import create_app
from service.auth import key_digest, new_api_key
from service.quotas import TenantQuota
from service.settings import ServiceSettings, TenantData, TenantEntry, dump_tenant_file, load_tenant_file
from service.tenants import TenantDirectory
from tests.helpers import MemoryObjects, MemoryStore, auth, service_settings

Q = TenantQuota(100, 1000, 1)


def entry(tid: str, key: str | None = None, quota: TenantQuota = Q) -> tuple[TenantEntry, str]:
    key = key or new_api_key(tid)
    return TenantEntry(tid, "pro", (key_digest(key),), quota), key


def write(path: Path, entries) -> None:
    """As the kubelet updates a mounted Secret: a new file renamed over the old one (a new inode)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(entries if isinstance(entries, str) else dump_tenant_file(entries))
    os.replace(tmp, path)


# --- one entry, one rendering ------------------------------------------------------------------------


def test_settings_round_trip_and_without_tenant_files_render_as_before():
    s = service_settings()
    assert "tenant_files_dir" not in s.to_dict() and "tenant_poll_s" not in s.to_dict()
    with_dir = dataclasses.replace(s, tenant_files_dir="/etc/meridian/tenants", tenant_poll_s=2.5)
    assert ServiceSettings.from_dict(with_dir.to_dict()) == with_dir
    assert ServiceSettings.from_dict(s.to_dict()) == s
    for bad in (0.0, 301.0):
        with pytest.raises(ValueError, match="tenant_poll_s"):
            dataclasses.replace(s, tenant_poll_s=bad)


@pytest.mark.parametrize(
    "doc, problem",
    [
        ("{not json", "not JSON"),
        ('{"id": "acme"}', "JSON list"),
        ('[{"id": "Acme", "plan": "p", "key_sha256": ["' + "a" * 64 + '"], "quota": {}}]', r"entry \[0\]: id"),
        ('[{"id": "acme", "plan": "p", "key_sha256": ["xyz"], "quota": {}}]', r"entry \[0\]: acme: key_sha256"),
        (
            '[{"id": "acme", "plan": "p", "key_sha256": ["' + "a" * 64 + '"], '
            '"quota": {"gql_qps": 0, "ingest_eps": 1, "storage_gb": 1}}]',
            "quota.gql_qps must be an integer >= 1",
        ),
        ('[{"id": "acme", "plan": "p", "key_sha256": ["' + "a" * 64 + '"], "quota": {}, "extra": 1}]', "unknown field"),
    ],
)
def test_a_tenant_file_that_is_not_entries_is_refused_naming_entry_and_field(doc, problem):
    with pytest.raises(ValueError, match=problem):
        load_tenant_file(doc)


def test_a_tenant_file_with_an_id_or_a_key_twice_is_refused():
    a, _ = entry("acme")
    with pytest.raises(ValueError, match=r"entry \[1\]: tenant acme is already entry \[0\]"):
        load_tenant_file(dump_tenant_file([a, a]))
    b = dataclasses.replace(entry("globex")[0], key_sha256=a.key_sha256)
    with pytest.raises(ValueError, match=r"entry \[1\]: key digest .* is already entry \[0\]"):
        load_tenant_file(dump_tenant_file([a, b]))


def _workload_tenants() -> list[WorkloadTenant]:
    silo = TenantDataAccess(bucket="b", prefix="tenants/t-acme/", namespace="t-acme", kms_key_arn="k", role_arn="r")
    return [
        WorkloadTenant(id="acme", plan="enterprise", gql_qps=1000, ingest_eps=20000, storage_gb=10, key_digest="x", data=silo),
        WorkloadTenant(id="initech", plan="starter", gql_qps=50, ingest_eps=1000, storage_gb=200, key_digest="y"),
    ]


def test_a_cells_file_holds_exactly_the_entries_the_settings_file_would():
    tenants = _workload_tenants()
    digests = [key_digest("ka"), key_digest("kb")]
    data = [("bucket-1", "arn:aws:kms:us-east-1:1:key/k", "arn:aws:iam::1:role/r", None), None]
    db = DatabaseAccess(
        writer_host="w", reader_host="r", port=5432, name="d", user="app", secret_arn="s", admin_user="m", admin_password="p"
    )
    settings = json.loads(
        render_settings(
            region="us-east-1",
            role="primary",
            port=8080,
            db=db,
            writer_host="w",
            reader_host="r",
            secret_arn="s",
            tenants=tenants,
            digests=digests,
            data=data,
        )
    )
    cell = render_tenant_entries(tenants=tenants, digests=digests, data=data)
    assert json.loads(cell) == settings["tenants"]
    assert load_tenant_file(cell) == ServiceSettings.from_dict(settings).tenants
    assert load_tenant_file(cell)[0].data == TenantData("bucket-1", "tenants/t-acme/", data[0][1], data[0][2], "t-acme")


# --- the workload mounts the cells' files --------------------------------------------------------------


def test_the_pod_mounts_each_cells_secret_optionally_and_nothing_without_cells():
    plain = pod_spec(image="i", secret_name="s", settings_file="service.json", port=8080, command=("python",), probes=True)
    assert [v["name"] for v in plain["volumes"]] == ["settings", "tmp"]
    spec = pod_spec(
        image="i",
        secret_name="s",
        settings_file="service.json",
        port=8080,
        command=("python",),
        probes=True,
        cells=("us-cell-001", "us-cell-002"),
    )
    mount = spec["containers"][0]["volumeMounts"][-1]
    assert mount == {"name": "tenants", "mountPath": TENANTS_DIR, "readOnly": True}
    projected = spec["volumes"][-1]["projected"]
    assert projected["sources"] == [
        {
            "secret": {
                "name": tenant_file_secret_name(cell),
                "optional": True,
                "items": [{"key": TENANT_FILE_KEY, "path": f"{cell}.json"}],
            }
        }
        for cell in ("us-cell-001", "us-cell-002")
    ]
    assert projected["defaultMode"] == 0o440 and tenant_file_secret_name("us-cell-001") == "meridian-tenants-us-cell-001"


@pytest.mark.parametrize("cells", [("US_cell",), ("a", "a"), ("-a",)])
def test_workload_args_refuse_cells_that_cannot_name_a_secret_or_a_file(cells):
    db = DatabaseAccess(
        writer_host="w", reader_host="r", port=5432, name="d", user="app", secret_arn="s", admin_user="m", admin_password="p"
    )
    with pytest.raises(ValueError, match="cells must be distinct DNS labels"):
        WorkloadArgs(
            region="us-east-1",
            role="primary",
            image="i",
            replicas=2,
            container_port=8080,
            database=db,
            tenants=[],
            canary_image="i",
            canary_replicas=1,
            target_group_arns={"stable": "a", "canary": "b"},
            vpc_cidr="10.0.0.0/16",
            database_cidrs=["10.0.1.0/24"],
            cells=cells,
        )


def test_a_cell_of_1000_tenants_fits_a_kubernetes_secret():
    """Kubernetes refuses a Secret whose data exceed 1 MiB (MaxSecretSize, 1,048,576 bytes). The
    longest entry the config allows: a 32-character id, a silo tenant with a 63-character bucket,
    multi-Region key ARNs, a 64-character role name, a replica key; 1,000 of them."""
    n, account = 1000, "123456789012"
    tenants, digests, data = [], [], []
    for i in range(n):
        tid = f"t{i:04d}" + "x" * 26 + "z"  # 32 characters, the TenantId maximum
        access = TenantDataAccess(bucket="", prefix=f"tenants/t-{tid}/", namespace=f"t-{tid}", kms_key_arn="", role_arn="")
        tenants.append(
            WorkloadTenant(
                id=tid, plan="enterprise", gql_qps=100_000, ingest_eps=1_000_000, storage_gb=100_000, key_digest="", data=access
            )
        )
        digests.append(key_digest(tid))
        key = f"arn:aws:kms:ap-southeast-2:{account}:key/mrk-{i:032x}"
        data.append(("b" * 63, key, f"arn:aws:iam::{account}:role/{'r' * 64}", key.replace("ap-southeast-2", "ap-northeast-1")))
    size = len(render_tenant_entries(tenants=tenants, digests=digests, data=data).encode())
    print(f"1,000 longest tenant entries: {size} bytes ({size / 2**20:.3f} MiB), {size / n:.0f} bytes per tenant")
    assert size < 2**20


def _longest_entries(n: int, plan: str) -> str:
    """`n` of the longest tenant file entries the config allows with plan `plan`: a 32-character id,
    quotas at QUOTA_MAX, a silo tenant's data at their longest (63-character bucket, multi-Region key
    ARNs in the longest region names, a 64-character role name)."""
    from stackconfig.models import QUOTA_MAX

    account = "123456789012"
    tenants, digests, data = [], [], []
    for i in range(n):
        tid = f"t{i:05d}" + "x" * 25 + "z"
        access = TenantDataAccess(bucket="", prefix=f"tenants/t-{tid}/", namespace=f"t-{tid}", kms_key_arn="", role_arn="")
        tenants.append(
            WorkloadTenant(
                id=tid, plan=plan, gql_qps=QUOTA_MAX, ingest_eps=QUOTA_MAX, storage_gb=QUOTA_MAX, key_digest="", data=access
            )
        )
        digests.append(key_digest(tid))
        key = f"arn:aws:kms:ap-southeast-2:{account}:key/mrk-{i:032x}"
        data.append(("b" * 63, key, f"arn:aws:iam::{account}:role/{'r' * 64}", key.replace("ap-southeast-2", "ap-northeast-1")))
    return render_tenant_entries(tenants=tenants, digests=digests, data=data)


def test_the_longest_tenant_entry_is_the_bound_cells_size_is_checked_against():
    """stackconfig bounds cells.size before any value is known (a first preview's key ARNs are
    unknown, so the rendered file's own check cannot run): by the longest entry, measured here."""
    from stackconfig.checks.tenants import (
        SECRET_MAX_BYTES,
        TENANT_ENTRY_MAX_BYTES_BUT_PLAN,
        max_tenants_per_file,
        tenant_entry_max_bytes,
    )

    one = _longest_entries(1, "enterprise")
    assert len(one.encode()) - 2 - len("enterprise") == TENANT_ENTRY_MAX_BYTES_BUT_PLAN  # `[...]`, less the plan
    plans = {"starter": None, "enterprise-plus": None}
    assert tenant_entry_max_bytes(plans) == TENANT_ENTRY_MAX_BYTES_BUT_PLAN + len("enterprise-plus")
    most = max_tenants_per_file(plans)
    assert len(_longest_entries(most, "enterprise-plus").encode()) <= SECRET_MAX_BYTES
    assert len(_longest_entries(most + 1, "enterprise-plus").encode()) > SECRET_MAX_BYTES
    assert 1_400 < most < 1_500, most


# --- the directory ------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_files_are_read_on_refresh_only_and_a_removed_file_takes_its_tenants_after_the_grace(tmp_path, monkeypatch):
    import service.tenants

    reads = []
    monkeypatch.setattr(service.tenants, "load_tenant_file", lambda text: reads.append(text) or load_tenant_file(text))
    inline, _ = entry("acme")
    clock = Clock()
    d = TenantDirectory([inline], tmp_path, grace_s=180, clock=clock)
    assert d.refresh() is False and set(d.current.entries) == {"acme"}
    new, key = entry("newco")
    write(tmp_path / "us-cell-001.json", [new])
    (tmp_path / "notes.txt").write_text("ignored: not a .json file")
    assert d.current.tenant_of(key) is None  # nothing happens between refreshes
    assert d.refresh() is True and d.current.tenant_of(key) == "newco" and len(reads) == 1
    assert d.refresh() is False and len(reads) == 1  # unchanged: not re-read
    (tmp_path / "us-cell-001.json").unlink()
    assert d.refresh() is False and d.current.tenant_of(key) == "newco"  # gone: served through the grace
    clock.now += 179
    assert d.refresh() is False and d.current.tenant_of(key) == "newco"
    clock.now += 1
    assert d.refresh() is True and set(d.current.entries) == {"acme"}


def test_a_secret_deleted_and_created_again_never_drops_its_tenants_and_is_logged(tmp_path, caplog):
    """A Secret replaced (delete, then create: a fixed name) or deleted by hand and put back: the
    pod's projected volume lacks the file until the kubelet's next resync (about a minute). Its
    tenants stay served throughout, the content it comes back with is read, and both ends are logged."""
    clock = Clock()
    d = TenantDirectory([], tmp_path, grace_s=180, clock=clock)
    path = tmp_path / "us-cell-001.json"
    served, key = entry("newco")
    write(path, [served])
    d.refresh()
    with caplog.at_level(logging.INFO, logger="service.tenants"):
        path.unlink()
        for _ in range(4):  # polls over a kubelet resync gap
            clock.now += 20
            assert d.refresh() is False and d.current.tenant_of(key) == "newco"
        onboarded, new_key = entry("initech")
        write(path, [served, onboarded])  # back, with the change the replacement carried
        clock.now += 20
        assert d.refresh() is True
    assert d.current.tenant_of(key) == "newco" and d.current.tenant_of(new_key) == "initech"
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == f"tenant file missing: {path}; its 1 tenants stay served for up to 180 s while it is gone"
    assert messages[1] == "tenant file back: its tenants were served throughout"
    clock.now += 1000  # the grace is counted from the last absence only: back means back
    assert d.refresh() is False and d.current.tenant_of(key) == "newco"


def test_a_missing_files_tenants_end_after_the_grace_and_the_drop_is_logged(tmp_path, caplog):
    clock = Clock()
    d = TenantDirectory([], tmp_path, grace_s=180, clock=clock)
    write(tmp_path / "us-cell-001.json", [entry("newco")[0]])
    kept, kept_key = entry("globex")
    write(tmp_path / "us-cell-002.json", [kept])
    d.refresh()
    (tmp_path / "us-cell-001.json").unlink()
    d.refresh()
    clock.now += 200
    with caplog.at_level(logging.WARNING, logger="service.tenants"):
        assert d.refresh() is True
    assert set(d.current.entries) == {"globex"} and d.current.tenant_of(kept_key) == "globex"
    (rec,) = [r for r in caplog.records if r.getMessage().startswith("tenant file gone")]
    assert (
        rec.getMessage() == (f"tenant file gone for 200 s: {tmp_path / 'us-cell-001.json'}; its 1 tenants are no longer served")
        and rec.dropped == 1
    )


def test_a_malformed_file_keeps_its_previous_tenants_and_is_logged(tmp_path, caplog):
    d = TenantDirectory([], tmp_path)
    new, key = entry("newco")
    write(tmp_path / "us-cell-001.json", [new])
    d.refresh()
    write(tmp_path / "us-cell-001.json", '[{"id": "newco"')
    with caplog.at_level(logging.ERROR, logger="service.tenants"):
        assert d.refresh() is False
    assert d.current.tenant_of(key) == "newco"
    (rec,) = [r for r in caplog.records if r.getMessage().startswith("tenant file refused")]
    assert rec.file == str(tmp_path / "us-cell-001.json") and "not JSON" in rec.problem and rec.kept == 1
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="service.tenants"):
        d.refresh()
    assert not caplog.records  # logged once per change, not every poll
    fixed, key2 = entry("newco")
    write(tmp_path / "us-cell-001.json", [fixed])
    assert d.refresh() is True and d.current.tenant_of(key2) == "newco" and d.current.tenant_of(key) is None


def test_an_id_in_two_files_or_inline_is_refused_naming_both_and_the_previous_set_stays(tmp_path, caplog):
    inline, inline_key = entry("acme")
    d = TenantDirectory([inline], tmp_path, inline_source="service.json")
    served, key = entry("newco")
    write(tmp_path / "us-cell-001.json", [served])
    d.refresh()
    before = dict(d.current.entries)
    twin, twin_key = entry("newco")
    write(tmp_path / "us-cell-002.json", [twin, entry("other")[0]])
    thief, thief_key = entry("acme")
    write(tmp_path / "us-cell-003.json", [thief])
    with caplog.at_level(logging.ERROR, logger="service.tenants"):
        assert d.refresh() is False
    assert dict(d.current.entries) == before
    assert d.current.tenant_of(key) == "newco" and d.current.tenant_of(twin_key) is None
    assert d.current.tenant_of(inline_key) == "acme" and d.current.tenant_of(thief_key) is None
    messages = sorted(r.getMessage() for r in caplog.records)
    assert messages == [
        f"tenant file refused: tenant acme in {tmp_path / 'us-cell-003.json'} is already served from service.json; "
        "its previous tenants stay in force",
        f"tenant file refused: tenant newco in {tmp_path / 'us-cell-002.json'} is already served from "
        f"{tmp_path / 'us-cell-001.json'}; its previous tenants stay in force",
    ]


def test_a_key_digest_in_two_files_is_refused(tmp_path):
    d = TenantDirectory([], tmp_path)
    a, key = entry("acme")
    write(tmp_path / "a.json", [a])
    d.refresh()
    write(tmp_path / "b.json", [entry("globex", key=key)[0]])
    d.refresh()
    assert d.current.tenant_of(key) == "acme" and "globex" not in d.current.entries


@pytest.mark.parametrize("order", ["together", "new-cell-first", "old-cell-first"])
def test_a_tenant_moved_between_cells_ends_served_from_its_new_file(tmp_path, order):
    """The two cells' Secrets update in either order: taken by the new cell first, the tenant is
    refused there until the old cell lets it go, so it is served throughout; let go first, it is
    unserved only until the new cell's file arrives (what a move's runbook orders: new cell first)."""
    d = TenantDirectory([], tmp_path)
    moved, key = entry("acme")
    stays, _ = entry("globex")
    old, new = tmp_path / "us-cell-001.json", tmp_path / "us-cell-002.json"
    write(old, [moved])
    write(new, [stays])
    d.refresh()
    steps = {"together": [(old, new)], "new-cell-first": [(new,), (old,)], "old-cell-first": [(old,), (new,)]}[order]
    served = []
    for step in steps:
        for path in step:
            write(path, [] if path == old else [stays, moved])
        d.refresh()
        served.append(d.current.tenant_of(key) == "acme")
    assert served == {"together": [True], "new-cell-first": [True, True], "old-cell-first": [False, True]}[order]
    assert d._files[new.name].served == (stays, moved) and d._files[old.name].served == ()


def test_an_absent_directory_serves_the_inline_tenants(tmp_path, caplog):
    inline, key = entry("acme")
    d = TenantDirectory([inline], tmp_path / "none")
    with caplog.at_level(logging.WARNING, logger="service.tenants"):
        d.refresh()
        d.refresh()
    assert d.current.tenant_of(key) == "acme" and len(caplog.records) == 1


# --- the app: requests read the set the last refresh made ---------------------------------------------


def test_the_app_follows_the_files_and_their_quotas_while_it_runs(tmp_path):
    """The app's own follower (a task polling every tenant_poll_s) swaps in the new set and moves
    the quota book with it: a tenant whose quota changed gets a fresh bucket at its new rate."""
    settings = dataclasses.replace(service_settings(), tenant_files_dir=str(tmp_path), tenant_poll_s=0.1)
    new, key = entry("newco", quota=TenantQuota(1, 1, 1))
    write(tmp_path / "us-cell-001.json", [new])
    clock = [0.0]  # frozen: no token comes back by refill
    store = MemoryStore()
    with TestClient(create_app(settings, store, objects=MemoryObjects(store), clock=lambda: clock[0])) as client:
        bearer = {"Authorization": f"Bearer {key}"}
        assert client.get("/v1/tenants/newco/events", headers=bearer).status_code == 200  # read at start
        assert client.get("/v1/tenants/newco/events", headers=bearer).status_code == 429  # its gql_qps of 1
        assert client.get("/v1/tenants/acme/events", headers=auth("acme")).status_code == 200  # inline still served
        later, later_key = entry("later")
        write(tmp_path / "us-cell-002.json", [later])
        write(tmp_path / "us-cell-001.json", [dataclasses.replace(new, quota=TenantQuota(100, 100, 1))])
        deadline = time.monotonic() + 5
        while client.get("/v1/tenants/later/events", headers={"Authorization": f"Bearer {later_key}"}).status_code == 401:
            assert time.monotonic() < deadline, "the new tenant file was not picked up"
            time.sleep(0.05)
        assert client.get("/v1/tenants/newco/events", headers=bearer).status_code == 200  # its new quota's bucket


# --- the Workload component under SDK mocks (its own process: the SDK's runtime state is global) --------

WORKLOAD_PROBE = """
import json, sys
import pulumi

class Mocks(pulumi.runtime.Mocks):
    seen = []
    def new_resource(self, args):
        self.seen.append((args.typ, args.inputs))
        return args.name + "-id", {**args.inputs, "metadata": {**(args.inputs.get("metadata") or {}), "name": args.name}}
    def call(self, args):
        return {}

pulumi.runtime.set_mocks(Mocks(), preview=False)
from components.workload import DatabaseAccess, TenantDataAccess, Workload, WorkloadArgs, WorkloadTenant, tenant_file

db = DatabaseAccess(writer_host="w", reader_host="r", port=5432, name="d", user="app", secret_arn="s", admin_user="m",
                    admin_password="p")
tenants = [
    WorkloadTenant(id="acme", plan="pro", gql_qps=1, ingest_eps=1, storage_gb=1, key_digest=pulumi.Output.from_input("a" * 64)),
    WorkloadTenant(id="globex", plan="pro", gql_qps=2, ingest_eps=2, storage_gb=2, key_digest="b" * 64,
                   data=TenantDataAccess(bucket=pulumi.Output.from_input("bk"), prefix="tenants/t-globex/", namespace="t-globex",
                                         kms_key_arn="k", role_arn="r")),
]
w = Workload("w", WorkloadArgs(region="us-east-1", role="primary", image="i", replicas=2, container_port=8080, database=db,
    tenants=tenants[:1], canary_image="i", canary_replicas=1, target_group_arns={"stable": "a", "canary": "b"},
    vpc_cidr="10.0.0.0/16", database_cidrs=["10.0.1.0/24"], cells=tuple(sys.argv[1:])))
cell = {}

@pulumi.runtime.test
def run():
    return pulumi.Output.all(*w.service_names.values(), tenant_file(tenants)).apply(lambda v: cell.update(file=v[-1]))

run()
print(json.dumps({"resources": Mocks.seen, "cell_file": cell["file"]}, default=str))
"""


def _probe_workload(*cells: str) -> dict:
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", WORKLOAD_PROBE, *cells],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def _settings_secrets(resources) -> list[dict]:
    out = []
    for typ, inputs in resources:
        data = inputs.get("stringData") or {}
        data = data.get("value", data)  # a secret arrives wrapped
        if typ == "kubernetes:core/v1:Secret" and "service.json" in data:
            out.append(json.loads(data["service.json"]))
    return out


@pytest.mark.slow
def test_the_workload_mounts_the_cells_files_into_its_deployments_only_and_names_the_dir_in_its_settings():
    with_cells, without = _probe_workload("us-cell-001", "us-cell-002"), _probe_workload()
    for probe, cells in ((with_cells, True), (without, False)):
        deployments = [
            [v["name"] for v in i["spec"]["template"]["spec"]["volumes"]]
            for t, i in probe["resources"]
            if t == "kubernetes:apps/v1:Deployment"
        ]
        jobs = [
            [v["name"] for v in i["spec"]["template"]["spec"]["volumes"]]
            for t, i in probe["resources"]
            if t == "kubernetes:batch/v1:Job"
        ]
        assert len(deployments) == 2 and jobs == [["settings", "tmp"]]
        assert all(d == (["settings", "tmp", "tenants"] if cells else ["settings", "tmp"]) for d in deployments)
        settings = _settings_secrets(probe["resources"])
        assert len(settings) == 2  # stable and canary
        for s in settings:
            assert s.get("tenant_files_dir") == (TENANTS_DIR if cells else None)
            assert (s.get("objects") is not None) == cells  # cell tenants reach storage even if no inline one has data
    # a cell's file, through the Output plumbing a cell stack uses: the entries the settings would carry
    entries = load_tenant_file(with_cells["cell_file"])
    assert [e.id for e in entries] == ["acme", "globex"] and entries[1].data.bucket == "bk" and entries[0].data is None


def test_object_access_follows_the_set_a_tenant_whose_data_moved_gets_a_new_session():
    from datetime import UTC, datetime, timedelta

    from service.objects import FollowsTenants, ObjectsUnavailable, S3Objects
    from service.settings import ObjectStorage

    assumed = []

    class Sts:
        def assume_role(self, **kw):
            assumed.append((kw["RoleArn"], kw["Tags"][0]["Value"]))
            expiry = datetime.now(UTC) + timedelta(hours=1)
            return {"Credentials": {"AccessKeyId": "a", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": expiry}}

    class Base:
        def client(self, *_a, **_kw):
            return Sts()

    def data(role: str) -> TenantData:
        return TenantData("b", "tenants/t-x/", "arn:aws:kms:us-east-1:1:key/k", role, "t-x")

    objects = S3Objects(ObjectStorage("us-east-1"), {"acme": data("r1"), "globex": data("g1")}, base_session=Base())
    assert isinstance(objects, FollowsTenants)
    objects.client_of("acme"), objects.client_of("globex")
    objects.set_tenants({"acme": data("r2"), "globex": data("g1"), "newco": data("n1")})
    objects.client_of("acme"), objects.client_of("globex"), objects.client_of("newco")
    assert [role for role, _ in assumed] == ["r1", "g1", "r2", "n1"]  # globex kept its session
    objects.set_tenants({"globex": data("g1")})
    with pytest.raises(ObjectsUnavailable, match="no object storage configured for tenant acme"):  # acme went
        asyncio.run(objects.get("acme", "k"))


def test_a_tenant_file_a_secret_cannot_hold_is_refused_when_rendered():
    """Over 1 MiB the preview fails naming the fix (at `pulumi up` the API server would refuse the Secret)."""
    from components.workload import SECRET_MAX_BYTES, _within_a_secret

    fits = "x" * SECRET_MAX_BYTES
    assert _within_a_secret(fits, 1483) is fits
    with pytest.raises(ValueError, match=r"over a Secret's 1,048,576: lower cells.size"):
        _within_a_secret(fits + "x", 1484)
