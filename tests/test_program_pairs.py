"""Tenant cluster pairs under the offline engine: a platform with one pair builds a cluster per
region for it, with what tenants need of a cluster; the tenant role admits its pods; a cell placed
on the pair runs its tenants there and keeps its tenant file on the platform's own cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from .helpers import full_project_copy, run_meridian
from .test_program_cells import _previews, associations_per_cluster

CELL = "us-cell-002"  # on pair 1; us-cell-001 (the repository's) stays on pair 0
REGIONS = ("us-east-1", "us-west-2")
PAIR_TENANTS = [
    {"id": "cyberdyne", "plan": "pro", "monthly_budget_usd": 2000, "data_tier": "pool"},
    {
        "id": "tyrell",
        "plan": "enterprise",
        "monthly_budget_usd": 5000,
        "data_tier": "silo",
        "quota": {"gql_qps": 800, "ingest_eps": 15000, "storage_gb": 8000},
    },
]


def _zone_with_a_pair(dest: Path) -> Path:
    full_project_copy(dest)
    us = yaml.safe_load((dest / "Pulumi.us.yaml").read_text())
    us["config"]["meridian:cells"] = {"size": 1000, "names": ["us-cell-001", CELL], "cluster_pairs": [[CELL]]}
    (dest / "Pulumi.us.yaml").write_text(yaml.safe_dump(us, sort_keys=False))
    cell = {"config": {"aws:region": "us-east-1", "meridian:platform": "us", "meridian:tenants": PAIR_TENANTS}}
    (dest / f"Pulumi.{CELL}.yaml").write_text(yaml.safe_dump(cell, sort_keys=False))
    return dest


@pytest.fixture(scope="module")
def pair_project(tmp_path_factory) -> Path:
    return _zone_with_a_pair(tmp_path_factory.mktemp("pairs"))


@pytest.fixture(scope="module")
def pair_plans(pair_project) -> dict[str, dict]:
    return _previews(pair_project, "us", CELL)


def _of(plan: dict, token: str) -> list[dict]:
    return [r for r in plan["resources"] if r["type"] == token]


def _provider_name(resource: dict) -> str:
    return resource["provider"].split("pulumi:providers:kubernetes::", 1)[1].split("::", 1)[0]


def _statement(policy: str | dict, sid: str) -> dict:
    doc = json.loads(policy) if isinstance(policy, str) else policy
    return next(s for s in doc["Statement"] if s.get("Sid") == sid)


def test_the_platform_builds_a_cluster_per_region_per_pair_with_what_tenants_need(pair_plans):
    platform = pair_plans["us"]
    clusters = {r["inputs"]["name"]: r for r in _of(platform, "aws:eks/cluster:Cluster")}
    assert sorted(clusters) == sorted([f"us-{r}-eks" for r in REGIONS] + [f"us-{r}-eks-1" for r in REGIONS])
    own, pair = clusters["us-us-east-1-eks"]["inputs"], clusters["us-us-east-1-eks-1"]["inputs"]
    # the region's private subnets, the same settings: private endpoint, encrypted secrets, API-only access
    assert pair["vpcConfig"] == own["vpcConfig"] and pair["version"] == own["version"]
    assert pair["accessConfig"] == own["accessConfig"] and pair["enabledClusterLogTypes"] == own["enabledClusterLogTypes"]
    for region in REGIONS:
        name = f"us-{region}-eks-1"
        addons = {
            r["inputs"]["addonName"]: r["inputs"]
            for r in _of(platform, "aws:eks/addon:Addon")
            if r["inputs"]["clusterName"] == name
        }
        assert sorted(addons) == ["aws-ebs-csi-driver", "coredns", "eks-pod-identity-agent", "kube-proxy", "vpc-cni"]
        assert json.loads(addons["vpc-cni"]["configurationValues"]) == {"enableNetworkPolicy": "true"}
        entries = [
            r["inputs"]["principalArn"]
            for r in _of(platform, "aws:eks/accessEntry:AccessEntry")
            if r["inputs"]["clusterName"] == name
        ]
        own_entries = [
            r["inputs"]["principalArn"]
            for r in _of(platform, "aws:eks/accessEntry:AccessEntry")
            if r["inputs"]["clusterName"] == f"us-{region}-eks"
        ]
        assert entries and sorted(entries) == sorted(own_entries)
        # the admission backstops, on the pair cluster's own provider, the same policies as the region's own cluster
        backstops = {}
        for r in _of(platform, "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"):
            backstops.setdefault(_provider_name(r), []).append(json.dumps(r["inputs"]["spec"], sort_keys=True))
        assert sorted(backstops[f"{name}-k8s"]) == sorted(backstops[f"us-{region}-eks-k8s"]) and backstops[f"{name}-k8s"]
    # no service there: its workload, ingress controller and broker stay on the region's own cluster
    on_pairs = {
        r["type"].rsplit(":", 1)[-1]
        for r in platform["resources"]
        if r["type"].startswith("kubernetes:") and _provider_name(r).endswith("-eks-1-k8s")
    }
    assert on_pairs == {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}, on_pairs


def test_the_tenant_role_admits_the_pods_of_every_tenant_cluster_of_its_region(pair_plans):
    platform = pair_plans["us"]
    roles = {r["name"]: r["inputs"] for r in _of(platform, "aws:iam/role:Role")}
    policies = {r["name"]: r["inputs"] for r in _of(platform, "aws:iam/rolePolicy:RolePolicy")}
    for region in REGIONS:
        trust = roles[f"us-{region}-tenant-identity-role"]["assumeRolePolicy"]
        # the trust admits exactly the clusters' ARNs, by the request tag Pod Identity sets
        pin = _statement(trust, "EksPodIdentity")["Condition"]["StringEquals"]["aws:RequestTag/eks-cluster-arn"]
        assert isinstance(pin, list) and len(pin) == 2
        assert [a.rsplit("/", 1)[-1] for a in pin] == [f"us-{region}-eks", f"us-{region}-eks-1"]
        assert all(a.startswith(f"arn:aws:eks:{region}:") for a in pin), pin
        # the data statements: the own cluster and one-digit pairs by pattern (a size constant in the pairs)
        data = policies[f"us-{region}-tenant-identity-data-access"]["policy"]
        pods = _statement(data, "PoolObjects")["Condition"]["StringLike"]["aws:PrincipalTag/eks-cluster-arn"]
        brokered = _statement(data, "BrokeredPoolObjects")["Condition"]["StringEquals"]["aws:PrincipalTag/eks-cluster-arn"]
        assert pods == [pin[0], f"{pin[0]}-?"] and brokered == pin[0]  # the broker is the service's: on pair 0 only
        broker = _statement(roles[f"us-{region}-tenant-identity-broker"]["assumeRolePolicy"], "EksPodIdentity")
        assert broker["Condition"]["StringEquals"]["aws:RequestTag/eks-cluster-arn"] == pin[0]


def test_pair_clusters_have_no_iam_oidc_provider(pair_plans):
    """Nothing on a pair uses IRSA (tenants and the EBS CSI driver get Pod Identity), and an account holds
    at most 100 IAM OIDC providers: only the platform's own clusters keep one."""
    providers = sorted(r["name"] for r in _of(pair_plans["us"], "aws:iam/openIdConnectProvider:OpenIdConnectProvider"))
    assert providers == [f"us-{region}-eks-oidc" for region in REGIONS]
    on_pairs = [r for r in pair_plans["us"]["resources"] if r["name"].startswith(tuple(f"us-{g}-eks-1" for g in REGIONS))]
    assert on_pairs and not any("oidc" in r["name"] or "OpenIdConnect" in r["type"] for r in on_pairs)


def test_the_database_admits_the_pair_clusters_nodes(pair_plans):
    groups = {r["name"]: r["inputs"] for r in _of(pair_plans["us"], "aws:ec2/securityGroup:SecurityGroup")}
    for name in ("us-db-us-east-1-sg", "us-db-us-west-2-sg"):
        described = sorted(rule["description"] for rule in groups[name]["ingress"])
        assert "PostgreSQL from EKS nodes of tenant cluster pair 1" in described, described


def test_cell_handles_name_the_pair_clusters(pair_plans):
    handles = pair_plans["us"]["outputs"]["cell_handles"]["regions"]
    for role, region in (("primary", "us-east-1"), ("dr", "us-west-2")):
        assert sorted(handles[role]["tenant_clusters"]) == ["1"]
        pair = handles[role]["tenant_clusters"]["1"]
        assert pair["cluster_name"] == f"us-{region}-eks-1" and handles[role]["cluster_name"] == f"us-{region}-eks"
        assert sorted(pair) == ["cluster_ca_data", "cluster_endpoint", "cluster_name"]


def test_a_cell_on_a_pair_runs_its_tenants_there_and_its_tenant_file_on_the_service_cluster(pair_plans):
    cell = pair_plans[CELL]
    providers = {r["name"]: r["inputs"] for r in _of(cell, "pulumi:providers:kubernetes")}
    assert sorted(providers) == sorted([f"{CELL}-{r}-k8s" for r in REGIONS] + [f"{CELL}-{r}-tenants-k8s" for r in REGIONS])

    def cluster_of(provider: str) -> str:
        return json.loads(providers[provider]["kubeconfig"])["clusters"][0]["name"]

    for region in REGIONS:
        assert cluster_of(f"{CELL}-{region}-k8s") == f"us-{region}-eks"
        assert cluster_of(f"{CELL}-{region}-tenants-k8s") == f"us-{region}-eks-1"
        (secret,) = [r for r in _of(cell, "kubernetes:core/v1:Secret") if r["name"] == f"{CELL}-{region}-tenant-file"]
        assert _provider_name(secret) == f"{CELL}-{region}-k8s"
        namespaces = [r for r in _of(cell, "kubernetes:core/v1:Namespace") if f"-{region}-" in r["name"]]
        assert len(namespaces) == len(PAIR_TENANTS)
        assert {_provider_name(r) for r in namespaces} == {f"{CELL}-{region}-tenants-k8s"}
    per_cluster = associations_per_cluster(cell)
    assert per_cluster == {f"us-{r}-eks-1": len(PAIR_TENANTS) for r in REGIONS}


def test_the_platform_associates_what_the_zone_check_counts_on_a_pair(pair_plans):
    from stackconfig.zone import PAIR_POD_IDENTITY_ASSOCIATIONS, PLATFORM_POD_IDENTITY_ASSOCIATIONS

    inline = len(pair_plans["us"]["outputs"]["tenants"])
    per_cluster = associations_per_cluster(pair_plans["us"])
    for region in REGIONS:
        assert per_cluster[f"us-{region}-eks"] == inline + PLATFORM_POD_IDENTITY_ASSOCIATIONS
        assert per_cluster[f"us-{region}-eks-1"] == PAIR_POD_IDENTITY_ASSOCIATIONS


def test_the_zone_with_a_pair_passes_the_pack(pair_project, tmp_path):
    """The real pack judges the platform with its pair clusters and the cell on the pair, each alone and
    beside the platform (the zone's preview): no mandatory finding. The cell's generated policy config
    names its pair's clusters, the only ones its associations may be on (policies/celllane.py)."""
    res = run_meridian("policy", "--stack", CELL, "--write-config", cwd=pair_project)
    assert res.code == 0, res
    config = json.loads((pair_project / "policies" / "config" / f"{CELL}.json").read_text())
    assert config["tenant-data-access"]["platformClusters"] == [f"us-{r}-eks-1" for r in REGIONS]
    res = run_meridian("preview", "--zone", "us", "--json", str(tmp_path), cwd=pair_project, timeout=900)
    assert res.code == 0, res
    index = json.loads((tmp_path / "zone.json").read_text())
    verdicts = {s["stack"]: (s["policy_evaluated"], s["violations"]["mandatory"]) for s in index["stacks"]}
    assert verdicts == {"us": (True, 0), "us-cell-001": (True, 0), CELL: (True, 0)}, verdicts
    assert index["zone_problems"] == []
