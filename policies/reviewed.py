"""Types reviewed for one use: the review holds only while each resource of the type is used that
way, so the value that makes it that use is checked, resource by resource (inventory.py's
`REVIEWED_FOR`). A reason that claims something about a value ("the AWS rotation function", "on the
stack's own resources", "to a gateway of the stack") is a check here, never only a sentence.
"""

from __future__ import annotations

import functools
from typing import Any

from ruleutil import AWS_PROVIDER, ROLE, UNKNOWN, Stack, as_list, dig, is_map, peek, provider_default_tags, tags_of

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
    tag_maps = [provider_default_tags(p.props) for p in stack.of(AWS_PROVIDER)]
    tag_maps += [tags_of(r.props) for r in stack.resources if is_map(peek(r.props, "tags"))]
    out = {(str(k), v) for tags in tag_maps for k, v in tags.items() if v == name and isinstance(v, str)}
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


# The AWS add-ons reviewed (each installs AWS's own controller; their roles are judged as IAM roles)
EKS_ADDONS = frozenset({"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver"})


def eks_addon(r: Any, stack: Stack) -> list[str]:
    name = dig(r.props, "addonName")
    if name in EKS_ADDONS:
        return []
    return [
        f"EKS add-on must be one of the AWS add-ons reviewed ({', '.join(sorted(EKS_ADDONS))}), not {name!r}: another add-on "
        "(a marketplace one among them) runs someone else's controller in the cluster, unjudged"
    ]


def oidc_provider(r: Any, stack: Stack) -> list[str]:
    return _built_from(r, stack, "url", (EKS_CLUSTER,), "OIDC provider", "trust the issuer of a cluster of the stack")


def secret_rotation(r: Any, stack: Stack) -> list[str]:
    return _built_from(
        r,
        stack,
        "rotationLambdaArn",
        (SAR_STACK, "aws:lambda/function:Function"),
        "Secret rotation",
        "rotate with a function of the stack",
    )


def target_group_binding(r: Any, stack: Stack) -> list[str]:
    return _built_from(
        r,
        stack,
        "spec.targetGroupARN",
        ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup"),
        "TargetGroupBinding",
        "bind a target group of the stack's own load balancer",
    )


def lambda_permission(r: Any, stack: Stack) -> list[str]:
    principal = dig(r.props, "principal")
    source = None if stack.linked(r, "sourceArn") else dig(r.props, "sourceArn")
    out = []
    if not (isinstance(principal, str) and principal.endswith(".amazonaws.com")):
        out.append(
            f"Lambda permission must let only an AWS service invoke the function (reviewed as such), not {principal!r}: "
            "an account or `*` invokes it with whatever event it likes"
        )
    if not stack.linked(r, "sourceArn"):
        out.append(
            f"Lambda permission must name one source of the stack (`sourceArn` built from it), not {source!r}: without it, "
            "the service invokes the function for any account's resource (a confused deputy)"
        )
    return out


CHECKS = {
    SAR_STACK: serverless_application,
    FIS_TEMPLATE: fis_template,
    ROUTE: route,
    ROUTE_TABLE: route_table,
    "aws:ec2/eip:Eip": eip,
    "aws:eks/addon:Addon": eks_addon,
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": oidc_provider,
    "aws:secretsmanager/secretRotation:SecretRotation": secret_rotation,
    "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding": target_group_binding,
    "aws:lambda/permission:Permission": lambda_permission,
}
