"""What the platform puts into its clusters, judged by value where a type alone says nothing: EKS
add-ons (whose code runs on every node), Kubernetes Secrets and ConfigMaps in tenant namespaces
(whose data may be the platform's), TargetGroupBindings (which put pods behind a load balancer)
and RBAC bindings (which hand a namespace's rights to subjects).

A tenant namespace is one the plan renders with the tenant label (`meridian.io/tenant`), or one the
plan names but does not create that is a cell's tenant's or carries the tenant prefix (tenantns); an
object's namespace is its `metadata.namespace`, or the Namespace its metadata was built from when
that is only known after apply.
"""

from __future__ import annotations

import json
import re
from typing import Any

from destinations import arn_account, stack_accounts
from ruleutil import (
    CRITICAL,
    HIGH,
    NAMESPACE,
    TAG_TENANT,
    TENANT_LABEL,
    UNKNOWN,
    Stack,
    UnknownValueError,
    as_list,
    dig,
    judge_each,
    known,
    labels_of,
    peek,
    stack_policy,
    string_list,
    tags_of,
    unknown,
)
from tenantclusters import CLUSTER, WITHOUT_TENANTS, cluster_label, names_cluster, tenant_clusters
from tenantclusters import SETTINGS as CLUSTER_SETTINGS
from tenantns import SETTINGS as NAMESPACE_SETTINGS
from tenantns import undefined_tenant

ADDON = "aws:eks/addon:Addon"
K8S_SECRET = "kubernetes:core/v1:Secret"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
TARGET_GROUP_BINDINGS = ("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding",)  # another version: unreviewed (inventory.py)
TARGET_GROUPS = ("aws:lb/targetGroup:TargetGroup", "aws:alb/targetGroup:TargetGroup")
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"

_TENANCY = {
    "tenantTag": {"type": "string", "default": TAG_TENANT, "description": "AWS tag naming a resource's tenant"},
    "tenantLabel": {"type": "string", "default": TENANT_LABEL, "description": "Kubernetes label naming a namespace's tenant"},
    **NAMESPACE_SETTINGS,
}
_NAMESPACES = {k: _TENANCY[k] for k in ("tenantLabel", *NAMESPACE_SETTINGS)}


class Namespaces:
    """The plan's namespaces by name (in any cluster): the tenant each belongs to, and the names
    whose tenant label is only known after apply; a name the plan does not create is judged by
    tenantns (a cell's tenant, or the tenant prefix)."""

    def __init__(self, stack: Stack, config: dict):
        self.stack, self.config = stack, config
        self.label = config.get("tenantLabel", TENANT_LABEL)
        label = self.label
        self.tenants: dict[str, str] = {}
        self.unsure: set[str] = set()
        self.created: set[str] = set()
        for ns in stack.of(NAMESPACE):
            name = peek(ns.props, "metadata", "name")
            if not isinstance(name, str):
                continue
            self.created.add(name)
            tenant = labels_of(ns.props).get(label) if peek(ns.props, "metadata") is not UNKNOWN else UNKNOWN
            if tenant is UNKNOWN:
                self.unsure.add(name)
            elif tenant:
                self.tenants[name] = str(tenant)

    def tenant_of(self, name: str) -> str | None:
        """The tenant whose namespace `name` is (None: no tenant's); raises if its label is unknown."""
        if name in self.unsure:
            raise unknown(f"namespace {name}'s metadata", "labels", self.label)
        if name not in self.created:
            return undefined_tenant(name, self.config)
        return self.tenants.get(name)

    def of(self, obj: Any) -> tuple[str, str | None]:
        """(namespace name, tenant or None) of a namespaced object."""
        name = peek(obj.props, "metadata", "namespace")
        if isinstance(name, str) and name:
            return name, self.tenant_of(name)
        linked = self.stack.linked(obj, "metadata", NAMESPACE)
        if name is UNKNOWN and not linked:
            raise unknown("metadata", "namespace")
        if linked:
            ns = linked[0]
            tenant = labels_of(ns.props).get(self.label)
            if tenant is UNKNOWN:
                raise unknown(f"namespace {ns.name}'s metadata", "labels", self.label)
            ns_name = peek(ns.props, "metadata", "name")
            return (ns_name if isinstance(ns_name, str) else ns.name), (str(tenant) if tenant else None)
        # no namespace given: the kubernetes provider's `namespace` setting, else `default`
        provider = obj.provider
        default = peek(provider.props, "namespace") if provider is not None else None
        if default is UNKNOWN:
            raise unknown("provider", "namespace")
        default = default if isinstance(default, str) and default else "default"
        return default, self.tenant_of(default)


# --- EKS add-ons ---------------------------------------------------------------------------------

# Add-ons that may run in the clusters: the ones components.cluster installs, each AWS-authored and
# with why what it handles stays in the cluster, its VPC or the account (their `configurationValues`
# are not judged: see the rule's limits).
ADDONS: dict[str, str] = {
    "vpc-cni": "AWS VPC CNI: gives pods VPC addresses and enforces NetworkPolicies on the nodes; carries no data elsewhere",
    "coredns": "cluster DNS, run on the cluster's own nodes; holds no data",
    "kube-proxy": "programs Service routing on each node; holds no data",
    "eks-pod-identity-agent": "hands pods their role's credentials from EKS Auth in the cluster's own region",
    "aws-ebs-csi-driver": "attaches EBS volumes, which live in the nodes' own account and availability zone",
}


def _network_policy_problems(props: Any) -> list[str]:
    """The VPC CNI enforces NetworkPolicies only with `enableNetworkPolicy: "true"` in its configuration
    values (JSON, as components.cluster writes them): without it every tenant's default-deny is void.
    Every cluster may hold tenant namespaces (a cell's tenants live in the platform's cluster), so every
    vpc-cni add-on is held to it. Raises `UnknownValueError` for values unknown at preview."""
    values = dig(props, "configurationValues")
    why = (
        "without it the VPC CNI enforces no NetworkPolicy, so every tenant namespace's default-deny and allows are void "
        "(tenant pods reach each other, the database subnets and the internet)"
    )
    try:
        parsed = json.loads(values) if isinstance(values, str) else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        return [f'vpc-cni add-on `configurationValues` must be a JSON object with `enableNetworkPolicy: "true"`: {why}']
    setting = parsed.get("enableNetworkPolicy")
    if str(setting).lower() != "true":
        return [f'vpc-cni add-on `configurationValues` must set `enableNetworkPolicy: "true"`, not {setting!r}: {why}']
    return []


def check_addon(_type: str, props: Any, config: dict, _provider: Any) -> list[str]:
    name = dig(props, "addonName")
    if name == "vpc-cni":
        return _network_policy_problems(props)
    if name in ADDONS or name in set(config.get("allowedAddons") or []):
        return []
    return [
        f"EKS add-on `{name}` must be one the pack has reviewed (ADDONS in policies/k8splatform.py: "
        f"{', '.join(sorted(ADDONS))}, or `allowedAddons` in the stack's pack config): a vendor or marketplace add-on "
        "runs its publisher's code on every node and may ship telemetry, logs or pod data wherever its "
        "`configurationValues` say. Review where it sends data (region, account, vendor site) and what its "
        "pod identity associations grant, then list it with the reason"
    ]


def _cni_problems(stack: Stack, cluster: Any) -> list[tuple[str | None, str]]:
    """A cluster that runs tenants without a vpc-cni add-on of the plan: EKS then runs the VPC CNI it installs
    itself (`bootstrapSelfManagedAddons`), with network policy off, and every NetworkPolicy there is inert
    (https://docs.aws.amazon.com/eks/latest/userguide/cni-network-policy-configure.html). The add-on's own
    setting is judged on the add-on (`check_addon`)."""
    undecided = False
    for addon in stack.of(ADDON):
        name, on = peek(addon.props, "addonName"), names_cluster(stack, addon, "clusterName", cluster)
        if name == "vpc-cni" and on is True:
            return []
        undecided = undecided or (on is not False and name in ("vpc-cni", UNKNOWN))
    if undecided:
        raise unknown("an add-on's addonName or clusterName (is it this cluster's vpc-cni?)")
    return [
        (
            cluster.urn,
            f"EKS cluster {cluster_label(cluster)} runs tenants (`{WITHOUT_TENANTS}` does not list it): it must have a "
            '`vpc-cni` add-on with `enableNetworkPolicy: "true"`: without one EKS runs the VPC CNI it installs itself, '
            "which enforces no NetworkPolicy, so every tenant namespace's default deny there is inert",
        )
    ]


def check_addons(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    return judge_each(stack.of(ADDON), lambda a: [(a.urn, m) for m in check_addon(a.resource_type, a.props, config, None)]) + (
        judge_each(tenant_clusters(stack, config), lambda c: _cni_problems(stack, c))
    )


addon_reviewed = stack_policy(
    "eks-addon-reviewed",
    what="Checks that every EKS add-on is one the pack lists as reviewed (the AWS-authored add-ons components.cluster "
    "installs: vpc-cni, coredns, kube-proxy, eks-pod-identity-agent, aws-ebs-csi-driver) or one the stack's pack "
    "config allows (`allowedAddons`), that every `vpc-cni` add-on enforces NetworkPolicies "
    '(`enableNetworkPolicy: "true"` in its `configurationValues`), and that every EKS cluster that runs tenants (every '
    "one of the plan unless `clustersWithoutTenants` lists it) has such a `vpc-cni` add-on (its `clusterName` built from "
    "the cluster or equal to its name): without one EKS runs its self-managed VPC CNI, which enforces no NetworkPolicy",
    why="An add-on is code its publisher runs with node-level access in every cluster: a third-party one (monitoring, "
    "security agents) can send tenant pods' data, logs and metrics to the vendor's site, outside the zone and the account.",
    reads=[ADDON, CLUSTER],
    check=check_addons,
    severity=HIGH,
    config={
        **CLUSTER_SETTINGS,
        "allowedAddons": string_list(
            [], "EKS add-ons reviewed for this stack beyond the pack's list: each keeps the zone's data in the account and region"
        ),
    },
    remediation="Use an add-on of the list, or review the add-on (where it sends data, under which configuration, with "
    "which role) and add it to ADDONS in policies/k8splatform.py with the reason, or to `allowedAddons` in "
    "policies/config/<stack>.json for one stack. For `vpc-cni`, set `configurationValues` to "
    '`{"enableNetworkPolicy": "true"}` (components.cluster does).',
    limits="Judged by `addonName`, and for `vpc-cni` by `enableNetworkPolicy` (its `configurationValues` must be JSON, as the "
    "program writes them; YAML is refused, unknown at preview is an advisory): the other `configurationValues` of a listed "
    "add-on are not read (a listed add-on reconfigured to export elsewhere passes), nor are the roles its "
    "`podIdentityAssociations` hand out judged here. A cluster that runs tenants must have the add-on whatever else it "
    "runs: another network policy engine (Calico, Cilium) with `bootstrapSelfManagedAddons: false` is not recognised "
    "(documented strictness); a cluster declared tenant-free (`clustersWithoutTenants`, set by hand) is not required to. "
    "Add-ons installed outside Pulumi (console, eksctl) are not in the plan.",
    tags=["kubernetes", "residency"],
)


# --- Secrets and ConfigMaps in tenant namespaces ----------------------------------------------------

DATA_FIELDS = ("data", "stringData", "binaryData")
# Resources whose outputs are credentials or key material: data built from one is that resource's secret.
SECRET_SOURCES = (
    "aws:secretsmanager/secret:Secret",
    "aws:secretsmanager/secretVersion:SecretVersion",
    "aws:rds/cluster:Cluster",
    "aws:rds/instance:Instance",
    "aws:rds/clusterInstance:ClusterInstance",
    "aws:rds/globalCluster:GlobalCluster",
    "aws:iam/accessKey:AccessKey",
    "aws:iam/serviceSpecificCredential:ServiceSpecificCredential",
    "aws:ssm/parameter:Parameter",
    "aws:cognito/userPoolClient:UserPoolClient",
    "aws:elasticache/replicationGroup:ReplicationGroup",
)
# Generated values with no owner of their own: they belong to whoever uses them.
GENERATED = (
    "random:index/randomPassword:RandomPassword",
    "random:index/randomString:RandomString",
    "random:index/randomId:RandomId",
    "tls:index/privateKey:PrivateKey",
)
K8S_DATA = (K8S_SECRET, CONFIG_MAP)
# Kubernetes kinds that live in no namespace (and the Helm release, whose namespace is an argument of its own)
CLUSTER_SCOPED = frozenset(
    {
        NAMESPACE,
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
        "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy",
        "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding",
        "kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration",
        "kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration",
        "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition",
        "kubernetes:core/v1:PersistentVolume",
        "kubernetes:storage.k8s.io/v1:StorageClass",
        "kubernetes:scheduling.k8s.io/v1:PriorityClass",
        "kubernetes:helm.sh/v3:Release",
    }
)


def _has_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    return isinstance(value, list) and any(_has_unknown(v) for v in value)


def check_tenant_secrets(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    namespaces = Namespaces(stack, config)
    tag = config.get("tenantTag", TAG_TENANT)
    where: dict[str, str] = {}  # urn -> namespace name, of objects whose namespace is known

    def namespace_name(obj: Any) -> str | None:
        if obj.urn not in where:
            try:
                where[obj.urn] = namespaces.of(obj)[0]
            except UnknownValueError:  # judged (as unknown) on the object itself
                return None
        return where[obj.urn]

    copies: dict[tuple[str, str], list[Any]] = {}  # (field, value) -> objects holding it
    for obj in stack.of(*K8S_DATA):
        for field in DATA_FIELDS:
            value = known(peek(obj.props, field))
            if value not in (None, "", {}) and not _has_unknown(value):
                copies.setdefault((field, json.dumps(value, sort_keys=True, default=str)), []).append(obj)

    def owner(r: Any) -> Any:
        return tags_of(r.props).get(tag)

    def owned_by(r: Any, tenant: str, ns: str) -> bool:
        """`r` is the tenant's: tagged with it, or a Kubernetes object of its namespace."""
        if r.resource_type.startswith("kubernetes:") and r.resource_type not in CLUSTER_SCOPED:
            return namespace_name(r) == ns
        who = owner(r)
        if who is UNKNOWN:
            raise unknown(f"{r.name}'s tags", tag)
        return who == tenant

    def source_problem(src: Any, obj: Any, tenant: str, ns: str) -> str | None:
        kind = src.resource_type.rsplit(":", 1)[-1]
        if src.resource_type in K8S_DATA:
            other = namespace_name(src)
            return None if other == ns else f"{kind} {src.name} of namespace {other or '(unknown)'}"
        if src.resource_type in GENERATED:
            shared = [r for r, _ in stack.referrers.get(src.urn, []) if r.urn != obj.urn and not owned_by(r, tenant, ns)]
            return f"{kind} {src.name}, which {shared[0].name} also uses" if shared else None
        if src.resource_type.startswith("aws:") or src.resource_type in SECRET_SOURCES:
            who = owner(src)
            if who is UNKNOWN:
                raise unknown(f"{src.name}'s tags", tag)
            if who and who != tenant:
                return f"{kind} {src.name} of tenant {who}"
            if src.resource_type in SECRET_SOURCES and who != tenant:
                return f"the platform's {kind} {src.name}"
        return None

    def judge(obj: Any) -> list[tuple[str | None, str]]:
        ns, tenant = namespaces.of(obj)
        if tenant is None:
            return []
        kind = obj.resource_type.rsplit(":", 1)[-1]
        found = []
        for field in obj.property_dependencies:
            for src in stack.linked(obj, field):
                problem = source_problem(src, obj, tenant, ns)
                if problem:
                    found.append(f"its `{field}` is built from {problem}")
        for field in DATA_FIELDS if obj.resource_type in K8S_DATA else ():
            value = known(peek(obj.props, field))
            key = (field, json.dumps(value, sort_keys=True, default=str))
            for twin in copies.get(key, []):
                if twin.urn != obj.urn and namespace_name(twin) not in (None, ns):
                    found.append(
                        f"its `{field}` equals that of {twin.resource_type.rsplit(':', 1)[-1]} {twin.name} of namespace {namespace_name(twin)}"
                    )
        if not found:
            return []
        message = (
            f"{kind} {obj.name} in tenant {tenant}'s namespace {ns} must hold only that tenant's own data: {'; '.join(found)}. "
            "Keep the platform's settings and credentials in the platform namespace; a tenant's workloads read what "
            "is theirs through their own identity"
        )
        return [(obj.urn, message)]

    namespaced = [
        r for r in stack.resources if r.resource_type.startswith("kubernetes:") and r.resource_type not in CLUSTER_SCOPED
    ]
    return judge_each(namespaced, judge)


tenant_secrets = stack_policy(
    "k8s-tenant-secret-own-data-only",
    what="Checks that no Secret or ConfigMap in a tenant namespace (its own plan's, or a cell's that the plan names: "
    "`cellTenantNamespaces` or the tenant prefix) holds data that is not that tenant's, nor any other "
    "object there carries it (a workload's env): no property of an object in a tenant namespace may be built from (linked to) a Secret or ConfigMap of another namespace, a "
    "credential-holding resource (Secrets Manager secret or version, RDS cluster or instance, IAM access key or "
    "service-specific credential, SSM parameter, Cognito user pool client, ElastiCache replication group) not tagged as "
    "the tenant's, a resource tagged as another tenant's, or a generated value (random, TLS "
    "key) that anything other than the tenant's own resources also uses; nor equal the data of a Secret or ConfigMap "
    "of another namespace",
    why="Every pod of a namespace can mount its Secrets: the platform's settings (database credential, every tenant's "
    "API key) copied into a tenant namespace hand one tenant the platform and every other tenant.",
    reads=[K8S_SECRET, CONFIG_MAP, NAMESPACE],
    check=check_tenant_secrets,
    severity=CRITICAL,
    config=_TENANCY,
    remediation="Keep the platform's Secrets in the platform namespace (components.workload does); give a tenant's "
    "workloads only values derived from the tenant's own resources (tagged `meridian:tenant: <id>`).",
    limits="Derivation is proved from the plan's links (`propertyDependencies`) and equality of known values: a "
    "credential of a type not listed, a credential pasted in as a literal (from config or by hand), or a value transformed before it is written (a "
    "different encoding, a subset of the settings file), is not recognised. Secrets copied at runtime (a controller "
    "or an operator syncing secrets across namespaces) are not in the plan. A tenant namespace is one the plan labels "
    "a tenant's, or one it names without creating that a cell creates for its tenant (`cellTenantNamespaces`, set by "
    "hand for names without the prefix) or that carries the tenant prefix (`tenantNamespacePrefix`): a namespace the plan creates "
    "without the tenant label, or names without the prefix and no cell lists, is the platform's; an object without "
    "`metadata.namespace` is in its kubernetes provider's `namespace`, else `default`. Equality is judged for Secrets "
    "and ConfigMaps only.",
    tags=["tenancy", "kubernetes"],
)


# --- TargetGroupBindings --------------------------------------------------------------------------

_AUTONAME = re.compile(r"-[0-9a-f]{7}$")


def _names_target_group(group: Any, arn: str) -> bool:
    """`arn` (`...:targetgroup/<name>/<id>`) names the stack's target group `group`: by its `name`,
    its `namePrefix`, or Pulumi's auto-name from its logical name."""
    parts = arn.rsplit(":", 1)[-1].split("/")
    if len(parts) < 3 or parts[0] != "targetgroup":
        return False
    name = parts[1]
    given, prefix = peek(group.props, "name"), peek(group.props, "namePrefix")
    if given is UNKNOWN or prefix is UNKNOWN:
        raise unknown(f"{group.name}.name")
    if isinstance(given, str):
        return name == given
    if isinstance(prefix, str):
        return name.startswith(prefix)
    return bool(_AUTONAME.search(name)) and name[:-8] == group.name


def check_target_group_bindings(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    namespaces = Namespaces(stack, config)
    accounts = stack_accounts(stack)

    def judge(binding: Any) -> list[tuple[str | None, str]]:
        out = []
        ns, tenant = namespaces.of(binding)
        if tenant is not None:
            out.append(
                f"must not put tenant {tenant}'s pods (namespace {ns}) behind a load balancer's target group: tenants "
                "are reached only through the platform's API, never exposed by the platform ALB directly"
            )
        arn = peek(binding.props, "spec", "targetGroupARN")
        if arn is UNKNOWN:
            raise unknown("spec", "targetGroupARN")
        if not isinstance(arn, str) or not arn:
            out.append("must name the target group it binds (`spec.targetGroupARN`)")
        else:
            account = arn_account(arn)
            if not accounts:
                out.append(
                    "must bind a target group of the stack's own account, but no AWS provider declares "
                    "`allowedAccountIds`: set it so a foreign account can be told apart"
                )
            elif account not in accounts:
                out.append(f"must bind a target group of the stack's own account ({', '.join(sorted(accounts))}), not {arn}")
            if not any(_names_target_group(g, arn) for g in stack.linked(binding, "spec", *TARGET_GROUPS)):
                out.append(
                    f"must bind a target group this stack creates, referenced by its output (`target_group.arn`): {arn} "
                    "is none of the target groups its spec is built from"
                )
        return [(binding.urn, f"TargetGroupBinding {binding.name} {problem}") for problem in out]

    return judge_each(stack.of(*TARGET_GROUP_BINDINGS), judge)


target_group_bindings = stack_policy(
    "k8s-target-group-binding-platform-only",
    what="Checks that every TargetGroupBinding (AWS Load Balancer Controller) lives outside tenant namespaces and binds "
    "a target group this stack creates in its own account: `spec.targetGroupARN` built from a target group of the plan "
    "whose name it carries (its `name`, `namePrefix` or Pulumi auto-name), in an account of the AWS providers' "
    "`allowedAccountIds`",
    why="A binding registers pods as targets of a load balancer: in a tenant namespace it exposes that tenant's pods "
    "on the platform's internet-facing ALB past the API's authentication, and a target group outside the plan (another "
    "account's) sends the load balancer's traffic, and with it tenant data, to whoever owns it.",
    reads=list(TARGET_GROUP_BINDINGS),
    check=check_target_group_bindings,
    severity=HIGH,
    config=_NAMESPACES,
    remediation="Bind only the platform API's Services to the ingress component's target groups, passing "
    "`target_group.arn` (components.workload does); expose a tenant only through the platform API.",
    limits="The Service a binding names (`serviceRef`) is taken to be of the binding's own namespace, as the controller "
    "requires; which load balancer and listener forward to the target group is the lb rules'. Bindings the controller "
    "creates for Ingress or Service objects are not in the plan (Ingress is judged as its own type).",
    tags=["exposure", "kubernetes"],
)


# --- RBAC ---------------------------------------------------------------------------------------

BROAD_GROUPS = ("system:authenticated", "system:unauthenticated", "system:serviceaccounts")
SA_GROUP = "system:serviceaccounts:"
# `system:` groups and users are identities Kubernetes and EKS assign themselves (bootstrap tokens, nodes,
# masters, control-plane components): a binding to one hands its rights to whoever obtains that identity.
# The shipped plans bind none; a namespace's service-account group (`system:serviceaccounts:<ns>`) and a
# service account's username are judged as that namespace's service accounts. An explicit allowlist:
SYSTEM_SUBJECTS_ALLOWED: frozenset[str] = frozenset()
_SA_USER = re.compile(r"^system:serviceaccount:([^:]+):(.+)$")  # a service account's username
AGGREGATE = "rbac.authorization.k8s.io/aggregate-to-"


_READ_VERBS = {"get", "list", "watch"}
AGGREGATE_TO_VIEW = "rbac.authorization.k8s.io/aggregate-to-view"
# subresources whose `get` does more than read an object: exec, attach and the proxies by a websocket or HTTP
# upgrade into a pod or a node's kubelet, a port forward; `view` itself holds none of them
# (https://kubernetes.io/docs/reference/access-authn-authz/rbac/#user-facing-roles)
_NOT_READS = {
    "nodes/proxy",
    "pods/exec",
    "pods/attach",
    "pods/portforward",
    "pods/proxy",
    "pods/ephemeralcontainers",
    "services/proxy",
    "serviceaccounts/token",
}


def _reads_only(role: Any) -> bool:
    """A ClusterRole whose own rules only read (get, list, watch) named resources other than Secrets, and
    that aggregates nothing itself (its rules are what it adds): aggregated into `view`, it adds reads of
    the kind `view` holds, within each binding's own scope (the usual way a custom resource becomes
    readable; `view` reaches `edit` and `admin` through their own aggregation). Not `*` or a wildcard
    subresource (Secrets with it), not a subresource whose `get` reaches into a pod or a node
    (`_NOT_READS`)."""
    if peek(role.props, "aggregationRule") is not None:
        return False
    rules = known(peek(role.props, "rules", default=[]))
    if rules is UNKNOWN or _has_unknown(rules):
        raise unknown("rules")
    for rule in rules if isinstance(rules, list) else [None]:
        if not isinstance(rule, dict) or rule.get("nonResourceURLs"):
            return False
        verbs, names = set(map(str, rule.get("verbs") or [])), set(map(str, rule.get("resources") or []))
        if not verbs <= _READ_VERBS or not names or any("*" in n or n.split("/")[0] == "secrets" for n in names):
            return False
        if names & _NOT_READS:
            return False
    return True


ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
_ROLE_ARN = re.compile(r"^arn:aws[\w-]*:iam::(\d{12}):role/(?:[^/]+/)*([^/]+)$")
# a role's session as EKS names it by default (`arn:aws:sts::<account>:assumed-role/<role name>/{{SessionName}}`,
# https://docs.aws.amazon.com/eks/latest/userguide/creating-access-entries.html), or any concrete session of it
_SESSION_USER = re.compile(r"^arn:aws[\w-]*:sts::(\d{12}):assumed-role/([^/]+)/.+$")
# a placeholder of an access entry's `userName` (`{{SessionName}}`, `{{AccountID}}`...): stands for any value
_PLACEHOLDER = re.compile(r"(\{\{\w+\}\})")


class PrIdentities:
    """The Kubernetes users and groups EKS maps the roles that run pull-request code (`prCodePrincipals`) to:
    the role's ARN, any session of it (EKS's default username), the `userName` an access entry of the role sets
    (its placeholders matching any value) and the `kubernetesGroups` it puts the role in."""

    def __init__(self, stack: Stack, config: dict):
        arns = [_ROLE_ARN.match(str(arn)) for arn in config.get("prCodePrincipals") or []]
        self.roles = {(m.group(1), m.group(2).lower()) for m in arns if m}  # (account, role name): IAM's are case-blind
        self.users: list[re.Pattern[str]] = []
        self.groups: set[str] = set()
        self.undecided = False  # an entry of a PR role whose username or groups are only known after apply
        for entry in stack.of(ACCESS_ENTRY):
            principal = peek(entry.props, "principalArn")
            if not (isinstance(principal, str) and self.is_role(principal)):
                continue
            user, groups = peek(entry.props, "userName"), known(peek(entry.props, "kubernetesGroups", default=[]))
            if user is UNKNOWN or groups is UNKNOWN or UNKNOWN in as_list(groups):
                self.undecided = True
            if isinstance(user, str) and user:
                parts = _PLACEHOLDER.split(user)
                self.users.append(re.compile("".join(".+" if _PLACEHOLDER.fullmatch(p) else re.escape(p) for p in parts) + "$"))
            self.groups |= {str(g) for g in as_list(groups) if isinstance(g, str)}

    def is_role(self, arn: str) -> bool:
        m = _ROLE_ARN.match(arn) or _SESSION_USER.match(arn)
        return bool(m) and (m.group(1), m.group(2).lower()) in self.roles

    def names(self, kind: str, name: str) -> bool:
        if kind == "Group":
            return name in self.groups
        return kind == "User" and (self.is_role(name) or any(p.match(name) for p in self.users))


def _beyond_view(stack: Stack, role_ref: Any, binding_ns: str | None) -> str | None:
    """What a binding's `roleRef` grants beyond the `view` aggregation, or None: `view` itself, or a Role or
    ClusterRole of the plan that only reads (`_reads_only`: no Secrets, no exec); any other role (admin, edit,
    cluster-admin, one outside the plan) is beyond."""
    if role_ref is UNKNOWN or UNKNOWN in (dig(role_ref, "kind"), dig(role_ref, "name")):
        raise unknown("roleRef")
    kind, name = str(dig(role_ref, "kind")), str(dig(role_ref, "name"))
    if kind == "ClusterRole" and name == "view":
        return None
    defined = [
        r
        for r in stack.of(ROLE if kind == "Role" else CLUSTER_ROLE)
        if peek(r.props, "metadata", "name") == name
        and (kind != "Role" or peek(r.props, "metadata", "namespace") in (binding_ns, UNKNOWN))
    ]
    if defined and all(_reads_only(r) for r in defined):
        return None
    return f"{kind} {name} ({'reads Secrets, execs or writes' if defined else 'not a read-only role of the plan'})"


def check_rbac(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    namespaces = Namespaces(stack, config)
    pr = PrIdentities(stack, config)

    def pr_problems(kind: str, name: str, label: str, role_ref: Any, binding_ns: str | None) -> list[str]:
        """A binding beyond `view` to the Kubernetes identity of a role that runs pull-request code (review 19 H14)."""
        if not pr.names(kind, name) and not (pr.undecided and kind in ("User", "Group")):
            return []
        beyond = _beyond_view(stack, role_ref, binding_ns)
        if beyond is None:
            return []
        if not pr.names(kind, name):
            raise unknown("an access entry of a `prCodePrincipals` role", "userName or kubernetesGroups")
        return [
            f"grants {label}, the Kubernetes identity EKS gives a role that runs pull-request code (`prCodePrincipals`), "
            f"{beyond}: beyond `view`, the pull request's author reads what view withholds (Secrets: the platform's "
            "database credential, every tenant's API key) or changes the cluster"
        ]

    def subject_problems(subject: Any, binding_ns: str | None, binding_tenant: str | None, role_ref: Any = None) -> list[str]:
        if subject is UNKNOWN or not isinstance(subject, dict):
            raise unknown("subjects")
        kind, name = str(subject.get("kind")), str(subject.get("name"))
        if UNKNOWN in (subject.get("kind"), subject.get("name"), subject.get("namespace")):
            raise unknown("subjects", name)
        label = f"{kind} {name}"
        if (kind == "Group" and name in BROAD_GROUPS) or (kind == "User" and name == "system:anonymous"):
            return [f"grants to {label}: every service account or caller of the cluster, every tenant's included"]
        as_user = _SA_USER.match(name) if kind == "User" else None
        system = kind in ("Group", "User") and name.startswith("system:") and name not in SYSTEM_SUBJECTS_ALLOWED
        if system and not as_user and not (kind == "Group" and name.startswith(SA_GROUP)):
            return [
                f"grants to {label}, an identity Kubernetes or EKS assigns (bootstrap tokens, nodes, masters, control-plane "
                "components): whoever obtains it gets the binding's rights"
            ]
        if as_user:  # a service account named by its username: the same subject
            kind, ns, label = "ServiceAccount", as_user.group(1), f"{label} (service account {as_user.group(2)})"
        elif kind == "ServiceAccount":
            ns = str(subject.get("namespace") or binding_ns or "")
        elif kind == "Group" and name.startswith(SA_GROUP):
            ns = name.removeprefix(SA_GROUP)
        else:
            # a user or group the cluster's authenticator maps: in a tenant namespace nobody can tell whose it is;
            # elsewhere an operator's, unless it is a pull-request role's, which gets no more than `view`
            if binding_tenant is None:
                return pr_problems(kind, name, label, role_ref, binding_ns)
            return [f"grants tenant {binding_tenant}'s namespace to {label}, who is no service account of it"]
        label = f"{label} of namespace {ns}" if kind == "ServiceAccount" and not as_user else label
        if binding_ns is None:  # cluster-wide
            tenant = namespaces.tenant_of(ns)
            return [f"grants every namespace to tenant {tenant}'s {label}"] if tenant else []
        return [] if ns == binding_ns else [f"grants namespace {binding_ns} to {label}, another namespace's"]

    def judge(r: Any) -> list[tuple[str | None, str]]:
        kind = r.resource_type.rsplit(":", 1)[-1]
        if r.resource_type == CLUSTER_ROLE:
            labels = labels_of(r.props)
            widened = sorted(k for k, v in labels.items() if k.startswith(AGGREGATE) and str(v).lower() == "true")
            if not widened or (widened == [AGGREGATE_TO_VIEW] and _reads_only(r)):
                return []
            message = (
                f"ClusterRole {r.name} must not aggregate into other roles ({', '.join(widened)}): its rules then "
                "extend every binding of those roles, in every namespace"
            )
            return [(r.urn, message)]
        if r.resource_type == ROLE_BINDING:
            ns, tenant = namespaces.of(r)
        else:
            ns, tenant = None, None
        subjects = known(peek(r.props, "subjects"))
        if subjects is UNKNOWN:
            raise unknown("subjects")
        role_ref = known(peek(r.props, "roleRef"))
        problems = [p for s in subjects or [] for p in subject_problems(s, ns, tenant, role_ref)]
        return [
            (
                r.urn,
                f"{kind} {r.name} must grant {'only to service accounts of its own namespace' if ns else 'nothing to a tenant or everyone'}: {p}",
            )
            for p in problems
        ]

    return judge_each(stack.of(ROLE_BINDING, CLUSTER_ROLE_BINDING, CLUSTER_ROLE), judge)


rbac_scoped = stack_policy(
    "k8s-rbac-binding-scoped",
    what="Checks that every RoleBinding grants only to service accounts of its own namespace (and, outside tenant "
    "namespaces, to users and groups the cluster maps), that no binding in any namespace, nor any ClusterRoleBinding, "
    "grants a role beyond `view` (any role but `view` or a read-only Role or ClusterRole of the plan: no Secrets, no "
    "exec) to the Kubernetes identity of a role that runs pull-request code (`prCodePrincipals`): its ARN, any session "
    "of it (`arn:aws:sts::<account>:assumed-role/<role>/<session>`, EKS's default username), the `userName` an access "
    "entry of it sets (placeholders matching any value) or a group such an entry puts it in, that no ClusterRoleBinding grants to a tenant namespace's "
    "service accounts (`ServiceAccount` subjects, their `system:serviceaccount:<ns>:<name>` usernames as `User`, or the "
    "`system:serviceaccounts:<ns>` group; a tenant namespace being one the plan labels a tenant's, or one it names "
    "without creating that a cell lists as its tenant's, `cellTenantNamespaces`, or that carries the tenant prefix), that no binding grants "
    "to `system:authenticated`, `system:unauthenticated`, `system:serviceaccounts`, `system:anonymous` or any other "
    "`system:` group or user (`system:bootstrappers`, `system:nodes`, `system:masters`...: only a namespace's "
    "service-account group and service-account usernames, judged as that namespace's, and the pack's allowlist "
    "SYSTEM_SUBJECTS_ALLOWED, empty, pass), and that no "
    "ClusterRole aggregates into other roles (`rbac.authorization.k8s.io/aggregate-to-*` labels) unless it aggregates "
    "into `view` alone and only reads (get, list, watch) named resources other than Secrets, with no wildcard and no "
    "subresource whose `get` reaches into a pod or a node (`nodes/proxy`, `pods/exec`, `pods/attach`, `pods/portforward`, "
    "`pods/proxy`, `services/proxy`, ...), aggregating nothing itself",
    why="A binding across namespaces hands one namespace's Secrets, pods and service accounts to another namespace's "
    "workloads, a cluster-wide binding hands every tenant's namespace to one tenant, and a ClusterRole aggregated into "
    "`view`/`edit`/`admin` silently widens every existing binding of them (a read-only one into `view` only by reads of "
    "the kind `view` holds, within each binding's scope; `edit` and `admin` take it through `view`, so a label into "
    "them is needed only by rules that write).",
    reads=[ROLE_BINDING, CLUSTER_ROLE_BINDING, CLUSTER_ROLE],
    check=check_rbac,
    severity=CRITICAL,
    config={
        **_NAMESPACES,
        "prCodePrincipals": string_list(
            [],
            "roles that run pull-request code, whose Kubernetes users and groups may be bound to `view` only "
            "(generated: cluster.pr_viewer_role_arns, as eks-access-platform-roles-only's)",
        ),
    },
    remediation="Bind a role in the namespace of the service accounts that need it; give tenants nothing cluster-wide; "
    "name a service account or its namespace's group, never the cluster-wide groups; label a read-only ClusterRole "
    "`aggregate-to-view` alone, and write any other ClusterRole's rules out (bind it) instead of aggregating it.",
    limits="The role's rules are not weighed: a binding inside one namespace may grant anything in it (whether it lets "
    "a subject create pods and so take the namespace's pod identities is tenant-data-access's). Users and groups "
    "(other than `system:` ones) outside tenant namespaces are the cluster's operators, mapped by EKS access entries, and "
    "are not judged here, except a pull-request role's identities (its ARN, its sessions, its entries' usernames and "
    "groups), held to `view`; a username mapped to it outside the plan (an entry made by hand) is not known. A "
    "ClusterRoleBinding to service accounts of namespaces that are not tenants' (the platform's, controllers': created "
    "by the plan without the tenant label, or named without the tenant prefix and listed by no cell) is allowed. "
    "Bindings installed by Helm charts or controllers are not in the plan; the admission policies "
    "(runtime-backstops-enforced) hold tenant namespaces to the same subjects at runtime. A read-only role "
    "aggregated into `view` is refused when it also carries an `edit`/`admin` label (documented strictness: harmless "
    "for reads, as `view` flows into both, but those labels are how writes reach them, so the pack keeps one narrow "
    "door); a role read-only by its verbs is trusted to add nothing beyond reads of objects of the kind `view` holds "
    "(a custom resource that itself carries credentials is the operator's to keep out of `view`).",
    tags=["tenancy", "kubernetes"],
)

POLICIES = [addon_reviewed, tenant_secrets, target_group_bindings, rbac_scoped]
