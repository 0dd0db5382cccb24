"""The last misses of the pack, replayed on the real plans through the analyzer: a database on a
parameter group that does not force TLS (review 15, E08), an admission backstop whose validations
are hollowed out, the AWS Backup role given more than Backup does, an ECR repository
force-deletable in production, and an IRSA annotation on a tenant's service account. Each mutated
plan draws the named rule's mandatory violation (or, for a value unknown at preview, its advisory);
each legitimate twin draws nothing."""

from __future__ import annotations

import copy
import json

import pytest

from .helpers import both
from .policydata import UNKNOWN

pytestmark = pytest.mark.slow  # the plans come from the previews fixture

TLS = "rds-parameter-group-tls-required"


def one(resources, name: str, type_part: str = "") -> dict:
    return next(r for r in resources if r["name"] == name and type_part in r["type"])


def db_group(name: str, prop: str, value, *, linked: bool = False):
    """Set database `name`'s parameter group setting `prop` (None: removed); unlinked unless told."""

    def mutate(resources):
        db = one(resources, name)
        if value is None:
            db["inputs"].pop(prop, None)
        else:
            db["inputs"][prop] = value
        if not linked:
            db["propertyDependencies"].pop(prop, None)

    return mutate


def engine(name: str, version: str):
    def mutate(resources):
        one(resources, name)["inputs"]["engineVersion"] = version

    return mutate


def plain_group(resources):
    """A cluster parameter group of the stack without rds.force_ssl, used by the primary cluster (linked)."""
    group = copy.deepcopy(one(resources, "us-db-us-east-1-params"))
    group["name"] = "us-db-us-east-1-plain"
    group["urn"] = group["urn"].rsplit("::", 1)[0] + "::us-db-us-east-1-plain"
    group["inputs"]["parameters"] = [{"name": "log_min_duration_statement", "value": "1000"}]
    resources.append(group)
    cluster = one(resources, "us-db-us-east-1-cluster")
    cluster["inputs"]["dbClusterParameterGroupName"] = "us-db-us-east-1-plain-0a1b2c3"
    cluster["propertyDependencies"]["dbClusterParameterGroupName"] = [group["urn"]]


PRIMARY, SECONDARY = "us-db-us-east-1-cluster", "us-db-us-west-2-cluster"
CLUSTER_GROUP = "dbClusterParameterGroupName"

# (what, stack, mutation, the database named in the finding)
TLS_MISSES = [
    (
        "E08: the primary cluster on the default group of aurora-postgresql16 (rds.force_ssl 0)",
        "us",
        db_group(PRIMARY, CLUSTER_GROUP, "default.aurora-postgresql16"),
        PRIMARY,
    ),
    (
        "the secondary cluster with no group named (the engine's default: 0)",
        "us",
        db_group(SECONDARY, CLUSTER_GROUP, None),
        SECONDARY,
    ),
    ("the primary cluster on a group of the stack that does not force TLS", "us", plain_group, PRIMARY),
    (
        "an RDS PostgreSQL 14 writer on its default group (rds.force_ssl 0 before 15)",
        "apac",
        both(
            engine("apac-db-ap-southeast-1-writer", "14"),
            db_group("apac-db-ap-southeast-1-writer", "parameterGroupName", "default.postgres14"),
        ),
        "apac-db-ap-southeast-1-writer",
    ),
]


def unset(name: str, *props: str):
    def mutate(resources):
        db = one(resources, name)
        for prop in props:
            db["inputs"].pop(prop, None)
            db["propertyDependencies"].pop(prop, None)

    return mutate


TLS_MISSES += [
    (
        "an RDS writer naming neither a group nor its engine version (the default group of whatever AWS picks)",
        "apac",
        unset("apac-db-ap-southeast-1-writer", "engineVersion", "parameterGroupName"),
        "apac-db-ap-southeast-1-writer",
    ),
]

TLS_UNKNOWNS = [
    (
        "a group of another region's name (no group of the stack in the cluster's region)",
        "us",
        db_group(PRIMARY, CLUSTER_GROUP, "us-db-us-west-2-params-d566c9d"),
        PRIMARY,
    ),
    ("a group outside the stack", "us", db_group(PRIMARY, CLUSTER_GROUP, "shared-pg16-tls"), PRIMARY),
    ("a group name unknown at preview and linked to nothing", "us", db_group(PRIMARY, CLUSTER_GROUP, UNKNOWN), PRIMARY),
]

TLS_LEGITIMATE = [
    (
        "an RDS PostgreSQL 16 replica naming no group, engine nor version (its source's: 16)",
        "apac",
        unset("apac-db-ap-southeast-2-replica", "engine", "engineVersion", "parameterGroupName"),
    ),
    (
        "an Aurora PostgreSQL 17 cluster on its default group (rds.force_ssl 1 from 17)",
        "us",
        both(engine(PRIMARY, "17"), db_group(PRIMARY, CLUSTER_GROUP, "default.aurora-postgresql17")),
    ),
    (
        "an RDS PostgreSQL 16 writer on its default group (rds.force_ssl 1 from 15)",
        "apac",
        db_group("apac-db-ap-southeast-1-writer", "parameterGroupName", "default.postgres16"),
    ),
    (
        "an RDS PostgreSQL 16 replica naming no group",
        "apac",
        db_group("apac-db-ap-southeast-2-replica", "parameterGroupName", None),
    ),
    (
        "the group's name unknown at preview, linked to the stack's TLS group",
        "us",
        db_group(PRIMARY, CLUSTER_GROUP, UNKNOWN, linked=True),
    ),
]


@pytest.mark.parametrize("stack", ["us", "apac"])
def test_the_rendered_plans_draw_no_violation(judge, stack):
    assert [(v.policy, v.message) for v in judge(stack=stack)] == []


@pytest.mark.parametrize("what,stack,mutation,db", TLS_MISSES, ids=[m[0][:60] for m in TLS_MISSES])
def test_a_database_on_a_group_that_does_not_force_tls_is_a_mandatory_violation(judge, what, stack, mutation, db):
    found = [v for v in judge(mutation, stack) if v.policy == TLS and v.urn.endswith(f"::{db}")]
    assert [v.level for v in found] == ["mandatory"], (what, found)
    assert "TLS" in found[0].message and " must " in found[0].message


@pytest.mark.parametrize("what,stack,mutation,db", TLS_UNKNOWNS, ids=[m[0][:60] for m in TLS_UNKNOWNS])
def test_a_database_whose_group_cannot_be_told_is_an_advisory_never_a_pass(judge, what, stack, mutation, db):
    found = judge(mutation, stack)
    assert [(v.policy, v.level) for v in found] == [(TLS, "advisory")], (what, found)
    assert found[0].urn.endswith(f"::{db}")


@pytest.mark.parametrize("what,stack,mutation", TLS_LEGITIMATE, ids=[m[0][:60] for m in TLS_LEGITIMATE])
def test_a_database_whose_group_forces_tls_passes(judge, what, stack, mutation):
    assert [(v.policy, v.message) for v in judge(mutation, stack)] == []


PRODUCTION = {"production-data-not-force-deletable": {"production": True}}
ECR = "aws:ecr/repository:Repository"


def repositories(resources) -> list[dict]:
    return [r for r in resources if r["type"] == ECR]


def ecr_force_delete(value: bool):
    def mutate(resources):
        for repo in repositories(resources):
            repo["inputs"]["forceDelete"] = value

    return mutate


def test_an_ecr_repository_force_deletable_in_production_is_a_mandatory_violation(judge, previews):
    urns = {r["urn"] for r in repositories(previews["us"].plan["resources"])}
    assert len(urns) == 2
    found = [v for v in judge(ecr_force_delete(True), settings=PRODUCTION) if v.urn in urns]
    assert {(v.urn, v.policy, v.level) for v in found} == {(u, "production-data-not-force-deletable", "mandatory") for u in urns}
    assert all("forceDelete" in v.message and " must " in v.message for v in found)


@pytest.mark.parametrize(
    "mutation", [ecr_force_delete(False), lambda rs: [r["inputs"].pop("forceDelete") for r in repositories(rs)]]
)
def test_an_ecr_repository_not_force_deletable_in_production_passes(judge, previews, mutation):
    urns = {r["urn"] for r in repositories(previews["us"].plan["resources"])}
    assert [v for v in judge(mutation, settings=PRODUCTION) if v.urn in urns] == []


BACKSTOPS = "runtime-backstops-enforced"
WORKLOADS_VAP = "us-us-east-1-admission-meridian-tenant-workloads"
BINDINGS_VAP = "us-us-east-1-admission-meridian-tenant-role-bindings"
VAP = ":ValidatingAdmissionPolicy"


def vap_spec(resources, name: str) -> dict:
    return one(resources, name, VAP)["inputs"]["spec"]


def validations(name: str, change):
    """Change the `validations` list of admission policy `name` (the list is passed, changed in place)."""

    def mutate(resources):
        change(vap_spec(resources, name)["validations"])

    return mutate


def without(text: str):
    def change(items):
        items[:] = [v for v in items if text not in v["expression"]]

    return change


def variable(name: str, var: str, expression: str):
    def mutate(resources):
        next(v for v in vap_spec(resources, name)["variables"] if v["name"] == var)["expression"] = expression

    return mutate


def denies_by(*actions: str):
    def mutate(resources):
        one(resources, f"{WORKLOADS_VAP}-binding")["inputs"]["spec"]["validationActions"] = list(actions)

    return mutate


# (what, mutation, a text the finding names)
HOLLOW_BACKSTOPS = [
    ("the workloads policy's validations emptied", validations(WORKLOADS_VAP, lambda v: v.clear()), "privileged"),
    ("the host path validation removed", validations(WORKLOADS_VAP, without("hostPath")), "hostPath"),
    (
        "the privileged-container validation made always true",
        validations(WORKLOADS_VAP, lambda v: v[0].update(expression="true")),
        "privileged",
    ),
    ("the containers it inspects replaced by none", variable(WORKLOADS_VAP, "containers", "[]"), "containers"),
    ("the role bindings policy's validations emptied", validations(BINDINGS_VAP, lambda v: v.clear()), "RoleBinding"),
    ("the workloads binding only warns", denies_by("Warn"), "Deny"),
    (
        "review 16 E22: every validation replaced by `true`",
        validations(WORKLOADS_VAP, lambda v: v.__setitem__(slice(None), [{"expression": "true", "message": "ok"}])),
        "hostPath",
    ),
    (
        "review 16 E23: every variable redefined as an empty list",
        lambda rs: [v.update(expression="[]") for v in vap_spec(rs, WORKLOADS_VAP)["variables"]],
        "podSpec, containers, podLabels",
    ),
]

SOUND_BACKSTOPS = [
    (
        "a stricter extra validation",
        validations(WORKLOADS_VAP, lambda v: v.append({"expression": "!has(object.spec.hostUsers)", "message": "x"})),
    ),
    (
        "the same expressions laid out on other lines",
        validations(WORKLOADS_VAP, lambda v: [x.update(expression=x["expression"].replace(" && ", "\n  && ")) for x in v]),
    ),
    ("Deny with an Audit record", denies_by("Deny", "Audit")),
]


@pytest.mark.parametrize("what,mutation,named", HOLLOW_BACKSTOPS, ids=[h[0] for h in HOLLOW_BACKSTOPS])
def test_an_admission_backstop_that_no_longer_holds_the_rules_is_a_mandatory_violation_naming_what_is_missing(
    judge, what, mutation, named
):
    found = judge(mutation)
    assert {(v.policy, v.level) for v in found} == {(BACKSTOPS, "mandatory")}, (what, found)
    assert any(named in v.message for v in found), [v.message for v in found]


def test_admission_validations_unknown_at_preview_are_an_advisory_never_silent(judge):
    """Review 16 U07: what the policy checks is known only after apply, so it is reported, not passed."""

    def unknown_validations(resources):
        vap_spec(resources, WORKLOADS_VAP)["validations"] = UNKNOWN

    found = judge(unknown_validations)
    assert [(v.policy, v.level, v.urn.rsplit("::", 1)[-1]) for v in found] == [(BACKSTOPS, "advisory", WORKLOADS_VAP)]


@pytest.mark.parametrize("what,mutation", SOUND_BACKSTOPS, ids=[s[0] for s in SOUND_BACKSTOPS])
def test_an_admission_backstop_that_holds_at_least_the_rules_passes(judge, what, mutation):
    assert [(v.policy, v.message) for v in judge(mutation)] == []


IRSA = "eks.amazonaws.com/role-arn"
ACME_SA = "us-us-east-1-t-acme-sa"
ROLES = "tenant-role-isolated"


def role_arn(resources, name: str) -> str:
    """A role's ARN as the plan's pod identity associations give it (path and auto-name)."""
    role = one(resources, name, ":Role")
    path = role["inputs"].get("path", "/")
    assoc = next(
        (
            r["inputs"]["roleArn"]
            for r in resources
            if "podIdentityAssociation" in r["type"] and role["urn"] in r["propertyDependencies"].get("roleArn", [])
        ),
        None,
    )
    return assoc or f"arn:aws:iam::123456789012:role{path}{name}"


def irsa(value, *, linked_to: str | None = None):
    """Annotate acme's service account with an IRSA role: a value (or one built from a role of the plan), linked or not."""

    def mutate(resources):
        sa = one(resources, ACME_SA)
        sa["inputs"]["metadata"].setdefault("annotations", {})[IRSA] = value(resources) if callable(value) else value
        if linked_to:
            sa["propertyDependencies"]["metadata"] = [one(resources, linked_to, ":Role")["urn"]]

    return mutate


IRSA_VIOLATIONS = [
    ("the broker role by its ARN", irsa(lambda rs: role_arn(rs, "us-us-east-1-tenant-identity-broker"))),
    ("the load balancer controller's role by its ARN", irsa(lambda rs: role_arn(rs, "us-us-east-1-lb-controller-role"))),
    (
        "the EBS CSI role, built from it (linked)",
        irsa(lambda rs: role_arn(rs, "us-us-east-1-eks-ebs-csi-role"), linked_to="us-us-east-1-eks-ebs-csi-role"),
    ),
    ("a role of another account", irsa("arn:aws:iam::999988887777:role/reader")),
    ("a role this stack does not define", irsa("arn:aws:iam::123456789012:role/shared-reader")),
]


@pytest.mark.parametrize("what,mutation", IRSA_VIOLATIONS, ids=[i[0] for i in IRSA_VIOLATIONS])
def test_an_irsa_annotation_on_a_tenant_service_account_naming_another_role_is_a_mandatory_violation(judge, what, mutation):
    found = [v for v in judge(mutation) if v.urn.endswith(f"::{ACME_SA}")]
    assert [(v.policy, v.level) for v in found] == [(ROLES, "mandatory")], (what, found)
    assert IRSA in found[0].message and "acme" in found[0].message


def test_an_irsa_annotation_unknown_at_preview_is_an_advisory_never_silent(judge):
    found = judge(irsa(UNKNOWN))
    assert [(v.policy, v.level, v.urn.rsplit("::", 1)[-1]) for v in found] == [(ROLES, "advisory", ACME_SA)]
    assert IRSA in found[0].message


@pytest.mark.parametrize(
    "mutation",
    [
        irsa(lambda rs: role_arn(rs, "us-us-east-1-tenant-identity-role")),
        irsa(UNKNOWN, linked_to="us-us-east-1-tenant-identity-role"),
    ],
    ids=["by its ARN", "unknown, built from it"],
)
def test_an_irsa_annotation_naming_the_role_the_tenant_already_holds_passes(judge, mutation):
    assert [(v.policy, v.message) for v in judge(mutation)] == []


BACKUP_ROLE = "us-dr-us-east-1-backup-role"
COVERAGE, BOUNDED = "backup-plan-coverage", "tenant-data-access"
SELECTION = "us-dr-us-east-1-data"


def without_attachments(*policies: str):
    """The Backup role without the named AWS-managed policies the program attaches."""

    def mutate(resources):
        resources[:] = [r for r in resources if r["name"] not in {f"us-dr-us-east-1-backup-{p}" for p in policies}]

    return mutate


def backup_grant(kind: str, value):
    """Give the Backup role one more grant: an attachment of an AWS-managed policy, or an inline statement."""

    def mutate(resources):
        like = one(resources, "us-dr-us-east-1-backup-AWSBackupServiceRolePolicyForBackup")
        extra = copy.deepcopy(like)
        extra["name"] = "us-dr-us-east-1-backup-extra"
        if kind == "managed":
            extra["urn"] = like["urn"].rsplit("::", 1)[0] + "::us-dr-us-east-1-backup-extra"
            extra["inputs"]["policyArn"] = f"arn:aws:iam::aws:policy/{value}"
        else:
            extra["type"] = "aws:iam/rolePolicy:RolePolicy"
            extra["urn"] = like["urn"].rsplit("::", 2)[0] + "::aws:iam/rolePolicy:RolePolicy::us-dr-us-east-1-backup-extra"
            document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **value}]}
            extra["inputs"] = {"role": like["inputs"]["role"], "policy": json.dumps(document)}
        resources.append(extra)

    return mutate


def backup_managed_on_role(resources):
    """The same four managed policies, as the role's own `managedPolicyArns` instead of attachments."""
    arns = [r["inputs"]["policyArn"] for r in resources if r["name"].startswith("us-dr-us-east-1-backup-AWSBackup")]
    without_attachments(*(a.rsplit("/", 1)[-1] for a in arns))(resources)
    one(resources, BACKUP_ROLE, ":Role")["inputs"]["managedPolicyArns"] = arns


# (what, mutation, rule, the resource the finding is on, a text it names)
BACKUP_MISSES = [
    (
        "the role keeps only the restore policies",
        without_attachments("AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForS3Backup"),
        COVERAGE,
        SELECTION,
        "AWSBackupServiceRolePolicyForS3Backup",
    ),
    (
        "the role cannot back up S3 (the buckets it selects)",
        without_attachments("AWSBackupServiceRolePolicyForS3Backup"),
        COVERAGE,
        SELECTION,
        "Bucket",
    ),
    (
        "the role cannot back up RDS (the cluster it selects)",
        without_attachments("AWSBackupServiceRolePolicyForBackup"),
        COVERAGE,
        SELECTION,
        "Cluster",
    ),
    (
        "a broader managed policy: AmazonS3FullAccess",
        backup_grant("managed", "AmazonS3FullAccess"),
        BOUNDED,
        "",
        "AmazonS3FullAccess",
    ),
    (
        "a broader managed policy: AWSBackupFullAccess",
        backup_grant("managed", "AWSBackupFullAccess"),
        BOUNDED,
        "",
        "AWSBackupFullAccess",
    ),
    (
        "an inline read of every tenant prefix",
        backup_grant("inline", {"Action": "s3:GetObject", "Resource": "arn:aws:s3:::*/tenants/*"}),
        BOUNDED,
        "",
        "s3:GetObject",
    ),
    (
        "an inline decrypt of every key",
        backup_grant("inline", {"Action": "kms:Decrypt", "Resource": "*"}),
        BOUNDED,
        "",
        "kms:Decrypt on *",
    ),
]


@pytest.mark.parametrize("what,mutation,rule,on,named", BACKUP_MISSES, ids=[b[0] for b in BACKUP_MISSES])
def test_the_backup_role_with_less_than_its_selections_need_or_more_than_backup_does_is_a_mandatory_violation(
    judge, what, mutation, rule, on, named
):
    found = judge(mutation)
    assert {(v.policy, v.level) for v in found} >= {(rule, "mandatory")}, (what, found)
    mine = [v for v in found if v.policy == rule and (not on or v.urn.endswith(f"::{on}"))]
    assert mine and any(named in v.message for v in mine), [v.message for v in found]


def test_the_backup_role_with_its_policies_held_another_way_passes(judge):
    assert [(v.policy, v.message) for v in judge(backup_managed_on_role)] == []
