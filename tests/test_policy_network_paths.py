"""Network and flow-log paths from the security review, replayed on the us stack's real plan through
the analyzer: the database's security group admitting more than its VPC or the internet-facing
load balancer's group (E19, E20), a tenant NetworkPolicy naming namespaces by a label other
tenants share (O09), a VPC flow log of half the traffic (E12) or without the addresses. Each attack
draws the named rule's mandatory violation, each legitimate twin nothing, and every value these
rules read that is unknown at preview draws that rule's advisory (U13, U15), never silence and
never a violation."""

from __future__ import annotations

import copy

import pytest

from .helpers import assert_mandatory, both
from .policydata import UNKNOWN

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture

DB_SG = "us-db-us-east-1-sg"
ALB_SG = "us-use1-lb-alb-sg"
VPC = "us-us-east-1-net-vpc"
ACME_POLICY = "us-us-east-1-t-acme-allow-needed"
FLOW_LOG = "us-us-east-1-net-flowlog"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
VPC_CIDR = "aws:ec2/vpcIpv4CidrBlockAssociation:VpcIpv4CidrBlockAssociation"


def one(resources, name: str, type_part: str = "") -> dict:
    return next(r for r in resources if r["name"] == name and type_part in r["type"])


def urn(resources, name: str, type_part: str = "") -> str:
    return one(resources, name, type_part)["urn"]


def set_input(name: str, type_part: str, path: str, value):
    def mutate(resources):
        node = one(resources, name, type_part)["inputs"]
        *head, last = path.split(".")
        for step in head:
            node = node[int(step)] if isinstance(node, list) else node.setdefault(step, {})
        node[int(last) if isinstance(node, list) else last] = value

    return mutate


# --- the database's security group ---------------------------------------------------------------


def db_ingress(rule: dict, linked: tuple[str, ...] = ()):
    """One more inline ingress rule on the database's group; `linked`: resources it is built from."""

    def mutate(resources):
        sg = one(resources, DB_SG, "securityGroup:SecurityGroup")
        sg["inputs"]["ingress"].append({"fromPort": 5432, "toPort": 5432, "protocol": "tcp", **rule})
        deps = [urn(resources, n) for n in linked]
        sg["propertyDependencies"]["ingress"] = sg["propertyDependencies"].get("ingress", []) + deps
        sg["dependencies"] = sg["dependencies"] + deps

    return mutate


def alb_sg_id(resources) -> str:
    return one(resources, "us-use1-lb-api", "loadBalancer")["inputs"]["securityGroups"][0]


def db_from_alb_by_id(resources):
    db_ingress({"securityGroups": [alb_sg_id(resources)]})(resources)


def db_ingress_rule(inputs: dict, links: dict[str, str]):
    """A separate VPC SecurityGroupIngressRule on the database's group (`links`: property -> resource)."""

    def mutate(resources):
        like = one(resources, "us-use1-lb-pods-from-alb", SG_INGRESS)
        rule = copy.deepcopy(like)
        deps = {prop: [urn(resources, name)] for prop, name in {"securityGroupId": DB_SG, **links}.items()}
        rule.update(
            name="db-extra",
            urn=like["urn"].rsplit("::", 1)[0] + "::db-extra",
            inputs={"securityGroupId": "sg-db", "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, **inputs},
            propertyDependencies=deps,
            dependencies=[u for us in deps.values() for u in us],
        )
        resources.append(rule)

    return mutate


def db_group_rule(inputs: dict, links: dict[str, str]):
    """A SecurityGroupRule of type ingress on the database's group (`links`: property -> resource)."""

    def mutate(resources):
        db_ingress_rule({}, {})(resources)
        rule = resources[-1]
        deps = {prop: [urn(resources, name)] for prop, name in {"securityGroupId": DB_SG, **links}.items()}
        rule.update(
            type="aws:ec2/securityGroupRule:SecurityGroupRule",
            urn=rule["urn"].replace(SG_INGRESS, "aws:ec2/securityGroupRule:SecurityGroupRule"),
            inputs={"type": "ingress", "securityGroupId": "sg-db", "protocol": "tcp", "fromPort": 5432, "toPort": 5432, **inputs},
            propertyDependencies=deps,
            dependencies=[u for us in deps.values() for u in us],
        )

    return mutate


def db_from_prefix_list(cidr: str):
    """A managed prefix list of the stack holding `cidr`, named by the database's group."""

    def mutate(resources):
        vpc = one(resources, VPC, "ec2/vpc:Vpc")
        token = "aws:ec2/managedPrefixList:ManagedPrefixList"
        prefix_list = {
            **copy.deepcopy(vpc),
            "type": token,
            "name": "partners",
            "urn": vpc["urn"].rsplit("::", 2)[0] + f"::{token}::partners",
            "inputs": {"name": "partners", "addressFamily": "IPv4", "maxEntries": 5, "entries": [{"cidr": cidr}]},
            "dependencies": [],
            "propertyDependencies": {},
        }
        resources.append(prefix_list)
        db_ingress({"prefixListIds": ["pl-partners"]}, linked=("partners",))(resources)

    return mutate


def secondary_block(cidr: str):
    """A secondary IPv4 block associated with the us-east-1 VPC."""

    def mutate(resources):
        vpc = one(resources, VPC, "ec2/vpc:Vpc")
        resources.append(
            {
                **copy.deepcopy(vpc),
                "type": VPC_CIDR,
                "name": "vpc-secondary",
                "urn": vpc["urn"].rsplit("::", 2)[0] + f"::{VPC_CIDR}::vpc-secondary",
                "inputs": {"vpcId": "vpc-1", "cidrBlock": cidr},
                "dependencies": [vpc["urn"]],
                "propertyDependencies": {"vpcId": [vpc["urn"]]},
            }
        )

    return mutate


def cache_open_to(cidr: str):
    """An ElastiCache replication group (it names its groups `securityGroupIds`) in its own group admitting `cidr`."""

    def mutate(resources):
        sg = one(resources, DB_SG, "securityGroup:SecurityGroup")
        group = copy.deepcopy(sg)
        group.update(name="cache-sg", urn=sg["urn"].rsplit("::", 1)[0] + "::cache-sg")
        group["inputs"]["ingress"] = [{"fromPort": 6379, "toPort": 6379, "protocol": "tcp", "cidrBlocks": [cidr]}]
        group["propertyDependencies"]["ingress"] = []
        cache = copy.deepcopy(sg)
        cache.update(
            type="aws:elasticache/replicationGroup:ReplicationGroup",
            name="cache",
            urn=sg["urn"].rsplit("::", 2)[0] + "::aws:elasticache/replicationGroup:ReplicationGroup::cache",
            inputs={"description": "sessions", "securityGroupIds": ["sg-cache"]},
            dependencies=[group["urn"]],
            propertyDependencies={"securityGroupIds": [group["urn"]]},
        )
        resources += [group, cache]

    return mutate


# --- tenant NetworkPolicies ----------------------------------------------------------------------


def acme_peer(direction: str, selector: dict):
    def mutate(resources):
        spec = one(resources, ACME_POLICY, "NetworkPolicy")["inputs"]["spec"]
        key = "from" if direction == "ingress" else "to"
        spec[direction].append({"ports": [{"port": 443, "protocol": "TCP"}], key: [{"namespaceSelector": selector}]})

    return mutate


NAME = "kubernetes.io/metadata.name"


# --- flow logs -----------------------------------------------------------------------------------


def second_flow_log(traffic: str):
    def mutate(resources):
        log = one(resources, FLOW_LOG, "flowLog")
        extra = copy.deepcopy(log)
        extra.update(name="flowlog-rejects", urn=log["urn"].rsplit("::", 1)[0] + "::flowlog-rejects")
        extra["inputs"]["trafficType"] = traffic
        resources.append(extra)

    return mutate


ATTACKS = [
    # E19
    (
        "the database admitting 10.0.0.0/8 (every peered VPC and VPN)",
        db_ingress({"cidrBlocks": ["10.0.0.0/8"]}),
        "ec2-security-group-ingress-restricted",
    ),
    (
        "the database admitting 172.16.0.0/12 beside its own subnets",
        db_ingress({"cidrBlocks": ["10.10.0.0/19", "172.16.0.0/12"]}),
        "ec2-security-group-ingress-restricted",
    ),
    (
        "the database admitting a private IPv6 range not built from its VPC",
        db_ingress({"ipv6CidrBlocks": ["fd00::/8"]}),
        "ec2-security-group-ingress-restricted",
    ),
    (
        "a SecurityGroupIngressRule admitting 10.0.0.0/8 to the database",
        db_ingress_rule({"cidrIpv4": "10.0.0.0/8"}, {}),
        "ec2-security-group-ingress-restricted",
    ),
    (
        "the database admitting all of 100.64.0.0/10 where the VPC's secondary block is a /16 of it",
        both(secondary_block("100.64.0.0/16"), db_ingress({"cidrBlocks": ["100.64.0.0/10"]})),
        "ec2-security-group-ingress-restricted",
    ),
    (
        "an ElastiCache replication group's group admitting 10.0.0.0/8",
        cache_open_to("10.0.0.0/8"),
        "ec2-security-group-ingress-restricted",
    ),
    (
        "a SecurityGroupRule admitting 10.0.0.0/8 to the database",
        db_group_rule({"cidrBlocks": ["10.0.0.0/8"]}, {}),
        "ec2-security-group-ingress-restricted",
    ),
    (
        "the database admitting a prefix list of the stack that holds 10.0.0.0/8",
        db_from_prefix_list("10.0.0.0/8"),
        "ec2-security-group-ingress-restricted",
    ),
    # E20
    (
        "the database admitting the internet-facing ALB's group by its id",
        db_from_alb_by_id,
        "ec2-security-group-ingress-restricted",
    ),
    (
        "the database admitting the internet-facing ALB's group built from it",
        db_ingress({"securityGroups": ["sg-from-alb"]}, linked=(ALB_SG,)),
        "ec2-security-group-ingress-restricted",
    ),
    (
        "a SecurityGroupRule admitting the ALB's group to the database by its id",
        lambda resources: db_group_rule({"sourceSecurityGroupId": alb_sg_id(resources)}, {})(resources),
        "ec2-security-group-ingress-restricted",
    ),
    (
        "a SecurityGroupIngressRule admitting the ALB's group to the database (id unknown at preview, link kept)",
        db_ingress_rule({"referencedSecurityGroupId": UNKNOWN}, {"referencedSecurityGroupId": ALB_SG}),
        "ec2-security-group-ingress-restricted",
    ),
    # O09
    (
        "acme's egress to every enterprise tenant's namespace by plan label",
        acme_peer("egress", {"matchLabels": {"meridian.io/plan": "enterprise"}}),
        "tenant-namespace-guarded",
    ),
    (
        "acme's ingress from namespaces labelled as the platform (a label any namespace may carry)",
        acme_peer("ingress", {"matchLabels": {"meridian.io/platform": "true"}}),
        "tenant-namespace-guarded",
    ),
    (
        "acme's ingress from `In` on the plan label",
        acme_peer(
            "ingress",
            {"matchExpressions": [{"key": "meridian.io/plan", "operator": "In", "values": ["enterprise", "pro"]}]},
        ),
        "tenant-namespace-guarded",
    ),
    (
        "acme's egress to its own tenant label (any namespace labelled acme later)",
        acme_peer("egress", {"matchLabels": {"meridian.io/tenant": "acme"}}),
        "tenant-namespace-guarded",
    ),
    (
        "acme's egress to globex's namespace by name among others",
        acme_peer("egress", {"matchExpressions": [{"key": NAME, "operator": "In", "values": ["platform", "t-globex"]}]}),
        "tenant-namespace-guarded",
    ),
    # E12
    (
        "the flow log recording rejected traffic only",
        set_input(FLOW_LOG, "flowLog", "trafficType", "REJECT"),
        "vpc-flow-logs-enabled",
    ),
    (
        "the flow log recording accepted traffic only",
        set_input(FLOW_LOG, "flowLog", "trafficType", "ACCEPT"),
        "vpc-flow-logs-enabled",
    ),
    (
        "the flow log of all traffic in a format without the addresses",
        set_input(FLOW_LOG, "flowLog", "logFormat", "${version} ${start} ${end} ${action} ${log-status}"),
        "vpc-flow-logs-enabled",
    ),
    (
        "two flow logs, of accepted and of rejected traffic, and none of all",
        both(set_input(FLOW_LOG, "flowLog", "trafficType", "ACCEPT"), second_flow_log("REJECT")),
        "vpc-flow-logs-enabled",
    ),
]

TWINS = [
    ("the database admitting its VPC's block", db_ingress({"cidrBlocks": ["10.10.0.0/16"]})),
    ("the database admitting a private subnet of its VPC", db_ingress({"cidrBlocks": ["10.10.0.0/19", "10.10.32.0/19"]})),
    (
        "the database admitting its VPC's own IPv6 /56",
        db_ingress({"ipv6CidrBlocks": ["2600:1f18:1234:5600::/56"]}, linked=(VPC,)),
    ),
    (
        "the database admitting the VPC's secondary block",
        both(secondary_block("100.64.0.0/16"), db_ingress({"cidrBlocks": ["100.64.0.0/16"]})),
    ),
    (
        "a SecurityGroupIngressRule admitting a private subnet to the database",
        db_ingress_rule({"cidrIpv4": "10.10.64.0/19"}, {}),
    ),
    (
        "a SecurityGroupIngressRule admitting the rotation function's group to the database",
        db_ingress_rule(
            {"referencedSecurityGroupId": "sg-rotation"}, {"referencedSecurityGroupId": "us-db-us-east-1-rotation-sg"}
        ),
    ),
    (
        "acme's egress to the platform namespace and itself by name",
        acme_peer("egress", {"matchExpressions": [{"key": NAME, "operator": "In", "values": ["platform", "t-acme"]}]}),
    ),
    (
        "acme's ingress from the platform namespace by name and the plan label together",
        acme_peer("ingress", {"matchLabels": {NAME: "platform", "meridian.io/plan": "enterprise"}}),
    ),
    ("a second flow log of rejected traffic beside the one of all traffic", second_flow_log("REJECT")),
    (
        "the flow log in a custom format that keeps the addresses, ports and action",
        set_input(
            FLOW_LOG,
            "flowLog",
            "logFormat",
            "${version} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${start} ${end} ${action} "
            "${pkt-srcaddr} ${pkt-dstaddr}",
        ),
    ),
    (
        "a SecurityGroupRule admitting the nodes' group to the database, built from the cluster",
        db_group_rule({"sourceSecurityGroupId": "sg-nodes"}, {"sourceSecurityGroupId": "us-us-east-1-eks-eks"}),
    ),
    ("the database admitting a prefix list of the stack that holds a private subnet", db_from_prefix_list("10.10.0.0/19")),
]


@pytest.mark.parametrize("what,mutation,rule", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_each_network_attack_is_a_mandatory_violation_of_its_rule(judge, what, mutation, rule):
    found = judge(mutation)
    assert_mandatory(found, rule, what)
    assert all(v.level == "mandatory" for v in found if v.policy == rule), [(v.level, v.message) for v in found]


@pytest.mark.parametrize("what,mutation", TWINS, ids=[t[0] for t in TWINS])
def test_each_legitimate_network_twin_passes(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what


def _with_alb_rule(resources):
    db_ingress({"securityGroups": ["sg-from-alb"]}, linked=(ALB_SG,))(resources)


PLATFORM_LABELS_UNKNOWN = "the labels of the platform namespace acme admits by name (whose is it?)"


UNKNOWNS = [
    ("the database ingress's CIDR", db_ingress({"cidrBlocks": [UNKNOWN]}), "ec2-security-group-ingress-restricted", "cidrBlocks"),
    (
        "the database's VPC block, with a CIDR rule to judge against it",
        both(db_ingress({"cidrBlocks": ["10.10.0.0/19"]}), set_input(VPC, "ec2/vpc:Vpc", "cidrBlock", UNKNOWN)),
        "ec2-security-group-ingress-restricted",
        "cidrBlock",
    ),
    (
        "whether the load balancer whose group the database admits is internal",
        both(_with_alb_rule, set_input("us-use1-lb-api", "loadBalancer", "internal", UNKNOWN)),
        "ec2-security-group-ingress-restricted",
        "internal",
    ),
    (
        "a group id the database admits, built from nothing in the stack",
        db_ingress_rule({"referencedSecurityGroupId": UNKNOWN}, {}),
        "ec2-security-group-ingress-restricted",
        "referencedSecurityGroupId",
    ),
    (
        "the database's secondary VPC block",
        both(secondary_block(UNKNOWN), db_ingress({"cidrBlocks": ["10.10.0.0/19"]})),
        "ec2-security-group-ingress-restricted",
        "cidrBlock",
    ),
    (
        "a tenant NetworkPolicy's namespaceSelector",
        acme_peer("egress", UNKNOWN),
        "tenant-namespace-guarded",
        "namespaceSelector",
    ),
    (
        "a tenant NetworkPolicy's selector values",
        acme_peer("egress", {"matchLabels": {NAME: UNKNOWN}}),
        "tenant-namespace-guarded",
        "namespaceSelector",
    ),
    (
        PLATFORM_LABELS_UNKNOWN,
        set_input("us-us-east-1-api-ns", "core/v1:Namespace", "metadata.labels", UNKNOWN),
        "tenant-namespace-guarded",
        "labels",
    ),
    (
        "the flow log's trafficType (U15)",
        set_input(FLOW_LOG, "flowLog", "trafficType", UNKNOWN),
        "vpc-flow-logs-enabled",
        "trafficType",
    ),
    ("the flow log's logFormat", set_input(FLOW_LOG, "flowLog", "logFormat", UNKNOWN), "vpc-flow-logs-enabled", "logFormat"),
    (
        "the shared tenant role's path, which the broker's assume policy names (U13)",
        set_input("us-us-east-1-tenant-identity-role", "iam/role:Role", "path", UNKNOWN),
        "tenant-role-isolated",
        "path",
    ),
]


@pytest.mark.parametrize("what,mutation,rule,prop", UNKNOWNS, ids=[u[0] for u in UNKNOWNS])
def test_a_value_these_rules_read_unknown_at_preview_is_that_rules_advisory(judge, what, mutation, rule, prop):
    found = judge(mutation)
    assert [(v.policy, v.message) for v in found if v.level == "mandatory"] == [], what
    advisories = [v.message for v in found if v.policy == rule]
    assert advisories and all(m.startswith("unverifiable at preview: ") and prop in m for m in advisories), (what, advisories)
