"""No public exposure: buckets, security groups, databases and the Kubernetes API stay private."""

from __future__ import annotations

from typing import Any

from ruleutil import (
    CRITICAL, HIGH, WORLD, Stack, UnknownValueError, as_list, dig, plain, resource_policy, stack_policy, statements, truthy,
)
from encryption import S3_BUCKET, buckets_with

S3_PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_ACL = "aws:s3/bucketAcl:BucketAcl"
S3_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")


def _public_principal(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return any(v == "*" or (isinstance(v, list) and "*" in v) for v in principal.values())
    return False


def public_statements(document: Any) -> list[str]:
    """Allow statements open to anyone (`Principal: *`) without a condition narrowing them."""
    return [st["sid"] or "(no Sid)" for st in statements(document)
            if st["effect"] == "allow" and _public_principal(st["principal"]) and not st["condition"]]


def check_s3_public_access(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    blocks = buckets_with(stack, S3_PAB)
    out: list[tuple[str | None, str]] = []
    for bucket in stack.of(S3_BUCKET):
        mine = blocks.get(bucket.urn, [])
        if not mine:
            out.append((bucket.urn, "S3 bucket must have a BucketPublicAccessBlock with all four settings true"))
        for block in mine:
            off = [f for f in PAB_FLAGS if not truthy(dig(block.props, f, default=False))]
            if off:
                out.append((block.urn, f"S3 public access block must set {', '.join(f'`{f}`' for f in off)} to true"))
        acl = dig(bucket.props, "acl")
        if acl in PUBLIC_ACLS:
            out.append((bucket.urn, f"S3 bucket must not use the canned ACL {acl}"))
    for acl in stack.of(S3_ACL):
        if dig(acl.props, "acl") in PUBLIC_ACLS:
            out.append((acl.urn, f"S3 bucket ACL must not be {dig(acl.props, 'acl')}"))
    for policy in stack.of(S3_POLICY):
        try:
            public = public_statements(dig(policy.props, "policy"))
        except UnknownValueError:
            continue  # known at update time; the public access block refuses public policies anyway
        if public:
            out.append((policy.urn, f"S3 bucket policy must not allow `Principal: *` without a condition (statements {', '.join(public)})"))
    return out


s3_public_access = stack_policy(
    "s3-bucket-public-access-blocked",
    what="Checks that every S3 bucket has a public access block with all four settings on, no public canned ACL and no bucket policy open to `Principal: *`",
    why="One public bucket exposes every tenant whose data it holds; the public access block is the guard that survives later ACL or policy mistakes.",
    check=check_s3_public_access,
    severity=CRITICAL,
    remediation="Add a BucketPublicAccessBlock with `block_public_acls`, `block_public_policy`, `ignore_public_acls` and "
                "`restrict_public_buckets` all True; use BucketOwnershipControls `BucketOwnerEnforced` instead of ACLs; "
                "serve public content through CloudFront with origin access control.",
    tags=["exposure", "data"],
)

SG = "aws:ec2/securityGroup:SecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer", "aws:elb/loadBalancer:LoadBalancer")


def _ports(rule: Any, protocol_key: str) -> tuple[str, int, int]:
    protocol = str(dig(rule, protocol_key, default="-1")).lower()
    if protocol in ("-1", "all"):
        return protocol, 0, 65535
    return protocol, int(dig(rule, "fromPort", default=0)), int(dig(rule, "toPort", default=65535))


def check_sg_ingress(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    allowed_ports = {int(p) for p in config.get("publicPorts", [80, 443])}
    fronting_lb = {sg.urn for lb in stack.of(*LOAD_BALANCERS) for sg in stack.linked(lb, "securityGroups", SG)}
    out: list[tuple[str | None, str]] = []

    def judge(owner: Any, sg_urns: set[str], cidrs: list[Any], rule: Any, protocol_key: str) -> None:
        world = [c for c in cidrs if c in WORLD]
        if not world:
            return
        protocol, lo, hi = _ports(rule, protocol_key)
        ports = "all ports" if (lo, hi) == (0, 65535) else (str(lo) if lo == hi else f"{lo}-{hi}")
        protocol = "every protocol on" if protocol in ("-1", "all") else protocol
        if not (lo == hi and lo in allowed_ports):
            out.append((owner.urn, f"Security group ingress from {', '.join(world)} must be removed: it opens {protocol} {ports} "
                                   f"(only {', '.join(map(str, sorted(allowed_ports)))} on a load balancer may face the internet)"))
        elif not sg_urns or not sg_urns <= fronting_lb:
            out.append((owner.urn, f"Security group ingress from {', '.join(world)} on port {lo} must belong to a load balancer's security group"))

    for sg in stack.of(SG):
        for rule in as_list(dig(sg.props, "ingress")):
            cidrs = as_list(dig(rule, "cidrBlocks")) + as_list(dig(rule, "ipv6CidrBlocks"))
            judge(sg, {sg.urn}, cidrs, rule, "protocol")
    for rule in stack.of(SG_RULE):
        if dig(rule.props, "type") != "ingress":
            continue
        cidrs = as_list(dig(rule.props, "cidrBlocks")) + as_list(dig(rule.props, "ipv6CidrBlocks"))
        judge(rule, {s.urn for s in stack.linked(rule, "securityGroupId", SG)}, cidrs, rule.props, "protocol")
    for rule in stack.of(SG_INGRESS):
        cidrs = [dig(rule.props, "cidrIpv4"), dig(rule.props, "cidrIpv6")]
        judge(rule, {s.urn for s in stack.linked(rule, "securityGroupId", SG)}, cidrs, rule.props, "ipProtocol")
    return out


sg_ingress = stack_policy(
    "ec2-security-group-ingress-restricted",
    what="Checks that no security group admits 0.0.0.0/0 or ::/0, except on the public ports (80, 443) of a security group attached to a load balancer",
    why="Nodes, databases and endpoints are reached through the load balancer or private networking only; an open port on them is a direct path around TLS termination, WAF and quotas.",
    check=check_sg_ingress,
    severity=CRITICAL,
    config={"publicPorts": {"type": "array", "items": {"type": "integer"}, "default": [80, 443],
                            "description": "ports a load balancer's security group may open to the internet"}},
    remediation="Admit traffic from the load balancer's or the clients' security group (`security_groups=[...]`) or from "
                "VPC CIDRs; publish services through a load balancer listening on 443.",
    tags=["exposure", "network"],
)


def check_db_not_public(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    if truthy(dig(props, "publiclyAccessible", default=False)):
        return [f"{type_.rsplit(':', 1)[-1]} must set `publiclyAccessible: false`: databases are reached from the cluster nodes only"]
    return []


db_not_public = resource_policy(
    "rds-instance-not-public",
    what="Checks that no RDS instance or Aurora cluster instance is publicly accessible",
    why="A public database endpoint is one leaked password away from every tenant's data, and bypasses the network isolation of the data subnets.",
    types=["aws:rds/instance:Instance", "aws:rds/clusterInstance:ClusterInstance"],
    check=check_db_not_public,
    severity=CRITICAL,
    remediation="Set `publicly_accessible=False` and place the instance in the data subnets' DB subnet group; reach it through the VPC.",
    tags=["exposure", "data"],
)


def check_eks_endpoint(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    vpc = dig(props, "vpcConfig", default={})
    # Provider default: the public endpoint is ON, open to 0.0.0.0/0.
    if not truthy(dig(vpc, "endpointPublicAccess", default=True)):
        return []
    try:
        cidrs = [str(c) for c in as_list(plain(dig(vpc, "publicAccessCidrs")))]
    except UnknownValueError:
        return []  # computed elsewhere (an operator list): checked again at update time
    if not cidrs:
        return ["EKS cluster public endpoint must be disabled (`endpointPublicAccess: false`) or limited with `publicAccessCidrs` (the default is 0.0.0.0/0)"]
    world = [c for c in cidrs if c in WORLD]
    if world:
        return [f"EKS cluster `publicAccessCidrs` must list operator CIDRs, not {', '.join(world)}"]
    return []


eks_endpoint = resource_policy(
    "eks-cluster-endpoint-restricted",
    what="Checks that every EKS cluster's API endpoint is private, or public only to listed operator CIDRs (never 0.0.0.0/0)",
    why="The Kubernetes API controls every tenant's workloads; the provider default exposes it to the whole internet.",
    types=["aws:eks/cluster:Cluster"],
    check=check_eks_endpoint,
    severity=HIGH,
    remediation="Set `vpc_config.endpoint_public_access=False` (operators use the private endpoint through the VPN), or set "
                "`public_access_cidrs` to the operators' egress CIDRs (config `meridian:cluster.public_access_cidrs`).",
    tags=["exposure", "kubernetes"],
)

POLICIES = [s3_public_access, sg_ingress, db_not_public, eks_endpoint]
