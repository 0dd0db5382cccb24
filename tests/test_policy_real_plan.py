"""Attacks from the security review, replayed on the us stack's real plan through the analyzer: the
runtime backstops removed or disarmed, a role of a service that runs code reading tenant data, and
the access-side bypasses the last review left open (pod identity roles the stack does not define,
canonical users, unpinned service principals, the platform's secret, grants to roles outside the
plan). Each mutated plan must draw the named rule's mandatory violation; each legitimate twin and
the plan as rendered draw none."""

from __future__ import annotations

import copy
import json

import pytest

from .policydata import UNKNOWN

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture


def one(resources, name_part: str, type_part: str = "") -> dict:
    return next(r for r in resources if name_part in r["name"] and type_part in r["type"])


def remove_backstops(resources):
    kinds = ("accountPublicAccessBlock", "accessanalyzer", "ValidatingAdmissionPolicy")
    resources[:] = [r for r in resources if not any(k in r["type"] for k in kinds)]


def pab_off(resources):
    one(resources, "", "accountPublicAccessBlock")["inputs"].update({"blockPublicPolicy": False, "restrictPublicBuckets": False})


def binding_audit_only(resources):
    one(resources, "us-us-east-1-admission-meridian-tenant-workloads-binding")["inputs"]["spec"]["validationActions"] = ["Audit"]


def binding_narrowed(resources):
    spec = one(resources, "us-us-east-1-admission-meridian-tenant-workloads-binding")["inputs"]["spec"]
    spec["matchResources"] = {"namespaceSelector": {"matchLabels": {"meridian.io/tenant": "none"}}}


def policy_fails_open(resources):
    policy = next(
        r
        for r in resources
        if r["name"] == "us-us-east-1-admission-meridian-tenant-role-bindings"
        and r["type"].endswith(":ValidatingAdmissionPolicy")
    )
    policy["inputs"]["spec"]["failurePolicy"] = "Ignore"


def ec2_role_reads_tenant_data(resources):
    like = one(resources, "tenant-pool-data-tls-only")
    trust = {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
    role = copy.deepcopy(like)
    base = like["urn"].rsplit("::", 2)[0]
    role.update(
        type="aws:iam/role:Role",
        name="box-role",
        urn=f"{base}::aws:iam/role:Role::box-role",
        inputs={"name": "box-role", "assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [trust]})},
        dependencies=[],
        propertyDependencies={},
    )
    attach = copy.deepcopy(role)
    attach.update(
        type="aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        name="box-ro",
        urn=f"{base}::aws:iam/rolePolicyAttachment:RolePolicyAttachment::box-ro",
        inputs={"role": "box-role", "policyArn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"},
        dependencies=[role["urn"]],
        propertyDependencies={"role": [role["urn"]]},
    )
    resources += [role, attach]


def _tenant_role_entry(**inputs):
    def mutate(resources):
        entry = copy.deepcopy(one(resources, "", "aws:eks/accessEntry:AccessEntry"))
        entry["name"] += "-tenant"
        entry["urn"] += "-tenant"
        role = one(resources, "us-us-east-1-tenant-identity-role", "aws:iam/role:Role")
        entry["inputs"] = {
            **entry["inputs"],
            "principalArn": f"arn:aws:iam::123456789012:role/meridian/tenants/{role['inputs'].get('name', role['name'])}",
            **inputs,
        }
        resources.append(entry)

    return mutate


def _inputs(name_part: str, type_part: str, path: str, value):
    """Set inputs.<path> of the first resource whose name and type contain the given parts."""

    def mutate(resources):
        node = one(resources, name_part, type_part)["inputs"]
        *head, last = path.split(".")
        for step in head:
            node = node[int(step)] if isinstance(node, list) else node.setdefault(step, {})
        node[int(last) if isinstance(node, list) else last] = value

    return mutate


ACCOUNT = "123456789012"
POOL_POLICY = "us-us-east-1-tenant-pool-data-tls-only"


def _pool_bucket(resources) -> str:
    return one(resources, POOL_POLICY, "bucketPolicy")["inputs"]["bucket"]


def add_statement(name_part: str, statement, type_part: str = ""):
    """Add a statement (or one built from the plan's resources) to a resource's policy document."""

    def mutate(resources):
        holder = one(resources, name_part, type_part)
        doc = json.loads(holder["inputs"]["policy"])
        doc["Statement"].append(statement(resources) if callable(statement) else statement)
        holder["inputs"]["policy"] = json.dumps(doc)

    return mutate


def no_alb_logs(resources):
    """The us-east-1 ALB without `accessLogs`, and every resource of its log bucket gone (review E07b)."""
    one(resources, "us-use1-lb-api", "loadBalancer")["inputs"].pop("accessLogs")
    resources[:] = [r for r in resources if "us-use1-lb-logs" not in r["name"]]
    for r in resources:
        r["dependencies"] = [d for d in r.get("dependencies", []) if "us-use1-lb-logs" not in d]
        for prop, deps in (r.get("propertyDependencies") or {}).items():
            r["propertyDependencies"][prop] = [d for d in deps if "us-use1-lb-logs" not in d]


def sse_under(bucket_sse: str, key: str, key_value):
    """Point a bucket's default encryption at another key of the plan: the value and the link (review E02, E03)."""

    def mutate(resources):
        sse = one(resources, bucket_sse, "ServerSideEncryption")
        sse["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] = key_value(resources)
        sse["propertyDependencies"]["rules"] = [one(resources, key, "aws:kms/key:Key")["urn"]]

    return mutate


def _alias_target(alias: str):
    return lambda resources: one(resources, alias, "kms/alias")["inputs"]["targetKeyId"]


def _sse_key(bucket_sse: str):
    return lambda resources: one(resources, bucket_sse, "ServerSideEncryption")["inputs"]["rules"][0][
        "applyServerSideEncryptionByDefault"
    ]["kmsMasterKeyId"]


FOREIGN = "999988887777"
PROVIDER = "pulumi:providers:aws"

# the data-side bypasses (tests/policydata/dataside.py), on the real plan
DATA_SIDE_ATTACKS = [
    (
        "the stable api Service as a LoadBalancer",
        _inputs("api-stable", "core/v1:Service", "spec.type", "LoadBalancer"),
        "k8s-service-internal-only",
    ),
    (
        "the controller chart at an unreviewed version",
        _inputs("lb-controller-chart", "helm.sh", "version", "1.4.0"),
        "helm-release-allowlisted",
    ),
    (
        "an S3 endpoint override into eu-west-1 (provider inputs as JSON text)",
        _inputs("us-east-1", PROVIDER, "endpoints", json.dumps([{"s3": "https://s3.eu-west-1.amazonaws.com"}])),
        "provider-account-and-endpoints-in-zone",
    ),
    (
        "the dr provider assuming a role of another account",
        _inputs("us-west-2", PROVIDER, "assumeRoles", json.dumps([{"roleArn": f"arn:aws:iam::{FOREIGN}:role/deployer"}])),
        "provider-account-and-endpoints-in-zone",
    ),
    (
        "the ECR endpoint to eu-west-1 over cross-region PrivateLink",
        _inputs("ecr-api-endpoint", "vpcEndpoint", "serviceRegion", "eu-west-1"),
        "aws-data-path-destination-in-zone",
    ),
    (
        "the tenant pool's SSE on a foreign account's key",
        _inputs(
            "tenant-pool-data",
            "ServerSideEncryption",
            "rules.0.applyServerSideEncryptionByDefault.kmsMasterKeyId",
            f"arn:aws:kms:us-east-1:{FOREIGN}:key/0000-theirs",
        ),
        "s3-bucket-encrypted",
    ),
    ("acme's key created disabled", _inputs("t-acme-key", "kms/key", "isEnabled", False), "kms-key-rotation-and-policy"),
    (
        "acme's key deletable after 7 days",
        _inputs("t-acme-key", "kms/key", "deletionWindowInDays", 7),
        "kms-key-rotation-and-policy",
    ),
    (
        "acme's key made multi-Region (replicas creatable in any region)",
        _inputs("t-acme-key", "kms/key", "multiRegion", True),
        "kms-key-rotation-and-policy",
    ),
    (
        "acme's namespace enforcing only the baseline Pod Security Standard",
        lambda resources: one(resources, "t-acme-ns", "core/v1:Namespace")["inputs"]["metadata"]["labels"].update(
            {"pod-security.kubernetes.io/enforce": "baseline"}
        ),
        "tenant-namespace-guarded",
    ),
    (
        "acme's namespace without a Pod Security label",
        lambda resources: one(resources, "t-acme-ns", "core/v1:Namespace")["inputs"]["metadata"]["labels"].pop(
            "pod-security.kubernetes.io/enforce"
        ),
        "tenant-namespace-guarded",
    ),
    (
        "the public ALB's access logging turned off",
        _inputs("us-use1-lb-api", "loadBalancer", "accessLogs.enabled", False),
        "runtime-backstops-enforced",
    ),
    ("the public ALB's access logging and its bucket removed", no_alb_logs, "runtime-backstops-enforced"),
    (
        "acme's silo bucket encrypted under globex's key",
        sse_under("us-us-east-1-t-acme-silo-sse", "us-us-east-1-t-globex-key", _alias_target("us-us-east-1-t-globex-key-alias")),
        "s3-bucket-encrypted",
    ),
    (
        "acme's silo bucket encrypted under the shared pool key",
        sse_under("us-us-east-1-t-acme-silo-sse", "us-us-east-1-tenant-pool-key", _sse_key("us-us-east-1-tenant-pool-data-sse")),
        "s3-bucket-encrypted",
    ),
    (
        "the us-east-1 pool bucket encrypted under the us-west-2 pool key",
        sse_under(
            "us-us-east-1-tenant-pool-data-sse", "us-us-west-2-tenant-pool-key", _sse_key("us-us-west-2-tenant-pool-data-sse")
        ),
        "s3-bucket-encrypted",
    ),
    (
        "the Data API on the writer cluster",
        _inputs("", "rds/cluster:Cluster", "enableHttpEndpoint", True),
        "rds-data-api-disabled",
    ),
    (
        "the backup rule scheduled on 31 February",
        _inputs("", "backup/plan", "rules.0.schedule", "cron(0 0 31 2 ? *)"),
        "backup-plan-coverage",
    ),
    (
        "the cap enforcer's subscription to the alert topic turned into e-mail",
        _inputs("alerts-to-enforcer", "topicSubscription", "protocol", "email"),
        "budgets-limit-and-cap-enforced",
    ),
    (
        "the cap enforcer's subscription removed",
        lambda resources: resources.remove(one(resources, "alerts-to-enforcer", "topicSubscription")),
        "budgets-limit-and-cap-enforced",
    ),
]

# their legitimate twins: the whole pack still passes
DATA_SIDE_TWINS = [
    (
        "a FIPS S3 endpoint in the stack's region",
        _inputs("us-east-1", PROVIDER, "endpoints", json.dumps([{"s3": "https://s3-fips.us-east-1.amazonaws.com"}])),
    ),
    (
        "the dr provider assuming a deploy role of the stack's account",
        _inputs(
            "us-west-2", PROVIDER, "assumeRoles", json.dumps([{"roleArn": "arn:aws:iam::123456789012:role/meridian-deploy"}])
        ),
    ),
    ("the ECR endpoint served from the dr region", _inputs("ecr-api-endpoint", "vpcEndpoint", "serviceRegion", "us-west-2")),
    ("snapshots every 6 hours with continuous backup", _inputs("", "backup/plan", "rules.0.schedule", "cron(0 */6 ? * * *)")),
    ("the Data API written out as off", _inputs("", "rds/cluster:Cluster", "enableHttpEndpoint", False)),
    ("acme's key written out as single-Region", _inputs("t-acme-key", "kms/key", "multiRegion", False)),
    (
        "acme's silo bucket encrypted under acme's key named by its alias's target",
        sse_under("us-us-east-1-t-acme-silo-sse", "us-us-east-1-t-acme-key", _alias_target("us-us-east-1-t-acme-key-alias")),
    ),
    ("the public ALB's access logs under another prefix", _inputs("us-use1-lb-api", "loadBalancer", "accessLogs.prefix", "edge")),
    (
        "acme's namespace also warning and auditing at restricted",
        lambda resources: one(resources, "t-acme-ns", "core/v1:Namespace")["inputs"]["metadata"]["labels"].update(
            {"pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted"}
        ),
    ),
]


def pool_statement(principal: dict, action: str = "s3:GetObject", condition: dict | None = None):
    def build(resources):
        st = {
            "Sid": "Added",
            "Effect": "Allow",
            "Principal": principal,
            "Action": action,
            "Resource": f"arn:aws:s3:::{_pool_bucket(resources)}/*",
        }
        return {**st, "Condition": condition} if condition else st

    return add_statement(POOL_POLICY, build, "bucketPolicy")


def target_role(arn: str):
    def mutate(resources):
        one(resources, "us-us-east-1-t-acme-identity", "podIdentityAssociation")["inputs"]["targetRoleArn"] = arn

    return mutate


def _role_policy(resources, name: str, role: str, statement: dict, deps: list[str]) -> dict:
    like = one(resources, "us-us-east-1-tenant-identity-data-access", "aws:iam/rolePolicy:RolePolicy")
    component = one(resources, "us-us-east-1-tenant-identity", "TenantIdentity")
    holder = copy.deepcopy(like)
    holder.update(
        parent=component["urn"],  # not under a role: `role` alone says whose it is
        name=name,
        urn=like["urn"].rsplit("::", 1)[0] + f"::{name}",
        inputs={"role": role, "policy": json.dumps({"Version": "2012-10-17", "Statement": [statement]})},
        dependencies=deps,
        propertyDependencies={"role": deps} if deps else {},
    )
    return holder


def tenant_role_reads_db_secret(resources):
    role = one(resources, "us-us-east-1-tenant-identity-role", "aws:iam/role:Role")
    secret_arn = next(
        json.loads(r["inputs"]["policy"])["Statement"][0]["Resource"]
        for r in resources
        if r["name"] == "us-us-east-1-tenant-identity-broker-db-credential"
    )
    statement = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn}
    name = one(resources, "us-us-east-1-tenant-identity-data-access", "aws:iam/rolePolicy:RolePolicy")["inputs"]["role"]
    resources.append(_role_policy(resources, "tenant-reads-db-secret", name, statement, [role["urn"]]))


def outside_role_reads_pool(resources):
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{_pool_bucket(resources)}/*"}
    resources.append(_role_policy(resources, "export-reads-pool", "data-export", statement, []))


def budgets_publish_unpinned(resources):
    holder = one(resources, "us-cost-alerts-policy", "topicPolicy")
    doc = json.loads(holder["inputs"]["policy"])
    for st in doc["Statement"]:
        st.pop("Condition", None)
    holder["inputs"]["policy"] = json.dumps(doc)


ASSUME_ANY = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}
DATA_ACCESS = "us-us-east-1-tenant-identity-data-access"
BROKER_ASSUME = "us-us-east-1-tenant-identity-broker-assume"


def tenant_role_assumes_any_role(resources):
    role = one(resources, "us-us-east-1-tenant-identity-role", "aws:iam/role:Role")
    name = one(resources, DATA_ACCESS, "aws:iam/rolePolicy:RolePolicy")["inputs"]["role"]
    resources.append(_role_policy(resources, "tenant-assumes-any", name, ASSUME_ANY, [role["urn"]]))


def broker_assumes(resource):
    """The broker's assume policy on another Resource (a function of the one the stack renders)."""

    def mutate(resources):
        holder = one(resources, BROKER_ASSUME, "aws:iam/rolePolicy:RolePolicy")
        doc = json.loads(holder["inputs"]["policy"])
        doc["Statement"][0]["Resource"] = resource(doc["Statement"][0]["Resource"])
        holder["inputs"]["policy"] = json.dumps(doc)

    return mutate


def extra_pool_statement(resources):
    holder = one(resources, DATA_ACCESS, "aws:iam/rolePolicy:RolePolicy")
    doc = json.loads(holder["inputs"]["policy"])
    doc["Statement"].append({**doc["Statement"][0], "Sid": "PoolObjectsAgain", "Action": "s3:GetObjectTagging"})
    holder["inputs"]["policy"] = json.dumps(doc)


def added(type_: str, name: str, inputs):
    """A new resource beside the pool's policy (same provider and parent); `inputs` may be built from the plan."""

    def mutate(resources):
        like = one(resources, POOL_POLICY, "bucketPolicy")
        resources.append(
            {
                **copy.deepcopy(like),
                "type": type_,
                "name": name,
                "urn": like["urn"].rsplit("::", 2)[0] + f"::{type_}::{name}",
                "inputs": inputs(resources) if callable(inputs) else inputs,
                "dependencies": [],
                "propertyDependencies": {},
            }
        )

    return mutate


def acme_ingress_from(block: dict):
    def mutate(resources):
        spec = one(resources, "us-us-east-1-t-acme-allow-needed", "NetworkPolicy")["inputs"]["spec"]
        spec["ingress"].append({"from": [{"ipBlock": block}]})

    return mutate


NODES_LT = "us-us-east-1-eks-nodes-lt"


def node_group_without_template(resources):
    group = one(resources, "us-us-east-1-eks-nodes", "aws:eks/nodeGroup:NodeGroup")
    group["inputs"].pop("launchTemplate")
    group["propertyDependencies"].pop("launchTemplate")


ATTACKS = [
    (
        "an access entry for the tenant role in system:masters",
        _tenant_role_entry(kubernetesGroups=["system:masters"]),
        "eks-access-platform-roles-only",
    ),
    ("an EC2_LINUX access entry for the tenant role", _tenant_role_entry(type="EC2_LINUX"), "eks-access-platform-roles-only"),
    ("every runtime backstop removed", remove_backstops, "runtime-backstops-enforced"),
    ("the account public access block turned off", pab_off, "runtime-backstops-enforced"),
    ("the tenant workloads' admission binding on Audit", binding_audit_only, "runtime-backstops-enforced"),
    ("the admission binding narrowed to no namespace", binding_narrowed, "runtime-backstops-enforced"),
    ("an admission policy failing open", policy_fails_open, "runtime-backstops-enforced"),
    ("an EC2 role with AmazonS3ReadOnlyAccess", ec2_role_reads_tenant_data, "tenant-data-access"),
    *DATA_SIDE_ATTACKS,
    (
        "acme's pod identity association chaining to another account's role",
        target_role("arn:aws:iam::444455556666:role/exfil"),
        "tenant-data-access",
    ),
    (
        "acme's pod identity association chaining to a role of this account outside the plan",
        target_role(f"arn:aws:iam::{ACCOUNT}:role/ops-admin"),
        "tenant-data-access",
    ),
    (
        "the pool bucket policy granting a CanonicalUser",
        pool_statement({"CanonicalUser": "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"}),
        "tenant-data-access",
    ),
    (
        # not s3:PutObject: the pool's own `OnlyTenantSessionsWriteTenantData` Deny refuses a write under tenants/ to a
        # caller without the tenant tags (`StringNotLike` on an absent tag is true in AWS), a service included
        "the pool bucket policy letting log delivery read with no source condition",
        pool_statement({"Service": "delivery.logs.amazonaws.com"}, "s3:GetObject"),
        "tenant-data-access",
    ),
    (
        "acme's key policy letting CloudWatch Logs use it with no source condition",
        add_statement(
            "us-us-east-1-t-acme-key",
            {"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}, "Action": "kms:Decrypt", "Resource": "*"},
            "aws:kms/key:Key",
        ),
        "tenant-data-access",
    ),
    ("the tenant role reading the platform's database secret", tenant_role_reads_db_secret, "tenant-data-access"),
    ("a RolePolicy reading the pool for a role outside the plan", outside_role_reads_pool, "tenant-data-access"),
    (
        "the shared tenant role given sts:AssumeRole on * by a new RolePolicy",
        tenant_role_assumes_any_role,
        "tenant-role-isolated",
    ),
    (
        "the shared tenant role's data-access policy given sts:AssumeRole on *",
        add_statement(DATA_ACCESS, ASSUME_ANY, "aws:iam/rolePolicy:RolePolicy"),
        "tenant-role-isolated",
    ),
    ("the broker allowed to assume any role", broker_assumes(lambda _: "*"), "tenant-role-isolated"),
    (
        "the broker allowed to assume every role under the tenant path",
        broker_assumes(lambda arn: arn.rsplit("/", 1)[0] + "/*"),
        "tenant-role-isolated",
    ),
    (
        "the broker allowed to assume a role of this account outside the plan",
        broker_assumes(lambda _: f"arn:aws:iam::{ACCOUNT}:role/ops-admin"),
        "tenant-role-isolated",
    ),
    (
        "acme's ingress from an ipBlock on the whole VPC (every tenant's pods)",
        acme_ingress_from({"cidr": "10.10.0.0/16"}),
        "tenant-namespace-guarded",
    ),
    (
        "acme's ingress from the VPC excepting all but one pod subnet",
        acme_ingress_from({"cidr": "10.10.0.0/16", "except": ["10.10.0.0/19", "10.10.32.0/19"]}),
        "tenant-namespace-guarded",
    ),
    (
        "acme's ingress from a /24 inside a pod subnet",
        acme_ingress_from({"cidr": "10.10.33.0/24"}),
        "tenant-namespace-guarded",
    ),
    (
        "the nodes' launch template with hop limit 2 (pods reach the node role through IMDSv2)",
        _inputs(NODES_LT, "launchTemplate", "metadataOptions.httpPutResponseHopLimit", 2),
        "eks-node-metadata-pods-blocked",
    ),
    (
        "the nodes' launch template with IMDSv1 allowed",
        _inputs(NODES_LT, "launchTemplate", "metadataOptions.httpTokens", "optional"),
        "eks-node-metadata-pods-blocked",
    ),
    (
        "the nodes' launch template without metadata options (the AMI decides)",
        lambda resources: one(resources, NODES_LT, "launchTemplate")["inputs"].pop("metadataOptions"),
        "eks-node-metadata-pods-blocked",
    ),
    ("a node group without a launch template of the stack", node_group_without_template, "eks-node-metadata-pods-blocked"),
    (
        "the budget alerts topic letting Budgets publish for any account",
        budgets_publish_unpinned,
        "resource-policy-principals-in-account",
    ),
]

TWINS = [
    ("acme's ingress from the public subnets (the load balancer's addresses)", acme_ingress_from({"cidr": "10.10.192.0/18"})),
    (
        "acme's ingress from the VPC excepting every pod subnet",
        acme_ingress_from({"cidr": "10.10.0.0/16", "except": ["10.10.0.0/19", "10.10.32.0/19", "10.10.64.0/19"]}),
    ),
    (
        "a CloudWatch dashboard",
        added("aws:cloudwatch/dashboard:Dashboard", "api-dash", {"dashboardName": "api", "dashboardBody": '{"widgets": []}'}),
    ),
    (
        "an S3 Intelligent-Tiering configuration on the pool",
        added(
            "aws:s3/bucketIntelligentTieringConfiguration:BucketIntelligentTieringConfiguration",
            "pool-tiering",
            lambda resources: {
                "bucket": _pool_bucket(resources),
                "name": "all",
                "status": "Enabled",
                "tierings": [{"accessTier": "ARCHIVE_ACCESS", "days": 125}],
            },
        ),
    ),
    ("the shared tenant role with one more S3 statement under the namespace prefix", extra_pool_statement),
    ("the broker's assume policy naming the tenant role in a list", broker_assumes(lambda arn: [arn])),
    (
        "the nodes' launch template with the metadata endpoint disabled",
        _inputs(NODES_LT, "launchTemplate", "metadataOptions.httpEndpoint", "disabled"),
    ),
    (
        "the pool bucket policy letting log delivery write for this account's log groups",
        pool_statement(
            {"Service": "delivery.logs.amazonaws.com"},
            "s3:PutObject",
            {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": f"arn:aws:logs:us-east-1:{ACCOUNT}:*"}},
        ),
    ),
    (
        "acme's key policy letting CloudWatch Logs use it for this account",
        add_statement(
            "us-us-east-1-t-acme-key",
            {
                "Effect": "Allow",
                "Principal": {"Service": "logs.us-east-1.amazonaws.com"},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
            },
            "aws:kms/key:Key",
        ),
    ),
]


def test_the_rendered_plan_draws_no_violation(judge):
    assert [(v.policy, v.message) for v in judge()] == []


@pytest.mark.parametrize("what,mutation,rule", ATTACKS, ids=[a[0] for a in ATTACKS])
def test_each_attack_on_the_real_plan_is_a_mandatory_violation(judge, what, mutation, rule):
    found = [v for v in judge(mutation) if v.policy == rule]
    assert found and all(v.level == "mandatory" for v in found), (what, [(v.policy, v.level, v.message) for v in judge(mutation)])


@pytest.mark.parametrize("what,mutation", [*DATA_SIDE_TWINS, *TWINS], ids=[t[0] for t in [*DATA_SIDE_TWINS, *TWINS]])
def test_each_legitimate_twin_on_the_real_plan_passes(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what


def test_a_tenant_namespace_whose_labels_are_unknown_is_an_advisory_naming_it_never_a_crash(judge):
    """The shared ABAC role is judged per tenant namespace: an unknown label map used to put the
    unknown sentinel among the tenants and crash AnalyzeStack on sorting them (review U05)."""
    found = judge(_inputs("us-us-east-1-t-acme-ns", "Namespace", "metadata.labels", UNKNOWN))
    assert [v for v in found if v.level == "mandatory"] == [], [(v.policy, v.message) for v in found]
    role = [v.message for v in found if v.policy == "tenant-role-isolated"]
    assert role and all("namespace t-acme's metadata.labels.meridian.io/tenant" in m for m in role), role
    assert any(v.policy == "tenant-namespace-guarded" and "metadata.labels" in v.message for v in found)


def test_a_pod_security_label_unknown_at_preview_is_an_advisory_naming_it(judge):
    def mutation(resources):
        one(resources, "t-acme-ns", "core/v1:Namespace")["inputs"]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = (
            UNKNOWN
        )

    found = [(v.level, v.message) for v in judge(mutation) if v.policy == "tenant-namespace-guarded"]
    assert found and all(level == "advisory" and "pod-security.kubernetes.io/enforce" in m for level, m in found), found


def test_a_tenant_bucket_key_no_key_of_the_stack_is_linked_to_is_an_advisory(judge):
    def mutation(resources):
        one(resources, "us-us-east-1-t-acme-silo-sse", "ServerSideEncryption")["propertyDependencies"]["rules"] = []

    found = [(v.level, v.message) for v in judge(mutation) if v.policy == "s3-bucket-encrypted"]
    assert found and all(level == "advisory" and "tenant acme's bucket must use tenant acme's key" in m for level, m in found), (
        found
    )


def test_node_metadata_options_unknown_at_preview_are_an_advisory_naming_them(judge):
    found = judge(_inputs(NODES_LT, "launchTemplate", "metadataOptions", UNKNOWN))
    rule = [(v.level, v.message) for v in found if v.policy == "eks-node-metadata-pods-blocked"]
    assert rule and all(level == "advisory" and "metadataOptions" in m for level, m in rule), rule


def test_an_ingress_ipblock_against_a_pod_subnet_unknown_at_preview_is_an_advisory(judge):
    def mutate(resources):
        acme_ingress_from({"cidr": "10.10.192.0/18"})(resources)
        one(resources, "us-us-east-1-net-private-0", "aws:ec2/subnet:Subnet")["inputs"]["cidrBlock"] = UNKNOWN

    found = [(v.level, v.message) for v in judge(mutate) if v.policy == "tenant-namespace-guarded"]
    assert found and all(level == "advisory" and "cidrBlock" in m for level, m in found), found
