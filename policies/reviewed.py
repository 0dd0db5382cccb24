"""Types reviewed for one use: the review holds only while each resource of the type is used that
way, so the value that makes it that use is checked, resource by resource (inventory.py's
`REVIEWED_FOR`). A reason that claims something about a value ("the AWS rotation function", "on the
stack's own resources", "to a gateway of the stack") is a check here, never only a sentence.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ruleutil import (
    AWS_PROVIDER,
    ROLE,
    UNKNOWN,
    Stack,
    as_list,
    dig,
    peek,
    provider_accounts,
    resource_region,
    stack_tag_maps,
    unknown,
)

SAR_STACK = "aws:serverlessrepository/cloudFormationStack:CloudFormationStack"
FIS_TEMPLATE = "aws:fis/experimentTemplate:ExperimentTemplate"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
EKS_CLUSTER = "aws:eks/cluster:Cluster"

# The Serverless Application Repository applications reviewed: AWS's own Secrets Manager rotation
# function (published by AWS's account 297356227824), the one components.dbcredential deploys. Any
# other application is CloudFormation of someone else's, deployed with CAPABILITY_IAM.
ROTATION_APPLICATIONS = frozenset(
    {"arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSPostgreSQLRotationSingleUser"}
)


def serverless_application(r: Any, _stack: Stack) -> list[str]:
    app = dig(r.props, "applicationId")
    if app in ROTATION_APPLICATIONS:
        return []
    return [
        f"Serverless application stack must deploy a reviewed application (AWS's Secrets Manager rotation function: "
        f"{', '.join(sorted(ROTATION_APPLICATIONS))}), not applicationId {app!r}: another application is someone else's "
        "CloudFormation, deployed with the IAM capabilities it asks for, that no rule of the pack reads"
    ]


# FIS actions that stop, reboot, fail over or cut the network (the FIS role's bound, access.bounds);
# not those that run code (aws:ssm:*, aws:lambda:*, pod and task faults, Kubernetes custom resources).
FIS_ACTIONS = frozenset(
    {
        "aws:ec2:stop-instances",
        "aws:ec2:reboot-instances",
        "aws:ec2:terminate-instances",
        "aws:ec2:send-spot-instance-interruptions",
        "aws:network:disrupt-connectivity",
        "aws:rds:failover-db-cluster",
        "aws:rds:reboot-db-instances",
        "aws:fis:wait",
    }
)


@functools.lru_cache(maxsize=1)  # once per AnalyzeStack call, whatever the number of templates
def _stack_tags(stack: Stack) -> frozenset[tuple[str, str]]:
    """Tags that name this stack: (`k`, the Pulumi stack's name) as its AWS providers' default tags or
    its resources' own tags carry it, and (`eks:cluster-name`, a cluster of the plan)."""
    name = stack.resources[0].urn.split(":")[2] if stack.resources else ""
    out = {(str(k), v) for tags in stack_tag_maps(stack) for k, v in tags.items() if v == name and isinstance(v, str)}
    for c in stack.of(EKS_CLUSTER):
        cluster = peek(c.props, "name")
        if isinstance(cluster, str) and cluster is not UNKNOWN:
            out.add(("eks:cluster-name", cluster))
    return frozenset(out)


def fis_template(r: Any, stack: Stack) -> list[str]:
    out = []
    for i, action in enumerate(as_list(dig(r.props, "actions"))):
        action_id = dig(action, "actionId")
        if action_id not in FIS_ACTIONS:
            out.append(
                f"FIS experiment template must only stop, reboot, fail over or cut the network of the stack's own resources "
                f"({', '.join(sorted(FIS_ACTIONS))}): actions.{i} is {action_id!r}"
            )
    own = _stack_tags(stack)
    roles = stack.linked(r, "roleArn", ROLE)
    for i, target in enumerate(as_list(dig(r.props, "targets"))):
        tags = {(dig(t, "key"), dig(t, "value")) for t in as_list(dig(target, "resourceTags"))}
        arns = [str(a) for a in as_list(dig(target, "resourceArns"))]
        if arns and not tags:
            role = dig(r.props, "roleArn")
            account = str(role).split(":")[4] if str(role).startswith("arn:") and str(role).count(":") >= 5 else None
            foreign = [a for a in arns if not a.startswith("arn:") or a.count(":") < 5 or a.split(":")[4] != account]
            if foreign:
                out.append(
                    f"FIS experiment template must target the stack's own resources: targets.{i} names {foreign[0]!r}, "
                    f"not a resource of the account its role is in ({account or 'unknown'})"
                )
            continue
        if not tags & own:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(own)) or "no tag does"
            out.append(
                f"FIS experiment template must target the stack's own resources: targets.{i} selects by tags "
                f"{sorted(tags) or 'none'}, none of which names this stack ({shown})"
            )
    if not roles and (role := dig(r.props, "roleArn")) is not None:
        out.append(
            f"FIS experiment template must run as a role of the stack (whose policy the pack judges), not {role!r}, which "
            "the plan does not define"
        )
    return out


# Where a route may send a subnet's traffic: the stack's own gateways (its link tells which); a
# peering connection, transit gateway, network interface, carrier, local or core network gateway
# joins another network, whose reach no rule judges.
_ROUTE_TARGETS = {
    "gatewayId": ("aws:ec2/internetGateway:InternetGateway", "aws:ec2/vpnGateway:VpnGateway"),
    "natGatewayId": ("aws:ec2/natGateway:NatGateway",),
    "egressOnlyGatewayId": ("aws:ec2/egressOnlyInternetGateway:EgressOnlyInternetGateway",),
    "vpcEndpointId": ("aws:ec2/vpcEndpoint:VpcEndpoint",),
}
_OTHER_NETWORKS = (
    "vpcPeeringConnectionId",
    "transitGatewayId",
    "networkInterfaceId",
    "carrierGatewayId",
    "localGatewayId",
    "coreNetworkArn",
)


def _route_problems(route: Any, where: str, linked: list[Any]) -> list[str]:
    out = []
    for field in _OTHER_NETWORKS:
        value = peek(route, field)  # present is enough, even if known only after apply
        if value:
            out.append(
                f"Route must send traffic only to the stack's own gateways (internet, NAT, egress-only, VPC endpoint): "
                f"{where}{field} is {value!r}, another network whose reach no rule judges"
            )
    for field, types in _ROUTE_TARGETS.items():
        if any(d.resource_type in types for d in linked):
            continue
        value = dig(route, field)
        if value and value != "local":
            out.append(
                f"Route must send traffic only to the stack's own gateways: {where}{field} is {value!r}, not built from a "
                f"gateway of the stack ({', '.join(t.rsplit(':', 1)[-1] for t in types)})"
            )
    return out


def route(r: Any, stack: Stack) -> list[str]:
    linked = [d for field in _ROUTE_TARGETS for d in stack.linked(r, field)]
    return _route_problems(r.props, "", linked)


def route_table(r: Any, stack: Stack) -> list[str]:
    linked = stack.linked(r, "routes")
    return [p for i, rt in enumerate(as_list(dig(r.props, "routes"))) for p in _route_problems(rt, f"routes.{i}.", linked)]


def _built_from(r: Any, stack: Stack, prop: str, types: tuple[str, ...], what: str, claim: str) -> list[str]:
    """`prop` must be built from a resource of `types` of the stack (its link says so), when set."""
    if stack.linked(r, prop.split(".", 1)[0], *types):
        return []  # built from one: its value (often known only after apply) is that resource's
    value = dig(r.props, *prop.split("."))
    if value is None:
        return []
    return [
        f"{what} must {claim}: `{prop}` is {value!r}, not built from a {' or '.join(t.rsplit(':', 1)[-1] for t in types)} of the stack"
    ]


def eip(r: Any, _stack: Stack) -> list[str]:
    fields = [f for f in ("instance", "networkInterface", "associateWithPrivateIp") if dig(r.props, f) is not None]
    return [
        f"Elastic IP must only be a NAT gateway's address (reviewed as such): it sets `{f}`, a public address on an instance "
        "or interface, whose exposure no rule reviewed"
        for f in fields
    ]


def oidc_provider(r: Any, stack: Stack) -> list[str]:
    return _built_from(r, stack, "url", (EKS_CLUSTER,), "OIDC provider", "trust the issuer of a cluster of the stack")


# The longest interval between rotations: AWS Security Hub's control SecretsManager.4 ("Secrets Manager secrets should
# be rotated within a specified number of days", parameter maxDaysSinceRotation, default 90:
# https://docs.aws.amazon.com/securityhub/latest/userguide/secretsmanager-controls.html#secretsmanager-4).
MAX_ROTATION_DAYS = 90
_RATE = re.compile(r"^rate\((\d+) (hour|hours|day|days)\)$")


def secret_rotation(r: Any, stack: Stack) -> list[str]:
    return _built_from(
        r,
        stack,
        "rotationLambdaArn",
        (SAR_STACK, "aws:lambda/function:Function"),
        "Secret rotation",
        "rotate with a function of the stack",
    ) + _rotation_interval(r)


def _rotation_interval(r: Any) -> list[str]:
    """A schedule that rotates at least every MAX_ROTATION_DAYS: a count of days, a `rate()` or a `cron()` that runs every month."""
    rules = dig(r.props, "rotationRules")
    if rules is UNKNOWN:
        raise unknown("rotationRules")
    days, expression = dig(rules, "automaticallyAfterDays"), dig(rules, "scheduleExpression")
    if days is UNKNOWN or expression is UNKNOWN:
        raise unknown("rotationRules", "automaticallyAfterDays" if days is UNKNOWN else "scheduleExpression")
    bound = f"at least every {MAX_ROTATION_DAYS} days (AWS Security Hub SecretsManager.4)"
    if expression is not None:
        text = str(expression).strip()
        rate = _RATE.match(text)
        if rate:
            n = int(rate.group(1)) / (24 if rate.group(2).startswith("hour") else 1)
            return [] if n <= MAX_ROTATION_DAYS else [f"Secret rotation must run {bound}, not {text}"]
        fields = text.removeprefix("cron(").removesuffix(")").split()
        if text.startswith("cron(") and len(fields) == 6 and fields[3] == "*" and fields[5] in ("*", "?"):
            return []
        return [f"Secret rotation must run {bound}: {text!r} is not a `rate()` within it nor a `cron()` running every month"]
    if days is None:
        return [f"Secret rotation must set `rotationRules` running {bound}"]
    if not isinstance(days, (int, float)) or not 1 <= days <= MAX_ROTATION_DAYS:
        return [f"Secret rotation must run {bound}, not every {days!r} days (`rotationRules.automaticallyAfterDays`)"]
    return []


TOPIC = "aws:sns/topic:Topic"
_ALARM_ACTIONS = ("alarmActions", "okActions", "insufficientDataActions")


def metric_alarm(r: Any, stack: Stack) -> list[str]:
    """An alarm's actions publish to the stack's topics (whose subscriptions are judged) or do nothing:
    an Auto Scaling, EC2 (stop, terminate, reboot, recover), Systems Manager or foreign topic action
    acts or sends data where no rule looks."""
    out = []
    for field in _ALARM_ACTIONS:
        actions = as_list(peek(r.props, field))
        topics = stack.linked(r, field, TOPIC)
        if len(actions) <= len(topics):
            continue  # each built from a topic of the stack (a link: its ARN is often known only after apply)
        if UNKNOWN in actions:
            raise unknown(field)
        # more actions than links: each must be written out as the exact ARN of a topic of the stack (ARNs name one resource)
        rest = [a for a in actions if not _stack_topic(stack, a)]
        if not rest:
            continue
        out.append(
            f"Metric alarm must act only by publishing to topics of the stack: `{field}` holds {actions!r}, "
            f"{', '.join(map(str, rest))} neither built from an SNS topic of the stack nor its exact ARN"
        )
    return out


_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_.-]+)$")


def _stack_topic(stack: Stack, arn: Any) -> bool:
    """`arn` is the exact ARN of a topic of the stack: its region, an account its provider is pinned to
    (`allowedAccountIds`: without one, the account is not known and nothing matches), and its given name or
    Pulumi auto-name (`<logical name>-<7 hex>`)."""
    m = _TOPIC_ARN.match(arn) if isinstance(arn, str) else None
    if not m:
        return False
    region, account, name = m.groups()
    for topic in stack.of(TOPIC):
        given = peek(topic.props, "name")
        named = name == given if isinstance(given, str) else re.fullmatch(re.escape(topic.name) + "-[0-9a-f]{7}", name)
        provider = topic.provider.props if topic.provider is not None else None
        if named and resource_region(topic) == region and account in provider_accounts(provider):
            return True
    return False


EVENT_BUS = "aws:cloudwatch/eventBus:EventBus"


def event_rule(r: Any, stack: Stack) -> list[str]:
    """Reviewed as a schedule, or as a pattern over the account's default bus (or a bus of the stack):
    either way it forwards only to its targets, whose destinations aws-data-path-destination-in-zone
    judges. A pattern on a bus the stack does not define reads events that bus receives from wherever
    its own policy admits (other accounts, partners)."""
    pattern, schedule = dig(r.props, "eventPattern"), dig(r.props, "scheduleExpression")
    if pattern is None and schedule is None:
        return ["EventBridge rule must be a schedule (`scheduleExpression`) or match events (`eventPattern`): it sets neither"]
    if pattern is None:
        return []
    bus = peek(r.props, "eventBusName")
    if bus is UNKNOWN and not stack.linked(r, "eventBusName", EVENT_BUS):
        raise unknown("eventBusName")
    if bus in (None, "default") or stack.linked(r, "eventBusName", EVENT_BUS):
        return []
    if any(peek(b.props, "name") == bus for b in stack.of(EVENT_BUS)):
        return []
    return [
        f"EventBridge rule matching events (`eventPattern`) must read the account's default bus or a bus of the stack, "
        f"not {bus!r}: that bus's events come from wherever its policy admits, which no rule of the stack judges"
    ]


TARGET_GROUPS = ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")
_TARGET_GROUP_ARN = re.compile(r"^arn:aws[\w-]*:elasticloadbalancing:([\w-]+):(\d{12}):targetgroup/([^/]+)/[0-9a-f]+$")


def _stack_target_group(stack: Stack, arn: str) -> bool:
    """`arn` names a target group of the stack: its given name or Pulumi auto-name, in its region and account."""
    m = _TARGET_GROUP_ARN.match(arn)
    if not m:
        return False
    region, account, name = m.groups()
    accounts = {a for p in stack.of(AWS_PROVIDER) for a in provider_accounts(p.props)}
    for tg in stack.of(*TARGET_GROUPS):
        given = peek(tg.props, "name")
        named = name == given if isinstance(given, str) else re.fullmatch(re.escape(tg.name) + "-[0-9a-f]{7}", name)
        if named and resource_region(tg) == region and account in accounts:
            return True
    return False


def listener_rule(r: Any, stack: Stack) -> list[str]:
    """Reviewed as routing within the stack: forward only to the stack's own target groups (whose
    targets are the stack's pods), a fixed response, or a redirect on the request's own host.
    Authentication actions send clients to an identity provider, which no rule judges."""
    out = []
    linked = stack.linked(r, "actions", *TARGET_GROUPS)
    for action in as_list(dig(r.props, "actions")):
        kind = dig(action, "type")
        if kind == "forward":
            arns = [peek(action, "targetGroupArn")] + [peek(t, "arn") for t in as_list(peek(action, "forward", "targetGroups"))]
            for arn in arns:
                if arn is UNKNOWN and not linked:
                    raise unknown("actions", "targetGroupArn")
                if isinstance(arn, str) and not _stack_target_group(stack, arn):
                    out.append(
                        f"Listener rule must forward only to target groups of the stack, not {arn}: its targets "
                        "(instances, addresses, functions) are judged by no rule"
                    )
        elif kind == "redirect":
            host = dig(action, "redirect", "host")
            if host not in (None, "#{host}"):
                out.append(
                    f"Listener rule must redirect on the request's own host (`#{{host}}`), not to {host!r}: clients "
                    "would send their requests (API keys in headers and query) there"
                )
        elif kind != "fixed-response":
            out.append(
                f"Listener rule action {kind!r} must be forward, redirect or fixed-response: an authentication action "
                "sends clients to an identity provider no rule judges"
            )
    return out


def certificate(r: Any, _stack: Stack) -> list[str]:
    """Reviewed as a public, DNS-validated certificate whose private key AWS generates and never
    releases: an imported one (`privateKey`) puts a key into the plan and state, a private CA's
    (`certificateAuthorityArn`) is exportable."""
    out = [
        f"ACM certificate must be a public certificate AWS issues (DNS-validated, key kept by ACM): it sets `{f}`"
        for f in ("privateKey", "certificateBody", "certificateChain", "certificateAuthorityArn")
        if dig(r.props, f) is not None
    ]
    method = dig(r.props, "validationMethod")
    if not out and method != "DNS":
        out.append(f"ACM certificate must be DNS-validated (reviewed as such): `validationMethod` is {method!r}")
    return out


def ownership_controls(r: Any, _stack: Stack) -> list[str]:
    """Only BucketOwnerEnforced narrows access (ACLs off: the bucket policy alone decides). BucketOwnerPreferred
    and ObjectWriter turn ACLs back on, so an object or bucket ACL can grant another account or everyone,
    and under ObjectWriter another account's uploads stay that account's."""
    owner = dig(r.props, "rule", "objectOwnership")
    if owner == "BucketOwnerEnforced":
        return []
    return [
        f"Bucket ownership controls must be BucketOwnerEnforced (ACLs disabled), not {owner!r}: ACLs would grant "
        "access the bucket policy does not show"
    ]


VPC = "aws:ec2/vpc:Vpc"


def hosted_zone(r: Any, stack: Stack) -> list[str]:
    """A public zone holds names only; a private zone answers only the VPCs it is associated with,
    which must be the stack's: another VPC would resolve, and so find, the stack's private endpoints."""
    vpcs = as_list(peek(r.props, "vpcs"))
    linked = stack.linked(r, "vpcs", VPC)
    if len(vpcs) <= len(linked):
        return []  # each built from a VPC of the stack
    if UNKNOWN in vpcs or any(peek(v, "vpcId") is UNKNOWN for v in vpcs):
        raise unknown("vpcs", "vpcId")
    return [
        f"Route 53 private zone must be associated only with VPCs of the stack: `vpcs` names "
        f"{[dig(v, 'vpcId') for v in vpcs]!r}, {len(vpcs) - len(linked)} of them not built from a VPC of the stack"
    ]


CHECKS = {
    "aws:cloudwatch/metricAlarm:MetricAlarm": metric_alarm,
    "aws:cloudwatch/eventRule:EventRule": event_rule,
    "aws:lb/listenerRule:ListenerRule": listener_rule,
    "aws:acm/certificate:Certificate": certificate,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": ownership_controls,
    "aws:route53/zone:Zone": hosted_zone,
    SAR_STACK: serverless_application,
    FIS_TEMPLATE: fis_template,
    ROUTE: route,
    ROUTE_TABLE: route_table,
    "aws:ec2/eip:Eip": eip,
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": oidc_provider,
    "aws:secretsmanager/secretRotation:SecretRotation": secret_rotation,
}
