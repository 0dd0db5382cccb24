"""Review 15's misses where a REVIEWED type passed whatever its values (eks/addon, lambda/permission,
Kubernetes Secrets, TargetGroupBindings, component-looking custom types, a Lambda's dead-letter
target) and its false positive (any RoleBinding), as mutations of a real stack's plan; each attack
with the rule that must draw a mandatory violation, each twin a legitimate setup that must pass.

A mutation takes the plan's `resources` (plan-JSON dicts) and edits them in place.
"""

from __future__ import annotations

import copy
import json

from .base import UNKNOWN

ACCOUNT = "123456789012"
FOREIGN = "999988887777"
RBAC = "rbac.authorization.k8s.io/v1"


def one(resources, name: str, type_part: str = "") -> dict:
    return next(r for r in resources if r["name"] == name and type_part in r["type"])


def renamed(resources, name: str, new_name: str) -> dict:
    """A copy of resource `name` under another logical name (links kept), appended to the plan."""
    x = copy.deepcopy(one(resources, name))
    x["name"], x["urn"] = new_name, x["urn"].rsplit("::", 1)[0] + "::" + new_name
    resources.append(x)
    return x


def new(resources, type_: str, name: str, inputs: dict, like: str, links: dict[str, list[str]] | None = None) -> dict:
    """A resource of `type_` registered beside `like` (same parent and provider), with `links` (property -> names)."""
    base = one(resources, like)
    deps = {prop: [one(resources, n)["urn"] for n in names] for prop, names in (links or {}).items()}
    x = {
        "urn": base["urn"].rsplit("::", 2)[0] + f"::{type_}::{name}",
        "type": type_,
        "name": name,
        "custom": True,
        "parent": base["parent"],
        "provider": base["provider"],
        "inputs": inputs,
        "dependencies": [u for us in deps.values() for u in us],
        "propertyDependencies": deps,
    }
    resources.append(x)
    return x


# --- R02: EKS add-ons -------------------------------------------------------------------------------


def addon(name: str, config: dict | None = None, region: str = "us-east-1", stack: str = "us"):
    def mutate(resources):
        x = renamed(resources, f"{stack}-{region}-eks-vpc-cni", f"{stack}-{region}-{name}")
        x["inputs"]["addonName"] = name
        x["inputs"].pop("configurationValues", None)
        if config is not None:
            x["inputs"]["configurationValues"] = json.dumps(config)

    return mutate


# --- O04 / O05: Lambda permissions ------------------------------------------------------------------


def permission(**inputs):
    def mutate(resources):
        new(
            resources,
            "aws:lambda/permission:Permission",
            "us-cost-enforcer-extra",
            {"action": "lambda:InvokeFunction", "function": "us-cost-cap-enforcer", **inputs},
            like="us-cost-enforcer-from-alerts",
            links={"function": ["us-cost-enforcer"]},
        )

    return mutate


TOPIC_ARN = f"arn:aws:sns:us-east-1:{ACCOUNT}:us-cost-alerts-981522b"


# --- T13: Secrets and ConfigMaps in tenant namespaces -----------------------------------------------


def settings_copied_into(namespace: str):
    def mutate(resources):
        renamed(resources, "us-us-east-1-api-settings", "acme-copy-settings")["inputs"]["metadata"]["namespace"] = namespace

    return mutate


def tenant_object(kind: str, data_field: str, value, links: list[str] = (), name: str = "acme-own"):
    def mutate(resources):
        new(
            resources,
            f"kubernetes:core/v1:{kind}",
            name,
            {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "t-acme"}, data_field: value},
            like="us-us-east-1-api-settings",
            links={data_field: list(links)} if links else None,
        )

    return mutate


def settings_pasted_into_acme(resources):
    """The platform's settings as a literal value in both places (known at `up`), with no link between them."""
    value = {"settings.json": json.dumps({"database": {"password": "s3cr3t"}, "tenants": {"acme": "k1", "globex": "k2"}})}
    one(resources, "us-us-east-1-api-settings")["inputs"]["stringData"] = value
    tenant_object("Secret", "stringData", dict(value))(resources)


def own_random_value(resources):
    """A password generated for acme's own Secret, used by nothing else (its value unknown at preview)."""
    new(resources, "random:index/randomPassword:RandomPassword", "acme-own-password", {"length": 32}, like="us-api-keys-acme")
    tenant_object("Secret", "stringData", {"password": UNKNOWN}, links=["acme-own-password"])(resources)


def acme_workload_with_master_password(resources):
    """A Deployment in t-acme (a copy of the API's) whose env carries the database master password."""
    x = renamed(resources, "us-us-east-1-api-api", "acme-worker")
    x["inputs"]["metadata"] = {"name": "acme-worker", "namespace": "t-acme", "labels": {"meridian.io/tenant": "acme"}}
    pod = x["inputs"]["spec"]["template"]["spec"]
    pod["containers"][0]["env"] = [{"name": "DB_PASSWORD", "value": UNKNOWN}]
    x["propertyDependencies"] = {"spec": [one(resources, "us-db-master-password")["urn"]]}


def settings_under_a_provider_defaulting_to_acme(resources):
    """The settings copied with no namespace, under a second kubernetes provider whose default namespace is t-acme."""
    provider = renamed(resources, "us-us-east-1-eks-k8s", "acme-k8s")
    provider["inputs"]["namespace"] = "t-acme"
    x = renamed(resources, "us-us-east-1-api-settings", "acme-copy-settings")
    x["inputs"]["metadata"].pop("namespace")
    x["propertyDependencies"]["metadata"] = []
    x["provider"] = provider["urn"]


def settings_in_annotations(resources):
    """acme's own Secret (no platform data in `data`), the database credential put in its annotations."""
    new(
        resources,
        "kubernetes:core/v1:Secret",
        "acme-annotated",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "app", "namespace": "t-acme", "annotations": {"db": UNKNOWN}},
        },
        like="us-us-east-1-api-settings",
        links={"metadata": ["us-db-app-credential-secret"]},
    )


# --- O08 / O09: TargetGroupBindings -----------------------------------------------------------------


def binding_copy(namespace: str = "platform", arn: str | None = None, keep_link: bool = True, name: str = "extra-binding"):
    def mutate(resources):
        x = renamed(resources, "us-us-east-1-api-stable-binding", name)
        x["inputs"]["metadata"]["namespace"] = namespace
        if arn is not None:
            x["inputs"]["spec"]["targetGroupARN"] = arn
        if not keep_link:
            x["propertyDependencies"]["spec"] = [u for u in x["propertyDependencies"]["spec"] if "targetGroup" not in u]

    return mutate


OWN_OUT_OF_PLAN_TG = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/hand-made/0123456789abcdef"
FOREIGN_TG = f"arn:aws:elasticloadbalancing:us-east-1:{FOREIGN}:targetgroup/x/1"


# --- R03: Lambda dead-letter targets and async destinations ----------------------------------------


def dead_letter(arn: str):
    def mutate(resources):
        one(resources, "us-cost-enforcer", "lambda/function")["inputs"]["deadLetterConfig"] = {"targetArn": arn}

    return mutate


def invoke_destination(arn: str):
    def mutate(resources):
        new(
            resources,
            "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
            "us-cost-enforcer-async",
            {"functionName": "us-cost-cap-enforcer", "destinationConfig": {"onFailure": {"destination": arn}}},
            like="us-cost-enforcer-from-alerts",
            links={"functionName": ["us-cost-enforcer"]},
        )

    return mutate


# --- K06: custom resources under the component prefix ----------------------------------------------


def component_lookalike(resources):
    """A custom resource of a provider package named `meridian` (inputs and a provider, as custom resources register)."""
    bucket = one(resources, "us-us-east-1-tenant-pool-data-bucket")["inputs"].get("bucket", "pool")
    new(
        resources,
        "meridian:index:Exporter",
        "exporter",
        {"source": bucket, "target": "https://x.example"},
        like="us-cost-enforcer",
    )


def a_new_component(resources):
    """A ComponentResource of the program: no provider, no inputs."""
    x = new(resources, "meridian:exporter:Exporter", "exporter", {}, like="us-cost-enforcer")
    x["custom"], x["provider"] = False, None


# --- L15: RBAC -----------------------------------------------------------------------------------------


def binding(kind: str, name: str, role: str, subjects: list[dict], namespace: str | None = None):
    def mutate(resources):
        metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
        new(
            resources,
            f"kubernetes:{RBAC}:{kind}",
            name,
            {
                "apiVersion": RBAC,
                "kind": kind,
                "metadata": metadata,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": subjects,
            },
            like="us-us-east-1-api-sa",
        )

    return mutate


def cluster_role(name: str, labels: dict[str, str]):
    def mutate(resources):
        new(
            resources,
            f"kubernetes:{RBAC}:ClusterRole",
            name,
            {
                "apiVersion": RBAC,
                "kind": "ClusterRole",
                "metadata": {"name": name, "labels": labels},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
            },
            like="us-us-east-1-api-sa",
        )

    return mutate


API_SA = {"kind": "ServiceAccount", "name": "meridian-api", "namespace": "platform"}
ACME_SA = {"kind": "ServiceAccount", "name": "acme-app", "namespace": "t-acme"}


# (what, stack, mutation, rule)
ATTACKS = [
    ("R02 vendor add-on datadog_operator", "us", addon("datadog_operator", {"site": "datadoghq.eu"}), "eks-addon-reviewed"),
    (
        "R02e eu: vendor add-on shipping to the vendor's US site",
        "eu",
        addon("datadog_operator", {"datadog": {"site": "datadoghq.com"}}, region="eu-west-1", stack="eu"),
        "eks-addon-reviewed",
    ),
    ("O04 lambda permission to principal *", "us", permission(principal="*"), "resource-policy-principals-in-account"),
    ("O05 lambda permission to a foreign account", "us", permission(principal=FOREIGN), "resource-policy-principals-in-account"),
    (
        "O05b lambda permission to a foreign role ARN",
        "us",
        permission(principal=f"arn:aws:iam::{FOREIGN}:role/x"),
        "resource-policy-principals-in-account",
    ),
    (
        "O05c lambda permission to a service with no sourceArn/sourceAccount",
        "us",
        permission(principal="sns.amazonaws.com"),
        "resource-policy-principals-in-account",
    ),
    (
        "O05d lambda permission to a service pinned to a foreign account's topic",
        "us",
        permission(principal="sns.amazonaws.com", sourceArn=f"arn:aws:sns:us-east-1:{FOREIGN}:t"),
        "resource-policy-principals-in-account",
    ),
    (
        "O05e lambda permission to * pinned only to a foreign source account",
        "us",
        permission(principal="*", sourceAccount=FOREIGN),
        "resource-policy-principals-in-account",
    ),
    ("T13 platform settings Secret copied into t-acme", "us", settings_copied_into("t-acme"), "k8s-tenant-secret-own-data-only"),
    (
        "T13b ConfigMap in t-acme built from the database credential secret",
        "us",
        tenant_object("ConfigMap", "data", {"db": "x"}, links=["us-db-app-credential-secret"]),
        "k8s-tenant-secret-own-data-only",
    ),
    (
        "T13c Secret in t-acme built from globex's API key (the platform settings use it too)",
        "us",
        tenant_object("Secret", "stringData", {"key": UNKNOWN}, links=["us-api-keys-globex"]),
        "k8s-tenant-secret-own-data-only",
    ),
    (
        "T13d Secret in t-acme built from globex's key",
        "us",
        tenant_object("Secret", "stringData", {"key": "x"}, links=["us-us-east-1-t-globex-key"]),
        "k8s-tenant-secret-own-data-only",
    ),
    (
        "T13e the platform settings pasted into t-acme as the same literal value",
        "us",
        settings_pasted_into_acme,
        "k8s-tenant-secret-own-data-only",
    ),
    (
        "T13f Deployment in t-acme whose env carries the database master password",
        "us",
        acme_workload_with_master_password,
        "k8s-tenant-secret-own-data-only",
    ),
    (
        "T13g settings copied with no namespace under a provider defaulting to t-acme",
        "us",
        settings_under_a_provider_defaulting_to_acme,
        "k8s-tenant-secret-own-data-only",
    ),
    (
        "T13h Secret in t-acme carrying the database credential in its annotations",
        "us",
        settings_in_annotations,
        "k8s-tenant-secret-own-data-only",
    ),
    (
        "O08 TargetGroupBinding in t-acme onto the public ALB's group",
        "us",
        binding_copy("t-acme"),
        "k8s-target-group-binding-platform-only",
    ),
    (
        "O09 TargetGroupBinding to a foreign account's group",
        "us",
        binding_copy(arn=FOREIGN_TG),
        "k8s-target-group-binding-platform-only",
    ),
    (
        "O09b TargetGroupBinding to an own-account group outside the plan",
        "us",
        binding_copy(arn=OWN_OUT_OF_PLAN_TG, keep_link=False),
        "k8s-target-group-binding-platform-only",
    ),
    (
        "O09c TargetGroupBinding whose ARN is another group than the one it links",
        "us",
        binding_copy(arn=OWN_OUT_OF_PLAN_TG),
        "k8s-target-group-binding-platform-only",
    ),
    (
        "R03 Lambda dead-letter queue in eu-west-1",
        "us",
        dead_letter(f"arn:aws:sqs:eu-west-1:{ACCOUNT}:dlq"),
        "aws-data-path-destination-in-zone",
    ),
    (
        "R03b Lambda dead-letter topic of a foreign account",
        "us",
        dead_letter(f"arn:aws:sns:us-east-1:{FOREIGN}:dlq"),
        "aws-data-path-destination-in-zone",
    ),
    (
        "R03c Lambda async failure destination in eu-west-1",
        "us",
        invoke_destination(f"arn:aws:sqs:eu-west-1:{ACCOUNT}:failures"),
        "aws-data-path-destination-in-zone",
    ),
    ("K06 custom resource typed meridian:index:Exporter", "us", component_lookalike, "pack-resource-type-reviewed"),
    (
        "T09 ClusterRoleBinding view to acme's service account",
        "us",
        binding("ClusterRoleBinding", "acme-view-all", "view", [ACME_SA]),
        "k8s-rbac-binding-scoped",
    ),
    (
        "T10 RoleBinding in t-globex to the group of t-acme's service accounts",
        "us",
        binding(
            "RoleBinding",
            "globex-edit-acme",
            "edit",
            [{"kind": "Group", "name": "system:serviceaccounts:t-acme", "apiGroup": "rbac.authorization.k8s.io"}],
            namespace="t-globex",
        ),
        "k8s-rbac-binding-scoped",
    ),
    (
        "T11 RoleBinding in t-acme to system:authenticated",
        "us",
        binding(
            "RoleBinding",
            "acme-view-everyone",
            "view",
            [{"kind": "Group", "name": "system:authenticated", "apiGroup": "rbac.authorization.k8s.io"}],
            namespace="t-acme",
        ),
        "k8s-rbac-binding-scoped",
    ),
    (
        "L15a RoleBinding in platform granting acme's service account",
        "us",
        binding("RoleBinding", "platform-view-acme", "view", [ACME_SA], namespace="platform"),
        "k8s-rbac-binding-scoped",
    ),
    (
        "L15c ClusterRoleBinding to acme's service account by its username (a User subject)",
        "us",
        binding(
            "ClusterRoleBinding",
            "acme-as-user",
            "view",
            [{"kind": "User", "name": "system:serviceaccount:t-acme:acme-app", "apiGroup": "rbac.authorization.k8s.io"}],
        ),
        "k8s-rbac-binding-scoped",
    ),
    (
        "L15b ClusterRole aggregated into view (reading secrets)",
        "us",
        cluster_role("secrets-reader", {"rbac.authorization.k8s.io/aggregate-to-view": "true"}),
        "k8s-rbac-binding-scoped",
    ),
]

# (what, stack, mutation)
TWINS = [
    (
        "O04 twin: lambda permission to a service pinned by sourceArn of the stack's topic",
        "us",
        permission(principal="sns.amazonaws.com", sourceArn=TOPIC_ARN),
    ),
    (
        "O05 twin: lambda permission to a service pinned by the own sourceAccount",
        "us",
        permission(principal="events.amazonaws.com", sourceAccount=ACCOUNT),
    ),
    (
        "O05 twin: lambda permission to a role of the own account",
        "us",
        permission(principal=f"arn:aws:iam::{ACCOUNT}:role/operator"),
    ),
    (
        "T13 twin: a Secret in t-acme built from acme's own silo bucket",
        "us",
        tenant_object("Secret", "stringData", {"bucket": "mer-251a6ed05a-t-acme"}, links=["us-us-east-1-t-acme-silo-bucket"]),
    ),
    ("T13 twin: a Secret in t-acme from a password generated for it alone", "us", own_random_value),
    ("T13 twin: a second copy of the settings in the platform namespace", "us", settings_copied_into("platform")),
    ("O08 twin: another platform binding onto the stack's target group", "us", binding_copy()),
    ("R03 twin: Lambda dead-letter queue in the zone, own account", "us", dead_letter(f"arn:aws:sqs:us-east-1:{ACCOUNT}:dlq")),
    (
        "R03 twin: Lambda async failure destination in the zone",
        "us",
        invoke_destination(f"arn:aws:sqs:us-west-2:{ACCOUNT}:failures"),
    ),
    ("K06 twin: a new component of the program (no provider, no inputs)", "us", a_new_component),
    (
        "L15 twin: RoleBinding view in platform to the API's own service account",
        "us",
        binding("RoleBinding", "api-view", "view", [API_SA], namespace="platform"),
    ),
    (
        "L15 twin: RoleBinding in t-acme to acme's own service account",
        "us",
        binding("RoleBinding", "acme-view", "view", [ACME_SA], namespace="t-acme"),
    ),
    (
        "L15 twin: a ClusterRole that aggregates into nothing",
        "us",
        cluster_role("api-reader", {"app.kubernetes.io/name": "meridian-api"}),
    ),
]
