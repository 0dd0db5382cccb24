"""Nothing unreviewed passes: every resource type in a plan, of every provider, is judged by a rule
or listed here as reviewed with a one-line reason; any other type is a violation.

Which types a rule judges is declared beside the rule (`types` of a resource rule, `reads` of a
stack rule) and derived here from the pack's own policies: no second hand-kept list of what is
judged. A rule that matches by prefix (`aws:*`: region, tags) judges no type in particular, so it
covers nothing here. Renamed types count as their canonical type (normalise.py), which the rules
read in its shape. `REVIEWED` is the security team's list of types no rule needs to judge, each
with why; a type a rule starts to judge leaves it (tests/test_policy_cover.py checks both).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import reviewed as reviewed_for
from normalise import canonical
from ruleutil import HIGH, Stack, judge_each, stack_policy

# type -> why no rule needs to judge it (reviewed against pulumi-aws 7 / pulumi-kubernetes 4)
REVIEWED: dict[str, str] = {
    "pulumi:pulumi:Stack": "the stack itself: holds outputs only, creates nothing",
    "pulumi:providers:random": "generates values locally; no cloud API, no data",
    "random:index/randomId:RandomId": "a random value in state; no cloud resource",
    "random:index/randomPassword:RandomPassword": "a secret value in state (encrypted by Pulumi); no cloud resource",
    "aws:acm/certificate:Certificate": "a public TLS certificate ACM issues and keeps the key of (DNS-validated, not imported, no private CA; checked: "
    "reviewed.certificate); holds no data, its region is judged by aws-resource-region-allowed",
    "aws:acm/certificateValidation:CertificateValidation": "waits for a certificate's DNS validation; creates nothing in AWS",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "an alarm on a metric; its actions publish to topics of the stack, whose "
    "subscriptions are judged, or there are none (checked: reviewed.metric_alarm)",
    "aws:cloudwatch/dashboard:Dashboard": "a page of metric and log widgets in the console; holds no data, sends nothing, grants no access",
    "aws:s3/bucketIntelligentTieringConfiguration:BucketIntelligentTieringConfiguration": "moves a bucket's objects between "
    "its own storage tiers; nothing leaves the bucket or is deleted (archive tiers only delay reads until a restore)",
    "aws:cloudwatch/eventRule:EventRule": "a schedule, or an `eventPattern` over the account's default bus or a bus of the "
    "stack (checked: reviewed.event_rule); it forwards only to its targets, whose destinations are judged by "
    "aws-data-path-destination-in-zone",
    "aws:lb/listenerRule:ListenerRule": "routes a listener's requests: forward only to target groups of the stack, a fixed "
    "response, or a redirect on the request's own host (checked: reviewed.listener_rule)",
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": "counts matching events of a log group into a metric of the same "
    "account and region; the log text stays in the group, nothing is granted",
    "aws:wafv2/webAclAssociation:WebAclAssociation": "puts a web ACL in front of a resource: a WAF only blocks, counts or "
    "challenges requests; it sends no data (its logging configuration is another type) and grants nothing",
    "kubernetes:autoscaling/v2:HorizontalPodAutoscaler": "changes a workload's replica count within its min and max; the "
    "pods are the workload's own (judged), no data, no access",
    "aws:kms/alias:Alias": "a name pointing at a key; it grants nothing and holds no data (the key's policy and grants decide access)",
    "aws:costexplorer/costAllocationTag:CostAllocationTag": "activates a tag key for cost reports; account metadata, no data",
    "aws:ec2/eip:Eip": "an address for a NAT gateway, on no instance or interface (checked: reviewed.eip)",
    "aws:ec2/internetGateway:InternetGateway": "the VPC's route to the internet; exposure is judged on security groups, ACLs and load balancers",
    "aws:ec2/natGateway:NatGateway": "outbound-only address translation; accepts no inbound connection",
    "aws:ec2/route:Route": "a route to a gateway of the stack (internet, NAT, egress-only, VPC endpoint; checked: "
    "reviewed.route); reachability is judged on security groups and ACLs",
    "aws:ec2/routeTable:RouteTable": "routes of a subnet, each to a gateway of the stack (checked: reviewed.route_table); "
    "reachability is judged on security groups and ACLs",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "binds a route table to a subnet; no data, no access",
    "aws:fis/experimentTemplate:ExperimentTemplate": "a fault-injection experiment that stops, reboots, fails over or cuts "
    "the network of the stack's own resources, as a role of the stack (checked: reviewed.fis_template); the role's policy "
    "is judged by tenant-data-access",
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "trusts the cluster's OIDC issuer (checked: reviewed.oidc_provider); "
    "what it admits is decided by role trust policies, which are judged",
    "aws:rds/subnetGroup:SubnetGroup": "the subnets a database may use; public access is judged on the database itself",
    "aws:route53/zone:Zone": "a hosted zone: names, no data; a private zone answers only VPCs of the stack "
    "(checked: reviewed.hosted_zone); its failover records are judged (route53-failover-record-ready)",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": "object ownership, BucketOwnerEnforced only (ACLs disabled; checked: "
    "reviewed.ownership_controls): it can only narrow access",
    "aws:secretsmanager/secretRotation:SecretRotation": "rotates a secret with a function of the stack, at least every 90 days (checked: "
    "reviewed.secret_rotation); the secret's encryption and residency are judged",
    "aws:secretsmanager/secretVersion:SecretVersion": "a secret's value; stored under the secret's key, in the secret's region",
    "aws:serverlessrepository/cloudFormationStack:CloudFormationStack": "the AWS-published rotation function for the "
    "database secret, deployed in the stack's own region (checked: reviewed.serverless_application, by applicationId)",
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": "expires images of a repository by its rules: deletes images, copies none "
    "out of the repository and grants nothing (a rule expiring images still in use breaks the next pull: an operations "
    "matter, not access or residency)",
    "aws:backup/vaultNotifications:VaultNotifications": "sends a vault's job events (job ids and resource ARNs, never backup "
    "data) to an SNS topic; the topic's ARN is placed by aws-data-path-destination-in-zone, as every ARN of every input is",
    # the runtime backstops of issue 23 (item 6): each can only refuse or report, never grant or copy
    "kubernetes:core/v1:LimitRange": "default container limits in a namespace; can only constrain pods",
    "kubernetes:policy/v1:PodDisruptionBudget": "limits voluntary evictions; no access, no data",
    "kubernetes:rbac.authorization.k8s.io/v1:Role": "permissions on its own namespace only, granted to nobody until a RoleBinding "
    "of that namespace binds it (k8s-rbac-binding-scoped judges every binding); a Role cannot aggregate into other roles",
}

# Component resources (ComponentResource): they create nothing; their children are judged one by one.
# Only a resource that looks like one passes as one (`is_component`): a provider package may use the same prefix.
REVIEWED_PREFIXES: dict[str, str] = {
    "meridian:": "a component of this program (no provider, no inputs): creates nothing itself, each child resource is judged by its own type",
}


COMPONENT_LOOKALIKE = (
    ", and it is no component of this program (it is registered with a provider or with inputs: a custom resource "
    "of a package that shares the prefix)"
)


def judged_types(policies: Iterable[Any]) -> frozenset[str]:
    """The types the pack's rules judge by name (their `types` / `reads`)."""
    return frozenset(t for p in policies for t in (getattr(p, "reads", None) or ()))


def reviewed(type_: str, judged: frozenset[str], component: bool = True) -> bool:
    """Whether a resource of `type_` is judged or reviewed; a type under a component prefix only
    for a `component` (see `is_component`)."""
    type_ = canonical(type_)
    return type_ in judged or type_ in REVIEWED or (component and type_.startswith(tuple(REVIEWED_PREFIXES)))


def is_component(resource: Any) -> bool:
    """The analyzer protocol carries no `custom` flag: a ComponentResource is told by what it is
    registered with, no provider reference and no inputs (a component's data lives in its children).
    A custom resource of a provider package that shares the prefix has a provider and its inputs."""
    if resource.provider is not None:
        return False
    props = resource.props
    return props is None or len(props) == 0


def stack_reviewed(config: dict, judged: frozenset[str]) -> tuple[frozenset[str], list[tuple[str | None, str]]]:
    """The types the stack's pack config reviews (`reviewedTypes`: each a type token with a non-empty
    reason), and a violation for each entry without a reason or naming a type a rule judges or the pack
    reviews for one use (its check decides, not a per-stack list)."""
    types, out = set(), []
    for entry in config.get("reviewedTypes") or []:
        type_ = entry.get("type") if isinstance(entry, dict) else None
        reason = entry.get("reason") if isinstance(entry, dict) else None
        if not isinstance(type_, str) or not type_.strip():
            out.append((None, f"`reviewedTypes` entry {entry!r} must name a resource type token (`type`) and give a `reason`"))
        elif not isinstance(reason, str) or not reason.strip():
            out.append(
                (
                    None,
                    f"`reviewedTypes` entry {type_} must give a `reason`: why it cannot move data out of the zone, widen access or weaken a control",
                )
            )
        elif canonical(type_) in judged or canonical(type_) in reviewed_for.CHECKS:
            out.append(
                (
                    None,
                    f"`reviewedTypes` must not list {type_}: a rule of the pack judges it (or checks the one use it is "
                    "reviewed for), and a stack's review must not replace that judgment; remove the entry",
                )
            )
        elif (kind := _written_kind(canonical(type_))) in judged or kind in reviewed_for.CHECKS:
            out.append(
                (
                    None,
                    f"`reviewedTypes` must not list {type_}: it writes {kind} objects, which a rule of the pack judges, "
                    "and a stack's review must not let a patch or list set what that rule refuses (a tenant namespace's "
                    "Pod Security label, an admission binding's actions); remove the entry",
                )
            )
        else:
            types.add(canonical(type_))
    return frozenset(types), out


# pulumi-kubernetes writes every kind also as `<Kind>Patch` (server-side apply of some fields of an existing
# object) and `<Kind>List` (objects given as items): each sets the kind's fields
_WRITES_KIND = ("Patch", "List")


def _written_kind(type_: str) -> str | None:
    """The Kubernetes kind a `<Kind>Patch` or `<Kind>List` type writes (`kubernetes:core/v1:Namespace` for
    `kubernetes:core/v1:NamespacePatch`), or None for any other type."""
    if not type_.startswith("kubernetes:"):
        return None
    return next((type_.removesuffix(s) for s in _WRITES_KIND if type_.endswith(s) and len(type_) > len(s)), None)


def check_inventory(resources: list[Any], config: dict, judged: frozenset[str]) -> list[tuple[str | None, str]]:
    seen: dict[tuple[str, bool], bool] = {}
    adopted, out = stack_reviewed(config, judged)
    stack: Stack | None = None
    for r in resources:
        type_ = getattr(r, "original_type", r.resource_type)
        key = (type_, canonical(type_).startswith(tuple(REVIEWED_PREFIXES)) and is_component(r))
        ok = seen.get(key)
        if ok is None:
            ok = seen[key] = reviewed(type_, judged, component=key[1]) or canonical(type_) in adopted
        check = reviewed_for.CHECKS.get(canonical(type_))
        if ok and check is not None and canonical(type_) not in judged:  # reviewed for one use: is it used that way?
            stack = stack or Stack(resources)
            out += judge_each([r], lambda r, check=check, stack=stack: [(r.urn, m) for m in check(r, stack)])
        if not ok:
            out.append(
                (
                    r.urn,
                    f"Resource type {type_} must be judged by a rule or reviewed before it is deployed: no rule of the pack "
                    f"reads it{COMPONENT_LOOKALIKE if canonical(type_).startswith(tuple(REVIEWED_PREFIXES)) else ''}. Review what data it holds, where it sends data and who can reach it; then declare it in the "
                    "`types`/`reads` of the rule that judges it, add it to REVIEWED in policies/inventory.py with a "
                    "one-line reason, or, for this stack only, to `reviewedTypes` in policies/config/<stack>.json "
                    '(`{"type": ..., "reason": ...}`)',
                )
            )
    return out


def inventory_policy(policies: Iterable[Any]):
    """The rule over the pack's own `policies` (built last, from the finished list)."""
    judged = judged_types(policies)
    return stack_policy(
        "pack-resource-type-reviewed",
        what="Checks that every resource type in the plan, of every provider (aws, aws-native, kubernetes, random, "
        "providers, components), is judged by a rule of the pack (by name, in its `types` or `reads`, renamed types as "
        "their current name) or listed in the pack as reviewed with a one-line reason, and that each resource of a type "
        "reviewed for one use (a Serverless Application Repository stack, a FIS experiment template, a route, an Elastic IP, "
        "an EKS add-on, ...) is used that way",
        why="A pack that only knows a fixed list of types passes every other type in silence: a new data path, a legacy "
        "type or another provider's resource would deploy unjudged.",
        reads=(),
        check=lambda resources, config: check_inventory(resources, config, judged),
        severity=HIGH,
        config={
            "reviewedTypes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"type": {"type": "string"}, "reason": {"type": "string"}},
                    "required": ["type", "reason"],
                },
                "default": [],
                "description": "resource types reviewed for this stack only, each `{type, reason}`: the type token and "
                "why it cannot move data out of the zone, widen access or weaken a control (a type a rule judges is refused, "
                "and so is the `<Kind>Patch` or `<Kind>List` of a Kubernetes kind a rule judges)",
            }
        },
        remediation="Review the type (what data it holds, where it sends data, who can reach it), then extend the rule "
        "that should judge it (its `types` or `reads`) or add it to REVIEWED in policies/inventory.py with a one-line reason; "
        'for one stack, add `{"type": <token>, "reason": <why>}` to `reviewedTypes` in policies/config/<stack>.json '
        "(refused without a reason, for a type a rule judges, or for the `<Kind>Patch` / `<Kind>List` of a Kubernetes kind "
        "a rule judges, which sets the same fields).",
        limits="It proves that a reviewer or a rule saw every type, not that a rule judges every property of it: what "
        "each rule proves is in its own entry, and a REVIEWED reason (policies/inventory.py, one line per type) is a "
        "reviewer's judgment, not a check (so is a stack's `reviewedTypes` entry, whose reason is the stack owner's), except where the reason claims a value: a type reviewed for one use passes only "
        "while each resource is used that way (policies/reviewed.py): a Serverless Application Repository stack only "
        "for AWS's rotation application the program deploys (by `applicationId`); a FIS experiment template only with "
        "actions that stop, reboot, fail over or cut the network, targets selected by a tag naming this stack (or ARNs of "
        "its role's account) and a role of the stack; a route (and a route table's inline routes) only to a gateway the "
        "stack defines, never a peering connection, transit gateway or network interface; a listener rule only forwarding to target groups of the stack, answering fixed or redirecting on its own host; an EventBridge rule a schedule or a pattern on the default bus or a bus of the stack; an Elastic IP on no instance or "
        "interface; an OIDC provider and a secret rotation function built from resources of the stack. A type under a "
        "component prefix (`meridian:`) passes only as a component: no provider reference and no inputs, as a "
        "ComponentResource registers (the analyzer protocol carries no `custom` flag); a custom resource registered with "
        "neither would pass as one. Resources made outside Pulumi (by controllers, by AWS) are not in the plan.",
        tags=["inventory"],
    )
