"""No public exposure: buckets, security groups, network ACLs, databases, instances, node groups
and the Kubernetes API stay private."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from destinations import stack_accounts
from iamdoc import parse, public
from principals import account_of, outsiders
from ruleutil import (
    BUCKET_SETTINGS,
    CRITICAL,
    HIGH,
    RDS_CLUSTER,
    RDS_CLUSTER_INSTANCE,
    RDS_INSTANCE,
    S3_BUCKETS,
    UNKNOWN,
    VPC,
    WORLD,
    Stack,
    Unverifiable,
    as_list,
    dig,
    judge_buckets,
    judge_each,
    known,
    named_bucket,
    peek,
    plain,
    region_of,
    resource_policy,
    stack_policy,
    string_list,
    truthy,
    unknown,
)

S3_PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
S3_ACLS = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
S3_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
PUBLIC_ACLS = ("public-read", "public-read-write", "authenticated-read")
PUBLIC_GRANTEES = ("http://acs.amazonaws.com/groups/global/AllUsers", "http://acs.amazonaws.com/groups/global/AuthenticatedUsers")
PRIVATE_NETS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")]


def public_statements(document: Any) -> list[str]:
    """Allow statements open to anyone (`Principal: *` / `{"AWS": "*"}`), whatever their condition:
    conditions on `*` (a VPC endpoint, an org id) are for a bucket policy's Deny, not its Allow."""
    return [st.sid or "(no Sid)" for st in parse(document) if st.allow and public(st)]


def _acl_grants_public(props: Any) -> list[str]:
    out = []
    acl = dig(props, "acl")
    if acl in PUBLIC_ACLS:
        out.append(f"the canned ACL {acl}")
    policy = dig(props, "accessControlPolicy")
    for grant in as_list(dig(policy, "grants")):
        uri = dig(grant, "grantee", "uri")
        if uri in PUBLIC_GRANTEES:
            out.append(f"a grant of {dig(grant, 'permission')} to {uri.rsplit('/', 1)[-1]}")
    return out


def check_s3_public_access(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)

    def judge_bucket(bucket: Any, mine: list[Any]) -> list[tuple[str | None, str]]:
        out = []
        if not mine:
            out.append((bucket.urn, "S3 bucket must have a BucketPublicAccessBlock with all four settings true"))
        for block in mine:
            off = [f for f in PAB_FLAGS if not truthy(dig(block.props, f, default=False))]
            if off:
                out.append((block.urn, f"S3 public access block must set {', '.join(f'`{f}`' for f in off)} to true"))
        out += [(bucket.urn, f"S3 bucket must not be made public through {what}") for what in _acl_grants_public(bucket.props)]
        if dig(bucket.props, "policy") is not None:
            public_ = public_statements(dig(bucket.props, "policy"))
            if public_:
                out.append(
                    (bucket.urn, f"S3 bucket's inline policy must not allow `Principal: *` (statements {', '.join(public_)})")
                )
        return out

    def judge_acl(acl: Any) -> list[tuple[str | None, str]]:
        return [
            (acl.urn, f"S3 bucket ACL must not make the bucket public through {what}") for what in _acl_grants_public(acl.props)
        ]

    def judge_policy(policy: Any) -> list[tuple[str | None, str]]:
        public_ = public_statements(dig(policy.props, "policy"))
        return (
            [
                (
                    policy.urn,
                    f"S3 bucket policy must not allow `Principal: *`, whatever the condition (statements {', '.join(public_)})",
                )
            ]
            if public_
            else []
        )

    return (
        judge_buckets(stack, [S3_PAB], judge_bucket)
        + judge_each(stack.of(*S3_ACLS), judge_acl)
        + judge_each(stack.of(S3_POLICY), judge_policy)
    )


s3_public_access = stack_policy(
    "s3-bucket-public-access-blocked",
    what="Checks that every S3 bucket (Bucket and BucketV2) has a public access block with all four settings on, no public canned ACL or ACL grant to AllUsers / AuthenticatedUsers (bucket or BucketAcl), and no bucket policy (inline or BucketPolicy) that allows `Principal: *`, whatever its condition",
    why="One public bucket exposes every tenant whose data it holds; the public access block is the guard that survives later ACL or policy mistakes.",
    reads=[*S3_BUCKETS, S3_PAB, *S3_ACLS, S3_POLICY],
    check=check_s3_public_access,
    severity=CRITICAL,
    remediation="Add a BucketPublicAccessBlock with `block_public_acls`, `block_public_policy`, `ignore_public_acls` and "
    "`restrict_public_buckets` all True; use BucketOwnershipControls `BucketOwnerEnforced` instead of ACLs; "
    "grant access in bucket policies to named principals only; serve public content through CloudFront with origin access control.",
    limits=BUCKET_SETTINGS
    + " The account-level public access block is deployed by the stack that owns the account's guardrails (components.guardrails), not judged here; SCPs are organisation-level (docs/operations.md); object ACLs written at runtime are neutralised by `ignorePublicAcls`, not seen.",
    tags=["exposure", "data"],
)

SG = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SG_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SG_INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
SG_EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
# A stand-alone rule's properties, by type: (IPv4 CIDRs, IPv6 CIDRs, prefix lists, protocol, source
# group). SecurityGroupRule takes lists and says its direction in `type`; the VPC rules take one of
# each and are typed by direction.
_RULE_FIELDS = {
    SG_RULE: ("cidrBlocks", "ipv6CidrBlocks", "prefixListIds", "protocol", "sourceSecurityGroupId"),
    **{t: ("cidrIpv4", "cidrIpv6", "prefixListId", "ipProtocol", "referencedSecurityGroupId") for t in (SG_INGRESS, SG_EGRESS)},
}
NACL = "aws:ec2/networkAcl:NetworkAcl"
PREFIX_LIST = "aws:ec2/managedPrefixList:ManagedPrefixList"
PREFIX_LIST_ENTRY = "aws:ec2/managedPrefixListEntry:ManagedPrefixListEntry"
SUBNET = "aws:ec2/subnet:Subnet"
NACL_RULE = "aws:ec2/networkAclRule:NetworkAclRule"
VPC_CIDR = "aws:ec2/vpcIpv4CidrBlockAssociation:VpcIpv4CidrBlockAssociation"
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer", "aws:elb/loadBalancer:LoadBalancer")
DATABASES = (RDS_CLUSTER, RDS_INSTANCE, "aws:redshift/cluster:Cluster", "aws:elasticache/replicationGroup:ReplicationGroup")


def public_cidrs(cidrs: list[Any]) -> list[str]:
    """CIDRs that reach beyond private address space: 0.0.0.0/0, and any public range (so
    0.0.0.0/1 + 128.0.0.0/1, which add up to the internet, are both caught)."""
    out = []
    for c in cidrs:
        if c is UNKNOWN:
            raise unknown("cidrBlocks")
        if c in (None, ""):
            continue
        try:
            net = ipaddress.ip_network(str(c), strict=False)
        except ValueError:
            out.append(str(c))
            continue
        if not any(net.version == p.version and net.subnet_of(p) for p in PRIVATE_NETS):
            out.append(str(c))
    return out


_ACCOUNT_GROUP = re.compile(r"^(\d{12})/sg-[0-9a-f]+$")  # a group of a peered VPC, named with its account


def _ports(rule: Any, protocol_key: str) -> tuple[str, int, int]:
    protocol = str(dig(rule, protocol_key, default="-1")).lower()
    if protocol in ("-1", "all"):
        return protocol, 0, 65535
    return protocol, int(float(dig(rule, "fromPort", default=0))), int(float(dig(rule, "toPort", default=65535)))


def check_sg_ingress(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    allowed_ports = {int(p) for p in config.get("publicPorts", [80, 443])}
    fronting_lb = {sg.urn for lb in stack.of(*LOAD_BALANCERS) for sg in stack.linked(lb, "securityGroups", SG)}
    data_tier = {
        sg.urn
        for db in stack.of(*DATABASES)
        for field in ("vpcSecurityGroupIds", "securityGroupIds")  # ElastiCache names its groups `securityGroupIds`
        for sg in stack.linked(db, field, SG)
    }

    lists: dict[str, list[Any]] = {
        pl.urn: [dig(e, "cidr") for e in as_list(dig(pl.props, "entries"))] for pl in stack.of(PREFIX_LIST)
    }
    for entry in stack.of(PREFIX_LIST_ENTRY):
        for pl in stack.linked(entry, "prefixListId", PREFIX_LIST):
            lists[pl.urn].append(dig(entry.props, "cidr"))

    def prefix_cidrs(owner: Any, props: Any, *fields: str) -> list[Any]:
        """CIDRs of the stack's managed prefix lists a rule names (`prefixListIds` / `prefixListId`)."""
        if not any(as_list(known(peek(props, f))) for f in ("prefixListIds", "prefixListId")):
            return []
        return [c for f in fields for pl in stack.linked(owner, f, PREFIX_LIST) for c in lists.get(pl.urn, [])]

    def unresolved_lists(
        owner: Any, sg_urns: set[str], props: Any, field: str, link: str, protocol_key: str
    ) -> list[tuple[str | None, str]]:
        """A prefix list named by an id the stack does not define holds addresses only AWS knows: an
        advisory wherever the internet would not be allowed, never silence."""
        named = [n for n in as_list(known(peek(props, field))) if n is not None]
        if not named or len(stack.linked(owner, link, PREFIX_LIST)) >= len(named):
            return []
        if not ingress(owner, sg_urns or {"?"}, ["0.0.0.0/0"], props, protocol_key):
            return []  # the internet itself would be allowed here
        ids = ", ".join(str(n) for n in named if isinstance(n, str)) or "(unknown)"
        return [
            (
                owner.urn,
                Unverifiable(
                    f"cannot resolve: ingress from the prefix list(s) {ids}, which the stack does not define; the addresses "
                    "they hold are read only by AWS (define the list in the stack, or name CIDRs or security groups)"
                ),
            )
        ]

    # security groups of internet-facing load balancers, by id (as other rules name them) and by link;
    # True where the load balancer's `internal` is unknown at preview
    facing_ids: dict[str, tuple[Any, bool]] = {}
    facing_urns: dict[str, tuple[Any, bool]] = {}
    for lb in stack.of(*LOAD_BALANCERS):
        internal = peek(lb.props, "internal", default=False)
        if internal is not UNKNOWN and truthy(internal):
            continue
        for sg_id in as_list(known(peek(lb.props, "securityGroups"))):
            if isinstance(sg_id, str):
                facing_ids[sg_id] = (lb, internal is UNKNOWN)
        for sg in stack.linked(lb, "securityGroups", SG):
            facing_urns[sg.urn] = (lb, internal is UNKNOWN)
    secondary: dict[str, list[Any]] = {}
    for association in stack.of(VPC_CIDR):
        for vpc in stack.linked(association, "vpcId", VPC):
            secondary.setdefault(vpc.urn, []).append(association)

    def vpc_ranges(sg: Any) -> list[Any] | None:
        """The IPv4 ranges of the stack's VPC a group is built in (primary and secondary blocks), or
        None when its VPC is not one of the stack's."""
        vpcs = stack.linked(sg, "vpcId", VPC)
        if not vpcs:
            return None
        out = []
        for holder in [h for vpc in vpcs for h in (vpc, *secondary.get(vpc.urn, []))]:
            cidr = peek(holder.props, "cidrBlock")
            if not isinstance(cidr, str):  # unknown, or allocated from IPAM at apply
                raise unknown(holder.name, "cidrBlock")
            out.append(ipaddress.ip_network(cidr, strict=False))
        return out

    def data_tier_ingress(
        owner: Any, sg: Any, cidrs: list[Any], ids: list[Any], source: tuple[Any, str] | None = None
    ) -> list[tuple[str | None, str]]:
        """A database group admits only addresses of its own VPC and no internet-facing load balancer's
        group (public CIDRs are reported by `ingress`). `source`: the resource and property the group
        ids were written in, whose links name the groups they were built from."""
        out = []
        inside = [c for c in cidrs if c not in (None, "") and not public_cidrs([c])]
        if inside:
            ranges = vpc_ranges(sg)
            beyond = [
                str(c)
                for c in inside
                if ranges is None
                or not any(
                    n.version == r.version and n.subnet_of(r)
                    for n in [ipaddress.ip_network(str(c), strict=False)]
                    for r in ranges
                )
            ]
            if beyond:
                within = (
                    ", ".join(map(str, ranges))
                    if ranges is not None
                    else "none of the stack's VPCs: its `vpcId` is not built from one"
                )
                out.append(
                    (
                        owner.urn,
                        f"Database security group ingress from {', '.join(beyond)} must be removed: it reaches beyond the "
                        f"database's VPC ({within}) to peered networks, VPNs or other VPCs; admit the VPC's private "
                        "subnets or the clients' security groups",
                    )
                )
        holder, prop = source or (owner, "")
        if UNKNOWN in ids and len(ids) > len(holder.property_dependencies.get(prop, [])):
            # more ids than resources they are built from: an unknown one may be built from none (any group)
            raise unknown(prop)
        hits = [facing_ids[i] for i in ids if isinstance(i, str) and i in facing_ids]
        hits += [facing_urns[s.urn] for s in stack.linked(holder, prop, SG) if s.urn in facing_urns]
        for lb, unsure in hits:
            if unsure:
                raise unknown(lb.name, "internal")
        if hits:
            out.append(
                (
                    owner.urn,
                    "Database security group must not admit the security group of internet-facing load balancer "
                    f"{', '.join(sorted({lb.name for lb, _ in hits}))}: the database is reached from the cluster's nodes "
                    "and pods only, and the edge's group is one rule away from the internet",
                )
            )
        return out

    def own_vpc_v6(owner: Any, field: str, cidrs: list[Any]) -> list[Any]:
        """Drop IPv6 blocks of /56 or narrower built from a VPC of the stack (its own Amazon-provided block)."""
        if not stack.linked(owner, field, VPC, SUBNET):
            return cidrs
        return [
            c for c in cidrs if not (isinstance(c, str) and ":" in c and ipaddress.ip_network(c, strict=False).prefixlen >= 56)
        ]

    def ingress(owner: Any, sg_urns: set[str], cidrs: list[Any], rule: Any, protocol_key: str) -> list[tuple[str | None, str]]:
        world = public_cidrs(cidrs)
        if not world:
            return []
        protocol, lo, hi = _ports(rule, protocol_key)
        ports = "all ports" if (lo, hi) == (0, 65535) else (str(lo) if lo == hi else f"{lo}-{hi}")
        protocol = "every protocol on" if protocol in ("-1", "all") else protocol
        if not (lo == hi and lo in allowed_ports):
            return [
                (
                    owner.urn,
                    f"Security group ingress from {', '.join(world)} must be removed: it opens {protocol} {ports} "
                    f"(only {', '.join(map(str, sorted(allowed_ports)))} on a load balancer may face the internet)",
                )
            ]
        if not sg_urns:  # a group named by id: whose it is cannot be read from the plan
            return [
                (
                    owner.urn,
                    Unverifiable(
                        f"cannot resolve: ingress from {', '.join(world)} on port {lo} is allowed only on a load balancer's "
                        "security group, and `securityGroupId` names no security group of the stack; link it to the group"
                    ),
                )
            ]
        if not sg_urns <= fronting_lb:
            return [
                (
                    owner.urn,
                    f"Security group ingress from {', '.join(world)} on port {lo} must belong to a load balancer's security group",
                )
            ]
        return []

    def egress(owner: Any, sg_urns: set[str], cidrs: list[Any]) -> list[tuple[str | None, str]]:
        world = public_cidrs(cidrs)
        if world and sg_urns & data_tier:
            return [
                (
                    owner.urn,
                    f"Security group of a database must not allow egress to {', '.join(world)}: data tiers talk to the VPC only",
                )
            ]
        return []

    def cidrs_of(rule: Any, v4: str, v6: str) -> list[Any]:
        return as_list(known(peek(rule, v4))) + as_list(known(peek(rule, v6)))

    accounts = stack_accounts(stack)

    def foreign_groups(owner: Any, ids: list[Any]) -> list[tuple[str | None, str]]:
        """A group named `<account>/sg-...` (a peered VPC's) of an account the stack does not deploy into."""
        out = []
        for i in ids:
            m = _ACCOUNT_GROUP.match(i) if isinstance(i, str) else None
            if m and m.group(1) not in accounts:
                out.append(
                    (
                        owner.urn,
                        f"Security group rule must not reference {i}, a group of account {m.group(1)}, not the stack's "
                        f"({', '.join(sorted(accounts)) or 'no allowedAccountIds on its providers'}): that account's "
                        "instances reach this group over the peering",
                    )
                )
        return out

    def judge_sg(sg: Any) -> list[tuple[str | None, str]]:
        out = []
        ids: list[Any] = []
        for direction in ("ingress", "egress"):
            for rule in as_list(known(peek(sg.props, direction))):
                out += foreign_groups(sg, as_list(known(peek(rule, "securityGroups"))))
        for rule in as_list(dig(sg.props, "ingress")):
            cidrs = own_vpc_v6(sg, "ingress", cidrs_of(rule, "cidrBlocks", "ipv6CidrBlocks")) + prefix_cidrs(sg, rule, "ingress")
            out += ingress(sg, {sg.urn}, cidrs, rule, "protocol") + unresolved_lists(
                sg, {sg.urn}, rule, "prefixListIds", "ingress", "protocol"
            )
            if sg.urn in data_tier:
                out += data_tier_ingress(sg, sg, cidrs, [])
                ids += as_list(known(peek(rule, "securityGroups")))
        if sg.urn in data_tier:  # the links of inline rules are the whole `ingress`'s: judged once per group
            out += data_tier_ingress(sg, sg, [], ids, (sg, "ingress"))
        for rule in as_list(dig(sg.props, "egress")):
            out += egress(sg, {sg.urn}, cidrs_of(rule, "cidrBlocks", "ipv6CidrBlocks"))
        return out

    def judge_default(sg: Any) -> list[tuple[str | None, str]]:
        if as_list(dig(sg.props, "ingress")) or as_list(dig(sg.props, "egress")):
            return [
                (sg.urn, "The VPC's default security group must have no rules (anything launched without a group lands in it)")
            ]
        return []

    def judge_rule(rule: Any) -> list[tuple[str | None, str]]:
        """A stand-alone rule (SecurityGroupRule, or a VPC ingress / egress rule), read through its type's fields."""
        v4, v6, lists_field, protocol_key, source = _RULE_FIELDS[rule.resource_type]
        owners = {s.urn for s in stack.linked(rule, "securityGroupId", SG)}
        cidrs = own_vpc_v6(rule, v6, cidrs_of(rule.props, v4, v6))
        cidrs += prefix_cidrs(rule, rule.props, lists_field)
        foreign = foreign_groups(rule, [known(peek(rule.props, source))])
        if rule.resource_type == SG_INGRESS or (rule.resource_type == SG_RULE and dig(rule.props, "type") == "ingress"):
            return (
                foreign
                + ingress(rule, owners, cidrs, rule.props, protocol_key)
                + unresolved_lists(rule, owners, rule.props, lists_field, lists_field, protocol_key)
                + [
                    finding
                    for sg in stack.linked(rule, "securityGroupId", SG)
                    if sg.urn in data_tier
                    for finding in data_tier_ingress(rule, sg, cidrs, [known(peek(rule.props, source))], (rule, source))
                ]
            )
        return foreign + egress(rule, owners, cidrs)

    return (
        judge_each(stack.of(SG), judge_sg)
        + judge_each(stack.of(DEFAULT_SG), judge_default)
        + judge_each(stack.of(SG_RULE, SG_INGRESS, SG_EGRESS), judge_rule)
    )


sg_ingress = stack_policy(
    "ec2-security-group-ingress-restricted",
    what="Checks that no security group (inline rules, SecurityGroupRule, VPC ingress rules) admits a public CIDR (0.0.0.0/0, ::/0, or any range outside private address space, so split ranges are caught; the entries of the stack's managed prefix lists a rule names count as its CIDRs; an IPv6 block of /56 or narrower built from the stack's own VPC counts as private) except on the public ports (80, 443) of a load balancer's group; that a database's security groups (those its `vpcSecurityGroupIds`, or an ElastiCache replication group's `securityGroupIds`, are built from) admit no CIDR outside the IPv4 blocks of the stack's VPC they are built in (primary and VpcIpv4CidrBlockAssociation; IPv6 only as the VPC's own block above) and no security group of an internet-facing load balancer (named by the id the load balancer's `securityGroups` carries, or built from it), and have no egress to public CIDRs; that no rule names a security group of another account (`<account>/sg-...`); and that the VPC's default security group has no rules",
    why="Nodes, databases and endpoints are reached through the load balancer or private networking only; an open port on them is a direct path around TLS termination, WAF and quotas. A private range wider than the VPC (10.0.0.0/8) admits peered VPCs, VPNs and Direct Connect; the edge's group in a database rule puts the internet one rule away from tenant data; egress from a data tier is an exfiltration path.",
    reads=[SG, DEFAULT_SG, SG_RULE, SG_INGRESS, SG_EGRESS, VPC_CIDR, PREFIX_LIST, PREFIX_LIST_ENTRY],
    check=check_sg_ingress,
    severity=CRITICAL,
    config={
        "publicPorts": {
            "type": "array",
            "items": {"type": "integer"},
            "default": [80, 443],
            "description": "ports a load balancer's security group may open to the internet",
        }
    },
    remediation="Admit traffic from the load balancer's or the clients' security group (`security_groups=[...]`) or from "
    "VPC CIDRs; publish services through a load balancer listening on 443; manage the default security group with no rules.",
    limits="Rules added outside Pulumi (by controllers, by hand) are not in the stack; a prefix list outside the stack (named by id) is not resolved: it is an advisory wherever 0.0.0.0/0 would not be allowed; a rule whose `securityGroupId` names no group of the stack cannot be tied to a load balancer: ingress from the internet on a public port there is an advisory; an IPv6 block is taken as the VPC's own by its dependency on the VPC, not by comparing it with the VPC's block (known only after `up`). A group named `<account>/sg-...` (a peered VPC's) of an account not in the stack's providers' `allowedAccountIds` is refused on any group. A database group's security-group sources are judged against the stack's internet-facing load balancers only: a group named by an id no resource of the stack carries, or a group of another kind that is itself open, is not resolved; a database whose security groups are named by literal ids is not known as a data tier. A VPC block unknown at preview (computed, or allocated from IPAM), a load balancer's unknown `internal`, or a group id unknown at preview that no resource of the stack links (for inline rules: an unknown id where the rules name more groups than `ingress` has links) gives the database group an advisory.",
    tags=["exposure", "network"],
)

_ADMIN_PORTS = (22, 3389, 5432, 3306, 6379)


def check_nacl(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    if type_ == NACL_RULE:
        rules = [props] if not truthy(dig(props, "egress", default=False)) else []
        keys = ("cidrBlock", "ipv6CidrBlock", "protocol", "ruleAction")
    else:
        rules = as_list(dig(props, "ingress"))
        keys = ("cidrBlock", "ipv6CidrBlock", "protocol", "action")
    out = []
    for rule in rules:
        if str(dig(rule, keys[3], default="")).lower() != "allow":
            continue
        world = public_cidrs([dig(rule, keys[0]), dig(rule, keys[1])])
        if not world:
            continue
        protocol, lo, hi = _ports(rule, keys[2])
        opened = [p for p in _ADMIN_PORTS if lo <= p <= hi and protocol in ("-1", "all", "tcp", "6")]
        if opened:
            out.append(
                f"Network ACL must not allow inbound {', '.join(world)} to ports {', '.join(map(str, opened))} (administration and data ports)"
            )
    return out


nacl_restricted = resource_policy(
    "ec2-network-acl-admin-ports-closed",
    what="Checks that no network ACL (inline `ingress` or NetworkAclRule) allows inbound traffic from a public CIDR to administration or data ports (22, 3389, 5432, 3306, 6379)",
    why="Network ACLs are the subnet-level backstop behind security groups; an allow to SSH, RDP or a database port from the internet removes it.",
    types=[NACL, NACL_RULE],
    check=check_nacl,
    severity=HIGH,
    remediation="Allow inbound from the internet only on 443 (and the ephemeral return range) in public subnets; deny the rest.",
    limits="Ports outside the listed administration and data ports are not judged; security groups are the primary control.",
    tags=["exposure", "network"],
)


INSTANCE = "aws:ec2/instance:Instance"
SPOT_REQUEST = "aws:ec2/spotInstanceRequest:SpotInstanceRequest"
LAUNCH_CONFIGURATION = "aws:ec2/launchConfiguration:LaunchConfiguration"
FUNCTION_URL = "aws:lambda/functionUrl:FunctionUrl"


def check_not_public(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    kind = type_.rsplit(":", 1)[-1]
    if type_ == "aws:redshift/cluster:Cluster":
        if truthy(dig(props, "publiclyAccessible", default=False)):
            return ["Redshift cluster must set `publiclyAccessible: false`"]
        return []
    if type_ in (INSTANCE, SPOT_REQUEST, LAUNCH_CONFIGURATION):
        return (
            [f"{kind} must not get a public IP (`associatePublicIpAddress`)"]
            if truthy(dig(props, "associatePublicIpAddress", default=False))
            else []
        )
    if type_ == FUNCTION_URL:
        auth = str(dig(props, "authorizationType", default=""))
        return (
            []
            if auth == "AWS_IAM"
            else [
                f"Lambda function URL must require `authorizationType: AWS_IAM`, not {auth or 'unset'}: NONE lets anyone on the internet invoke it"
            ]
        )
    if type_ == "aws:ec2/launchTemplate:LaunchTemplate":
        return [
            f"Launch template network interface {i} must not associate a public IP"
            for i, ni in enumerate(as_list(dig(props, "networkInterfaces")))
            if truthy(dig(ni, "associatePublicIpAddress", default=False))
        ]
    if type_ == "aws:eks/nodeGroup:NodeGroup":
        return (
            ["EKS node group must not enable `remoteAccess` (SSH to nodes): use SSM Session Manager"]
            if dig(props, "remoteAccess") is not None
            else []
        )
    if truthy(dig(props, "publiclyAccessible", default=False)):
        return [f"{kind} must set `publiclyAccessible: false`: databases are reached from the cluster nodes only"]
    return []


db_not_public = resource_policy(
    "compute-and-data-not-public",
    what="Checks that no RDS instance, Aurora cluster instance, RDS (Multi-AZ) cluster or Redshift cluster is publicly accessible, no EC2 instance, spot instance request, launch configuration or launch template associates a public IP, no EKS node group enables SSH `remoteAccess`, and no Lambda function URL is open without IAM auth",
    why="A public database endpoint is one leaked password away from every tenant's data; a public IP or SSH on a node is a path into the cluster that bypasses the load balancer and the network isolation of private subnets.",
    types=[
        RDS_INSTANCE,
        RDS_CLUSTER_INSTANCE,
        RDS_CLUSTER,
        "aws:redshift/cluster:Cluster",
        INSTANCE,
        SPOT_REQUEST,
        LAUNCH_CONFIGURATION,
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:eks/nodeGroup:NodeGroup",
        FUNCTION_URL,
    ],
    check=check_not_public,
    severity=CRITICAL,
    remediation="Set `publicly_accessible=False` and place databases in the data subnets' subnet group; launch nodes in private subnets "
    "without public IPs; drop `remote_access` and use SSM Session Manager.",
    limits="An instance launched into a subnet with `mapPublicIpOnLaunch` is judged by ec2-subnet-public-ip-unused.",
    tags=["exposure", "data"],
)


def check_public_subnet_launches(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    auto_public = {s.urn for s in stack.of(SUBNET) if truthy(dig(s.props, "mapPublicIpOnLaunch", default=False))}

    def judge(launch: Any) -> list[tuple[str | None, str]]:
        subnets = {s.urn for s in stack.linked(launch, "subnetId", SUBNET)} | {
            s.urn for s in stack.linked(launch, "vpcZoneIdentifiers", SUBNET)
        }
        explicit = peek(launch.props, "associatePublicIpAddress")
        if subnets & auto_public and (explicit is None or truthy(explicit)):
            return [
                (
                    launch.urn,
                    f"{launch.resource_type.rsplit(':', 1)[-1]} launched into a subnet with `mapPublicIpOnLaunch` must set "
                    "`associatePublicIpAddress: false` (or move to a private subnet): it gets a public IP otherwise",
                )
            ]
        return []

    return judge_each(stack.of(INSTANCE, SPOT_REQUEST), judge)


public_subnet_launches = stack_policy(
    "ec2-subnet-public-ip-unused",
    what="Checks that no EC2 instance or spot instance request is launched into a subnet of the stack that sets `mapPublicIpOnLaunch` without refusing the public IP itself",
    why="A subnet that maps public IPs on launch gives every instance in it an internet address, whatever the instance's own settings omit: nodes and workers stay on private addresses behind the load balancer.",
    reads=[INSTANCE, SPOT_REQUEST, SUBNET],
    check=check_public_subnet_launches,
    severity=HIGH,
    remediation="Launch into the private subnets, or set `associate_public_ip_address=False` on the instance; keep `map_public_ip_on_launch=False` on subnets (components.network does).",
    limits="Subnets are linked by `subnetId`; a subnet outside the stack, named by id, is not known and not judged; nor are autoscaling groups (their launch template's interfaces are judged by compute-and-data-not-public).",
    tags=["exposure", "network"],
)


def check_eks_endpoint(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    vpc = dig(props, "vpcConfig", default={})
    # Provider default: the public endpoint is ON, open to 0.0.0.0/0.
    if not truthy(dig(vpc, "endpointPublicAccess", default=True)):
        return []
    cidrs = [str(c) for c in as_list(plain(dig(vpc, "publicAccessCidrs")))]
    if not cidrs:
        return [
            "EKS cluster public endpoint must be disabled (`endpointPublicAccess: false`) or limited with `publicAccessCidrs` (the default is 0.0.0.0/0)"
        ]
    world = [c for c in cidrs if c in WORLD or ipaddress.ip_network(c, strict=False).prefixlen < 8]
    if world:
        return [f"EKS cluster `publicAccessCidrs` must list operator CIDRs, not {', '.join(world)}"]
    return []


eks_endpoint = resource_policy(
    "eks-cluster-endpoint-restricted",
    what="Checks that every EKS cluster's API endpoint is private, or public only to listed operator CIDRs (none wider than /8, never 0.0.0.0/0)",
    why="The Kubernetes API controls every tenant's workloads; the provider default exposes it to the whole internet.",
    types=["aws:eks/cluster:Cluster"],
    check=check_eks_endpoint,
    severity=HIGH,
    remediation="Set `vpc_config.endpoint_public_access=False` (operators use the private endpoint through the VPN), or set "
    "`public_access_cidrs` to the operators' egress CIDRs (config `meridian:cluster.public_access_cidrs`).",
    limits="That the listed operator CIDRs really belong to operators is not knowable from the plan.",
    tags=["exposure", "kubernetes"],
)


def check_alb_hardened(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    if str(dig(props, "loadBalancerType", default="application")) != "application":
        return []
    out = []
    # Provider defaults: invalid header fields are passed on, and no security group is attached
    # (the VPC's default group, which this stack empties, or whatever someone put in it).
    if not truthy(dig(props, "dropInvalidHeaderFields", default=False)):
        out.append("Application load balancer must set `dropInvalidHeaderFields: true`: malformed headers reach the service")
    mode = str(dig(props, "desyncMitigationMode", default="defensive"))
    if mode not in config.get("allowedDesyncModes", ["defensive", "strictest"]):
        out.append(f"Application load balancer must use desync mitigation `defensive` or `strictest`, not `{mode}`")
    if not truthy(dig(props, "internal", default=False)) and not as_list(plain(dig(props, "securityGroups"))):
        out.append("Internet-facing application load balancer must name its own security groups (`securityGroups`)")
    return out


alb_hardened = resource_policy(
    "lb-alb-hardened",
    what="Checks that every application load balancer drops invalid HTTP header fields, mitigates HTTP desync (defensive or strictest), and, when internet-facing, has its own security groups",
    why="The ALB is the only internet-facing entry to tenant data: headers that are not valid HTTP and desync (request smuggling) attempts must stop there, and an ALB without its own security group falls back to the VPC's default group instead of admitting 443 only.",
    types=["aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer"],
    check=check_alb_hardened,
    severity=HIGH,
    config={
        "allowedDesyncModes": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["defensive", "strictest"],
            "description": "desync mitigation modes an ALB may use",
        }
    },
    remediation='Set `drop_invalid_header_fields=True`, `desync_mitigation_mode="defensive"` (or strictest) and '
    "`security_groups=[<a group admitting 443 only>]` (components.ingress does).",
    limits="WAF rules, rate limits and the TLS policy (lb-listener-tls) are not part of this rule.",
    tags=["exposure", "network"],
)

RESOURCE_POLICY_FIELDS = {
    "aws:kms/key:Key": "policy",
    "aws:kms/keyPolicy:KeyPolicy": "policy",
    "aws:kms/replicaKey:ReplicaKey": "policy",
    "aws:secretsmanager/secret:Secret": "policy",
    "aws:secretsmanager/secretPolicy:SecretPolicy": "policy",
    "aws:sns/topic:Topic": "policy",
    "aws:sns/topicPolicy:TopicPolicy": "policy",
    "aws:sqs/queue:Queue": "policy",
    "aws:sqs/queuePolicy:QueuePolicy": "policy",
    "aws:ecr/repositoryPolicy:RepositoryPolicy": "policy",
    S3_POLICY: "policy",
    **{t: "policy" for t in S3_BUCKETS},
}
KMS_GRANT = "aws:kms/grant:Grant"
LAMBDA_PERMISSION = "aws:lambda/permission:Permission"
_SERVICE_PRINCIPAL = re.compile(r"^[a-z0-9.-]+\.amazon(aws)?\.com(\.cn)?$")


def lambda_permission_statement(props: Any) -> dict[str, Any]:
    """The statement Lambda's AddPermission writes into the function's resource policy for one
    `aws:lambda/permission` (https://docs.aws.amazon.com/lambda/latest/api/API_AddPermission.html):
    the principal as given (a service, an account, an ARN or `*`), `sourceArn` as ArnLike
    aws:SourceArn, `sourceAccount` as StringEquals aws:SourceAccount, `principalOrgId` as StringEquals
    aws:PrincipalOrgID. Unknown values stay unknown (the judgment then reports them)."""
    principal = known(peek(props, "principal"))
    if isinstance(principal, str) and principal != "*":
        principal = {"Service" if _SERVICE_PRINCIPAL.match(principal) else "AWS": principal}
    conditions: dict[str, dict[str, Any]] = {}
    for prop, op, key in (
        ("sourceArn", "ArnLike", "aws:SourceArn"),
        ("sourceAccount", "StringEquals", "aws:SourceAccount"),
        ("principalOrgId", "StringEquals", "aws:PrincipalOrgID"),
    ):
        value = known(peek(props, prop))
        if value is not None:
            conditions.setdefault(op, {})[key] = value
    statement = {"Effect": "Allow", "Principal": principal, "Action": known(peek(props, "action")), "Resource": "*"}
    return {"Statement": [{**statement, "Condition": conditions} if conditions else statement]}


# The Elastic Load Balancing account that delivers a region's load balancer access logs (regions
# opened before August 2022; later ones use the logdelivery.elasticloadbalancing.amazonaws.com service
# principal): https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html
ELB_LOG_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-southeast-3": "589379963580",
    "ap-south-1": "718504428378",
    "ap-northeast-3": "383597477331",
    "ap-northeast-2": "600734575887",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-south-1": "635631232127",
    "eu-west-3": "009996457667",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
}
_LOG_WRITE = ("s3:putobject",)


def _log_writer(st: Any, region: str | None) -> set[str]:
    """The region's ELB log-delivery account, where `st` lets it write objects and nothing else."""
    account = ELB_LOG_ACCOUNTS.get(region or "")
    if account is None or st.not_actions or not st.actions or any(a not in _LOG_WRITE for a in st.actions):
        return set()
    return {account}


def check_resource_policy_principals(
    type_: str, props: Any, config: dict, provider: Any, own_bucket: Callable[[str], bool]
) -> list[str]:
    kind = type_.rsplit(":", 1)[-1]
    accounts = {str(a) for a in config.get("accountIds", [])}
    if not accounts:
        return [f"{kind} cannot be judged: the rule must be given the stack's `accountIds` (policies/config/<stack>.json)"]
    orgs = {str(o) for o in config.get("organizationIds", [])}
    if type_ == KMS_GRANT:
        return [
            f"KMS grant must not name a principal outside the stack's accounts in `{field}` ({who})"
            for field in ("granteePrincipal", "retiringPrincipal")
            if (who := dig(props, field)) is not None and account_of(str(who)) not in accounts
        ]
    document = lambda_permission_statement(props) if type_ == LAMBDA_PERMISSION else dig(props, RESOURCE_POLICY_FIELDS[type_])
    if document is None:
        return []
    region = region_of(props, provider) if type_ in (S3_POLICY, *S3_BUCKETS) else None
    return [
        f"{kind} policy must not allow principals outside the stack's accounts or organisations ({st.label} admits {', '.join(who)}); "
        "pin `*` with a StringEquals on aws:PrincipalAccount / aws:PrincipalOrgID / aws:SourceAccount"
        for st in parse(document)
        if (who := outsiders(st, accounts | _log_writer(st, region), orgs, own_bucket))
    ]


_POLICY_HOLDERS = [*RESOURCE_POLICY_FIELDS, KMS_GRANT, LAMBDA_PERMISSION]


def check_resource_policies(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    """Each resource policy on its own; the stack only tells which buckets are its own (by planned name)."""
    stack = Stack(resources)

    def own_bucket(name: str) -> bool:
        if named_bucket(stack, name) is not None:
            return True
        if any(known(peek(b.props, "bucket")) is UNKNOWN for b in stack.of(*S3_BUCKETS)):
            raise unknown("Condition", "aws:SourceArn")  # a bucket whose name is unknown could be the one named
        return False

    def judge(r: Any) -> list[tuple[str | None, str]]:
        provider = r.provider.props if r.provider is not None else None
        return [(r.urn, m) for m in check_resource_policy_principals(r.resource_type, r.props, config, provider, own_bucket)]

    return judge_each(stack.of(*_POLICY_HOLDERS), judge)


resource_policy_principals = stack_policy(
    "resource-policy-principals-in-account",
    what="Checks that no KMS key policy (of a key or a multi-Region replica key), S3 bucket policy (BucketPolicy or inline), secret, SNS topic, SQS queue or ECR repository policy, no KMS grant, and no Lambda "
    "permission (the statement it adds to the function's policy) admits a principal outside the stack's accounts (a bucket policy may let the bucket region's Elastic Load Balancing log-delivery account put objects, and nothing else): no foreign account or role, no `*` or `{AWS: *}` unless a positive condition pins the caller to the stack's accounts or organisations, no Allow with `NotPrincipal`, and no AWS service principal unless a positive condition pins the request's source to the stack's accounts or organisations (`aws:SourceAccount`, `aws:SourceOwner`, `aws:SourceOrgID`, `aws:SourceArn` naming resources of those accounts or a bucket the stack defines, by its planned name: given, prefix or auto-name, or for CloudWatch Logs the encryption context `aws:logs:arn` naming log groups of those accounts)",
    why="These resources hold or unlock platform data (keys decrypt every copy, secrets hold credentials, topics and queues carry alerts and events, a function runs with its role's rights for whoever may invoke it); a foreign account in their policy reads them from outside every control the stack has, and a service principal granted without its source pinned acts for any account's resource that names this one (a confused deputy).",
    reads=_POLICY_HOLDERS,
    check=check_resource_policies,
    severity=CRITICAL,
    config={
        "accountIds": string_list([], "the stack's own AWS account ids (generated from `meridian:aws_account_id`)"),
        "organizationIds": string_list(
            [], "AWS Organizations ids whose members may be admitted by an aws:PrincipalOrgID condition"
        ),
    },
    remediation="Name principals of the stack's own account (`arn:aws:iam::<account>:role/...`); where `*` is needed, "
    'add `"Condition": {"StringEquals": {"aws:PrincipalAccount": "<account>"}}` (or aws:PrincipalOrgID); give a service principal '
    '`"Condition": {"StringEquals": {"aws:SourceAccount": "<account>"}}` and, where the service sends it, an `aws:SourceArn` of the '
    "resource that uses it (components.policydocs.service_key_policy does); never use NotPrincipal with Allow. A Lambda "
    "permission names a service principal with `source_arn` of the stack's resource (or `source_account`), or a principal "
    "of the own account.",
    limits="Statement by statement: it does not decide what an identity policy elsewhere grants, nor whether a named role of the own account belongs to a tenant (the tenancy rules judge that). A service principal pinned to an own account may still act for any resource of that account (`aws:SourceArn` narrows it; not required). Pins through other keys (`kms:ViaService`, an encryption context) are not credited, except CloudWatch Logs' `kms:EncryptionContext:aws:logs:arn` naming log groups of the stack's accounts, which the service sets itself to the log group it acts for (AWS's documented key policy for encrypted log groups).",
    tags=["exposure", "iam"],
)


def check_rds_data_api(_type: str, props: Any, config: dict, _provider: Any) -> list[str]:
    if config.get("allowDataApi", False) or not truthy(dig(props, "enableHttpEndpoint", default=False)):
        return []
    return [
        "Aurora cluster must not enable the Data API (`enableHttpEndpoint`): it opens an HTTPS path to the "
        "database (rds-data) that any principal with the secret and rds-data permissions uses from anywhere, outside the "
        "VPC, its security groups and the database's own network controls"
    ]


rds_data_api = resource_policy(
    "rds-data-api-disabled",
    what="Checks that no Aurora cluster enables the RDS Data API (`enableHttpEndpoint`, off by default) unless the stack's "
    "policy config allows it (`allowDataApi`)",
    why="The Data API answers SQL over an AWS HTTPS endpoint with IAM and Secrets Manager authentication: the database's "
    "subnets, security groups and private endpoint no longer stand between the internet and the data.",
    types=[RDS_CLUSTER],  # pulumi-aws 7's rds Instance has no Data API argument
    check=check_rds_data_api,
    severity=HIGH,
    config={
        "allowDataApi": {
            "type": "boolean",
            "default": False,
            "description": "the stack serves SQL through the Data API on purpose (its callers' IAM is then the only gate)",
        }
    },
    remediation="Remove `enable_http_endpoint` (the service reaches the database through the VPC); if the Data API is "
    "required, set `allowDataApi` in policies/config/<stack>.json and limit `rds-data:*` in IAM to the callers that need it.",
    limits="With `allowDataApi`, who may call rds-data:ExecuteStatement is judged only as far as the IAM rules judge any "
    "action; a Data API enabled outside Pulumi (console, CLI) is not in the plan.",
    tags=["exposure", "data"],
)

POLICIES = [
    rds_data_api,
    s3_public_access,
    sg_ingress,
    nacl_restricted,
    db_not_public,
    public_subnet_launches,
    eks_endpoint,
    alb_hardened,
    resource_policy_principals,
]
