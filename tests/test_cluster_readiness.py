"""`meridian ready` (preflight.clusterready): after `up`, every EKS cluster of the plan ACTIVE, its
node groups ACTIVE with no health issue, its add-ons ACTIVE and healthy. Clusters and node groups
come from moto's EKS; moto has no add-ons, so DescribeAddon is answered by botocore's Stubber with
EKS's documented response shape."""

from __future__ import annotations

import copy
import json

import boto3
import pytest
from botocore.stub import Stubber
from google.protobuf import json_format, struct_pb2
from moto import mock_aws

from meridian.engine.plan import Plan
from meridian.preflight.checks import Context
from meridian.preflight.clusterready import check_cluster_readiness

from .helpers import recorded_plan, run_meridian

pytestmark = pytest.mark.slow  # the plan comes from an offline run of the program

ROLE = "arn:aws:iam::123456789012:role/eks"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    return recorded_plan(tmp_path_factory.mktemp("ready"))


def planned(plan: Plan):
    """(cluster name, region) -> its add-on names, as the plan builds them."""
    ctx = Context.of(plan, None)  # type: ignore[arg-type]  # the plan alone is read here
    out: dict[tuple[str, str], list[str]] = {}
    for c in ctx.of_type("aws:eks/cluster:Cluster"):
        name = ctx.inputs[c.urn]["name"]
        out[(name, plan.region_of(c))] = sorted(
            ctx.inputs[a.urn]["addonName"] for a in ctx.of_type("aws:eks/addon:Addon") if ctx.inputs[a.urn]["clusterName"] == name
        )
    return out


class Eks:
    """One region's EKS client: clusters and node groups from moto, add-ons from a Stubber."""

    def __init__(self, moto_client, addons):
        self._moto, self._addons = moto_client, addons

    def __getattr__(self, name):
        return getattr(self._addons if name == "describe_addon" else self._moto, name)


class Account:
    """What preflight.online.Aws gives a check: a client per service and region."""

    def __init__(self, clients):
        self.clients = clients

    def client(self, service: str, region: str):
        assert service == "eks"
        return self.clients[region]


def _addon(cluster: str, name: str, status: str = "ACTIVE", issues=()) -> dict:
    return {
        "addon": {
            "addonName": name,
            "clusterName": cluster,
            "status": status,
            "addonVersion": "v1.0.0-eksbuild.1",
            "health": {"issues": [{"code": code, "message": message, "resourceIds": []} for code, message in issues]},
        }
    }


def account(plan: Plan, *, node_groups: bool = True, addon_answers=None) -> tuple[Account, list[Stubber]]:
    """moto's EKS with the plan's clusters (and a node group each), a Stubber answering each planned add-on."""
    clients, stubbers = {}, []
    for (cluster, region), addons in planned(plan).items():
        if region not in clients:
            moto_eks = boto3.client("eks", region_name=region)
            stubbed = boto3.client("eks", region_name=region)
            stubber = Stubber(stubbed)
            stubbers.append(stubber)
            clients[region] = Eks(moto_eks, stubbed)
        eks = clients[region]
        eks._moto.create_cluster(name=cluster, roleArn=ROLE, resourcesVpcConfig={"subnetIds": ["subnet-1"]})
        if node_groups:
            eks._moto.create_nodegroup(clusterName=cluster, nodegroupName=f"{cluster}-nodes", nodeRole=ROLE, subnets=["subnet-1"])
        stubber = stubbers[list(clients).index(region)]
        for addon in addons:
            answer = (addon_answers or {}).get((cluster, addon)) or _addon(cluster, addon)
            if isinstance(answer, str):
                stubber.add_client_error("describe_addon", service_error_code=answer, http_status_code=404)
            else:
                stubber.add_response("describe_addon", answer, {"clusterName": cluster, "addonName": addon})
    for stubber in stubbers:
        stubber.activate()
    return Account(clients), stubbers


@mock_aws
def test_ready_clusters_pass_and_every_planned_addon_is_asked(recorded):
    plan, cfg = recorded
    aws, stubbers = account(plan)
    result = check_cluster_readiness(Context.of(plan, cfg), aws)
    assert result.passed, result.findings
    assert result.checked == 2  # the platform's cluster in each region
    for stubber in stubbers:
        stubber.assert_no_pending_responses()  # every add-on of the plan was asked about
    assert {len(a) for a in planned(plan).values()} == {5}


@mock_aws
def test_a_cluster_without_its_node_group_is_not_ready(recorded):
    plan, cfg = recorded
    aws, _ = account(plan, node_groups=False)
    problems = [f.problem for f in check_cluster_readiness(Context.of(plan, cfg), aws).findings]
    assert problems == [
        f"cluster {c} has 0 managed node group(s), the plan 1: no nodes run its pods" for c, _ in sorted(planned(plan))
    ]


@mock_aws
def test_unhealthy_or_missing_addons_are_findings(recorded):
    plan, cfg = recorded
    (east, _), (west, _) = sorted(planned(plan))
    aws, _ = account(
        plan,
        addon_answers={
            (east, "eks-pod-identity-agent"): _addon(
                east, "eks-pod-identity-agent", "DEGRADED", [("InsufficientNumberOfReplicas", "0/3 ready")]
            ),
            (west, "vpc-cni"): "ResourceNotFoundException",
            (west, "coredns"): _addon(west, "coredns", "ACTIVE", [("ConfigurationConflict", "conflicts")]),
        },
    )
    problems = sorted(f.problem for f in check_cluster_readiness(Context.of(plan, cfg), aws).findings)
    assert problems == sorted(
        [
            f"cluster {east}: add-on eks-pod-identity-agent is DEGRADED (InsufficientNumberOfReplicas: 0/3 ready)",
            f"cluster {west}: add-on coredns is ACTIVE (ConfigurationConflict: conflicts)",
            f"cluster {west}: add-on vpc-cni not installed",
        ]
    )


@mock_aws
def test_a_missing_cluster_or_a_degraded_node_group_is_not_ready(recorded):
    plan, cfg = recorded
    aws, _ = account(plan)
    (east, region), _ = sorted(planned(plan))
    moto_eks = aws.clients[region]._moto
    # moto cannot degrade a node group: its DescribeNodegroup answer as EKS gives it for nodes that never joined
    degraded = copy.deepcopy(moto_eks.describe_nodegroup(clusterName=east, nodegroupName=f"{east}-nodes"))
    degraded["nodegroup"].update(
        status="DEGRADED", health={"issues": [{"code": "NodeCreationFailure", "message": "Instances failed to join"}]}
    )
    aws.clients[region]._moto = _Degraded(moto_eks, degraded)
    problems = [f.problem for f in check_cluster_readiness(Context.of(plan, cfg), aws).findings]
    assert problems == [f"cluster {east}: node group {east}-nodes is DEGRADED (NodeCreationFailure: Instances failed to join)"]


@mock_aws
def test_a_cluster_up_did_not_create_is_not_ready(recorded):
    plan, cfg = recorded
    aws, _ = account(plan)
    (_, region), _ = sorted(planned(plan))
    regs = copy.deepcopy(plan.registrations)  # a cluster the plan has that EKS does not
    for reg in regs:
        if reg.type == "aws:eks/cluster:Cluster" and plan.region_of(reg) == region:
            inputs = json_format.MessageToDict(reg.inputs)
            inputs["name"] = "us-us-east-1-eks-9"
            reg.inputs, reg._dict = json_format.ParseDict(inputs, struct_pb2.Struct()), None
    renamed = Plan(plan.project, plan.stack, regs, plan.outputs)
    problems = [f.problem for f in check_cluster_readiness(Context.of(renamed, cfg), aws).findings]
    assert problems == ["cluster us-us-east-1-eks-9: not found: `up` did not create it"]


class _Degraded:
    def __init__(self, moto_client, answer):
        self._moto, self._answer = moto_client, answer

    def describe_nodegroup(self, **_):
        return self._answer

    def __getattr__(self, name):
        return getattr(self._moto, name)


def test_unreadable_eks_is_a_finding_not_a_pass(recorded):
    plan, cfg = recorded

    class Denied:
        def client(self, service, region):
            stubbed = boto3.client("eks", region_name=region)
            stubber = Stubber(stubbed)
            stubber.add_client_error("describe_cluster", service_error_code="AccessDeniedException", http_status_code=403)
            stubber.activate()
            return stubbed

    result = check_cluster_readiness(Context.of(plan, cfg), Denied())
    assert len(result.findings) == 2 and all("could not read it" in f.problem for f in result.findings)


def test_ready_command_exits_1_when_eks_does_not_answer_and_refuses_a_cell(tmp_path):
    cli = run_meridian("ready", "--stack", "us-cell-001")
    assert cli.code == 2 and "a cell builds no cluster" in cli.out + cli.err, cli
    # the real command with credentials that reach no EKS (a closed local port): each cluster unread, exit 1
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
    }
    cli = run_meridian("ready", "--stack", "us", "--json", str(tmp_path / "ready.json"), env=env)
    assert cli.code == 1, cli
    (check,) = json.loads((tmp_path / "ready.json").read_text())["checks"]
    assert check["check"] == "cluster-readiness" and not check["passed"]
    assert sorted(f["problem"].split(":")[0] for f in check["findings"]) == [
        "cluster us-us-east-1-eks",
        "cluster us-us-west-2-eks",
    ]
