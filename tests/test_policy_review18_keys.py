"""Security review 18, replayed on the us stack's real plan through the analyzer: the broker role
named by its literal ARN in a pod identity association (K56c), and a tenant's key named by any input
of a resource that is not the tenant's (X51, X62, X65, X66), by ARN, key id, alias or link. Each attack
is a mandatory violation; the legitimate twins pass."""

from __future__ import annotations

import copy

import pytest

from .helpers import assert_mandatory
from .test_policy_review16 import ACCOUNT, key_arn, one, role_arn

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture

BROKER = "us-us-east-1-tenant-identity-broker"
ACME_KEY = "us-us-east-1-t-acme-key"
ACME_ALIAS = "alias/meridian/us-us-east-1-t-acme"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's value for an output unknown at preview


def mandatory(violations, rule: str) -> list:
    return [v for v in violations if v.policy == rule and v.level == "mandatory"]


def association(name: str, namespace: str, account: str, role=lambda rs: role_arn(rs, BROKER)):
    """A pod identity association like the lb controller's, naming its role by a literal ARN (no link)."""

    def mutate(resources):
        like = copy.deepcopy(one(resources, "us-us-east-1-lb-controller-identity", "podIdentityAssociation"))
        like["name"], like["urn"] = name, like["urn"].rsplit("::", 1)[0] + "::" + name
        like["inputs"].update(namespace=namespace, serviceAccount=account, roleArn=role(resources))
        like["propertyDependencies"].pop("roleArn", None)
        resources.append(like)

    return mutate


@pytest.mark.parametrize(
    ("namespace", "account"),
    [("kube-system", "default"), ("t-wonka", "wonka-app"), ("platform", "default")],
    ids=["K56c-kube-system", "K56-cell-tenant", "platform-other-account"],
)
def test_broker_by_literal_arn_outside_its_holder(judge, namespace, account):
    violations = judge(association("held-broker", namespace, account))
    hits = mandatory(violations, "tenant-role-isolated")
    # a cell tenant's namespace is a tenant's (the prefix): its holding the broker is refused as the brokered reach
    # it opens; elsewhere as a holder the broker does not admit
    held = [v for v in hits if "must be held only by the service's account platform/meridian-api" in v.message]
    assert held or (namespace.startswith("t-") and any("Brokered" in v.message for v in hits)), violations


def test_broker_literal_arn_for_its_own_holder_passes(judge):
    """The twin: a second association of the broker for the service's own account names the holder the rule admits."""
    violations = judge(association("api-broker-again", "platform", "meridian-api"))
    assert not [v for v in mandatory(violations, "tenant-role-isolated") if BROKER in v.message], violations


def test_shipped_plan_has_no_key_owner_finding(judge):
    assert not [v for v in judge() if v.level == "mandatory"], "the shipped us plan must pass"


def linked_to_acme_key(name: str, type_part: str, prop: str, value):
    """`name`'s `prop` set to `value(acme key ARN)` and built from acme's key, as `key.arn` would be."""

    def mutate(resources):
        target = one(resources, name, type_part)
        target["inputs"][prop] = value(key_arn(ACME_KEY)(resources))
        target["propertyDependencies"][prop] = [one(resources, ACME_KEY, "kms/key:Key")["urn"]]

    return mutate


KEY_OWNER_ATTACKS = {
    # X51: Performance Insights (SQL text of every tenant's queries) under acme's key
    "X51-performance-insights": linked_to_acme_key(
        "us-db-us-east-1-0", "rds/clusterInstance", "performanceInsightsKmsKeyId", lambda arn: arn
    ),
    # X62: EKS envelope encryption of every tenant's Kubernetes Secrets under acme's key
    "X62-eks-secrets": linked_to_acme_key(
        "us-us-east-1-eks-eks",
        "eks/cluster",
        "encryptionConfig",
        lambda arn: {"provider": {"keyArn": arn}, "resources": ["secrets"]},
    ),
    # X65: the platform's images under acme's key
    "X65-ecr": linked_to_acme_key(
        "us-images-us-east-1",
        "ecr/repository",
        "encryptionConfigurations",
        lambda arn: [{"encryptionType": "KMS", "kmsKey": arn}],
    ),
    # X66: every node's root volume under acme's key
    "X66-node-volumes": linked_to_acme_key(
        "us-us-east-1-eks-nodes-lt",
        "ec2/launchTemplate",
        "blockDeviceMappings",
        lambda arn: [
            {"deviceName": "/dev/xvda", "ebs": {"encrypted": "true", "kmsKeyId": arn, "volumeSize": 50, "volumeType": "gp3"}}
        ],
    ),
}


@pytest.mark.parametrize("attack", list(KEY_OWNER_ATTACKS), ids=list(KEY_OWNER_ATTACKS))
def test_platform_resource_under_a_tenant_key(judge, attack):
    violations = judge(KEY_OWNER_ATTACKS[attack])
    assert_mandatory(violations, "tenant-data-access", attack)
    assert any("tenant acme's KMS key" in v.message for v in mandatory(violations, "tenant-data-access")), violations


def node_volume_key(value):
    """The launch template's root volume under `value(plan)`, written by hand (no link)."""

    def mutate(resources):
        template = one(resources, "us-us-east-1-eks-nodes-lt", "ec2/launchTemplate")
        template["inputs"]["blockDeviceMappings"] = [
            {"deviceName": "/dev/xvda", "ebs": {"encrypted": "true", "kmsKeyId": value(resources), "volumeSize": 50}}
        ]

    return mutate


@pytest.mark.parametrize(
    "spelling",
    [
        lambda rs: key_arn(ACME_KEY)(rs).rsplit("/", 1)[-1],  # the bare key id
        lambda rs: ACME_ALIAS,  # the alias name
        lambda rs: f"arn:aws:kms:us-east-1:{ACCOUNT}:{ACME_ALIAS}",  # the alias ARN
    ],
    ids=["key-id", "alias-name", "alias-arn"],
)
def test_tenant_key_by_any_spelling(judge, spelling):
    violations = judge(node_volume_key(spelling))
    hits = mandatory(violations, "tenant-data-access")
    assert any("us-us-east-1-eks-nodes-lt" in v.message and "tenant acme's KMS key" in v.message for v in hits), violations


def test_tenant_key_by_link_where_the_value_is_unknown(judge):
    """At a real preview a new key's ARN is unknown: the link to acme's key is what names it."""

    def mutate(resources):
        node_volume_key(lambda rs: UNKNOWN)(resources)
        template = one(resources, "us-us-east-1-eks-nodes-lt", "ec2/launchTemplate")
        template["propertyDependencies"]["blockDeviceMappings"] = [one(resources, ACME_KEY, "kms/key:Key")["urn"]]

    violations = judge(mutate)
    assert any("us-us-east-1-eks-nodes-lt" in v.message for v in mandatory(violations, "tenant-data-access")), violations


def test_tenant_key_named_in_any_property(judge):
    """Not a key property: acme's key handed to the platform's cost enforcer in its environment."""

    def mutate(resources):
        fn = one(resources, "us-cost-enforcer", "lambda/function")
        fn["inputs"].setdefault("environment", {}).setdefault("variables", {})["SEAL_KEY"] = key_arn(ACME_KEY)(resources)

    violations = judge(mutate)
    hits = mandatory(violations, "tenant-data-access")
    assert any("us-cost-enforcer" in v.message and "(in `environment`)" in v.message for v in hits), violations


def test_performance_insights_under_the_db_key_passes(judge):
    """The legitimate twin of X51 (review L48): Performance Insights under the database's own key."""

    def mutate(resources):
        cluster = one(resources, "us-db-us-east-1-cluster", "rds/cluster")
        instance = one(resources, "us-db-us-east-1-0", "rds/clusterInstance")
        instance["inputs"].update(
            performanceInsightsEnabled=True,
            performanceInsightsKmsKeyId=cluster["inputs"]["kmsKeyId"],
            performanceInsightsRetentionPeriod=7,
        )
        instance["propertyDependencies"]["performanceInsightsKmsKeyId"] = cluster["propertyDependencies"]["kmsKeyId"]

    assert not [v for v in judge(mutate) if v.level == "mandatory"]


def test_a_tenants_own_resource_under_its_key_passes(judge):
    """A resource tagged as acme's (a queue for acme's exports) under acme's own key."""

    def mutate(resources):
        like = copy.deepcopy(one(resources, "us-us-east-1-eks-nodes-lt", "ec2/launchTemplate"))
        like["name"], like["urn"] = "acme-lt", like["urn"].rsplit("::", 1)[0] + "::acme-lt"
        like["inputs"]["tags"] = {**like["inputs"].get("tags", {}), "meridian:tenant": "acme"}
        like["inputs"]["blockDeviceMappings"] = [{"deviceName": "/dev/xvda", "ebs": {"kmsKeyId": key_arn(ACME_KEY)(resources)}}]
        resources.append(like)

    violations = judge(mutate)
    assert not [v for v in mandatory(violations, "tenant-data-access") if "acme-lt" in v.message], violations


def test_tenant_role_in_a_namespace_no_stack_of_the_plan_creates_is_refused(judge):
    """Review 19 (replay of review 18's P42): the tenants' role associated into `t-acme-shadow`, a namespace the
    plan names but does not create: the prefix makes it a tenant's, but nothing guards it (no default deny, quota
    or Pod Security label): the stack that associates a tenant's pods creates its namespace."""
    from .test_policy_review16 import TENANT_ROLE

    violations = judge(association("shadow", "t-acme-shadow", "acme-app", role=lambda rs: role_arn(rs, TENANT_ROLE)))
    hits = mandatory(violations, "tenant-namespace-guarded")
    assert any("t-acme-shadow, which this stack does not create" in v.message for v in hits), violations
