"""Security review 18, replayed on the us stack's real plan through the analyzer: settings in the plan
that switch a control off (the VPC CNI's `enableNetworkPolicy`: K43, U41), `system:` subjects of
bindings (K48), security group references of another account (X44, U57), the EKS control-plane log
group tied to its cluster (X64), and the legitimate setups the type inventory refused (L41, L42, L51,
L52, L53, L65) with the per-stack `reviewedTypes`. Each attack is a mandatory violation (or, for an
unknown value, an advisory) of its rule; each legitimate twin passes the whole pack."""

from __future__ import annotations

import copy
import json

import pytest

from .helpers import assert_mandatory
from .test_policy_review16 import ACCOUNT, one, viewer

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's value for an output unknown at preview
FOREIGN = "999988887777"
VPC_CNI = "us-us-east-1-eks-vpc-cni"
REVIEWED = "pack-resource-type-reviewed"


def mandatory(violations) -> list:
    return [v for v in violations if v.level == "mandatory"]


def added(like: str, type_: str, name: str, inputs: dict, props_from: dict | None = None):
    """A new resource registered like `like` (same provider and parent), with `inputs`."""

    def mutate(resources):
        model = one(resources, like)
        prefix = model["urn"].split("::")[0] + "::" + model["urn"].split("::")[1]
        resources.append(
            {
                **{k: model[k] for k in ("custom", "parent", "provider", "region") if k in model},
                "urn": f"{prefix}::{type_}::{name}",
                "type": type_,
                "name": name,
                "inputs": inputs(resources) if callable(inputs) else inputs,
                "dependencies": [],
                "propertyDependencies": {},
            }
        )

    return mutate


def cni_values(value):
    return lambda resources: one(resources, VPC_CNI, "eks/addon")["inputs"].__setitem__("configurationValues", value)


# --- K43 / U41: the VPC CNI enforces NetworkPolicies ---------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        json.dumps({"enableNetworkPolicy": "false"}),
        json.dumps({"env": {"ENABLE_PREFIX_DELEGATION": "true"}}),
        "enableNetworkPolicy: 'true'",
    ],
    ids=["false", "absent", "yaml"],
)
def test_vpc_cni_without_network_policy(judge, value):
    assert_mandatory(judge(cni_values(value)), "eks-addon-reviewed", "vpc-cni without enableNetworkPolicy")


def test_vpc_cni_values_unknown_is_an_advisory(judge):
    violations = judge(cni_values(UNKNOWN))
    assert [v.level for v in violations if v.policy == "eks-addon-reviewed"] == ["advisory"], violations


def test_vpc_cni_with_network_policy_passes(judge):
    """The shipped value, and review 18's L46 (prefix delegation beside it)."""
    values = json.dumps({"enableNetworkPolicy": "true", "env": {"ENABLE_PREFIX_DELEGATION": "true"}})
    assert not mandatory(judge(cni_values(values)))


# --- K48: system: subjects -------------------------------------------------------------------------


def cluster_binding(subject: dict, role: str = "cluster-admin", namespace: str | None = None):
    kind = "RoleBinding" if namespace else "ClusterRoleBinding"

    def inputs(_resources):
        metadata = {"name": "b", **({"namespace": namespace} if namespace else {})}
        return {
            "metadata": metadata,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [subject],
        }

    return added("us-us-east-1-t-acme-ns", f"kubernetes:rbac.authorization.k8s.io/v1:{kind}", f"sys-{subject['name']}", inputs)


@pytest.mark.parametrize(
    "subject",
    [
        {"kind": "Group", "name": "system:bootstrappers"},
        {"kind": "Group", "name": "system:nodes"},
        {"kind": "Group", "name": "system:masters"},
        {"kind": "User", "name": "system:kube-controller-manager"},
    ],
    ids=lambda s: s["name"],
)
def test_binding_to_a_system_subject(judge, subject):
    violations = judge(cluster_binding({**subject, "apiGroup": "rbac.authorization.k8s.io"}))
    assert_mandatory(violations, "k8s-rbac-binding-scoped", subject["name"])


def test_binding_to_a_namespaces_service_account_group_passes(judge):
    """The twin: `system:serviceaccounts:platform` in `platform` names that namespace's own service accounts."""
    subject = {"kind": "Group", "name": "system:serviceaccounts:platform", "apiGroup": "rbac.authorization.k8s.io"}
    violations = judge(cluster_binding(subject, role="view", namespace="platform"))
    assert not [v for v in mandatory(violations) if v.policy == "k8s-rbac-binding-scoped"], violations


# --- X44 / U57: security group references ----------------------------------------------------------


def db_ingress(groups: list):
    return lambda resources: one(resources, "us-db-us-east-1-sg", "ec2/securityGroup")["inputs"]["ingress"].append(
        {"fromPort": 5432, "toPort": 5432, "protocol": "tcp", "securityGroups": groups}
    )


def test_group_of_a_foreign_account(judge):
    violations = judge(db_ingress([f"{FOREIGN}/sg-0abc12345def67890"]))
    assert_mandatory(violations, "ec2-security-group-ingress-restricted", "a foreign account's group")


def test_group_of_the_stacks_account_in_account_form_passes(judge):
    violations = judge(db_ingress([f"{ACCOUNT}/sg-0abc12345def67890"]))
    assert not [v for v in mandatory(violations) if v.policy == "ec2-security-group-ingress-restricted"], violations


def test_unknown_group_on_the_db_port_is_an_advisory(judge):
    violations = judge(db_ingress([UNKNOWN]))
    hits = [v for v in violations if v.policy == "ec2-security-group-ingress-restricted"]
    assert hits and all(v.level == "advisory" for v in hits), violations


# --- X64: the control-plane log group EKS writes to ------------------------------------------------


def test_control_plane_log_group_renamed(judge):
    def mutate(resources):
        one(resources, "us-us-east-1-eks-control-plane-logs", "logGroup")["inputs"]["name"] = (
            "/aws/eks/us-us-east-1-eks/cluster-v2"
        )

    violations = judge(mutate)
    assert_mandatory(violations, "eks-control-plane-logging", "renamed control-plane log group")
    assert any("/aws/eks/us-us-east-1-eks/cluster" in v.message for v in mandatory(violations)), violations


def test_control_plane_log_group_name_unknown_is_an_advisory(judge):
    def mutate(resources):
        one(resources, "us-us-east-1-eks-control-plane-logs", "logGroup")["inputs"]["name"] = UNKNOWN

    violations = judge(mutate)
    hits = [v for v in violations if v.policy == "eks-control-plane-logging"]
    assert hits and all(v.level == "advisory" for v in hits), violations


# --- L41, L42, L51, L52, L53, L65: legitimate setups ------------------------------------------------


def listener_rule(target):
    return added(
        "us-use1-lb-https",
        "aws:lb/listenerRule:ListenerRule",
        "v2-canary",
        lambda rs: {
            "listenerArn": f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:listener/app/us-use1-lb-api/abc/def",
            "priority": 10,
            "conditions": [{"pathPattern": {"values": ["/v2/*"]}}],
            "actions": [{"type": "forward", "targetGroupArn": target(rs)}],
        },
    )


def canary_group(resources) -> str:
    groups = one(resources, "us-use1-lb-https", "lb/listener")["inputs"]["defaultActions"][0]["forward"]["targetGroups"]
    return next(g["arn"] for g in groups if "canary" in g["arn"])


def health_rule(resources):
    topic = one(resources, "us-cost-enforcer-target", "eventTarget")
    added(
        "us-cost-enforcer-schedule",
        "aws:cloudwatch/eventRule:EventRule",
        "health-events",
        {"eventPattern": '{"source": ["aws.health"]}'},
    )(resources)
    target = copy.deepcopy(topic)
    target["name"], target["urn"] = "health-to-topic", topic["urn"].rsplit("::", 1)[0] + "::health-to-topic"
    target["inputs"] = {"rule": "health-events", "arn": f"arn:aws:sns:us-east-1:{ACCOUNT}:us-failover-alarms-be2099c"}
    target["propertyDependencies"], target["dependencies"] = {}, []
    resources.append(target)


LEGITIMATE = {
    "L41-hpa": added(
        "us-us-east-1-t-acme-ns",
        "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
        "api-hpa",
        {
            "metadata": {"name": "api-hpa", "namespace": "platform"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "meridian-api"},
                "minReplicas": 3,
                "maxReplicas": 12,
            },
        },
    ),
    "L42-waf": added(
        "us-use1-lb-api",
        "aws:wafv2/webAclAssociation:WebAclAssociation",
        "api-waf",
        {
            "resourceArn": f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/app/us-use1-lb-api/abc",
            "webAclArn": f"arn:aws:wafv2:us-east-1:{ACCOUNT}:regional/webacl/api/123",
        },
    ),
    "L51-listener-rule": listener_rule(canary_group),
    "L52-metric-filter": added(
        "us-us-east-1-eks-control-plane-logs",
        "aws:cloudwatch/logMetricFilter:LogMetricFilter",
        "audit-forbidden",
        {
            "logGroupName": "/aws/eks/us-us-east-1-eks/cluster",
            "name": "forbidden",
            "pattern": "{ $.responseStatus.code = 403 }",
            "metricTransformation": {"name": "Forbidden", "namespace": "meridian", "value": "1"},
        },
    ),
    "L53-event-pattern": health_rule,
}


@pytest.mark.parametrize("setup", list(LEGITIMATE), ids=list(LEGITIMATE))
def test_legitimate_setup_passes(judge, setup):
    violations = judge(LEGITIMATE[setup])
    assert not mandatory(violations), violations


def test_listener_rule_to_a_group_outside_the_stack(judge):
    other = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/elsewhere/0123456789abcdef"
    assert_mandatory(judge(listener_rule(lambda rs: other)), REVIEWED, "a listener rule to a foreign target group")


def test_guardduty_addon_is_covered_by_allowed_addons(judge):
    """L65: refused by default, passes once the stack's config reviews it (`allowedAddons`)."""
    addon = added(
        VPC_CNI,
        "aws:eks/addon:Addon",
        "us-us-east-1-eks-guardduty",
        {"addonName": "aws-guardduty-agent", "clusterName": "us-us-east-1-eks"},
    )
    assert_mandatory(judge(addon), "eks-addon-reviewed", "an add-on no one reviewed")
    allowed = judge(addon, settings={"eks-addon-reviewed": {"allowedAddons": ["aws-guardduty-agent"]}})
    assert not mandatory(allowed), allowed


# --- reviewedTypes: a stack reviews a type without forking the pack ---------------------------------

WORKGROUP = added(
    "us-cost-enforcer-schedule",
    "aws:athena/workgroup:Workgroup",
    "reports",
    {"name": "reports", "configuration": {"enforceWorkgroupConfiguration": True}},
)


def test_unreviewed_type_is_refused(judge):
    assert_mandatory(judge(WORKGROUP), REVIEWED, "an Athena workgroup")


def test_reviewed_types_admits_a_type_with_a_reason(judge):
    entry = {"type": "aws:athena/workgroup:Workgroup", "reason": "queries only the stack's own buckets; results in zone"}
    violations = judge(WORKGROUP, settings={REVIEWED: {"reviewedTypes": [entry]}})
    assert not mandatory(violations), violations


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "aws:athena/workgroup:Workgroup", "reason": " "},
        {"type": "aws:athena/workgroup:Workgroup"},
        {"type": "aws:s3/bucket:Bucket", "reason": "judged by the bucket rules"},
        {"type": "aws:cloudwatch/eventRule:EventRule", "reason": "reviewed for one use: its check decides"},
    ],
    ids=["blank-reason", "no-reason", "judged-type", "reviewed-for-one-use"],
)
def test_reviewed_types_entry_refused(judge, entry):
    violations = judge(WORKGROUP, settings={REVIEWED: {"reviewedTypes": [entry]}})
    assert any(v.policy == REVIEWED and "`reviewedTypes`" in v.message for v in mandatory(violations)), violations


# --- B1: the role that runs pull-request code views without Secrets --------------------------------


def test_pr_preview_role_keeps_no_secrets_view(judge):
    """The shipped preview role (`cluster.pr_viewer_role_arns`) holds AmazonEKSViewPolicy; AdminView (every Secret) is refused."""

    def admin_view(resources):
        association = viewer(resources, "meridian-preview", "accessPolicyAssociation")
        assert association["inputs"]["policyArn"].endswith("/AmazonEKSViewPolicy")
        association["inputs"]["policyArn"] = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy"

    violations = judge(admin_view)
    assert_mandatory(violations, "eks-access-platform-roles-only", "AdminView for the PR preview role")


def test_trusted_viewer_keeps_admin_view(judge):
    def plan_role_view(resources):
        association = viewer(resources, "meridian-plan", "accessPolicyAssociation")
        assert association["inputs"]["policyArn"].endswith("/AmazonEKSAdminViewPolicy")

    assert not mandatory(judge(plan_role_view))
