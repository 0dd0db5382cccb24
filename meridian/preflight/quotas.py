"""Service quotas the plan consumes: one row per quota, with its scope, AWS's default, the Service
Quotas code where one exists, and the page that states it.

Account-wide quotas are shared by every stack deployed into the account: the stacks whose config
names the same `meridian:aws_account_id` (read from the project's stack files; a cell's is its
platform's), or
`meridian:quotas.stacks_per_account` if that is larger (other projects in the account). Each stack
may use its fair share, the quota divided by that number. Defaults the config can raise are read
from `meridian:quotas`; the others are AWS's defaults, or `meridian:quotas.raised[<code>]`.
Over its share, an adjustable quota whose maximum (in Service Quotas) covers every sharing stack at
this stack's usage is a warning naming the increase to request and its command; past the maximum,
or for a quota that cannot be raised, it is a finding.
What other workloads already use is only known online (Service Quotas, `meridian preflight --online`);
what the stacks of one account need together, `meridian preflight --account` sums (preflight.account).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml

from meridian.preflight.context import CheckResult, Context, Finding
from stackconfig import QuotaSettings

Scope = Literal["account", "region", "VPC", "AZ", "security group", "route table", "cluster", "hosted zone"]

IAM = "https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html"
VPC = "https://docs.aws.amazon.com/vpc/latest/userguide/amazon-vpc-limits.html"
PRIVATELINK = "https://docs.aws.amazon.com/vpc/latest/privatelink/privatelink-limits.html"
EIP = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/elastic-ip-addresses-eip.html#using-instance-addressing-limit"
EKS = "https://docs.aws.amazon.com/eks/latest/userguide/service-quotas.html"
KMS = "https://docs.aws.amazon.com/kms/latest/developerguide/resource-limits.html"
BUDGETS = "https://docs.aws.amazon.com/cost-management/latest/userguide/budgets-limits.html"
S3 = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/BucketRestrictions.html"
ROUTE53 = "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/DNSLimitations.html"
EC2_ON_DEMAND = "https://docs.aws.amazon.com/ec2/latest/instancetypes/ec2-instance-quotas.html"
NODEGROUP_API = "https://docs.aws.amazon.com/eks/latest/APIReference/API_CreateNodegroup.html"


@dataclass(frozen=True)
class Quota:
    name: str
    scope: Scope
    default: int
    code: str | None  # Service Quotas code; None where the quota is not in Service Quotas or not adjustable there
    source: str
    setting: str | None = None  # the meridian:quotas field that carries it
    count: Callable[[Context], dict[str, Counter[str]]] | None = None  # scope key -> what uses it
    maximum: int | None = None  # the most Service Quotas grants on request (adjustable quotas); None: not modelled
    service: str | None = None  # the Service Quotas service code of `code`
    # what uses the quota but cannot be counted from the plan: a finding each, never a silent pass
    uncounted: Callable[[Context], list[Finding]] | None = None


def _types(*tokens: str) -> Callable[[Context], dict[str, Counter[str]]]:
    """Resources of these types, per account / per region (the scope decides which key is used)."""

    def count(ctx: Context) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for r in ctx.plan.custom:
            if r.type in tokens:
                out["account"][r.urn] += 1
                out[ctx.plan.region_of(r)][r.urn] += 1
        return out

    return count


def _by_input(token: str, key: str) -> Callable[[Context], dict[str, Counter[str]]]:
    """Resources of a type per value of one input (a VPC id, a cluster name, a zone id)."""

    def count(ctx: Context) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for r in ctx.of_type(token):
            out[str(ctx.inputs[r.urn].get(key))][r.urn] += 1
        return out

    return count


def _associations(ctx: Context) -> dict[str, Counter[str]]:
    """Pod Identity associations per cluster name: the plan's own, and each one an EKS add-on owns
    (`podIdentityAssociations` of an `aws:eks/addon:Addon`: the cluster's like any other, listed with the
    add-on as `ownerArn`, https://docs.aws.amazon.com/eks/latest/APIReference/API_PodIdentityAssociation.html)."""
    out = _by_input("aws:eks/podIdentityAssociation:PodIdentityAssociation", "clusterName")(ctx)
    for r in ctx.of_type("aws:eks/addon:Addon"):
        inputs = ctx.inputs[r.urn]
        owned = inputs.get("podIdentityAssociations") or []
        if owned:
            out[str(inputs.get("clusterName"))][r.urn] += len(owned)
    return out


def _endpoints(kind: str, per: str) -> Callable[[Context], dict[str, Counter[str]]]:
    def count(ctx: Context) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for r in ctx.of_type("aws:ec2/vpcEndpoint:VpcEndpoint"):
            inputs = ctx.inputs[r.urn]
            if inputs.get("vpcEndpointType", "Gateway") == kind:
                out[str(inputs.get("vpcId")) if per == "VPC" else ctx.plan.region_of(r)][r.urn] += 1
        return out

    return count


def _sources(rule: dict) -> int:
    """A rule with several sources counts once per source (CIDR, prefix list or group)."""
    n = sum(len(rule.get(k) or []) for k in ("cidrBlocks", "ipv6CidrBlocks", "prefixListIds", "securityGroups"))
    return max(n + (1 if rule.get("self") else 0), 1)


def _sg_rules(direction: str) -> Callable[[Context], dict[str, Counter[str]]]:
    inline, standalone = (
        ("ingress", "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if direction == "in"
        else (
            "egress",
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        )
    )

    def count(ctx: Context) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = defaultdict(Counter)
        for sg in ctx.of_type("aws:ec2/securityGroup:SecurityGroup"):
            out[sg.id or sg.urn][sg.urn] += sum(_sources(rule) for rule in ctx.inputs[sg.urn].get(inline) or [])
        for rule in ctx.of_type(standalone):
            out[str(ctx.inputs[rule.urn].get("securityGroupId"))][rule.urn] += 1
        for rule in ctx.of_type("aws:ec2/securityGroupRule:SecurityGroupRule"):
            inputs = ctx.inputs[rule.urn]
            if inputs.get("type") == inline:
                out[str(inputs.get("securityGroupId"))][rule.urn] += _sources(inputs)
        return out

    return count


def _routes(ctx: Context) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = defaultdict(Counter)
    for table in ctx.of_type("aws:ec2/routeTable:RouteTable"):
        out[table.id or table.urn][table.urn] += len(ctx.inputs[table.urn].get("routes") or [])
    for route in ctx.of_type("aws:ec2/route:Route"):
        out[str(ctx.inputs[route.urn].get("routeTableId"))][route.urn] += 1
    return out


def _nat_per_az(ctx: Context) -> dict[str, Counter[str]]:
    """Keyed by the subnet (one public subnet per AZ in this program, components.network)."""
    return _by_input("aws:ec2/natGateway:NatGateway", "subnetId")(ctx)


@cache
def instance_vcpus() -> dict[str, int]:
    """Instance type -> its default vCPUs, for the Standard (A, C, D, H, I, M, R, T, Z) types the project
    uses (meridian/data/ec2_instance_vcpus.json, with its source pages)."""
    return json.loads(resources.files("meridian").joinpath("data/ec2_instance_vcpus.json").read_text())["vcpus"]


# CreateNodegroup: without instance types or a launch template that names one, a node group launches t3.medium
EKS_DEFAULT_INSTANCE_TYPE = "t3.medium"


def _node_group_sizing(inputs: dict) -> tuple[list[str], object]:
    """A managed node group's instance types (EKS's default where none is given) and its largest size."""
    types = inputs.get("instanceTypes") or ([] if inputs.get("launchTemplate") else [EKS_DEFAULT_INSTANCE_TYPE])
    return list(types), (inputs.get("scalingConfig") or {}).get("maxSize")


def _on_demand(inputs: dict) -> bool:
    return inputs.get("capacityType", "ON_DEMAND") == "ON_DEMAND"  # Spot capacity counts against the Spot quota


def _on_demand_vcpus(ctx: Context) -> dict[str, Counter[str]]:
    """vCPUs each On-Demand managed node group may run at its largest size, per region: `maxSize` x the
    most vCPUs among its instance types (the Auto Scaling group may launch any of them). Node groups whose
    types or size are not known here are `_uncounted_node_groups` findings."""
    out: dict[str, Counter[str]] = defaultdict(Counter)
    table = instance_vcpus()
    for r in ctx.of_type("aws:eks/nodeGroup:NodeGroup"):
        inputs = ctx.inputs[r.urn]
        types, most = _node_group_sizing(inputs)
        if not _on_demand(inputs) or not types or not isinstance(most, int | float) or any(t not in table for t in types):
            continue
        out[ctx.plan.region_of(r)][r.urn] += int(most) * max(table[t] for t in types)
    return out


def _uncounted_node_groups(ctx: Context) -> list[Finding]:
    table = instance_vcpus()
    out: list[Finding] = []
    for r in ctx.of_type("aws:eks/nodeGroup:NodeGroup"):
        inputs = ctx.inputs[r.urn]
        if not _on_demand(inputs):
            continue
        types, most = _node_group_sizing(inputs)
        unknown = sorted(set(types) - table.keys())
        if unknown:
            out.append(
                Finding(
                    r.urn,
                    f"Running On-Demand Standard instances: instance type {', '.join(unknown)} of this node group has no vCPU "
                    "count in meridian/data/ec2_instance_vcpus.json, so its vCPUs are not counted against the quota",
                    "add the type with its vCPUs from the EC2 instance type pages (a Standard A, C, D, H, I, M, R, T or Z type; "
                    "another family has its own quota, which preflight does not model: use a Standard type)",
                )
            )
        elif not types or not isinstance(most, int | float):
            out.append(
                Finding(
                    r.urn,
                    "Running On-Demand Standard instances: the node group's instance types or maximum size are not in its "
                    "inputs (a launch template's instance type is not read), so its vCPUs are not counted against the quota",
                    f"give the node group instanceTypes and scalingConfig.maxSize ({NODEGROUP_API})",
                )
            )
    return out


QUOTAS: tuple[Quota, ...] = (
    # IAM's page: roles 1,000 "can be increased" to 5,000, customer managed policies 1,500 to 5,000
    Quota("IAM roles", "account", 1_000, "L-FE177D64", IAM, "iam_roles", _types("aws:iam/role:Role"), 5_000, "iam"),
    Quota(
        "IAM customer managed policies",
        "account",
        1_500,
        "L-E95E4862",
        IAM,
        "iam_managed_policies",
        _types("aws:iam/policy:Policy"),
        5_000,
        "iam",
    ),
    Quota(
        "IAM OIDC identity providers",
        "account",
        100,
        None,
        IAM,
        None,
        _types("aws:iam/openIdConnectProvider:OpenIdConnectProvider"),
    ),
    Quota("AWS Budgets", "account", 20_000, None, BUDGETS, "budgets", _types("aws:budgets/budget:Budget")),
    Quota(
        "S3 general purpose buckets",
        "account",
        10_000,
        "L-DC2B2D3D",
        S3,
        None,
        _types("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"),
        service="s3",  # adjustable; the page names no maximum
    ),
    Quota("Route 53 health checks", "account", 200, None, ROUTE53, None, _types("aws:route53/healthCheck:HealthCheck")),
    Quota(
        "KMS customer managed keys",
        "region",
        100_000,
        None,
        KMS,
        "kms_keys_per_region",
        _types("aws:kms/key:Key", "aws:kms/replicaKey:ReplicaKey"),
    ),
    Quota("Elastic IP addresses", "region", 5, "L-0263D0A3", EIP, "eips_per_region", _types("aws:ec2/eip:Eip"), service="ec2"),
    Quota("VPCs", "region", 5, "L-F678F1CE", VPC, None, _types("aws:ec2/vpc:Vpc"), service="vpc"),
    Quota(
        "Internet gateways",
        "region",
        5,
        "L-A4707A72",
        VPC,
        None,
        _types("aws:ec2/internetGateway:InternetGateway"),
        service="vpc",
    ),
    Quota(
        "VPC security groups",
        "region",
        2_500,
        "L-E79EC296",
        VPC,
        "security_groups_per_vpc",
        _types("aws:ec2/securityGroup:SecurityGroup"),
        service="vpc",
    ),
    Quota("Gateway VPC endpoints", "region", 20, "L-1B52E74A", PRIVATELINK, None, _endpoints("Gateway", "region"), service="vpc"),
    Quota("EKS clusters", "region", 100, None, EKS, None, _types("aws:eks/cluster:Cluster")),
    # vCPUs, not instances; Service Quotas' default for a new account is 5 (the AWS CLI reference's example of
    # `service-quotas get-aws-default-service-quota --service-code ec2 --quota-code L-1216C47A`), and an account's applied value varies:
    # declare yours in meridian:quotas.raised (adjustable; no published maximum)
    Quota(
        "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances (vCPUs)",
        "region",
        5,
        "L-1216C47A",
        EC2_ON_DEMAND,
        None,
        _on_demand_vcpus,
        service="ec2",
        uncounted=_uncounted_node_groups,
    ),
    Quota("Interface VPC endpoints", "VPC", 50, "L-29B6F2EB", PRIVATELINK, None, _endpoints("Interface", "VPC"), service="vpc"),
    Quota("Subnets", "VPC", 200, "L-407747CB", VPC, None, _by_input("aws:ec2/subnet:Subnet", "vpcId"), service="vpc"),
    Quota(
        "Route tables", "VPC", 200, "L-589F43AA", VPC, None, _by_input("aws:ec2/routeTable:RouteTable", "vpcId"), service="vpc"
    ),
    Quota("NAT gateways", "AZ", 5, "L-FE5A380F", VPC, "nat_gateways_per_az", _nat_per_az, service="vpc"),
    Quota("Inbound rules", "security group", 60, "L-0EA8095F", VPC, None, _sg_rules("in"), service="vpc"),
    Quota("Outbound rules", "security group", 60, "L-0EA8095F", VPC, None, _sg_rules("out"), service="vpc"),
    Quota("Routes", "route table", 50, "L-93826ACB", VPC, None, _routes, service="vpc"),
    Quota(
        "Pod Identity associations",
        "cluster",
        5_000,
        None,
        EKS,
        "pod_identity_associations_per_cluster",
        _associations,
    ),
    Quota("Managed node groups", "cluster", 30, None, EKS, None, _by_input("aws:eks/nodeGroup:NodeGroup", "clusterName")),
    Quota("Records", "hosted zone", 10_000, None, ROUTE53, None, _by_input("aws:route53/record:Record", "zoneId")),
)


def sharing_stacks(project_dir: Path | None, account_id: str | None) -> list[str]:
    """The project's stacks whose config names `account_id` (they share its account-wide quotas); a
    cell stack's file names no account: it deploys into its platform's (`meridian:platform`)."""
    if project_dir is None or account_id is None:
        return []
    configs = {
        path.name[len("Pulumi.") : -len(".yaml")]: (yaml.safe_load(path.read_text()) or {}).get("config") or {}
        for path in sorted(project_dir.glob("Pulumi.*.yaml"))
    }

    def account(stack: str) -> str:
        config = configs.get(stack) or {}
        platform = config.get("meridian:platform")
        own = config if platform is None else configs.get(str(platform)) or {}
        return str(own.get("meridian:aws_account_id"))

    return [stack for stack in configs if account(stack) == account_id]


def available(q: QuotaSettings, quota: Quota) -> int:
    """What the account has of `quota`: the `meridian:quotas` field that carries it, a raised code, or AWS's default."""
    if quota.setting is not None:
        return int(getattr(q, quota.setting))
    return q.raised.get(quota.code or "", quota.default)


def _increase(quota: Quota, used: int, share: int) -> int | None:
    """The quota to request for `share` stacks using `used` each, if Service Quotas grants that much; None if not."""
    if quota.maximum is None or quota.code is None:
        return None
    needed = used * share
    return needed if needed <= quota.maximum else None


def request_command(quota: Quota, value: int) -> str:
    return (
        f"aws service-quotas request-service-quota-increase --service-code {quota.service} "
        f"--quota-code {quota.code} --desired-value {value}" + (" --region us-east-1" if quota.service in ("iam", "s3") else "")
        # IAM's quotas are global and S3's bucket quota account-wide: both are requested in us-east-1
    )


def check_quotas(ctx: Context) -> CheckResult:
    result = CheckResult(
        "quotas",
        "service quotas the plan consumes, per scope (account-wide ones shared by the stacks in the account): "
        + "; ".join(f"{q.name} per {q.scope} {q.default:,}" + (f" ({q.code})" if q.code else "") for q in QUOTAS),
    )
    sharers = sharing_stacks(ctx.project_dir, ctx.cfg.aws_account_id)
    share = max(len(sharers), ctx.cfg.quotas.stacks_per_account)
    who = (
        f"{', '.join(sharers)} name account {ctx.cfg.aws_account_id}"
        if len(sharers) > 1
        else "meridian:quotas.stacks_per_account"
    )
    for quota in QUOTAS:
        assert quota.count is not None
        if quota.uncounted is not None:
            result.findings += quota.uncounted(ctx)
        usage = quota.count(ctx)
        limit = available(ctx.cfg.quotas, quota)
        if quota.scope == "account":
            keys = {"account": usage.get("account", Counter())}
            allowed, scope = limit // share, f" (account quota {limit:,} / {share} stacks: {who})"
        elif quota.scope == "region":
            keys = {k: v for k, v in usage.items() if k != "account"}
            allowed, scope = limit, ""
        else:
            keys, allowed, scope = dict(usage), limit, ""
        for key, users in sorted(keys.items()):
            result.checked += 1
            used = sum(users.values())
            if used <= allowed:
                continue
            where = {"account": "", "region": f" in {key}"}.get(quota.scope, f" in {quota.scope} {key}")
            needed = _increase(quota, used, share if quota.scope == "account" else 1)
            if needed is not None:
                result.warnings.append(
                    f"{quota.name}{where}: this stack needs {used:,}, over {allowed:,} available{scope}; the quota is adjustable "
                    f"to {quota.maximum:,}: request {needed:,} before `up` ({request_command(quota, needed)}), then set "
                    f"{f'meridian:quotas.{quota.setting}' if quota.setting else f'meridian:quotas.raised.{quota.code}'} = {needed:,} ({quota.source})"
                )
                continue
            raise_it = (
                f"meridian:quotas.{quota.setting}"
                if quota.setting
                else (f"meridian:quotas.raised.{quota.code}" if quota.code else "nothing: this quota is fixed")
            )
            result.findings.append(
                Finding(
                    max(users, key=lambda u: users[u]),
                    f"{quota.name}{where}: this stack needs {used:,}, over {allowed:,} available{scope} ({quota.source})",
                    f"raise the quota in Service Quotas{f' ({quota.code})' if quota.code else ''} and set {raise_it}, or reduce what needs it",
                )
            )
    result.notes.append(
        "usage by other workloads in the account: compare with Service Quotas before up (`meridian preflight --online`)"
    )
    if ctx.cfg.is_cell or ctx.cfg.cells.names:  # a zone's stacks share its clusters and the account
        zone = ctx.cfg.platform or ctx.plan.stack
        result.notes.append(
            f"the platform {zone} and its cells share its clusters' Pod Identity associations and the account's quotas: "
            f"`meridian preflight --zone {zone}` sums them over every stack of the account"
        )
    return result
