"""A cell stack under the offline engine: the platform previewed first (its own process), its
outputs answering the cell's StackReference exactly as the engine's builtin provider would, and
the cell's tenants composed by the platform's own functions on the platform's handles."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from components.workload import TENANT_FILE_KEY
from meridian.engine.mocks import STACK_REFERENCE, stack_reference_state

from .helpers import ROOT, Cli, full_project_copy, meridian_cmd, run_meridian

CELL = "us-cell-001"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's sentinel for an unknown value
SECRET = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "mk_x"}
CELL_TENANTS = [
    {"id": "hooli", "plan": "pro", "monthly_budget_usd": 2000, "data_tier": "pool"},
    {
        "id": "stark",
        "plan": "enterprise",
        "monthly_budget_usd": 5000,
        "data_tier": "silo",
        "quota": {"gql_qps": 800, "ingest_eps": 15000, "storage_gb": 8000},
    },
]


def _zone(dest: Path, *, cell_tenants=CELL_TENANTS, move: str | None = None) -> Path:
    """A project copy whose `us` serves one cell; `move`: a tenant of `us` moved into the cell."""
    full_project_copy(dest)
    us = yaml.safe_load((dest / "Pulumi.us.yaml").read_text())
    us["config"]["meridian:cells"] = {"names": [CELL]}
    tenants = list(cell_tenants)
    if move:
        tenants.append(next(t for t in us["config"]["meridian:tenants"] if t["id"] == move))
        us["config"]["meridian:tenants"] = [t for t in us["config"]["meridian:tenants"] if t["id"] != move]
    (dest / "Pulumi.us.yaml").write_text(yaml.safe_dump(us, sort_keys=False))
    cell = {"config": {"aws:region": "us-east-1", "meridian:platform": "us", "meridian:tenants": tenants}}
    (dest / f"Pulumi.{CELL}.yaml").write_text(yaml.safe_dump(cell, sort_keys=False))
    return dest


def _previews(project: Path, *stacks: str) -> dict[str, dict]:
    procs = {
        s: subprocess.Popen(
            meridian_cmd("preview", "--stack", s, "--no-policy", "--json", str(project / f"{s}.plan.json")),
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in stacks
    }
    plans = {}
    for s, proc in procs.items():
        out, err = proc.communicate(timeout=900)
        assert proc.returncode in (0, 1), Cli(proc.returncode, out, err)  # 1: the deploy preflight's verdict, not ours
        plans[s] = json.loads((project / f"{s}.plan.json").read_text())
    return plans


@pytest.fixture(scope="module")
def zone_plans(tmp_path_factory) -> dict[str, dict]:
    return _previews(_zone(tmp_path_factory.mktemp("zone")), "us", CELL)


def associations_per_cluster(plan: dict) -> dict[str, int]:
    """EKS Pod Identity associations per cluster name: the plan's own, and those an add-on owns."""
    per_cluster: dict[str, int] = {}
    for r in plan["resources"]:
        if r["type"] == "aws:eks/podIdentityAssociation:PodIdentityAssociation":
            count = 1
        elif r["type"] == "aws:eks/addon:Addon":
            count = len(r["inputs"].get("podIdentityAssociations") or [])
        else:
            continue
        name = r["inputs"]["clusterName"]
        per_cluster[name] = per_cluster.get(name, 0) + count
    return {name: count for name, count in per_cluster.items() if count}


def _by_name(plan: dict) -> dict[str, dict]:
    return {r["name"]: r for r in plan["resources"]}


def test_the_stack_reference_reads_what_the_engine_would():
    """The builtin provider's state: name, the outputs (secrets still secret), sorted secret names."""
    outputs = {"zone": "us", "tenant_api_keys": {"acme": SECRET}, "b": [SECRET], "cell_handles": {"x": "y"}}
    assert stack_reference_state("organization/meridian/us", outputs) == {
        "name": "organization/meridian/us",
        "outputs": outputs,
        "secretOutputNames": ["b", "tenant_api_keys"],
    }


def _read_reference(outputs: dict, *, given: str = "organization/meridian/us") -> dict:
    """Run a tiny program under the engine's mocks in a fresh process: read `cell_handles` and a secret."""
    script = textwrap.dedent(
        f"""
        import asyncio, json, sys
        import pulumi
        from pulumi.runtime.stack import run_pulumi_func
        from meridian.engine.mocks import MeridianMocks
        loop = asyncio.new_event_loop(); asyncio.set_event_loop(loop)
        mocks = MeridianMocks("us-east-1", stack_outputs={{{given!r}: json.loads(sys.argv[1])}})
        pulumi.runtime.set_mocks(mocks, project="meridian", stack="c", preview=True, organization="organization")
        seen = {{}}
        def program():
            ref = pulumi.StackReference("c-platform", stack_name="organization/meridian/us")
            handles, key = ref.require_output("cell_handles"), ref.get_output("tenant_api_keys")
            async def look():
                seen.update(known=await handles.is_known(), value=await handles.future(), secret=await handles.is_secret(),
                            key_secret=await key.is_secret())
            seen["task"] = asyncio.ensure_future(look())
        try:
            loop.run_until_complete(run_pulumi_func(program))
            loop.run_until_complete(seen.pop("task"))
        except Exception as exc:
            seen = {{"error": f"{{type(exc).__name__}}: {{exc}}"}}
        print(json.dumps(seen))
        """
    )
    proc = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-c", script, json.dumps(outputs)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_known_outputs_arrive_known_and_secrets_stay_secret():
    seen = _read_reference({"cell_handles": {"a": "b"}, "tenant_api_keys": SECRET})
    assert seen == {"known": True, "value": {"a": "b"}, "secret": False, "key_secret": True}


def test_an_unknown_platform_output_stays_unknown_in_the_cell():
    """Not None, not the sentinel string: unknown, as a value the platform's preview could not know."""
    seen = _read_reference({"cell_handles": {"a": UNKNOWN}, "tenant_api_keys": SECRET})
    assert seen["known"] is False and seen["value"] is None


def test_a_stack_the_engine_was_not_given_is_a_clear_failure():
    seen = _read_reference({"cell_handles": {}}, given="organization/meridian/eu")
    assert "the program reads stack organization/meridian/us" in seen["error"] and "preview it first" in seen["error"]
    assert STACK_REFERENCE == "pulumi:pulumi:StackReference"


def test_the_platform_exports_cell_handles_only_when_it_serves_cells(zone_plans):
    handles = zone_plans["us"]["outputs"]["cell_handles"]
    assert sorted(handles) == ["budget_alerts_topic_arn", "regions", "silo_replication_role_arn"]
    assert sorted(handles["regions"]) == ["dr", "primary"]


def test_the_cell_stands_on_the_platforms_handles(zone_plans):
    platform, cell = zone_plans["us"], zone_plans[CELL]
    handles = platform["outputs"]["cell_handles"]
    resources = _by_name(cell)
    for role, region in (("primary", "us-east-1"), ("dr", "us-west-2")):
        h = handles["regions"][role]
        association = resources[f"us-{region}-t-hooli-identity"]["inputs"]
        assert association["roleArn"] == h["identity_role_arn"] and association["clusterName"] == h["cluster_name"]
        assert resources[f"us-{region}-t-stark-silo-bucket"]["inputs"]["bucket"] == f"{h['silo_bucket_prefix']}t-stark"
        secret = resources[f"{CELL}-{region}-tenant-file"]["inputs"]
        assert secret["metadata"] == {
            "labels": {"meridian.io/cell": CELL},
            "name": f"meridian-tenants-{CELL}",
            "namespace": "platform",
        }
    replication = resources["us-dr-t-stark-replication"]["inputs"]
    assert replication["role"] == handles["silo_replication_role_arn"]
    budget = resources["us-cost-tenant-hooli"]["inputs"]
    # auto-named from its logical name, as the platform's: under the prefix the platform's cap enforcer reads
    assert "name" not in budget and "namePrefix" not in budget
    assert budget["notifications"][0]["subscriberSnsTopicArns"] == [handles["budget_alerts_topic_arn"]]
    enforcer = next(r for r in platform["resources"] if r["name"] == "us-cost-enforcer")["inputs"]
    assert enforcer["environment"]["variables"]["BUDGET_PREFIX"] == "us-cost-tenant-"
    assert enforcer["environment"]["variables"]["STACK"] == "us"


def test_the_platform_mounts_the_tenant_file_the_cell_renders(zone_plans):
    """Renderer and consumer agree: each region's service (both tracks) mounts, from its own namespace,
    the Secret name and key the cell's Secret in that region has, at the path the settings name."""
    cell = _by_name(zone_plans[CELL])
    platform = {r["name"]: r for r in zone_plans["us"]["resources"] if r["type"] == "kubernetes:apps/v1:Deployment"}
    for region in ("us-east-1", "us-west-2"):
        rendered = cell[f"{CELL}-{region}-tenant-file"]["inputs"]
        for track in ("api", "canary"):
            deployment = platform[f"us-{region}-api-{track}"]["inputs"]
            pod = deployment["spec"]["template"]["spec"]
            assert deployment["metadata"]["namespace"] == rendered["metadata"]["namespace"]
            projected = [v["projected"] for v in pod["volumes"] if "projected" in v]
            sources = [s["secret"] for p in projected for s in p["sources"]]
            assert {"name": rendered["metadata"]["name"], "optional": True} == {
                k: v for k, v in sources[0].items() if k in ("name", "optional")
            }
            # the file's content is secret in the plan (the whole stringData with it): its key is the one tenant_file_secret writes
            assert rendered["stringData"] == "[secret]"
            assert [i["key"] for i in sources[0]["items"]] == [TENANT_FILE_KEY]
            mounted = {m["mountPath"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
            assert "/etc/meridian/tenants" in mounted


def test_the_cells_tenant_file_is_updated_in_place_and_the_platforms_settings_replaced(zone_plans):
    """The cell's Secret has a fixed name the platform's pods mount: its provider must patch it
    (enableSecretMutable), never delete and create it. The platform's settings Secrets are
    auto-named and rolled by the Deployment: their provider keeps the default."""
    cell_providers = [r for r in zone_plans[CELL]["resources"] if r["type"] == "pulumi:providers:kubernetes"]
    assert len(cell_providers) == 2
    for provider in cell_providers:
        assert provider["inputs"].get("enableSecretMutable") in (True, "true"), provider["name"]
    platform = [r for r in zone_plans["us"]["resources"] if r["type"] == "pulumi:providers:kubernetes"]
    assert platform and all("enableSecretMutable" not in r["inputs"] for r in platform)
    secrets = [r for r in zone_plans[CELL]["resources"] if r["type"] == "kubernetes:core/v1:Secret"]
    names = [f"pulumi:providers:kubernetes::{p['name']}" for p in cell_providers]
    assert len(secrets) == 2 and all(any(n in r["provider"] for n in names) for r in secrets)
    settings = [r for r in zone_plans["us"]["resources"] if r["type"] == "kubernetes:core/v1:Secret"]
    assert settings and all("name" not in r["inputs"]["metadata"] for r in settings)  # auto-named: created before deleted


def test_a_cells_resources_carry_the_platforms_stack_tag(zone_plans):
    """What the platform finds by `meridian:stack` (the enforcer's tenant keys, the replication roles'
    keys, the backup selection, the zone budget) covers the cell without the platform listing it."""
    for r in zone_plans[CELL]["resources"]:
        if r["type"] == "pulumi:providers:aws":
            tags = json.loads(r["inputs"]["defaultTags"])["tags"]
            assert tags["meridian:stack"] == "us" and tags["meridian:cell"] == CELL, tags
    named = [
        r["name"] for r in zone_plans[CELL]["resources"] if not r["type"].startswith(("pulumi:providers:", "pulumi:pulumi:"))
    ]
    # the tenants' own under the zone's names (they move between stacks), the cell's own under its name
    own = {f"{CELL}-us-east-1-tenant-file", f"{CELL}-us-west-2-tenant-file", f"{CELL}-platform"}
    assert {n for n in named if CELL in n} == own & set(named) and len(own & set(named)) == 2  # the reference is no resource
    assert named and all(n.startswith("us-") for n in named)


def test_the_platform_associates_what_the_zone_check_counts_per_cluster(zone_plans):
    """stackconfig.zone refuses a zone whose tenants, plus the platform's own associations, pass the
    5,000 Pod Identity associations EKS allows per cluster: the platform's own count is measured here
    (an add-on's associations are the cluster's too: the EBS CSI driver's)."""
    from stackconfig.zone import PLATFORM_POD_IDENTITY_ASSOCIATIONS

    inline = len(zone_plans["us"]["outputs"]["tenants"])
    for plan, expected_extra in ((zone_plans["us"], PLATFORM_POD_IDENTITY_ASSOCIATIONS), (zone_plans[CELL], 0)):
        per_cluster = associations_per_cluster(plan)
        tenants = inline if plan is zone_plans["us"] else len(CELL_TENANTS)
        assert len(per_cluster) == 2 and set(per_cluster.values()) == {tenants + expected_extra}, per_cluster


def test_the_cell_holds_no_platform_part(zone_plans):
    types = {r["type"] for r in zone_plans[CELL]["resources"]}
    for platform_only in (
        "aws:ec2/vpc:Vpc",
        "aws:eks/cluster:Cluster",
        "aws:rds/cluster:Cluster",
        "aws:iam/role:Role",
        "aws:lambda/function:Function",
        "aws:backup/vault:Vault",
        "kubernetes:apps/v1:Deployment",
    ):
        assert platform_only not in types


def _tenants_own(plan: dict, tenant: str) -> dict[str, dict]:
    """A tenant's own resources by URN less the stack (`<type chain>::<name>`): its slices, API key,
    budget and replication, wherever the stack holds it."""
    marks = (f"-t-{tenant}", f"-api-keys-{tenant}", f"-cost-tenant-{tenant}")
    return {
        r["urn"].split("::", 2)[2]: r
        for r in plan["resources"]
        if any(m in r["name"] for m in marks) and not r["type"].startswith("pulumi:providers:")
    }


def _comparable(resource: dict) -> str:
    """Its inputs, less the ids the offline engine derives from the stack (a KMS key's id)."""
    return re.sub(r"key/[0-9a-f-]{36}", "key/<id>", json.dumps(resource["inputs"], sort_keys=True))


# Where the platform parents a tenant's resource to a component of its own, a cell parents it to its
# stack and carries an alias to the platform's parentage (and the platform one to the stack's).
PLATFORM_PARENTS = {
    "aws:budgets/budget:Budget": "meridian:cost:CostCaps",
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": "meridian:dr:DisasterRecovery",
}


def test_a_tenant_has_the_same_urns_and_inputs_in_the_platform_and_in_a_cell(tmp_path):
    """The invariant `pulumi state move` needs to move a tenant without a replacement: a silo tenant
    rendered inline in the platform and the same tenant in a cell have the same resources, URN (type
    chain and name) and inputs, but for the budget and the replication, parented to the platform's
    CostCaps and DisasterRecovery in the platform and to the stack in a cell (aliased both ways:
    components.cell). No name of the tenant's mentions the cell: between two cells the URNs are the same."""
    moved_dir, inline_dir = tmp_path / "moved", tmp_path / "inline"
    moved_dir.mkdir()
    inline_dir.mkdir()
    moved = _previews(_zone(moved_dir, cell_tenants=[], move="acme"), CELL)[CELL]
    inline = _previews(_zone(inline_dir, cell_tenants=[]), "us")["us"]
    before, after = _tenants_own(inline, "acme"), _tenants_own(moved, "acme")
    assert len(before) > 20, sorted(before)  # two regions' slices with a silo bucket, key, budget, replication

    def moved_urn(tail: str, resource: dict) -> str:
        parent = PLATFORM_PARENTS.get(resource["type"])
        return tail.replace(f"{parent}$", "pulumi:pulumi:Stack$", 1) if parent and tail.startswith(f"{parent}$") else tail

    expected = {moved_urn(tail, r): r for tail, r in before.items()}
    assert sorted(after) == sorted(expected)
    for tail, r in after.items():
        assert _comparable(r) == _comparable(expected[tail]), tail
    reparented = sorted(t for t, r in before.items() if moved_urn(t, r) != t)
    assert [t.split("::")[0] for t in reparented] == [
        "meridian:cost:CostCaps$aws:budgets/budget:Budget",
        "meridian:dr:DisasterRecovery$aws:s3/bucketReplicationConfig:BucketReplicationConfig",
    ]
    assert not [t for t in after if CELL in t]
    assert not _tenants_own(_previews(moved_dir, "us")["us"], "acme")  # and gone from the platform


ALIAS_SCRIPT = """
import json, sys
from pathlib import Path
from google.protobuf import json_format
from meridian.engine import recorder
from meridian.engine.run import run_program

TYPES = ("aws:budgets/budget:Budget", "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
         "random:index/randomPassword:RandomPassword")
seen, register = {}, recorder.RecordingMonitor.RegisterResource
def spy(self, request):
    if request.type in TYPES:
        seen[request.name] = [json_format.MessageToDict(a)["spec"] for a in request.aliases]
    return register(self, request)
if __name__ == "__main__":
    recorder.RecordingMonitor.RegisterResource = spy
    run_program(Path(sys.argv[1]), sys.argv[2])
    print(json.dumps(seen))
"""


def test_a_moved_tenants_parts_are_found_under_the_other_stacks_parentage(tmp_path):
    """The plan does not hold aliases; the registrations do. A tenant's budget and replication are
    the platform's CostCaps's and DisasterRecovery's children there and the stack's in a cell; its
    API key is moved out of its stack's TenantApiKeys alone: each side declares the other's parentage."""
    script = tmp_path / "aliases.py"
    script.write_text(ALIAS_SCRIPT)
    procs = {
        s: subprocess.Popen(
            [sys.executable, str(script), str(ROOT), s], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for s in ("us", "us-cell-001")
    }
    seen = {}
    for s, proc in procs.items():
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-2000:]
        seen[s] = json.loads(out.strip().splitlines()[-1])
    root = [{"noParent": True}]
    platform, cell = seen["us"], seen["us-cell-001"]
    assert platform["us-cost-tenant-acme"] == root and platform["us-dr-t-acme-replication"] == root
    assert platform["us-api-keys-acme"] == root
    assert cell["us-cost-tenant-vandelay"] == [{"parentUrn": "urn:pulumi:us-cell-001::meridian::meridian:cost:CostCaps::us-cost"}]
    assert cell["us-dr-t-stark-replication"] == [
        {"parentUrn": "urn:pulumi:us-cell-001::meridian::meridian:dr:DisasterRecovery::us-dr"}
    ]
    assert cell["us-api-keys-stark"] == root
    others = [n for n, a in platform.items() if not n.startswith(("us-cost-tenant-", "us-dr-t-", "us-api-keys-")) and a]
    assert others == []  # nothing else of the platform's is aliased


def test_a_cells_aws_providers_are_its_own(zone_plans):
    """`pulumi state move` copies a moved resource's provider into the destination and refuses one
    whose URN is there with other inputs: a cell's providers carry its `meridian:cell` tag, so their
    names must not be the platform's (`us-east-1`) nor another cell's."""
    cell = sorted(r["name"] for r in zone_plans[CELL]["resources"] if r["type"] == "pulumi:providers:aws")
    platform = {r["name"] for r in zone_plans["us"]["resources"] if r["type"] == "pulumi:providers:aws"}
    assert cell == [f"{CELL}-us-east-1", f"{CELL}-us-west-2"] and not platform & set(cell)


def test_the_deploy_preflight_passes_a_cell(tmp_path):
    """A cell runs no service (its platform's does, from the cell's tenant file): a note, not a finding."""
    project = _zone(tmp_path)
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")  # the image check reads the service's packages
    res = run_meridian("preflight", "--stack", CELL, "--json", str(tmp_path / "preflight.json"), cwd=project, timeout=900)
    assert res.code == 0, res
    assert "a cell stack runs no service: its platform us's does" in res.out
    # the drift role reads the secrets a cell's resources are tagged with: its platform's stack tag
    (refresh,) = [c for c in json.loads((tmp_path / "preflight.json").read_text())["checks"] if c["check"] == "refresh"]
    assert '"secretsmanager:ResourceTag/meridian:stack": ["us"]' in refresh["notes"][0]
