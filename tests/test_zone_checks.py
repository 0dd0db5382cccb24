"""The zone's own checks (commands/preview/zonechecks.py) on hand-made plan resources, each attack
beside its legitimate twin, and the synthetic tenants of `--zone Z --tenants N` (meridian.scale):
their placement, their ids and that nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from meridian.commands.preview.zone import _outputs_outside
from meridian.commands.preview.zonechecks import stack_facts, zone_findings
from meridian.errors import BadInput
from meridian.scale import zone_tenants
from meridian.stackconfig import load_validated
from stackconfig.memory import holding

from .helpers import ROOT

US = ("us-east-1", "us-west-2")
POOL = "mer-pool-use1"
PREFIX = "tenants/t-{tenant}/"


def _r(urn: str, kind: str, inputs: dict, region: str = "us-east-1") -> dict:
    return {"urn": urn, "type": kind, "region": region, "inputs": inputs}


def _ns(stack: str, tenant: str) -> list[dict]:
    """A tenant's namespace, its pod identity association and a tagged budget: what a cell plans per tenant."""
    return [
        _r(
            f"urn:{stack}::ns-{tenant}",
            "kubernetes:core/v1:Namespace",
            {"metadata": {"name": f"t-{tenant}", "labels": {"meridian.io/tenant": tenant}}},
        ),
        _r(
            f"urn:{stack}::assoc-{tenant}",
            "aws:eks/podIdentityAssociation:PodIdentityAssociation",
            {"namespace": f"t-{tenant}", "serviceAccount": f"{tenant}-app", "tags": {"meridian:tenant": tenant}},
        ),
        _r(f"urn:{stack}::budget-{tenant}", "aws:budgets/budget:Budget", {"tags": {"meridian:tenant": tenant}}),
    ]


def _silo(stack: str, tenant: str, *, dest: str, dest_region: str = "us-west-2") -> list[dict]:
    return [
        _r(
            f"urn:{stack}::silo-{tenant}",
            "aws:s3/bucket:Bucket",
            {"bucket": f"{stack}-{tenant}", "tags": {"meridian:tenant": tenant}},
        ),
        _r(
            f"urn:{stack}::dr-{tenant}",
            "aws:s3/bucket:Bucket",
            {"bucket": f"{stack}-{tenant}-dr", "tags": {"meridian:tenant": tenant}},
            dest_region,
        ),
        _r(
            f"urn:{stack}::repl-{tenant}",
            "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
            {"bucket": f"{stack}-{tenant}", "rules": [{"destination": {"bucket": f"arn:aws:s3:::{dest}"}}]},
        ),
    ]


def _grant(stack: str, resource: str) -> dict:
    policy = {"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": resource}]}
    return _r(f"urn:{stack}::grant", "aws:iam/rolePolicy:RolePolicy", {"role": "r", "policy": json.dumps(policy)})


def _zone(cell_a: list[dict], cell_b: list[dict] | None = None) -> list[str]:
    platform = stack_facts("us", [_r("urn:us::pool", "aws:s3/bucket:Bucket", {"bucket": POOL}), *_ns("us", "acme")], US)
    a = stack_facts("us-cell-001", cell_a, US)
    b = stack_facts("us-cell-002", cell_b if cell_b is not None else [*_ns("us-cell-002", "dunder")], US)
    return zone_findings("us", platform, [a, b], US, [POOL], PREFIX)


def _cell_a(*extra: dict) -> list[dict]:
    return [*_ns("us-cell-001", "stark"), *_silo("us-cell-001", "stark", dest="us-cell-001-stark-dr"), *extra]


def test_a_legitimate_zone_passes():
    assert _zone(_cell_a(_grant("us-cell-001", f"arn:aws:s3:::{POOL}/tenants/t-stark/*"))) == []


def test_a_tenant_bucket_replicating_outside_the_zone_is_a_violation():
    found = _zone(
        [*_ns("us-cell-001", "stark"), *_silo("us-cell-001", "stark", dest="us-cell-001-stark-dr", dest_region="eu-west-1")]
    )
    assert any("replicates to arn:aws:s3:::us-cell-001-stark-dr in eu-west-1, outside the zone" in f for f in found), found
    assert any("urn:us-cell-001::dr-stark is in region eu-west-1" in f for f in found), found


def test_a_replication_to_a_bucket_no_stack_of_the_zone_plans_is_a_violation():
    found = _zone([*_ns("us-cell-001", "stark"), *_silo("us-cell-001", "stark", dest="somebody-elses-bucket")])
    assert found == [
        "cell us-cell-001: urn:us-cell-001::repl-stark replicates to arn:aws:s3:::somebody-elses-bucket, a bucket no stack of zone us plans"
    ]


def test_a_cell_naming_another_zones_resource_in_its_inputs_is_a_violation():
    """What a cell reads through its StackReference flows into its inputs: an eu key in a us cell."""
    key = _r(
        "urn:us-cell-001::repl",
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        {
            "rules": [
                {
                    "destination": {
                        "bucket": "arn:aws:s3:::us-cell-001-stark-dr",
                        "encryptionConfiguration": {"replicaKmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/k"},
                    }
                }
            ]
        },
    )
    found = _zone([*_cell_a(), key])
    assert any("names arn:aws:kms:eu-west-1:" in f and "outside the zone" in f for f in found), found
    # the platform's outputs, which every cell reads
    outputs = {"cell_handles": {"primary": {"pool_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/x"}}}
    assert _outputs_outside("us", outputs, US) == [
        "platform us's outputs, which its cells read, name arn:aws:kms:eu-west-1:..., outside the zone"
    ]
    assert _outputs_outside("us", {"k": "arn:aws:kms:us-west-2:123456789012:key/x"}, US) == []


@pytest.mark.parametrize(
    "resource",
    [
        f"arn:aws:s3:::{POOL}/tenants/t-dunder/*",  # another cell's tenant, by name
        f"arn:aws:s3:::{POOL}/tenants/*",  # every tenant's prefix
        "arn:aws:s3:::*/tenants/t-dunder/report.csv",  # any bucket
        f"arn:aws:s3:::{POOL}/tenants/t-${{aws:PrincipalTag/team}}/*",  # a variable the cell does not control
        "arn:aws:s3:::us-cell-002-*",  # another cell's silo buckets
    ],
)
def test_a_cell_principal_granted_another_cells_tenant_data_is_a_violation(resource):
    silo_b = [*_ns("us-cell-002", "dunder"), *_silo("us-cell-002", "dunder", dest="us-cell-002-dunder-dr")]
    found = _zone(_cell_a(_grant("us-cell-001", resource)), silo_b)
    assert found and all("reaches another stack's tenant data" in f for f in found), found
    assert "'dunder'" in found[0]


def test_a_grant_on_a_tenant_prefix_in_any_bucket_reaches_silos_only_under_their_tenants_prefix():
    silo_b = [*_ns("us-cell-002", "dunder"), *_silo("us-cell-002", "dunder", dest="us-cell-002-dunder-dr")]
    found = _zone(_cell_a(_grant("us-cell-001", "arn:aws:s3:::*/tenants/t-dunder/*")), silo_b)
    (reach,) = found
    assert "silo bucket us-cell-002-dunder of tenant 'dunder'" in reach and "pool bucket" in reach
    assert "us-cell-001-stark" not in reach  # its own tenant's bucket, and no other tenant's prefix in it


def test_a_grant_on_its_own_tenants_and_the_platforms_non_tenant_data_passes():
    own = _grant("us-cell-001", f"arn:aws:s3:::{POOL}/tenants/t-stark/*")
    shared = _grant("us-cell-001", f"arn:aws:s3:::{POOL}/public/*")
    assert _zone(_cell_a(own, shared)) == []


def test_an_association_binding_another_cells_tenant_namespace_is_a_violation():
    intruder = _r(
        "urn:us-cell-001::assoc-x",
        "aws:eks/podIdentityAssociation:PodIdentityAssociation",
        {"namespace": "t-dunder", "serviceAccount": "dunder-app"},
    )
    found = _zone(_cell_a(intruder))
    assert found == [
        "cell us-cell-001: urn:us-cell-001::assoc-x binds namespace t-dunder of tenant 'dunder' (us-cell-002), not a tenant "
        "of this cell: its pods would get that tenant's session (the platform's tenant role scopes by namespace)"
    ]


def test_a_tenant_with_resources_in_two_stacks_is_a_violation():
    found = _zone(_cell_a(), [*_ns("us-cell-002", "stark")])
    assert "tenant 'stark' has resources in stacks us-cell-001, us-cell-002: a tenant lives in one stack" in found


def test_unknown_values_are_named_never_passed():
    found = _zone(_cell_a(_grant("us-cell-001", "[unknown]")))
    assert found == [
        "unverifiable at preview: cell us-cell-001: urn:us-cell-001::grant grants a resource unknown at preview (its reach)"
    ]


# --- synthetic tenants of a zone ---------------------------------------------------------------


def _zone_cfgs() -> dict:
    return {s: load_validated(ROOT, s) for s in ("us", "us-cell-001")}


def test_zone_tenants_count_the_real_ones_and_fill_new_cells_in_order():
    scale = zone_tenants(ROOT, "us", _zone_cfgs(), 20, 5)  # 7 real (us 4, us-cell-001 3): 13 in 3 new cells
    assert scale.cells == {"us-cell-002": 5, "us-cell-003": 5, "us-cell-004": 3}
    platform = scale.documents[ROOT / "Pulumi.us.yaml"]["config"]
    assert platform["meridian:cells"] == {"size": 5, "names": ["us-cell-001", "us-cell-002", "us-cell-003", "us-cell-004"]}
    cell = scale.documents[ROOT / "Pulumi.us-cell-002.yaml"]["config"]
    assert cell["meridian:platform"] == "us" and cell["aws:region"] == "us-east-1"
    assert [t["id"] for t in cell["meridian:tenants"]] == [
        "acme-00000",
        "globex-00001",
        "initech-00002",
        "umbrella-00003",
        "vandelay-00004",
    ]
    assert not (ROOT / "Pulumi.us-cell-002.yaml").exists()  # held in memory, never written


def test_a_larger_zone_only_appends_cells():
    small = zone_tenants(ROOT, "us", _zone_cfgs(), 20, 5)
    large = zone_tenants(ROOT, "us", _zone_cfgs(), 40, 5)
    for path, doc in small.documents.items():
        if path.name != "Pulumi.us.yaml" and path.name != "Pulumi.us-cell-004.yaml":  # full cells stay as they are
            assert large.documents[path] == doc
    tail = large.documents[ROOT / "Pulumi.us-cell-004.yaml"]["config"]["meridian:tenants"]
    assert tail[:3] == small.documents[ROOT / "Pulumi.us-cell-004.yaml"]["config"]["meridian:tenants"]


def test_held_cells_validate_across_the_zone_and_a_duplicate_is_refused():
    scale = zone_tenants(ROOT, "us", _zone_cfgs(), 12, 4)  # 5 generated: us-cell-002 (4), us-cell-003 (1)
    with holding(scale.documents):
        cfg = load_validated(ROOT, "us-cell-003")
        assert cfg.is_cell and [t.id for t in cfg.tenants] == ["vandelay-00004"]
        assert load_validated(ROOT, "us").cells.names == ("us-cell-001", "us-cell-002", "us-cell-003")
        twin = dict(scale.documents)
        doc = json.loads(json.dumps(twin[ROOT / "Pulumi.us-cell-003.yaml"]))
        doc["config"]["meridian:tenants"][0]["id"] = "acme-00000"  # us-cell-002's first tenant
        twin[ROOT / "Pulumi.us-cell-003.yaml"] = doc
        with holding(twin), pytest.raises(BadInput, match="'acme-00000' is also in stack us-cell-002"):
            load_validated(ROOT, "us-cell-003")
    assert not Path(ROOT / "Pulumi.us-cell-003.yaml").exists()


def test_cells_smaller_than_a_real_stack_are_refused_naming_the_platforms_file():
    scale = zone_tenants(ROOT, "us", _zone_cfgs(), 12, 3)
    with (
        holding(scale.documents),
        pytest.raises(BadInput, match="Pulumi.us.yaml: meridian:tenants: 4 tenants .* over cells.size 3"),
    ):
        load_validated(ROOT, "us")


def test_fewer_tenants_than_the_zone_holds_is_bad_input():
    with pytest.raises(BadInput, match=r"--tenants 5: zone us already has 7 tenants \(us 4, us-cell-001 3\)"):
        zone_tenants(ROOT, "us", _zone_cfgs(), 5)


def _lowered_quota(project: Path, quota: int) -> dict:
    path = project / "Pulumi.us.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["meridian:quotas"] = {"stacks_per_account": 1, "pod_identity_associations_per_cluster": quota}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return {"us": load_validated(project, "us")}


def test_generated_cells_fill_the_platforms_clusters_then_new_pairs_and_a_larger_zone_only_appends(project_copy):
    """20 associations per cluster: the platform's own clusters hold its 4 inline tenants, its own 3
    and two cells of 5 (13 of room); each new pair 19 of room, three cells of 5. The held zone passes
    the per-pair zone check in every stack; the same cells all on the platform's clusters do not."""
    cfgs = _lowered_quota(project_copy, 20)
    small = zone_tenants(project_copy, "us", cfgs, 4 + 22, 5)  # 5 cells: 2 on pair 0, 3 on pair 1
    assert small.pairs == {"us-cell-002": 0, "us-cell-003": 0, "us-cell-004": 1, "us-cell-005": 1, "us-cell-006": 1}
    large = zone_tenants(project_copy, "us", cfgs, 4 + 40, 5)  # 8 cells: a second pair
    assert large.pairs == {**small.pairs, "us-cell-007": 2, "us-cell-008": 2, "us-cell-009": 2}
    cells = large.documents[project_copy / "Pulumi.us.yaml"]["config"]["meridian:cells"]
    assert cells["cluster_pairs"] == [
        ["us-cell-004", "us-cell-005", "us-cell-006"],
        ["us-cell-007", "us-cell-008", "us-cell-009"],
    ]
    with holding(large.documents):
        for stack in ("us", *large.pairs):
            load_validated(project_copy, stack)
    crowded = json.loads(json.dumps({str(p): d for p, d in large.documents.items()}))
    del crowded[str(project_copy / "Pulumi.us.yaml")]["config"]["meridian:cells"]["cluster_pairs"]
    with (
        holding({Path(p): d for p, d in crowded.items()}),
        pytest.raises(BadInput, match="tenant cluster pair 0 \\(the platform's own clusters\\) holds 44 tenants"),
    ):
        load_validated(project_copy, "us")


def test_a_cell_larger_than_a_pair_cluster_takes_is_bad_input(project_copy):
    cfgs = _lowered_quota(project_copy, 20)
    with pytest.raises(BadInput, match="a cell of 25 tenants does not fit a tenant cluster pair's 19 Pod Identity associations"):
        zone_tenants(project_copy, "us", cfgs, 4 + 25, 25)
