"""The access-side misses of the last security review, replayed on the us stack's real plan through
the analyzer: roles of the AWS services that act for the platform held to what each service does
(I16, I18, I20), CloudWatch Logs' documented key-policy statement (L03), replicas owned by another
account (R09), types reviewed for one use used otherwise (R14), and multi-Region replica keys judged
as keys. Each mutated plan must draw the named rule's mandatory violation; each legitimate twin and
the plan as rendered draw none."""

from __future__ import annotations

import copy
import json

import pytest

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture

ACCOUNT = "123456789012"
FOREIGN = "999988887777"
POOL_POLICY = "us-us-east-1-tenant-pool-data-tls-only"
POOL_REPLICATION = "us-dr-pool-replication-access"


def one(resources, name_part: str, type_part: str = "") -> dict:
    return next(r for r in resources if name_part in r["name"] and type_part in r["type"])


def bucket_of(resources, policy_name: str) -> str:
    return one(resources, policy_name, "bucketPolicy")["inputs"]["bucket"]


def pool(resources) -> str:
    return bucket_of(resources, POOL_POLICY)


def dr_pool(resources) -> str:
    return bucket_of(resources, "us-us-west-2-tenant-pool-data-tls-only")


def add_statement(name_part: str, statement, type_part: str = ""):
    """Add a statement (or one built from the plan's resources) to a resource's policy document."""

    def mutate(resources):
        holder = one(resources, name_part, type_part)
        doc = json.loads(holder["inputs"]["policy"])
        doc["Statement"].append(statement(resources) if callable(statement) else statement)
        holder["inputs"]["policy"] = json.dumps(doc)

    return mutate


def service_role(name: str, service: str, statements):
    """A role only `service` assumes (pinned to this account), with one inline policy of `statements`
    (a function of the plan's resources), beside the replication role in the plan."""

    def mutate(resources):
        like = one(resources, "us-dr-pool-repl-role", "aws:iam/role:Role")
        base = like["urn"].rsplit("::", 2)[0]
        trust = {
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        }
        role = {
            **copy.deepcopy(like),
            "name": name,
            "urn": f"{base}::aws:iam/role:Role::{name}",
            "inputs": {"name": name, "assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [trust]})},
            "dependencies": [],
            "propertyDependencies": {},
        }
        policy = {
            **copy.deepcopy(role),
            "type": "aws:iam/rolePolicy:RolePolicy",
            "name": f"{name}-access",
            "urn": f"{base}::aws:iam/rolePolicy:RolePolicy::{name}-access",
            "inputs": {"role": name, "policy": json.dumps({"Version": "2012-10-17", "Statement": statements(resources)})},
            "dependencies": [role["urn"]],
            "propertyDependencies": {"role": [role["urn"]]},
        }
        resources += [role, policy]

    return mutate


def attach(role_part: str, policy_arn: str):
    """Attach a managed policy to a role of the plan (beside its own attachments)."""

    def mutate(resources):
        role = one(resources, role_part, "aws:iam/role:Role")
        like = one(resources, "us-dr-us-east-1-backup-AWSBackupServiceRolePolicyForBackup", "rolePolicyAttachment")
        name = f"{role_part}-extra"
        resources.append(
            {
                **copy.deepcopy(like),
                "name": name,
                "urn": like["urn"].rsplit("::", 1)[0] + f"::{name}",
                "inputs": {"role": role["inputs"].get("name", role["name"]), "policyArn": policy_arn},
                "dependencies": [role["urn"]],
                "propertyDependencies": {"role": [role["urn"]]},
            }
        )

    return mutate


def batch_copy(destination):
    return service_role(
        "batch-copy",
        "batchoperations.s3.amazonaws.com",
        lambda rs: [
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": f"arn:aws:s3:::{pool(rs)}/*"},
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": destination(rs)},
        ],
    )


def fis_role(statements):
    return service_role("fis-extra", "fis.amazonaws.com", statements)


def replication_writes(resource, actions=("s3:ReplicateObject",)):
    return add_statement(
        POOL_REPLICATION,
        lambda rs: {"Sid": "Extra", "Effect": "Allow", "Action": list(actions), "Resource": resource(rs)},
        "rolePolicy",
    )


# attacks on the platform-service bound: (what, mutation, what the finding's path must name)
SERVICE_ROLE_ATTACKS = [
    (
        "I16: an S3 Batch Operations role reading the pool and writing to every bucket",
        batch_copy(lambda _: "arn:aws:s3:::*"),
        ["AWS service batchoperations.s3.amazonaws.com", "role batch-copy", "inline policy batch-copy-access", "arn:aws:s3:::*"],
    ),
    (
        "I18: a FIS role with ssm:SendCommand and s3:GetObject on *",
        fis_role(lambda _: [{"Effect": "Allow", "Action": ["ssm:SendCommand", "s3:GetObject"], "Resource": "*"}]),
        ["AWS service fis.amazonaws.com", "role fis-extra", "ssm:SendCommand", "s3:GetObject"],
    ),
    (
        "I20: the pool replication role given s3:ReplicateObject and s3:PutObject on every bucket",
        replication_writes(lambda _: "arn:aws:s3:::*", ("s3:ReplicateObject", "s3:PutObject")),
        ["AWS service s3.amazonaws.com", POOL_REPLICATION, "statement Extra", "s3:PutObject", "arn:aws:s3:::*"],
    ),
    (
        "the replication role writing replicas to any bucket whose name starts with 'us-'",
        replication_writes(lambda _: "arn:aws:s3:::us-*/*"),
        ["AWS service s3.amazonaws.com", "arn:aws:s3:::us-*/*"],
    ),
    (
        "the replication role writing replicas to a bucket the stack does not define",
        replication_writes(lambda _: "arn:aws:s3:::someone-elses-bucket/*"),
        ["bucket someone-elses-bucket, which this stack does not define"],
    ),
    (
        "the replication role encrypting replicas under another account's keys",
        replication_writes(lambda _: f"arn:aws:kms:us-west-2:{FOREIGN}:key/*", ("kms:Encrypt",)),
        [f"account {FOREIGN}"],
    ),
    (
        "the replication role with every action but IAM's (NotAction)",
        add_statement(POOL_REPLICATION, {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, "rolePolicy"),
        ["NotAction"],
    ),
    (
        "the backup role given AmazonS3FullAccess",
        attach("us-dr-us-east-1-backup-role", "arn:aws:iam::aws:policy/AmazonS3FullAccess"),
        ["AWS service backup.amazonaws.com", "AWS-managed policy arn:aws:iam::aws:policy/AmazonS3FullAccess"],
    ),
    (
        "a FIS role stopping instances of another region",
        fis_role(
            lambda _: [
                {"Effect": "Allow", "Action": "ec2:StopInstances", "Resource": f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/*"}
            ]
        ),
        ["region eu-west-1"],
    ),
]

SERVICE_ROLE_TWINS = [
    (
        "an S3 Batch Operations role copying the pool into the dr pool",
        batch_copy(lambda rs: f"arn:aws:s3:::{dr_pool(rs)}/*"),
    ),
    (
        "a FIS role rebooting this account's instances in the stack's region, describing on *",
        fis_role(
            lambda _: [
                {"Effect": "Allow", "Action": "ec2:RebootInstances", "Resource": f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/*"},
                {"Effect": "Allow", "Action": ["ec2:DescribeInstances", "tag:GetResources"], "Resource": "*"},
            ]
        ),
    ),
    (
        "the replication role also letting replicas change owner in the dr pool",
        replication_writes(lambda rs: f"arn:aws:s3:::{dr_pool(rs)}/*", ("s3:ObjectOwnerOverrideToBucketOwner",)),
    ),
    (
        "the silo replication role's documented pattern for every silo of the dr region",
        replication_writes(
            lambda rs: f"arn:aws:s3:::{one(rs, 'us-us-west-2-t-acme-silo-bucket', 's3/bucket')['inputs']['bucket'][:15]}*/*"
        ),
    ),
    (
        "the backup role given the documented S3 backup policy once more",
        attach("us-dr-us-east-1-backup-role", "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Backup"),
    ),
]

ACME_KEY = "us-us-east-1-t-acme-key"
LOGS_STATEMENT = {
    "Effect": "Allow",
    "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
    "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
    "Resource": "*",
}


def logs_statement(condition: dict | None) -> dict:
    return {**LOGS_STATEMENT, **({"Condition": condition} if condition else {})}


def logs_pinned_to(account: str, operator: str = "ArnLike") -> dict:
    return {operator: {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:us-east-1:{account}:log-group:/t-acme/*"}}


# L03: AWS's documented key-policy statement for encrypted log groups, and what it must not become
LOGS_KEY_ATTACKS = [
    ("CloudWatch Logs on acme's key for another account's log groups", logs_statement(logs_pinned_to(FOREIGN))),
    ("CloudWatch Logs on acme's key with no condition", logs_statement(None)),
    (
        "CloudWatch Logs on acme's key pinned to a log group of any account",
        logs_statement({"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:*:log-group:*"}}),
    ),
    (
        "acme's key letting any principal use it under a CloudWatch Logs encryption context",
        {**logs_statement(logs_pinned_to(ACCOUNT)), "Principal": {"AWS": "*"}},
    ),
]
LOGS_KEY_TWINS = [
    ("CloudWatch Logs on acme's key for this account's log groups (ArnLike)", logs_statement(logs_pinned_to(ACCOUNT))),
    (
        "CloudWatch Logs on acme's key for one log group of this account (ArnEquals)",
        logs_statement(
            {"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/t-acme/app"}}
        ),
    ),
]


def _shown(violations) -> list:
    return [(v.policy, v.level, v.message) for v in violations]


def test_the_rendered_plan_draws_no_violation(judge):
    assert _shown(judge()) == []


@pytest.mark.parametrize("what,mutation,path", SERVICE_ROLE_ATTACKS, ids=[a[0] for a in SERVICE_ROLE_ATTACKS])
def test_a_platform_service_role_outside_its_service_is_a_mandatory_violation_with_its_path(judge, what, mutation, path):
    found = [v for v in judge(mutation) if v.policy == "tenant-data-access" and "Path: AWS service" in v.message]
    assert found and all(v.level == "mandatory" and " must " in v.message for v in found), (what, _shown(judge(mutation)))
    text = " ".join(v.message for v in found)
    assert all(part in text for part in path), (what, path, text)


@pytest.mark.parametrize("what,mutation", SERVICE_ROLE_TWINS, ids=[t[0] for t in SERVICE_ROLE_TWINS])
def test_a_platform_service_role_within_its_service_passes(judge, what, mutation):
    assert _shown(judge(mutation)) == [], what


@pytest.mark.parametrize("what,statement", LOGS_KEY_ATTACKS, ids=[a[0] for a in LOGS_KEY_ATTACKS])
def test_cloudwatch_logs_on_a_tenant_key_not_pinned_to_this_account_is_a_mandatory_violation(judge, what, statement):
    found = judge(add_statement(ACME_KEY, statement, "aws:kms/key:Key"))
    rules = {v.policy for v in found if v.level == "mandatory"}
    assert {"tenant-data-access", "resource-policy-principals-in-account"} <= rules, (what, _shown(found))


@pytest.mark.parametrize("what,statement", LOGS_KEY_TWINS, ids=[t[0] for t in LOGS_KEY_TWINS])
def test_cloudwatch_logs_documented_key_statement_on_a_tenant_key_passes(judge, what, statement):
    assert _shown(judge(add_statement(ACME_KEY, statement, "aws:kms/key:Key"))) == [], what


def replicas_owned_by(account: str):
    """The pool's replication rule handing the replicas to `account` (review R09)."""

    def mutate(resources):
        rule = one(resources, "us-dr-pool-replication", "bucketReplicationConfig")["inputs"]["rules"][0]
        rule["destination"].update(account=account, accessControlTranslation={"owner": "Destination"})

    return mutate


def pool_inline_replication_to(account: str):
    """The pool bucket with an inline replication configuration (aws:s3/bucket's `replicationConfiguration`)."""

    def mutate(resources):
        config = one(resources, "us-dr-pool-replication", "bucketReplicationConfig")["inputs"]
        bucket = one(resources, "us-us-east-1-tenant-pool-data-bucket", "aws:s3/bucket:Bucket")
        destination = {**config["rules"][0]["destination"], "accountId": account}
        destination["accessControlTranslation"] = {"owner": "Destination"}
        bucket["inputs"]["replicationConfiguration"] = {
            "role": config["role"],
            "rules": [{"id": "inline", "status": "Enabled", "destination": destination}],
        }

    return mutate


def test_replicas_owned_by_a_foreign_account_are_a_mandatory_violation(judge):
    for mutation in (replicas_owned_by(FOREIGN), pool_inline_replication_to(FOREIGN)):
        found = [v for v in judge(mutation) if v.policy == "aws-data-path-destination-in-zone"]
        assert found and all(v.level == "mandatory" and FOREIGN in v.message for v in found), _shown(judge(mutation))


def test_replicas_owned_by_the_stacks_own_account_pass(judge):
    assert _shown(judge(replicas_owned_by(ACCOUNT))) == []


# --- types reviewed for one use (review R14, structural weakness 5) --------------------------------

ROTATOR = "us-db-app-credential-rotator"
PRIVATE_ROUTE = "us-us-east-1-net-private-0-default"


def copied(name_part: str, type_part: str, name: str, change):
    """A copy of a resource of the plan (same parent, provider and links) under `name`, changed by `change`."""

    def mutate(resources):
        like = one(resources, name_part, type_part)
        new = copy.deepcopy(like)
        new["name"] = name
        new["urn"] = like["urn"].rsplit("::", 1)[0] + f"::{name}"
        change(new)
        resources.append(new)

    return mutate


def sar_application(app: str):
    return copied(ROTATOR, "serverlessrepository", "sar-extra", lambda r: r["inputs"].update(applicationId=app))


def fis_changed(change):
    return lambda resources: change(one(resources, "us-dr-us-east-1-fis-database-failover", "fis/experimentTemplate"))


def route_to(field: str, value: str):
    def change(route):
        route["inputs"].pop("natGatewayId")
        route["propertyDependencies"].pop("natGatewayId")
        route["inputs"].update({field: value, "destinationCidrBlock": "10.99.0.0/16"})

    return copied(PRIVATE_ROUTE, "ec2/route", "route-extra", change)


REVIEWED_ATTACKS = [
    (
        "R14: a SAR application of another account beside the rotator",
        sar_application(f"arn:aws:serverlessrepo:eu-west-1:{FOREIGN}:applications/s3-exporter"),
        f"arn:aws:serverlessrepo:eu-west-1:{FOREIGN}:applications/s3-exporter",
    ),
    (
        "the rotator's stack deploying another AWS-published application",
        lambda resources: one(resources, ROTATOR, "serverlessrepository")["inputs"].update(
            applicationId="arn:aws:serverlessrepo:us-east-1:297356227824:applications/SecretsManagerRDSPostgreSQLRotationMultiUser"
        ),
        "SecretsManagerRDSPostgreSQLRotationMultiUser",
    ),
    (
        "a FIS experiment running an SSM document on the nodes",
        fis_changed(lambda t: t["inputs"]["actions"].append({"actionId": "aws:ssm:send-command", "name": "run"})),
        "aws:ssm:send-command",
    ),
    (
        "a FIS experiment selecting every data-tier subnet of the account (not this stack's)",
        fis_changed(lambda t: t["inputs"]["targets"][0].update(resourceTags=[{"key": "meridian:tier", "value": "data"}])),
        "none of which names this stack",
    ),
    (
        "a FIS experiment running as a role the stack does not define",
        fis_changed(
            lambda t: (
                t["inputs"].update(roleArn=f"arn:aws:iam::{ACCOUNT}:role/chaos-admin"),
                t["propertyDependencies"].pop("roleArn", None),
            )
        ),
        "chaos-admin",
    ),
    ("a route into a VPC peering connection", route_to("vpcPeeringConnectionId", "pcx-0123456789abcdef0"), "pcx-0123"),
    ("a route into a transit gateway", route_to("transitGatewayId", "tgw-0123456789abcdef0"), "tgw-0123"),
    ("a route to a NAT gateway the stack does not define", route_to("natGatewayId", "nat-0123456789abcdef0"), "nat-0123"),
    (
        "a route table's inline route into a transit gateway",
        lambda resources: one(resources, "us-us-east-1-net-private-0-rt", "routeTable:RouteTable")["inputs"].update(
            routes=[{"cidrBlock": "10.99.0.0/16", "transitGatewayId": "tgw-0123456789abcdef0"}]
        ),
        "routes.0.transitGatewayId",
    ),
]


def set_unlinked(name_part: str, type_part: str, path: str, value):
    """inputs.<path> of a resource set to `value` (a literal: its link to what it was built from dropped)."""

    def mutate(resources):
        r = one(resources, name_part, type_part)
        node = r["inputs"]
        *head, last = path.split(".")
        for step in head:
            node = node.setdefault(step, {})
        node[last] = value
        r["propertyDependencies"].pop(path.split(".", 1)[0], None)

    return mutate


REVIEWED_ATTACKS += [
    (
        "an Elastic IP on an instance",
        set_unlinked("us-us-east-1-net-nat-0-eip", "ec2/eip", "instance", "i-0123456789abcdef0"),
        "instance",
    ),
    (
        "the cluster's OIDC provider trusting another issuer",
        set_unlinked("us-us-east-1-eks-oidc", "openIdConnectProvider", "url", "https://token.actions.githubusercontent.com"),
        "token.actions.githubusercontent.com",
    ),
    (
        "the database secret rotated by a function outside the stack",
        set_unlinked(
            "us-db-app-rotation-schedule", "secretRotation", "rotationLambdaArn", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:x"
        ),
        "function:x",
    ),
]

# Reviewed once by type, now judged by their own rules (policies/k8splatform.py, exposure.py): the same
# attacks must still be mandatory violations, of the rule that owns the type.
RULE_ATTACKS = [
    (
        "a third-party EKS add-on",
        set_unlinked("us-us-east-1-eks-coredns", "eks/addon", "addonName", "acme-mesh"),
        "eks-addon-reviewed",
    ),
    (
        "a TargetGroupBinding to a target group outside the stack",
        set_unlinked(
            "us-us-east-1-api-stable-binding",
            "TargetGroupBinding",
            "spec.targetGroupARN",
            f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/other/0123456789abcdef",
        ),
        "k8s-target-group-binding-platform-only",
    ),
    (
        "a Lambda permission letting any principal invoke the cap enforcer",
        set_unlinked("us-cost-enforcer-from-alerts", "lambda/permission", "principal", "*"),
        "resource-policy-principals-in-account",
    ),
    (
        "a Lambda permission for SNS with no source",
        lambda resources: (
            one(resources, "us-cost-enforcer-from-alerts", "lambda/permission")["inputs"].pop("sourceArn"),
            one(resources, "us-cost-enforcer-from-alerts", "lambda/permission")["propertyDependencies"].pop("sourceArn"),
        ),
        "resource-policy-principals-in-account",
    ),
]

REVIEWED_TWINS = [
    (
        "the failover experiment also waiting a minute",
        fis_changed(
            lambda t: t["inputs"]["actions"].append(
                {"actionId": "aws:fis:wait", "name": "settle", "parameters": [{"key": "duration", "value": "PT1M"}]}
            )
        ),
    ),
    (
        "a second route to the stack's own NAT gateway",
        copied(PRIVATE_ROUTE, "ec2/route", "route-extra", lambda r: r["inputs"].update(destinationCidrBlock="10.99.0.0/16")),
    ),
]


@pytest.mark.parametrize("what,mutation,named", REVIEWED_ATTACKS, ids=[a[0] for a in REVIEWED_ATTACKS])
def test_a_type_reviewed_for_one_use_used_otherwise_is_a_mandatory_violation_naming_the_value(judge, what, mutation, named):
    found = [v for v in judge(mutation) if v.policy == "pack-resource-type-reviewed"]
    assert found and all(v.level == "mandatory" and " must " in v.message for v in found), (what, _shown(judge(mutation)))
    assert any(named in v.message for v in found), (what, _shown(found))


@pytest.mark.parametrize("what,mutation,rule", RULE_ATTACKS, ids=[a[0] for a in RULE_ATTACKS])
def test_a_type_once_reviewed_now_judged_by_its_rule_still_fails_there(judge, what, mutation, rule):
    found = [v for v in judge(mutation) if v.policy == rule]
    assert found and all(v.level == "mandatory" for v in found), (what, _shown(judge(mutation)))


@pytest.mark.parametrize("what,mutation", REVIEWED_TWINS, ids=[t[0] for t in REVIEWED_TWINS])
def test_a_type_reviewed_for_one_use_used_that_way_passes(judge, what, mutation):
    assert _shown(judge(mutation)) == [], what


def test_a_sar_application_unknown_at_preview_is_an_advisory_naming_it(judge):
    from .policydata import UNKNOWN

    found = judge(lambda resources: one(resources, ROTATOR, "serverlessrepository")["inputs"].update(applicationId=UNKNOWN))
    rule = [(v.level, v.message) for v in found if v.policy == "pack-resource-type-reviewed"]
    assert rule and all(level == "advisory" and "applicationId" in m for level, m in rule), rule


# --- multi-Region replica keys are keys (item 5) ---------------------------------------------------


def replica_of(tenant: str, region: str = "us-west-2", name: str = "", **inputs):
    """A replica (`aws:kms/replicaKey`) of `tenant`'s us-east-1 key in `region`, its primary made
    multi-Region; the replica's inputs are the primary's policy, window and tags unless given."""
    name = name or f"{tenant}-key-replica"

    def mutate(resources):
        primary = one(resources, f"us-us-east-1-t-{tenant}-key", "aws:kms/key:Key")
        primary["inputs"]["multiRegion"] = True
        provider = one(resources, f"us-us-west-2-t-{tenant}-key", "aws:kms/key:Key")["provider"]
        arn = one(resources, f"us-us-east-1-t-{tenant}-key-alias", "kms/alias")["inputs"]["targetKeyId"]
        replica = copy.deepcopy(primary)
        replica.update(
            type="aws:kms/replicaKey:ReplicaKey",
            name=name,
            urn=primary["urn"].rsplit("::", 2)[0] + f"::aws:kms/replicaKey:ReplicaKey::{name}",
            provider=provider.rsplit("::", 1)[0] + f"::{region}",
            inputs={
                "primaryKeyArn": arn,
                "policy": primary["inputs"]["policy"],
                "deletionWindowInDays": 30,
                "tags": dict(primary["inputs"]["tags"]),
                **inputs,
            },
            dependencies=[primary["urn"]],
            propertyDependencies={"primaryKeyArn": [primary["urn"]]},
        )
        resources.append(replica)

    return mutate


def replica_policy_with(statement: dict):
    def policy(resources) -> str:
        doc = json.loads(one(resources, "us-us-east-1-t-acme-key", "aws:kms/key:Key")["inputs"]["policy"])
        doc["Statement"].append(statement)
        return json.dumps(doc)

    def mutate(resources):
        replica_of("acme")(resources)
        one(resources, "acme-key-replica", "replicaKey")["inputs"]["policy"] = policy(resources)

    return mutate


def silo_under_replica_of(tenant: str):
    """acme's dr silo bucket encrypted under the us-west-2 replica of `tenant`'s key (value and link)."""

    def mutate(resources):
        replica_of(tenant)(resources)
        replica = one(resources, f"{tenant}-key-replica", "replicaKey")
        sse = one(resources, "us-us-west-2-t-acme-silo-sse", "ServerSideEncryption")
        arn = replica["inputs"]["primaryKeyArn"].replace(":us-east-1:", ":us-west-2:")
        sse["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] = arn
        sse["propertyDependencies"]["rules"] = [replica["urn"]]

    return mutate


def replica_tagged(namespace: str):
    def mutate(resources):
        replica_of("acme")(resources)
        one(resources, "acme-key-replica", "replicaKey")["inputs"]["tags"]["meridian:namespace"] = namespace

    return mutate


REPLICA_ATTACKS = [
    ("a replica key created disabled", replica_of("acme", enabled=False), "kms-key-rotation-and-policy"),
    ("a replica key deletable after 7 days", replica_of("acme", deletionWindowInDays=7), "kms-key-rotation-and-policy"),
    (
        "a replica key whose policy lets anyone use it",
        replica_policy_with({"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"}),
        "kms-key-rotation-and-policy",
    ),
    (
        "a replica of acme's key whose policy lets another account decrypt",
        replica_policy_with(
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{FOREIGN}:root"}, "Action": "kms:Decrypt", "Resource": "*"}
        ),
        "resource-policy-principals-in-account",
    ),
    (
        "a replica of acme's key whose policy lets another account decrypt (who reaches acme's data)",
        replica_policy_with(
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{FOREIGN}:root"}, "Action": "kms:Decrypt", "Resource": "*"}
        ),
        "tenant-data-access",
    ),
    ("a replica of acme's key in eu-west-1", replica_of("acme", region="eu-west-1"), "aws-replication-destination-allowed"),
    ("acme's dr silo under a replica of globex's key", silo_under_replica_of("globex"), "s3-bucket-encrypted"),
    ("a replica of acme's key tagged with globex's namespace", replica_tagged("t-globex"), "tenant-role-isolated"),
]


@pytest.mark.parametrize("what,mutation,rule", REPLICA_ATTACKS, ids=[a[0] for a in REPLICA_ATTACKS])
def test_each_key_rule_judges_a_replica_key_as_a_key(judge, what, mutation, rule):
    found = [v for v in judge(mutation) if v.policy == rule]
    assert found and all(v.level == "mandatory" for v in found), (what, _shown(judge(mutation)))
    if rule != "tenant-role-isolated":  # that one reports on the role that relies on the tag
        assert any("key-replica" in (v.urn or "") or "key-replica" in v.message for v in found), (what, _shown(found))


def test_acme_data_under_a_replica_of_acmes_own_key_passes_the_key_rules(judge):
    """A multi-Region primary is refused by kms-key-rotation-and-policy; the replica itself, in the
    zone, with the primary's policy and tags, and acme's silo under it, draw nothing else."""
    found = judge(silo_under_replica_of("acme"))
    assert {v.policy for v in found} == {"kms-key-rotation-and-policy"}, _shown(found)
    assert all("multi-Region" in v.message and "key-replica" not in (v.urn or "") for v in found), _shown(found)
