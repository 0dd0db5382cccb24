"""Security review 16, replayed on the us stack's real plan through the analyzer: the shared (ABAC)
tenant role judged by the tenant allowlist like a tagged one (bucket and key control actions, reach
by alias condition, access-point ARNs), its trust pinned to the stack's own cluster by
`aws:SourceArn`, and "who can run as a tenant's service account" derived from RBAC verbs
(`escalate`, `bind`, `create serviceaccounts/token`) and aggregated ClusterRoles, for any subject
(one running no workload of the plan too). Each attack is a mandatory violation of its rule; each
legitimate twin passes the whole pack."""

from __future__ import annotations

import copy
import json
import re

import pytest

from meridian.engine.policy import Analyzer, Subject, effective_config, evaluate

from .helpers import ROOT, attack_and_twin_tests

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture

ACCOUNT = "123456789012"
ISOLATED, DATA = "tenant-role-isolated", "tenant-data-access"
DATA_ACCESS = "us-us-east-1-tenant-identity-data-access"
TENANT_ROLE = "us-us-east-1-tenant-identity-role"
NS = "${aws:PrincipalTag/kubernetes-namespace}"


def one(resources, name: str, type_part: str = "") -> dict:
    return next(r for r in resources if r["name"] == name and type_part in r["type"])


def viewer(resources, role: str, type_part: str) -> dict:
    """The us-east-1 cluster's access entry (`accessEntry`) or view grant (`accessPolicyAssociation`) of the
    viewer role `role/<role>` (entries are named by their principal: components.cluster.access_key)."""
    return next(
        r
        for r in resources
        if r["name"].startswith("us-us-east-1-eks-access-viewer-")
        and type_part in r["type"]
        and r["inputs"]["principalArn"].endswith(f"role/{role}")
    )


def pool(resources) -> str:
    return "arn:aws:s3:::" + one(resources, "us-us-east-1-tenant-pool-data-tls-only", "bucketPolicy")["inputs"]["bucket"]


def tenant_statement(statement):
    """One more statement in the shared tenant role's own policy (a function of the plan, or as is)."""

    def mutate(resources):
        holder = one(resources, DATA_ACCESS, "rolePolicy")
        doc = json.loads(holder["inputs"]["policy"])
        doc["Statement"].append(statement(resources) if callable(statement) else statement)
        holder["inputs"]["policy"] = json.dumps(doc)

    return mutate


def own_keys_plus(action: str):
    def mutate(resources):
        holder = one(resources, DATA_ACCESS, "rolePolicy")
        doc = json.loads(holder["inputs"]["policy"])
        next(s for s in doc["Statement"] if s.get("Sid") == "OwnKeys")["Action"].append(action)
        holder["inputs"]["policy"] = json.dumps(doc)

    return mutate


def on_pool(action: str):
    return tenant_statement(lambda resources: {"Effect": "Allow", "Action": action, "Resource": pool(resources)})


CLUSTER_TAG = "aws:RequestTag/eks-cluster-arn"  # the pin components.policydocs.pod_identity_trust writes


def tenant_trust(edit, role: str = TENANT_ROLE):
    """Edit the pods.eks statement's condition of a role's trust policy."""

    def mutate(resources):
        holder = one(resources, role, "iam/role:Role")
        doc = json.loads(holder["inputs"]["assumeRolePolicy"])
        edit(doc["Statement"][0]["Condition"])
        holder["inputs"]["assumeRolePolicy"] = json.dumps(doc)

    return mutate


def rbac(kind: str, name: str, body: dict) -> dict:
    return {
        "urn": f"urn:pulumi:us::meridian::kubernetes:rbac.authorization.k8s.io/v1:{kind}::{name}",
        "type": f"kubernetes:rbac.authorization.k8s.io/v1:{kind}",
        "name": name,
        "custom": True,
        "parent": "urn:pulumi:us::meridian::pulumi:pulumi:Stack::meridian-us",
        "provider": "urn:pulumi:us::meridian::meridian:cluster:Cluster$pulumi:providers:kubernetes::us-us-east-1-eks-k8s",
        "inputs": {"metadata": {"name": name}, **body},
        "dependencies": [],
        "propertyDependencies": {},
    }


def bound(role: str, rules=None, aggregation=None, subject=("platform", "meridian-api")):
    """A ClusterRole (when `rules` or `aggregation` is given) bound cluster-wide to a service account."""

    def mutate(resources):
        if rules is not None or aggregation is not None:
            body: dict = {"rules": rules or []}
            if aggregation is not None:
                body["aggregationRule"] = {"clusterRoleSelectors": [aggregation]}
            resources.append(rbac("ClusterRole", role, body))
        ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}
        subjects = (
            [{"kind": "ServiceAccount", "namespace": subject[0], "name": subject[1]}]
            if len(subject) == 2
            else [{"kind": subject[0], "apiGroup": "rbac.authorization.k8s.io", "name": subject[2]}]
        )
        resources.append(rbac("ClusterRoleBinding", f"{role}-binding", {"roleRef": ref, "subjects": subjects}))

    return mutate


def key_arn(key: str):
    """A tenant key's ARN as the plan spells it (its alias's target, built from the key)."""
    return lambda resources: one(resources, f"{key}-alias", "kms/alias")["inputs"]["targetKeyId"]


def role_arn(resources, name: str) -> str:
    """An auto-named role's ARN as the plan spells it (read from a value that names it)."""
    pattern = re.compile(r"arn:aws:iam::\d{12}:role(?:/[\w+=,.@-]+)*/" + re.escape(name) + r"-[0-9a-f]{7}")
    return next(m.group(0) for r in resources if (m := pattern.search(json.dumps(r["inputs"]))))


def acme_key_statement(statement):
    def mutate(resources):
        holder = one(resources, "us-us-east-1-t-acme-key", "kms/key:Key")
        doc = json.loads(holder["inputs"]["policy"])
        doc["Statement"].append(statement(resources) if callable(statement) else statement)
        holder["inputs"]["policy"] = json.dumps(doc)

    return mutate


def set_input(name: str, type_part: str, path: str, value):
    def mutate(resources):
        node = one(resources, name, type_part)["inputs"]
        *head, last = path.split(".")
        for step in head:
            node = node.setdefault(step, {})
        node[last] = value(resources) if callable(value) else value

    return mutate


def acme_label(key: str, value: str):
    return lambda resources: one(resources, "us-us-east-1-t-acme-ns", "core/v1:Namespace")["inputs"]["metadata"]["labels"].update(
        {key: value}
    )


BACKUP_ROLE = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/backup.amazonaws.com/AWSServiceRoleForBackup"


def backup_may(actions: list[str]):
    return acme_key_statement(
        {
            "Sid": "Backup",
            "Effect": "Allow",
            "Principal": {"AWS": BACKUP_ROLE},
            "Action": actions,
            "Resource": "*",
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        }
    )


def alarm_on(action):
    """A DB CPU alarm whose action is written out (not built from the topic resource)."""

    def mutate(resources):
        like = copy.deepcopy(one(resources, "us-cost-enforcer-errors", "metricAlarm"))
        like["name"], like["urn"] = "db-cpu", like["urn"].rsplit("::", 1)[0] + "::db-cpu"
        like["inputs"].update(metricName="CPUUtilization", namespace="AWS/RDS", alarmActions=[action(resources)], okActions=[])
        like["propertyDependencies"], like["dependencies"] = {}, []
        resources.append(like)

    return mutate


def topic_arn(resources) -> str:
    return one(resources, "us-cost-enforcer-from-alerts", "lambda/permission")["inputs"]["sourceArn"]


def namespace_view(principal, policy: str = "AmazonEKSViewPolicy", scope=None):
    """An access entry and one access policy association for `principal` (an ARN, or a function of the plan)."""

    def mutate(resources):
        arn = principal(resources) if callable(principal) else principal
        for like_type, name, inputs in (
            ("accessEntry", "support", {}),
            (
                "accessPolicyAssociation",
                "support-view",
                {
                    "policyArn": f"arn:aws:eks::aws:cluster-access-policy/{policy}",
                    "accessScope": scope or {"type": "namespace", "namespaces": ["t-acme"]},
                },
            ),
        ):
            like = copy.deepcopy(viewer(resources, "meridian-preview", like_type))
            like["name"], like["urn"] = name, like["urn"].rsplit("::", 1)[0] + "::" + name
            like["inputs"].update(principalArn=arn, **inputs)
            resources.append(like)

    return mutate


SUPPORT = f"arn:aws:iam::{ACCOUNT}:role/support"
REVIEWED = "pack-resource-type-reviewed"


ESCALATE = [
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["clusterroles", "roles", "clusterrolebindings", "rolebindings"],
        "verbs": ["escalate", "bind", "create"],
    }
]
ADMIN_AGGREGATE = {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}

ATTACKS = [
    ("I08 the tenant role rewrites the pool's bucket policy", on_pool("s3:PutBucketPolicy"), ISOLATED),
    ("I19 the tenant role deletes the pool's bucket policy", on_pool("s3:DeleteBucketPolicy"), ISOLATED),
    ("I16 the tenant role sets the pool's lifecycle", on_pool("s3:PutLifecycleConfiguration"), ISOLATED),
    ("I17 the tenant role sets the pool's notifications", on_pool("s3:PutBucketNotification"), ISOLATED),
    ("I18 the tenant role rewrites its own key's policy", own_keys_plus("kms:PutKeyPolicy"), ISOLATED),
    ("I18 the tenant role retags its own key", own_keys_plus("kms:TagResource"), ISOLATED),
    ("I18 the tenant role holds kms:* on its own key", own_keys_plus("kms:*"), ISOLATED),
    (
        "I05 the tenant role decrypts every aliased key",
        tenant_statement(
            {
                "Effect": "Allow",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"ForAnyValue:StringLike": {"kms:ResourceAliases": "alias/*"}},
            }
        ),
        ISOLATED,
    ),
    (
        "I06 the tenant role reads any access point's tenants/*",
        tenant_statement(
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:us-east-1:{ACCOUNT}:accesspoint/*/object/tenants/*",
            }
        ),
        ISOLATED,
    ),
    (
        "the tenant role reads a literal other tenant's prefix (no session tag in the statement)",
        tenant_statement(
            lambda resources: {"Effect": "Allow", "Action": "s3:GetObject", "Resource": pool(resources) + "/tenants/t-acme/*"}
        ),
        ISOLATED,
    ),
    (
        "the tenant role holds a managed policy",
        lambda resources: resources.append(
            {
                **copy.deepcopy(one(resources, DATA_ACCESS, "rolePolicy")),
                "type": "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                "name": "tenant-ro",
                "urn": one(resources, DATA_ACCESS, "rolePolicy")["urn"].replace(
                    "rolePolicy:RolePolicy", "rolePolicyAttachment:RolePolicyAttachment"
                )
                + "-ro",
                "inputs": {
                    "role": one(resources, DATA_ACCESS, "rolePolicy")["inputs"]["role"],
                    "policyArn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",
                },
            }
        ),
        ISOLATED,
    ),
    (
        "T03 the tenant role's trust admits any cluster of the account",
        tenant_trust(
            lambda c: (
                c["StringEquals"].pop(CLUSTER_TAG),
                c.update(StringLike={CLUSTER_TAG: f"arn:aws:eks:*:{ACCOUNT}:cluster/*"}),
            )
        ),
        ISOLATED,
    ),
    (
        "T03 the tenant role's trust admits any cluster of the account (by aws:SourceArn)",
        tenant_trust(
            lambda c: (
                c["StringEquals"].pop(CLUSTER_TAG),
                c.update(ArnLike={"aws:SourceArn": f"arn:aws:eks:*:{ACCOUNT}:cluster/*"}),
            )
        ),
        ISOLATED,
    ),
    (
        "T08 the tenant role's trust pinned to the account only",
        tenant_trust(lambda c: c["StringEquals"].pop(CLUSTER_TAG)),
        ISOLATED,
    ),
    (
        "T08 the tenant role's trust pinned to a cluster the stack does not define",
        tenant_trust(lambda c: c["StringEquals"].update({CLUSTER_TAG: f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/sandbox"})),
        ISOLATED,
    ),
    (
        "T08 the tenant role's trust pinned by aws:SourceArn to a cluster the stack does not define",
        tenant_trust(
            lambda c: (
                c["StringEquals"].pop(CLUSTER_TAG),
                c.update(ArnEquals={"aws:SourceArn": f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/sandbox"}),
            )
        ),
        ISOLATED,
    ),
    (
        "T08 the broker's trust pinned to the account only",
        tenant_trust(lambda c: c["StringEquals"].pop(CLUSTER_TAG), role="us-us-east-1-tenant-identity-broker"),
        ISOLATED,
    ),
    ("K04p escalate/bind on roles for the platform API", bound("escalator", rules=ESCALATE), DATA),
    (
        "K04 escalate/bind on roles for kube-system:default",
        bound("escalator", rules=ESCALATE, subject=("kube-system", "default")),
        DATA,
    ),
    ("K05p an aggregate of admin's roles for the platform API", bound("collector", rules=[], aggregation=ADMIN_AGGREGATE), DATA),
    (
        "K05 an aggregate of admin's roles for kube-system:default",
        bound("collector", rules=[], aggregation=ADMIN_AGGREGATE, subject=("kube-system", "default")),
        DATA,
    ),
    (
        "an aggregate selecting every ClusterRole (empty selector)",
        bound("everything", rules=[], aggregation={}, subject=("kube-system", "default")),
        DATA,
    ),
    (
        "an aggregate of a plan ClusterRole that creates pods",
        lambda resources: (
            resources.append(
                rbac(
                    "ClusterRole",
                    "pod-maker",
                    {
                        "metadata": {"name": "pod-maker", "labels": {"example.com/aggregate-to-ops": "true"}},
                        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}],
                    },
                )
            ),
            bound("ops", rules=[], aggregation={"matchLabels": {"example.com/aggregate-to-ops": "true"}})(resources),
        ),
        DATA,
    ),
    ("K05b the built-in admin for kube-system:default", bound("admin", subject=("kube-system", "default")), DATA),
    (
        "the built-in edit for every service account of the default namespace",
        bound("edit", subject=("Group", "", "system:serviceaccounts:default")),
        DATA,
    ),
    ("the built-in edit for anonymous requests", bound("edit", subject=("User", "", "system:anonymous")), DATA),
    (
        "K17 create serviceaccounts/token for the platform API",
        bound("tokens", rules=[{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}]),
        DATA,
    ),
    (
        "K15 acme's namespace pins Pod Security v1.0",
        acme_label("pod-security.kubernetes.io/enforce-version", "v1.0"),
        "tenant-namespace-guarded",
    ),
    (
        "E09 a health check counting 4xx as healthy",
        set_input("us-use1-lb-stable", "targetGroup", "healthCheck.matcher", "200-499"),
        "lb-target-group-health-checked",
    ),
    (
        "E09 a health check counting 5xx as healthy",
        set_input("us-use1-lb-stable", "targetGroup", "healthCheck.matcher", "200,503"),
        "lb-target-group-health-checked",
    ),
    (
        "E15 the DB secret rotated every 1000 days",
        set_input("us-db-app-rotation-schedule", "secretRotation", "rotationRules", {"automaticallyAfterDays": 1000}),
        REVIEWED,
    ),
    (
        "E15 the DB secret rotated yearly by rate()",
        set_input("us-db-app-rotation-schedule", "secretRotation", "rotationRules", {"scheduleExpression": "rate(365 days)"}),
        REVIEWED,
    ),
    (
        "O03 acme's key lets the DB monitoring role decrypt",
        acme_key_statement(
            lambda resources: {
                "Effect": "Allow",
                "Principal": {"AWS": role_arn(resources, "us-db-us-east-1-monitoring-role")},
                "Action": "kms:Decrypt",
                "Resource": "*",
            }
        ),
        DATA,
    ),
    ("AWS Backup's service-linked role may rewrite acme's key policy", backup_may(["kms:PutKeyPolicy"]), DATA),
    (
        "O14 acme's alias retargeted at globex's key",
        set_input("us-us-east-1-t-acme-key-alias", "kms/alias", "targetKeyId", key_arn("us-us-east-1-t-globex-key")),
        DATA,
    ),
    (
        "E12 the enforcer's logs under acme's key",
        set_input("us-cost-enforcer-logs", "logGroup", "kmsKeyId", key_arn("us-us-east-1-t-acme-key")),
        DATA,
    ),
    (
        "acme's silo bucket under globex's key by ARN, its link to acme's key kept",
        set_input(
            "us-us-east-1-t-acme-silo-sse",
            "ServerSideEncryption",
            "rules",
            lambda resources: [
                {
                    "applyServerSideEncryptionByDefault": {
                        "sseAlgorithm": "aws:kms",
                        "kmsMasterKeyId": key_arn("us-us-east-1-t-globex-key")(resources),
                    },
                    "bucketKeyEnabled": True,
                }
            ],
        ),
        DATA,
    ),
    (
        "the tenant role viewing a tenant namespace",
        namespace_view(
            lambda resources: one(resources, "us-us-east-1-t-acme-identity", "podIdentityAssociation")["inputs"]["roleArn"]
        ),
        "eks-access-platform-roles-only",
    ),
    (
        "a support role editing a tenant namespace",
        namespace_view(SUPPORT, policy="AmazonEKSEditPolicy"),
        "eks-access-platform-roles-only",
    ),
    (
        "a support role viewing the whole cluster",
        namespace_view(SUPPORT, scope={"type": "cluster"}),
        "eks-access-platform-roles-only",
    ),
    (
        "a support role of another account viewing a namespace",
        namespace_view("arn:aws:iam::999988887777:role/support"),
        "eks-access-platform-roles-only",
    ),
]

TWINS = [
    (
        "the tenant role restores and inspects objects of its own prefix",
        tenant_statement(
            lambda resources: {
                "Effect": "Allow",
                "Action": ["s3:RestoreObject", "s3:GetObjectAttributes"],
                "Resource": f"{pool(resources)}/tenants/{NS}/*",
            }
        ),
    ),
    ("the tenant role re-encrypts under its own key", own_keys_plus("kms:ReEncrypt*")),
    (
        "the tenant role's trust pinned by StringEquals aws:SourceArn (the earlier form) to its own cluster",
        tenant_trust(
            lambda c: (
                c["StringEquals"].pop(CLUSTER_TAG),
                c["StringEquals"].update({"aws:SourceArn": f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/us-us-east-1-eks"}),
            )
        ),
    ),
    (
        "the tenant role's trust pinned by ArnEquals aws:SourceArn (the earlier form) to its own cluster",
        tenant_trust(
            lambda c: (
                c["StringEquals"].pop(CLUSTER_TAG),
                c.update(ArnEquals={"aws:SourceArn": f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/us-us-east-1-eks"}),
            )
        ),
    ),
    (
        "an aggregate of view's roles for kube-system:default",
        bound(
            "viewers",
            rules=[],
            aggregation={"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
            subject=("kube-system", "default"),
        ),
    ),
    (
        "create tokens of, and bind, nothing: read roles for kube-system:default",
        bound(
            "rbac-reader",
            rules=[
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "clusterroles"], "verbs": ["get", "list"]}
            ],
            subject=("kube-system", "default"),
        ),
    ),
    ("acme's namespace pins Pod Security at latest", acme_label("pod-security.kubernetes.io/enforce-version", "latest")),
    ("acme's namespace pins Pod Security v1.33", acme_label("pod-security.kubernetes.io/enforce-version", "v1.33")),
    (
        "a health check counting 200 and 204 as healthy",
        set_input("us-use1-lb-stable", "targetGroup", "healthCheck.matcher", "200,204"),
    ),
    (
        "the DB secret rotated every 60 days",
        set_input("us-db-app-rotation-schedule", "secretRotation", "rotationRules", {"automaticallyAfterDays": 60}),
    ),
    (
        "the DB secret rotated monthly by cron()",
        set_input("us-db-app-rotation-schedule", "secretRotation", "rotationRules", {"scheduleExpression": "cron(0 4 1 * ? *)"}),
    ),
    (
        "L12 AWS Backup's service-linked role may create grants on acme's key for AWS resources",
        backup_may(["kms:CreateGrant", "kms:DescribeKey"]),
    ),
    ("L09b an alarm publishing to the alerts topic by its ARN written out", alarm_on(topic_arn)),
    ("L13 a support role of the account viewing one tenant namespace", namespace_view(SUPPORT)),
]


test_each_attack_is_a_mandatory_violation_of_its_rule, test_each_legitimate_twin_passes_the_whole_pack = attack_and_twin_tests(
    ATTACKS, TWINS
)


def test_the_path_names_the_service_account_and_how_it_runs_code(judge):
    found = judge(bound("admin", subject=("kube-system", "default")))
    messages = [v.message for v in found if v.policy == DATA and v.level == "mandatory"]
    assert any("ServiceAccount kube-system/default" in m and "runs code in pods in t-acme" in m for m in messages), messages


# --- a cell judged alone (us-cell-001 on platform us) ----------------------------------------------

CELL = "us-cell-001"
WONKA = "us-us-east-1-t-wonka-identity"  # a tenant keeps its names in any stack of its zone


def _cell_resource(type_: str, name: str, inputs: dict) -> dict:
    return {
        "urn": f"urn:pulumi:{CELL}::meridian::pulumi:pulumi:Stack${type_}::{name}",
        "type": type_,
        "name": name,
        "custom": True,
        "parent": f"urn:pulumi:{CELL}::meridian::pulumi:pulumi:Stack::meridian-{CELL}",
        "provider": f"urn:pulumi:{CELL}::meridian::pulumi:pulumi:Stack$pulumi:providers:aws::us-east-1",
        "inputs": inputs,
        "dependencies": [],
        "propertyDependencies": {},
    }


def wonka_gets_the_broker(resources):
    """The platform's broker role, spelled as the platform names it (its tenant role's ARN with the broker's name)."""
    assoc = one(resources, WONKA, "podIdentityAssociation")
    arn = assoc["inputs"]["roleArn"]
    assoc["inputs"]["roleArn"] = arn.replace(
        "meridian/tenants/us-us-east-1-tenant-identity-role-", "us-us-east-1-tenant-identity-broker-"
    )


def wonka_moved_onto_acme(resources):
    for r in resources:
        if "us-east-1-t-wonka" in r["name"] and r["type"].startswith(("kubernetes:", "aws:eks/podIdentity")):
            r["inputs"] = json.loads(json.dumps(r["inputs"]).replace('"t-wonka"', '"t-acme"'))


def wonka_on_another_pair(resources):
    """us-cell-001 is on pair 0 (the platform's own clusters): an association on pair 1's cluster."""
    one(resources, WONKA, "podIdentityAssociation")["inputs"]["clusterName"] = "us-us-east-1-eks-1"


def association_in(namespace: str, service_account: str):
    def mutate(resources):
        like = copy.deepcopy(one(resources, WONKA, "podIdentityAssociation"))
        like["name"], like["urn"] = "extra-identity", like["urn"] + "-extra"
        like["inputs"].update(namespace=namespace, serviceAccount=service_account)
        resources.append(like)

    return mutate


def on_platform_pool(type_: str, inputs: dict):
    return lambda resources: resources.append(
        _cell_resource(type_, "pool-setting", {"bucket": "us-us-east-1-tenant-pool-data-bucket-ed3f900", **inputs})
    )


CELL_ATTACKS = [
    ("C01 a cell tenant gets the platform's broker role", wonka_gets_the_broker),
    ("C03 a cell tenant moved onto a platform tenant's namespace", wonka_moved_onto_acme),
    ("C09 a cell association in the platform's service namespace", association_in("platform", "meridian-api")),
    ("C10 a cell association on a cluster its pair does not hold", wonka_on_another_pair),
    (
        "C04 a cell's policy on the platform's pool bucket",
        on_platform_pool(
            "aws:s3/bucketPolicy:BucketPolicy",
            {
                "policy": json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Deny",
                                "Principal": "*",
                                "Action": "s3:*",
                                "Resource": "*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    }
                )
            },
        ),
    ),
    (
        "C05 a cell's public access block on the platform's pool bucket",
        on_platform_pool(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            dict.fromkeys(("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), False),
        ),
    ),
]
CELL_TWINS = [
    ("L15 a second service account of a cell tenant on the platform's tenant role", association_in("t-wonka", "wonka-worker")),
]


@pytest.fixture(scope="module")
def cell_judge(registrations):
    plan = registrations(CELL)
    config = json.loads((ROOT / "policies" / "config" / f"{CELL}.json").read_text())
    with Analyzer(ROOT / "policies") as analyzer:
        analyzer.configure(effective_config(analyzer.wait_ready(), config, CELL))

        def run(mutation):
            resources = copy.deepcopy(plan)
            mutation(resources)
            return evaluate(analyzer, [Subject.from_dict(r) for r in resources])

        run.plan = plan
        yield run


@pytest.mark.parametrize("what,mutation", CELL_ATTACKS, ids=[a[0] for a in CELL_ATTACKS])
def test_a_cell_taking_its_platforms_names_is_a_mandatory_violation(cell_judge, what, mutation):
    found = cell_judge(mutation)
    hits = [v for v in found if v.policy == DATA and v.level == "mandatory" and "of a cell must" in v.message]
    assert hits, (what, [(v.policy, v.level, v.message) for v in found])


@pytest.mark.parametrize("what,mutation", CELL_TWINS, ids=[t[0] for t in CELL_TWINS])
def test_a_cell_in_its_lane_draws_no_violation(cell_judge, what, mutation):
    assert [(v.policy, v.message) for v in cell_judge(mutation) if v.level == "mandatory"] == [], what


def test_the_cells_config_names_the_roles_its_tenants_actually_get(cell_judge):
    """The generated `platformTenantRoles` (components.naming.tenant_role_name) are the roles the cell's plan names."""
    roles = json.loads((ROOT / "policies" / "config" / f"{CELL}.json").read_text())["tenant-data-access"]["platformTenantRoles"]
    named = {
        r["inputs"]["roleArn"].rsplit("/", 1)[-1][:-8]
        for r in cell_judge.plan
        if r["type"] == "aws:eks/podIdentityAssociation:PodIdentityAssociation"
    }
    assert named == set(roles), (named, roles)
