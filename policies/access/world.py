"""Everything that decides access to tenant data, read from the stack: principals with their
documents, how sessions of them are obtained (Pod Identity, IRSA, AssumeRole, EKS access entries,
Kubernetes RBAC), and every tenant data resource with its resource policy and KMS grants.

Unknowns are collected, never guessed: a document only known after apply, a managed policy whose
text the pack does not ship (evaluated as granting everything, and said so), a tenant resource whose
ARN the plan does not show.
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from access.arns import GROUP, SECRET, USER, Arns, account_of, arns_of, parse_json
from iamdoc import _roles_of, grants_by_role
from ruleutil import (
    KMS_KEY,
    KMS_KEYS,
    MANAGED_POLICY,
    NAMESPACE,
    POLICY_ATTACHMENT,
    ROLE,
    ROLE_ATTACHMENT,
    ROLE_ATTACHMENTS_EXCLUSIVE,
    ROLE_POLICY,
    S3_BUCKETS,
    UNKNOWN,
    InPlatform,
    Stack,
    UnknownValueError,
    as_list,
    dig,
    key_tenant,
    known,
    labels_of,
    peek,
    resource_region,
    session_role,
    tags_of,
    truthy,
)
from tenantns import named_namespaces, undefined_tenant

POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ADDON = "aws:eks/addon:Addon"
ADDON_NAMESPACE = "kube-system"  # where EKS installs an AWS add-on's service accounts
EKS_CLUSTER = "aws:eks/cluster:Cluster"
ACCESS_ENTRY = "aws:eks/accessEntry:AccessEntry"
ACCESS_POLICY = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
GRANT = "aws:kms/grant:Grant"
SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
USER_ATTACHMENT = "aws:iam/userPolicyAttachment:UserPolicyAttachment"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
GROUP_ATTACHMENT = "aws:iam/groupPolicyAttachment:GroupPolicyAttachment"
GROUP_MEMBERSHIP = "aws:iam/groupMembership:GroupMembership"
USER_GROUPS = "aws:iam/userGroupMembership:UserGroupMembership"
CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
K8S_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
BUCKET_ACLS = ("aws:s3/bucketAcl:BucketAcl", "aws:s3/bucketAclV2:BucketAclV2")
PLATFORM = ""  # the owner of a platform resource (a secret no tenant's tag names)

# What a bucket ACL permission lets its grantee do to the data (bucket ACLs never grant reading
# objects the owner wrote: object ACLs do). WRITE_ACP lets the grantee give itself the rest.
_ACL_READ, _ACL_WRITE = ["s3:ListBucket", "s3:ListBucketVersions"], ["s3:PutObject", "s3:DeleteObject"]
ACL_ACTIONS = {
    "READ": _ACL_READ,
    "WRITE": _ACL_WRITE,
    "WRITE_ACP": _ACL_READ + _ACL_WRITE,
    "FULL_CONTROL": _ACL_READ + _ACL_WRITE,
    "READ_ACP": [],
}
_ACL_GROUPS = {
    "http://acs.amazonaws.com/groups/global/AllUsers": "*",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers": "*",  # anyone with an AWS account
    "http://acs.amazonaws.com/groups/s3/LogDelivery": {"Service": "logging.s3.amazonaws.com"},
}
_ALL, _AUTH, _LOGS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
    "http://acs.amazonaws.com/groups/s3/LogDelivery",
)
CANNED_ACLS = {
    "public-read": [(_ALL, "READ")],
    "public-read-write": [(_ALL, "READ"), (_ALL, "WRITE")],
    "authenticated-read": [(_AUTH, "READ")],
    "log-delivery-write": [(_LOGS, "WRITE"), (_LOGS, "READ_ACP")],
    "aws-exec-read": [({"Service": "ec2.amazonaws.com"}, "READ")],
}
_CANONICAL_ID = re.compile(r"^[0-9a-fA-F]{64}$")

ADMIN = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
_MANAGED = {
    k: v for k, v in json.loads((Path(__file__).parent / "aws_managed.json").read_text()).items() if not k.startswith("_")
}
# EKS access policies that let a principal create pods (and so run as any service account in scope)
POD_CREATING_ACCESS = ("AmazonEKSClusterAdminPolicy", "AmazonEKSAdminPolicy", "AmazonEKSEditPolicy")
NOT_POD_CREATING_ACCESS = ("AmazonEKSViewPolicy", "AmazonEKSAdminViewPolicy")
POD_CREATING_CLUSTER_ROLES = {"cluster-admin", "admin", "edit"}
_WORKLOADS = {
    "pods",
    "deployments",
    "statefulsets",
    "daemonsets",
    "replicasets",
    "jobs",
    "cronjobs",
    "replicationcontrollers",
    # running code in a pod that exists: its service account's credentials with it
    "pods/exec",
    "pods/attach",
    "pods/ephemeralcontainers",
}
_WRITE_VERBS = {"create", "update", "patch", "impersonate"}
# admission: a webhook or policy that may rewrite (or read) every pod at creation
_ADMISSION = {
    "mutatingwebhookconfigurations",
    "validatingwebhookconfigurations",
    "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings",
}
# signers whose certificates the API server accepts as a client's identity (any user, any group)
_CLIENT_SIGNERS = {"kubernetes.io/kube-apiserver-client", "kubernetes.io/*", "*"}
# built-in `system:` ClusterRoles that grant nothing `_runs_as_others` counts (the rest, the controllers' roles
# above all, create pods or tokens in every namespace: https://kubernetes.io/docs/reference/access-authn-authz/rbac/#controller-roles)
SAFE_SYSTEM_CLUSTER_ROLES = {
    "system:basic-user",  # selfsubjectaccessreviews, selfsubjectrulesreviews
    "system:discovery",  # API discovery
    "system:public-info-viewer",  # version, health
    "system:monitoring",  # metrics, health endpoints
    "system:auth-delegator",  # tokenreviews, subjectaccessreviews
    "system:aggregate-to-view",  # read of non-secret resources
    "system:heapster",  # read of pods, nodes, events
}
EKS_TAG_KEYS = (
    "eks-cluster-arn",
    "eks-cluster-name",
    "kubernetes-namespace",
    "kubernetes-service-account",
    "kubernetes-pod-name",
    "kubernetes-pod-uid",
)


@dataclass(frozen=True)
class Doc:
    """A policy document and where it comes from (for the path in a finding)."""

    label: str  # "inline policy us-...-data-access"
    urn: str | None
    document: dict
    stand_in: bool = False  # a managed policy whose text is unknown, evaluated as every action (the label says so)
    managed: str | None = None  # the ARN of the managed policy it is, if attached by ARN


@dataclass
class Principal:
    arn: str
    label: str
    urn: str | None
    documents: list[Doc] = field(default_factory=list)
    groups: list[tuple[str, list[Doc]]] = field(default_factory=list)
    boundary: Doc | None = None
    trust: Doc | None = None
    tags: dict[str, str] = field(default_factory=dict)
    outsider: bool = False  # not defined by this stack: its identity policies are not known
    unplaced: str | None = None  # a role the stack grants to (this URN) but does not define: who holds it is unknown


@dataclass(frozen=True)
class Workload:
    """Pods in a namespace running as a service account (`*`: any account there)."""

    cluster: str  # cluster name ("" when the plan does not say)
    namespace: str
    service_account: str


@dataclass
class Association:
    urn: str
    label: str
    workload: Workload
    role_arn: str | None
    target_role_arn: str | None
    tags_on: bool
    session_policy: Doc | None
    cluster_arn: str


@dataclass(frozen=True)
class DataResource:
    tenant: str
    kind: str  # "object", "listing", "key", "secret"
    arn: str
    label: str
    urn: str
    region: str | None
    tags: tuple[tuple[str, str], ...] = ()
    prefix: str = ""  # s3:prefix of a listing


@dataclass
class World:
    account: str
    principals: dict[str, Principal]
    associations: list[Association]
    namespaces: dict[str, str]  # namespace name -> tenant id
    service_accounts: dict[str, set[str]]  # namespace -> service accounts the plan defines
    resources: list[DataResource]
    resource_policies: dict[str, list[Doc]]  # resource ARN (bucket / key / secret) -> its policies (and grants)
    access: dict[str, list[tuple[str, str, Any]]]  # principal ARN -> [(cluster, policy name, namespaces or "*")]
    rbac: list[
        tuple[str, str, str, Any]
    ]  # (subject kind, subject name, subject namespace, namespaces the binding reaches or "*")
    k8s_groups: dict[str, list[tuple[str, list[str]]]]  # principal ARN -> [(cluster, groups)]
    unknowns: list[tuple[str | None, str]]
    tenant_prefix: str
    problems: list[tuple[str | None, str]] = field(default_factory=list)  # found while reading the stack
    aliases: dict[str, str] = field(default_factory=dict)  # stand-in account -> who it stands for
    regions: frozenset[str] = frozenset()  # the regions the stack's resources are in
    buckets: frozenset[str] = frozenset()  # the names of the buckets the stack defines (whose ARN the plan shows)


BUILT_IN_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")  # exist before any stack


def document(value: Any) -> dict | None:
    """A policy document (JSON text or map) as plain data; None if it is not one. Raises if unknown."""
    doc = parse_json(value)
    return doc if isinstance(doc, dict) else None


def _read(holder: Any, prop: str) -> dict | None:
    value = dig(holder.props, *prop.split("."))
    return document(known(value)) if value is not None else None


class StackPolicies:
    """The stack's customer-managed policies, found by the ARN an attachment names: its given name
    or Pulumi auto-name (logical name and 7 hex characters) under its path. A policy whose path or
    name is unknown at preview cannot be placed: an ARN that could be it is reported (advisory),
    never dropped nor replaced by a stand-in, since its document might grant tenant data."""

    def __init__(self, unknowns: list[tuple[str | None, str]]):
        self.unknowns = unknowns
        self.placed: list[tuple[re.Pattern[str], dict | None]] = []
        self.unplaced: list[tuple[re.Pattern[str], Any]] = []

    def add(self, policy: Any, doc: dict | None) -> None:
        name, path = peek(policy.props, "name"), peek(policy.props, "path", default="/")
        named = re.escape(name) if isinstance(name, str) else re.escape(policy.name) + "-[0-9a-f]{7}"
        if name is UNKNOWN:
            named = r"[\w+=,.@-]+"
        head = r"arn:aws[\w-]*:iam::\d{12}:policy"
        if name is UNKNOWN or path is UNKNOWN or not isinstance(path, str):
            self.unplaced.append((re.compile(f"{head}/([\\w+=,.@-]+/)*{named}"), policy))
        else:
            self.placed.append((re.compile(f"{head}{re.escape(path)}{named}"), doc))

    def document(self, arn: str) -> tuple[bool, dict | None]:
        """(whether `arn` is a policy of the stack, its document: None if unknown)."""
        for pattern, doc in self.placed:
            if pattern.fullmatch(arn):
                return True, doc
        return False, None

    def could_be(self, arn: str) -> Any | None:
        return next((p for pattern, p in self.unplaced if pattern.fullmatch(arn)), None)


def _managed(arn: str, stack_policies: StackPolicies) -> tuple[dict | None, str | None]:
    """A managed policy's document: the stack's own, one the pack ships, else everything (with the
    reason); None (with the reason) where the ARN could be a policy of the stack that cannot be placed."""
    ours, doc = stack_policies.document(arn)
    if ours:
        return doc, None if doc is not None else f"policy {arn}'s document"
    if arn in _MANAGED:
        return _MANAGED[arn], None
    could = stack_policies.could_be(arn)
    if could is not None:
        return None, (
            f"whether {arn} is managed policy {could.name}, whose path or name is unknown "
            "(its document is judged once its ARN is known)"
        )
    return ADMIN, unknown_managed(arn)


def unknown_managed(arn: str) -> str:
    """What a path says of a managed policy whose text neither the stack nor the pack holds."""
    owner = "AWS-managed" if arn.startswith("arn:aws:iam::aws:policy/") else "managed"
    return f"unknown {owner} policy {arn} treated as every action"


def _attached_doc(label: str, urn: str | None, arn: str, stack_policies: StackPolicies) -> list[Doc]:
    """The document an attachment of `arn` grants (none, reported, where it is unknown at preview)."""
    doc, why = _managed(arn, stack_policies)
    if doc is None:
        stack_policies.unknowns.append((urn, why or f"policy {arn}'s document"))
        return []
    return [Doc(why, urn, doc, stand_in=True, managed=arn) if why else Doc(label, urn, doc, managed=arn)]


def build(resources: list[Any], config: dict) -> World:
    stack = Stack(resources)
    arns = arns_of(stack)
    account = arns.account or "000000000000"
    unknowns: list[tuple[str | None, str]] = []
    tenant_label = config.get("tenantLabel", "meridian.io/tenant")
    tenant_tag = config.get("tenantTag", "meridian:tenant")

    stack_policies = StackPolicies(unknowns)
    for p in stack.of(MANAGED_POLICY):
        try:
            doc = _read(p, "policy")
        except UnknownValueError:
            doc = None
            unknowns.append((p.urn, f"managed policy {p.name}'s document"))
        stack_policies.add(p, doc)

    principals: dict[str, Principal] = {}
    grants = grants_by_role(stack)
    for role in stack.of(ROLE):
        arn = arns.of(role)
        if arn is None:
            unknowns.append((role.urn, f"role {role.name}'s ARN (resource and trust policies that name it cannot be matched)"))
            arn = f"arn:aws:iam::{account}:role/unresolved/{role.name}"
        p = Principal(
            arn, f"role {role.name}", role.urn, tags={k: v for k, v in tags_of(role.props).items() if isinstance(v, str)}
        )
        try:
            trust = _read(role, "assumeRolePolicy")
            p.trust = Doc(f"trust policy of role {role.name}", role.urn, trust) if trust else None
        except UnknownValueError:
            unknowns.append((role.urn, f"role {role.name}'s trust policy"))
        for g in grants.get(role.urn, []):
            label = g.label if g.holder.urn == role.urn else f"{g.label}"
            if g.managed_arn is not None:
                p.documents += _attached_doc(g.label, g.holder.urn, g.managed_arn, stack_policies)
                continue
            try:
                doc = document(known(g.document.read())) if g.document is not None else None
            except UnknownValueError:
                doc = None
            if doc is None or _has_unknown(doc):
                unknowns.append(
                    (g.holder.urn, f"role {role.name}'s {g.label} (what it lets the role reach is judged once it is known)")
                )
                continue
            p.documents.append(Doc(label, g.holder.urn, doc))
        boundary = peek(role.props, "permissionsBoundary")
        if isinstance(boundary, str):
            doc, why = _managed(boundary, stack_policies)
            p.boundary = Doc(f"permission boundary {boundary}", role.urn, doc) if why is None else None
        principals[arn] = p
    _users_and_groups(stack, arns, account, stack_policies, principals, unknowns)
    _unplaced_roles(stack, account, stack_policies, principals, unknowns)

    namespaces: dict[str, str] = {}
    named: set[str] = set(BUILT_IN_NAMESPACES)
    unsure: dict[str, str] = {}  # namespace name (or "" for any name) -> why its tenant is unknown at preview
    for ns in stack.of(NAMESPACE):
        metadata = peek(ns.props, "metadata")
        name = peek(ns.props, "metadata", "name") if metadata is not UNKNOWN else UNKNOWN
        tenant = labels_of(ns.props).get(tenant_label) if metadata is not UNKNOWN else UNKNOWN
        if isinstance(name, str):
            named.add(name)
            if isinstance(tenant, str):
                namespaces[name] = tenant
            elif tenant is UNKNOWN:
                unsure[name] = f"namespace {name}'s `{tenant_label}` label"
        elif tenant is not None:
            unsure[""] = f"the name of namespace {ns.name} (labelled a tenant's)"
    for name in named_namespaces(stack) - named:  # a cell's tenant's, or prefixed: a tenant's, never the platform's by absence
        if (tenant := undefined_tenant(name, config)) is not None:
            namespaces[name] = tenant
    service_accounts: dict[str, set[str]] = {}
    for sa in stack.of(SERVICE_ACCOUNT):
        ns, name = peek(sa.props, "metadata", "namespace", default="default"), peek(sa.props, "metadata", "name")
        if isinstance(ns, str) and isinstance(name, str):
            service_accounts.setdefault(ns, set()).add(name)

    associations = []
    problems: list[tuple[str | None, str]] = []
    external = {str(a) for a in config.get("podIdentityExternalRoles", [])}
    for assoc in stack.of(POD_IDENTITY):
        ns, sa, cluster = (peek(assoc.props, k) for k in ("namespace", "serviceAccount", "clusterName"))
        role_arn = _arn_prop(stack, arns, assoc, "roleArn")
        if not all(isinstance(v, str) for v in (ns, sa)) or role_arn is None:
            unread = [k for k, v in (("namespace", ns), ("serviceAccount", sa), ("roleArn", role_arn)) if not isinstance(v, str)]
            unknowns.append((assoc.urn, f"pod identity association {assoc.name}'s {', '.join(unread)}"))
            continue
        why = unsure.get(ns) or (unsure.get("") if ns not in named else None)
        if why:  # whether its pods are a tenant's is known only after apply
            unknowns.append((assoc.urn, f"pod identity association {assoc.name} in namespace {ns}: a tenant's? ({why})"))
            continue
        cluster = cluster if isinstance(cluster, str) else ""
        region = resource_region(assoc) or "unknown-region"
        try:
            policy = _read(assoc, "policy")
        except UnknownValueError:
            unknowns.append((assoc.urn, f"pod identity association {assoc.name}'s session policy"))
            policy = None
        if known(peek(assoc.props, "targetRoleArn")) is UNKNOWN:
            unknowns.append(
                (assoc.urn, f"pod identity association {assoc.name}'s `targetRoleArn` (the role its pods end up with)")
            )
        target = _arn_prop(stack, arns, assoc, "targetRoleArn")
        if target is None and isinstance(known(peek(assoc.props, "targetRoleArn")), str):
            unknowns.append((assoc.urn, f"pod identity association {assoc.name}'s `targetRoleArn` (no role the plan can place)"))
        for prop, arn in (("roleArn", role_arn), ("targetRoleArn", target)):
            if arn is not None and arn not in principals and arn not in external:
                finding = _foreign_role(assoc.name, prop, arn, ns, namespaces.get(ns), account)
                # a cell's tenants assume their platform's tenant role (same account): advisory there
                problems.append((assoc.urn, InPlatform.note(config, finding) if account_of(arn) == account else finding))
        associations.append(
            Association(
                assoc.urn,
                f"pod identity association {assoc.name}",
                Workload(cluster, ns, sa),
                role_arn,
                target,
                not truthy(peek(assoc.props, "disableSessionTags", default=False)),
                Doc(f"session policy of pod identity association {assoc.name}", assoc.urn, policy) if policy else None,
                f"arn:aws:eks:{region}:{account}:cluster/{cluster}",
            )
        )

    associations += _addon_associations(stack, account, principals, external, namespaces, unknowns, problems)

    prefix_template = str(config.get("tenantPrefix", "tenants/{namespace}/"))
    tenant_docs = [d.document for p in principals.values() if p.tags.get(tenant_tag) for d in p.documents]
    tenant_docs += [d.document for a in associations if a.workload.namespace in namespaces for d in _held(principals, a)]
    data, policies = _data(stack, arns, account, namespaces, tenant_tag, prefix_template, unknowns, _buckets_named(tenant_docs))
    aliases: dict[str, str] = {}
    policies = {arn: [replace(d, document=_placed(d.document, aliases)) for d in docs] for arn, docs in policies.items()}
    access, k8s_groups = _eks_access(stack, arns)
    return World(
        account=account,
        principals=principals,
        associations=associations,
        namespaces=namespaces,
        service_accounts=service_accounts,
        resources=data,
        resource_policies=policies,
        access=access,
        rbac=_rbac(stack, unknowns),
        k8s_groups=k8s_groups,
        unknowns=unknowns,
        tenant_prefix=prefix_template,
        problems=problems,
        aliases=aliases,
        regions=frozenset(x for r in stack.resources if isinstance(x := resource_region(r), str) and x is not UNKNOWN),
        buckets=frozenset(a.split(":::", 1)[1] for t in S3_BUCKETS for a in arns.arns_of(t)),
    )


def _addon_associations(
    stack: Stack, account: str, principals: dict, external: set[str], namespaces: dict, unknowns: list, problems: list
) -> list[Association]:
    """An EKS add-on's `podIdentityAssociations`: each hands its role to the add-on's service account
    as a standalone association would (EKS creates one per entry:
    https://docs.aws.amazon.com/eks/latest/userguide/add-ons-iam.html)."""
    out = []
    for addon in stack.of(ADDON):
        entries = known(peek(addon.props, "podIdentityAssociations"))
        if entries is UNKNOWN or any(not isinstance(e, dict) for e in as_list(entries)):
            unknowns.append((addon.urn, f"add-on {addon.name}'s `podIdentityAssociations` (the roles its pods hold)"))
            continue
        cluster = peek(addon.props, "clusterName")
        cluster = cluster if isinstance(cluster, str) else ""
        ns = peek(addon.props, "namespaceConfig", "namespace", default=ADDON_NAMESPACE)
        ns = ns if isinstance(ns, str) else ADDON_NAMESPACE
        region = resource_region(addon) or "unknown-region"
        for i, entry in enumerate(as_list(entries)):
            sa, role_arn = entry.get("serviceAccount"), entry.get("roleArn")
            if not isinstance(sa, str) or not (isinstance(role_arn, str) and role_arn.startswith("arn:")):
                unknowns.append((addon.urn, f"add-on {addon.name}'s podIdentityAssociations[{i}] service account or role"))
                continue
            if role_arn not in principals and role_arn not in external:
                problems.append(
                    (addon.urn, _foreign_role(addon.name, "podIdentityAssociations", role_arn, ns, namespaces.get(ns), account))
                )
            label = f"add-on {addon.name}'s pod identity association for {sa}"
            out.append(
                Association(
                    addon.urn,
                    label,
                    Workload(cluster, ns, sa),
                    role_arn,
                    None,
                    True,
                    None,
                    f"arn:aws:eks:{region}:{account}:cluster/{cluster}",
                )
            )
    return out


def _foreign_role(name: str, prop: str, arn: str, namespace: str, tenant: str | None, account: str) -> str:
    who = f"Tenant {tenant}'s pods in {namespace}" if tenant else f"Pods in {namespace}"
    where = (
        f"a role of account {account_of(arn)}, not this stack's"
        if account_of(arn) != account
        else "a role this stack does not define"
    )
    return (
        f"{who} must get only roles this stack defines or the pack's `podIdentityExternalRoles` list: pod identity "
        f"association {name}'s `{prop}` names {arn}, {where}, whose permissions (and what the pods carry out with it) "
        "no rule can judge"
    )


def _unplaced_roles(
    stack: Stack, account: str, stack_policies: StackPolicies, principals: dict[str, Principal], unknowns: list
) -> None:
    """Roles that a RolePolicy or an attachment names but the stack does not define: what the stack
    grants them is known, who holds them is not. Each becomes a principal of its own (held by
    someone outside the stack), so the evaluator decides whether the grant reaches tenant data."""
    by_name = {n: r for r in stack.of(ROLE) if isinstance(n := peek(r.props, "name"), str)}
    placed = {p.urn for p in principals.values() if p.urn}
    for holder_type, prop in (
        (ROLE_POLICY, "role"),
        (ROLE_ATTACHMENT, "role"),
        (POLICY_ATTACHMENT, "roles"),
        (ROLE_ATTACHMENTS_EXCLUSIVE, "roleName"),
    ):
        for holder in stack.of(holder_type):
            if {r.urn for r in _roles_of(stack, holder, prop, by_name)} & placed:
                continue  # built from a role of the stack (its name may be unknown until apply)
            if holder_type == ROLE_POLICY and holder.parent is not None and holder.parent.urn in placed:
                continue  # iamdoc reads a RolePolicy under its role as that role's
            value = known(peek(holder.props, prop))
            if value is UNKNOWN or (isinstance(value, list) and UNKNOWN in value):
                unknowns.append((holder.urn, f"{holder.name}'s `{prop}` (the role it grants to)"))
                continue
            for name in as_list(value):
                if not isinstance(name, str) or name is UNKNOWN:
                    continue
                arn = name if name.startswith("arn:") else f"arn:aws:iam::{account}:role/{name}"
                if arn in principals and not principals[arn].unplaced:
                    continue
                p = principals.setdefault(
                    arn, Principal(arn, f"role {arn.rsplit('/', 1)[-1]} (not defined by this stack)", None, unplaced=holder.urn)
                )
                p.documents += _granted(holder, holder_type, stack, stack_policies, unknowns)


def _granted(holder: Any, holder_type: str, stack: Stack, stack_policies: StackPolicies, unknowns: list) -> list[Doc]:
    if holder_type == ROLE_POLICY:
        doc = _safe_doc(holder, "policy", unknowns)
        return [Doc(f"inline policy {holder.name}", holder.urn, doc)] if doc else []
    prop = "policyArns" if holder_type == ROLE_ATTACHMENTS_EXCLUSIVE else "policyArn"
    linked = stack.linked(holder, prop, MANAGED_POLICY)
    if linked:
        out = []
        for p in linked:
            doc = _safe_doc(p, "policy", unknowns)
            if doc:
                out.append(Doc(f"attached policy {p.name}", p.urn, doc))
        return out
    value = known(peek(holder.props, prop))
    if value is UNKNOWN or (isinstance(value, list) and UNKNOWN in value):
        unknowns.append((holder.urn, f"{holder.name}'s `{prop}`"))
        return []
    return [
        d
        for arn in as_list(value)
        if isinstance(arn, str)
        for d in _attached_doc(f"attached policy {arn}", holder.urn, arn, stack_policies)
    ]


def _stand_in_account(identifier: str) -> str:
    """A 12-digit account standing for a principal IAM names without its account (a canonical user
    ID, an e-mail grantee): never this stack's, one per identifier."""
    return f"8{zlib.crc32(identifier.encode()) % 10**11:011d}"


def _placed(doc: dict, aliases: dict[str, str]) -> dict:
    """A resource policy with its `CanonicalUser` principals (and `AWS` principals written as a
    canonical user ID) as the root of a stand-in account, so the evaluator treats them as another
    account: the plan cannot tell whose account a canonical user ID is."""
    statements = doc.get("Statement")
    if not isinstance(statements, list):
        statements = [statements] if isinstance(statements, dict) else []
    out = []
    for st in statements:
        if not isinstance(st, dict):
            continue
        st = dict(st)
        for field_ in ("Principal", "NotPrincipal"):
            block = st.get(field_)
            if not isinstance(block, dict):
                continue
            block = dict(block)
            aws = [str(v) for v in as_list(block.get("AWS"))]
            ids = [str(v) for v in as_list(block.pop("CanonicalUser", None))]
            ids += [v for v in aws if _CANONICAL_ID.match(v)]
            if not ids:
                continue
            aws = [v for v in aws if not _CANONICAL_ID.match(v)]
            for i in ids:
                acct = _stand_in_account(i)
                aliases[acct] = f"canonical user {i[:16]}... (an account the plan cannot place)"
                aws.append(f"arn:aws:iam::{acct}:root")
            block["AWS"] = aws
            st[field_] = block
        out.append(st)
    return {**doc, "Statement": out}


def _acl_doc(bucket_arn: str, grants: list[tuple[Any, str]], owner: Any) -> dict | None:
    """A bucket ACL as the resource-policy statements it amounts to (None if it grants nothing)."""
    statements = []
    for grantee, permission in grants:
        actions = ACL_ACTIONS.get(str(permission), ACL_ACTIONS["FULL_CONTROL"])
        if isinstance(grantee, dict):
            principal: Any = grantee
        elif isinstance(grantee, str) and grantee in _ACL_GROUPS:
            principal = _ACL_GROUPS[grantee]
        elif isinstance(grantee, str) and grantee.startswith("id:"):
            if grantee[3:] == owner:
                continue  # the bucket owner: this account
            principal = {"CanonicalUser": grantee[3:]}
        elif isinstance(grantee, str) and grantee.startswith("email:"):
            principal = {"CanonicalUser": grantee}
        else:
            principal = "*"  # a grantee the pack cannot read: anyone, until it can
        if actions:
            statements.append(
                {
                    "Sid": f"ACL {permission}",
                    "Effect": "Allow",
                    "Principal": principal,
                    "Action": actions,
                    "Resource": [bucket_arn, f"{bucket_arn}/*"],
                }
            )
    return {"Version": "2012-10-17", "Statement": statements} if statements else None


def _acl_grants(props: Any) -> tuple[list[tuple[Any, str]], Any]:
    """(grantee, permission) pairs of a bucket's or a BucketAcl's canned ACL and grants, and the owner's canonical ID.
    A grantee is "id:<canonical id>", "email:<address>", a group URI, or a principal block."""
    out: list[tuple[Any, str]] = list(CANNED_ACLS.get(str(known(peek(props, "acl"))), []))
    for g in as_list(known(peek(props, "grants"))):  # Bucket / BucketV2
        if isinstance(g, dict):
            who = g.get("uri") or (f"id:{g['id']}" if g.get("id") else None) or f"email:{g.get('emailAddress')}"
            out += [(who, str(p)) for p in as_list(g.get("permissions"))]
    policy = known(peek(props, "accessControlPolicy"))  # BucketAcl
    for g in as_list(policy.get("grants") if isinstance(policy, dict) else None):
        if isinstance(g, dict) and isinstance(g.get("grantee"), dict):
            e = g["grantee"]
            who = e.get("uri") or (f"id:{e['id']}" if e.get("id") else None) or f"email:{e.get('emailAddress')}"
            out.append((who, str(g.get("permission"))))
    owner = (policy.get("owner") or {}).get("id") if isinstance(policy, dict) else None
    return out, owner


def _has_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_unknown(v) for v in value)
    return False


def _arn_prop(stack: Stack, arns: Arns, holder: Any, prop: str) -> str | None:
    value = peek(holder.props, prop)
    if isinstance(value, str) and value.startswith("arn:"):
        return value
    deps = stack.linked(holder, prop, ROLE)
    return arns.of(deps[0]) if len(deps) == 1 else None


def _users_and_groups(
    stack: Stack, arns: Arns, account: str, stack_policies: StackPolicies, principals: dict, unknowns: list
) -> None:
    def docs_of(holder_type: str, attach_type: str, target: Any, prop: str) -> list[Doc]:
        out = []
        name = peek(target.props, "name")
        for p in stack.of(holder_type):
            if target in stack.linked(p, prop) or peek(p.props, prop) == name:
                try:
                    doc = _read(p, "policy")
                except UnknownValueError:
                    unknowns.append((p.urn, f"{p.name}'s document (what it grants is judged once it is known)"))
                    doc = None
                if doc:
                    out.append(Doc(f"inline policy {p.name}", p.urn, doc))
        for a in stack.of(attach_type):
            if target in stack.linked(a, prop) or peek(a.props, prop) == name:
                arn = peek(a.props, "policyArn")
                linked = stack.linked(a, "policyArn", MANAGED_POLICY)
                if linked:
                    doc = _read(linked[0], "policy") or ADMIN
                    out.append(Doc(f"attached policy {linked[0].name}", linked[0].urn, doc))
                elif isinstance(arn, str):
                    out += _attached_doc(f"attached policy {arn}", a.urn, arn, stack_policies)
        return out

    groups: dict[str, tuple[str, list[Doc], Any]] = {}
    for g in stack.of(GROUP):
        arn = arns.of(g) or f"arn:aws:iam::{account}:group/{peek(g.props, 'name') or g.name}"
        groups[g.urn] = (arn, docs_of(GROUP_POLICY, GROUP_ATTACHMENT, g, "group"), g)
    by_group_name = {peek(g.props, "name"): u for u, (_, _, g) in groups.items()}
    for user in stack.of(USER):
        arn = arns.of(user) or f"arn:aws:iam::{account}:user/{peek(user.props, 'name') or user.name}"
        p = Principal(arn, f"IAM user {user.name}", user.urn, docs_of(USER_POLICY, USER_ATTACHMENT, user, "user"))
        member_of: set[str] = set()
        for m in stack.of(GROUP_MEMBERSHIP):
            if user in stack.linked(m, "users") or peek(user.props, "name") in as_list(known(peek(m.props, "users"))):
                member_of |= {d.urn for d in stack.linked(m, "group", GROUP)} | {by_group_name.get(peek(m.props, "group"))}
        for m in stack.of(USER_GROUPS):
            if user in stack.linked(m, "user") or peek(m.props, "user") == peek(user.props, "name"):
                member_of |= {d.urn for d in stack.linked(m, "groups", GROUP)}
                member_of |= {by_group_name.get(n) for n in as_list(known(peek(m.props, "groups")))}
        p.groups = [(groups[u][0], groups[u][1]) for u in sorted(u for u in member_of if u in groups)]
        principals[arn] = p


def _held(principals: dict[str, Principal], a: Association) -> list[Doc]:
    role = principals.get(a.role_arn or "")
    return [*(role.documents if role else []), *([a.session_policy] if a.session_policy else [])]


def _buckets_named(docs: list[dict]) -> set[str]:
    """Buckets a tenant's own documents reach: tenant data lives wherever tenants may write."""
    pattern = re.compile(r"^arn:aws[\w-]*:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/|$)")
    out = set()
    for doc in docs:
        statements = doc.get("Statement", [])
        for st in statements if isinstance(statements, list) else [statements]:
            if isinstance(st, dict) and str(st.get("Effect", "")).lower() == "allow":
                resources = st.get("Resource", [])
                for r in resources if isinstance(resources, list) else [resources]:
                    m = pattern.match(str(r))
                    if m:
                        out.add(m.group(1))
    return out


def _data(
    stack: Stack,
    arns: Arns,
    account: str,
    namespaces: dict[str, str],
    tag: str,
    template: str,
    unknowns: list,
    tenant_buckets: set[str],
):
    """Tenant data resources and the resource policies over them (keyed by bucket / key / secret ARN)."""
    tenants = {t: ns for ns, t in namespaces.items()}
    out: list[DataResource] = []
    policies: dict[str, list[Doc]] = {}

    def prefix(tenant: str) -> str:
        return template.replace("{tenant}", tenant).replace("{namespace}", tenants.get(tenant, tenant))

    shared = _shared_buckets(stack, template, tenant_buckets, unknowns)
    for bucket in stack.of(*S3_BUCKETS):
        owner = tags_of(bucket.props).get(tag)
        arn = arns.of(bucket)
        if owner is UNKNOWN:
            unknowns.append((bucket.urn, f"bucket {bucket.name}'s `{tag}` tag"))
            continue
        if arn is None:
            unknowns.append((bucket.urn, f"bucket {bucket.name}'s name (who reaches the tenant data in it is not judged)"))
            continue
        region = resource_region(bucket)
        acl = _acl_doc(arn, *_acl_grants(bucket.props))
        if acl:
            policies.setdefault(arn, []).append(Doc(f"ACL of bucket {bucket.name}", bucket.urn, acl))
        if not owner and arn.removeprefix("arn:aws:s3:::") not in shared:
            inline = _safe_doc(bucket, "policy", unknowns)
            if inline:
                policies.setdefault(arn, []).append(Doc(f"bucket policy of {bucket.name}", bucket.urn, inline))
            continue
        owners = [owner] if owner else sorted(tenants)  # a shared bucket holds every tenant's prefix
        for t in owners:
            label = f"{'silo bucket' if owner else 'bucket'} {bucket.name}"
            p = prefix(t)
            out.append(DataResource(t, "object", f"{arn}/{p}", f"{label} objects under {p}", bucket.urn, region))
            out.append(DataResource(t, "listing", arn, f"{label} listing of {p}", bucket.urn, region, prefix=p))
        inline = _safe_doc(bucket, "policy", unknowns)
        if inline:
            policies.setdefault(arn, []).append(Doc(f"bucket policy of {bucket.name}", bucket.urn, inline))
    for bp in stack.of(BUCKET_POLICY):
        targets = stack.linked(bp, "bucket", *S3_BUCKETS)
        name = peek(bp.props, "bucket")
        arn = arns.of(targets[0]) if len(targets) == 1 else (f"arn:aws:s3:::{name}" if isinstance(name, str) else None)
        doc = _safe_doc(bp, "policy", unknowns)
        if arn and doc:
            policies.setdefault(arn, []).append(Doc(f"bucket policy {bp.name}", bp.urn, doc))
    for holder in stack.of(*BUCKET_ACLS):
        targets = stack.linked(holder, "bucket", *S3_BUCKETS)
        name = peek(holder.props, "bucket")
        arn = arns.of(targets[0]) if len(targets) == 1 else (f"arn:aws:s3:::{name}" if isinstance(name, str) else None)
        acl = _acl_doc(arn, *_acl_grants(holder.props)) if arn else None
        if acl:
            policies.setdefault(arn, []).append(Doc(f"bucket ACL {holder.name}", holder.urn, acl))
    for key in stack.of(*KMS_KEYS):
        owner = key_tenant(stack, key, tag)  # a replica key: its primary's owner (it holds the same key material)
        arn = arns.of(key)
        if owner is UNKNOWN:
            unknowns.append((key.urn, f"key {key.name}'s `{tag}` tag"))
        if arn is None:
            loose = _in_region(arns.unattributed[KMS_KEY], resource_region(key))
            if owner and loose:
                unknowns.append(
                    (
                        key.urn,
                        f"tenant {owner}'s key {key.name} has no ARN in the plan, and {_few(loose)} name a key the plan cannot place: it may be this one",
                    )
                )
            # still judged under a stand-in ARN: wildcards and tag conditions reach it whatever its real ARN
            arn = f"arn:aws:kms:{resource_region(key) or 'unknown-region'}:{account}:key/not-in-plan-{key.name}"
        if isinstance(owner, str) and owner:
            tags = tuple(sorted((k, v) for k, v in tags_of(key.props).items() if isinstance(v, str)))
            out.append(DataResource(owner, "key", arn, f"tenant {owner}'s key {key.name}", key.urn, resource_region(key), tags))
        doc = _safe_doc(key, "policy", unknowns)
        policies[arn] = [Doc(f"key policy of {key.name}", key.urn, doc or _default_key_policy(account))]
    for kp in stack.of(KEY_POLICY):
        arn = _key_arn(stack, arns, kp, "keyId")
        doc = _safe_doc(kp, "policy", unknowns)
        if arn is None:
            unknowns.append((kp.urn, f"key policy {kp.name}'s key"))
        elif doc:
            policies[arn] = [Doc(f"key policy {kp.name}", kp.urn, doc)] + [
                d for d in policies.get(arn, []) if d.label.startswith("grant")
            ]
    for grant in stack.of(GRANT):
        arn = _key_arn(stack, arns, grant, "keyId")
        grantee = peek(grant.props, "granteePrincipal")
        operations = [str(o) for o in as_list(known(peek(grant.props, "operations"))) if isinstance(o, str)]
        if arn is None or not isinstance(grantee, str):
            unknowns.append((grant.urn, f"KMS grant {grant.name}'s key or grantee"))
            continue
        session = session_role(grantee)
        if session:  # judged as its role: the plan's role of that name and account (its path included), else the bare ARN
            partition, acct, name = session
            grantee = next(
                (
                    a
                    for r in stack.of(ROLE)
                    if (a := arns.of(r)) and a.split(":")[4] == acct and a.rsplit("/", 1)[-1].lower() == name.lower()
                ),
                f"arn:{partition}:iam::{acct}:role/{name}",
            )
        statement = {
            "Sid": grant.name,
            "Effect": "Allow",
            "Principal": {"AWS": grantee},
            "Action": [f"kms:{o}" for o in operations],
            "Resource": "*",
        }
        policies.setdefault(arn, [Doc("default key policy", None, _default_key_policy(account))]).append(
            Doc(f"grant {grant.name}", grant.urn, {"Version": "2012-10-17", "Statement": [statement]})
        )
    for secret in stack.of(SECRET):
        owner = tags_of(secret.props).get(tag)
        arn = arns.of(secret)
        if arn is None:
            loose = _in_region(arns.unattributed[SECRET], resource_region(secret))
            if owner and loose:
                unknowns.append(
                    (
                        secret.urn,
                        f"tenant {owner}'s secret {secret.name} has no ARN in the plan, and {_few(loose)} name a secret the plan cannot place: it may be this one",
                    )
                )
            arn = (
                f"arn:aws:secretsmanager:{resource_region(secret) or 'unknown-region'}:{account}:secret:not-in-plan-{secret.name}"
            )
        if isinstance(owner, str) and owner:
            out.append(
                DataResource(owner, "secret", arn, f"tenant {owner}'s secret {secret.name}", secret.urn, resource_region(secret))
            )
        elif owner is UNKNOWN:
            unknowns.append((secret.urn, f"secret {secret.name}'s `{tag}` tag"))
        elif not owner:  # no tenant's: the platform's, which no tenant may read
            out.append(
                DataResource(PLATFORM, "secret", arn, f"the platform's secret {secret.name}", secret.urn, resource_region(secret))
            )
        doc = _safe_doc(secret, "policy", unknowns)
        if doc:
            policies.setdefault(arn, []).append(Doc(f"secret policy of {secret.name}", secret.urn, doc))
    for sp in stack.of(SECRET_POLICY):
        deps = stack.linked(sp, "secretArn", SECRET)
        arn = arns.of(deps[0]) if len(deps) == 1 else peek(sp.props, "secretArn")
        doc = _safe_doc(sp, "policy", unknowns)
        if isinstance(arn, str) and doc:
            policies.setdefault(arn, []).append(Doc(f"secret policy {sp.name}", sp.urn, doc))
    return out, policies


def _shared_buckets(stack: Stack, template: str, tenant_buckets: set[str], unknowns: list) -> set[str]:
    """Buckets of no tenant that hold tenant prefixes: named with the prefix root (`tenants/`) by some
    value of the stack or reached by a tenant's own documents, and the buckets they replicate to (a
    destination unknown at preview is an unknown: the copy's access cannot be judged)."""
    head = template.split("{", 1)[0]
    root = head[: head.rfind("/") + 1]  # "tenants/t-{tenant}/" -> "tenants/": ABAC documents write "tenants/${...}"
    pattern = re.compile(r"arn:aws[\w-]*:s3:::([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/" + re.escape(root))
    names = {m for r in stack.resources for text in stack.strings(r) for m in pattern.findall(text)} | tenant_buckets
    for config in stack.of(REPLICATION):
        source = peek(config.props, "bucket")
        if isinstance(source, str) and source in names:
            rules = known(peek(config.props, "rules", default=[]))
            dests = [peek(rule, "destination", "bucket") for rule in rules] if isinstance(rules, list) else [UNKNOWN]
            if any(not isinstance(d, str) for d in dests):
                unknowns.append((config.urn, f"replication {config.name}'s destination buckets (copies of tenant data)"))
            names |= {d.removeprefix("arn:aws:s3:::") for d in dests if isinstance(d, str)}
    return names


def _in_region(arns: dict[str, str], region: str | None) -> dict[str, str]:
    return {a: holder for a, holder in arns.items() if region is None or a.split(":")[3] == region}


def _few(arns: dict[str, str]) -> str:
    shown = [f"{a} (in {holder})" for a, holder in sorted(arns.items())[:2]]
    return ", ".join(shown) + (f" and {len(arns) - 2} more" if len(arns) > 2 else "")


def _key_arn(stack: Stack, arns: Arns, holder: Any, prop: str) -> str | None:
    return arns.key_named(stack, holder, prop)


def _safe_doc(holder: Any, prop: str, unknowns: list) -> dict | None:
    try:
        doc = _read(holder, prop)
    except UnknownValueError:
        doc = None
    if peek(holder.props, prop) is UNKNOWN or (doc is not None and _has_unknown(doc)):
        unknowns.append((holder.urn, f"{holder.name}'s `{prop}` (a resource policy only known after apply)"))
        return None
    return doc


def _default_key_policy(account: str) -> dict:
    """What KMS sets when a key is created without a policy: the account's IAM policies decide."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}
        ],
    }


def _eks_access(stack: Stack, arns: Arns):
    access: dict[str, list[tuple[str, str, Any]]] = {}
    for a in stack.of(ACCESS_POLICY):
        principal = _arn_prop(stack, arns, a, "principalArn")
        policy = str(peek(a.props, "policyArn") or "")
        scope = known(peek(a.props, "accessScope")) or {}
        cluster = peek(a.props, "clusterName")
        if principal is None:
            continue
        namespaces: Any = (
            "*"
            if not isinstance(scope, dict) or scope.get("type") != "namespace"
            else [str(n) for n in scope.get("namespaces") or []]
        )
        access.setdefault(principal, []).append(
            (cluster if isinstance(cluster, str) else "", policy.rsplit("/", 1)[-1], namespaces)
        )
    for c in stack.of(EKS_CLUSTER):
        # EKS makes whoever creates the cluster its admin unless told not to (the API's default is true)
        if peek(c.props, "accessConfig", "bootstrapClusterCreatorAdminPermissions", default=True) is not False:
            name = peek(c.props, "name")
            name = name if isinstance(name, str) else c.name
            creator = f"the IAM principal that creates cluster {name} (`bootstrapClusterCreatorAdminPermissions` not false)"
            access.setdefault(creator, []).append((name, "AmazonEKSClusterAdminPolicy", "*"))
    groups: dict[str, list[tuple[str, list[str]]]] = {}
    for e in stack.of(ACCESS_ENTRY):
        principal = _arn_prop(stack, arns, e, "principalArn")
        names = [str(g) for g in as_list(known(peek(e.props, "kubernetesGroups"))) if isinstance(g, str)]
        cluster = peek(e.props, "clusterName")
        if principal and names:
            groups.setdefault(principal, []).append((cluster if isinstance(cluster, str) else "", names))
    return access, groups


# Built-in ClusterRoles that aggregate (https://kubernetes.io/docs/reference/access-authn-authz/rbac/#default-roles-and-role-bindings):
# their labels, and whether their rules let a subject run code as any service account in scope. `edit` and
# system:aggregate-to-edit (pods, workloads, exec) are aggregated into `admin` and `edit`; `view` adds nothing of the kind.
_BUILT_IN_AGGREGATED = (
    ({"rbac.authorization.k8s.io/aggregate-to-admin": "true"}, True),  # edit, system:aggregate-to-admin
    ({"rbac.authorization.k8s.io/aggregate-to-edit": "true"}, True),  # system:aggregate-to-edit, view
    ({"rbac.authorization.k8s.io/aggregate-to-view": "true"}, False),  # system:aggregate-to-view
    ({"kubernetes.io/bootstrapping": "rbac-defaults"}, True),  # cluster-admin, admin, edit, ... carry it
)


def _selects(selector: Any, labels: dict) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions) matched against `labels`; one it
    cannot read matches (an aggregation it cannot bound is taken to collect everything)."""
    if not isinstance(selector, dict):
        return True
    match = selector.get("matchLabels") or {}
    if not isinstance(match, dict) or any(labels.get(k) != v for k, v in match.items()):
        return not isinstance(match, dict)
    for e in selector.get("matchExpressions") or []:
        if not isinstance(e, dict):
            return True
        key, op, values = e.get("key"), str(e.get("operator")), e.get("values") or []
        has = key in labels
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and has and labels.get(key) in values)
            or (op == "Exists" and not has)
            or (op == "DoesNotExist" and has)
        ):
            return False
    return True


def _covers(pattern: str, resource: str) -> bool:
    """RBAC's resource matching: `*` is every resource and subresource, `pods/*` every subresource of
    pods, `*/exec` the exec subresource of every resource (https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-resources)."""
    if pattern in ("*", resource):
        return True
    head, _, sub = pattern.partition("/")
    r_head, _, r_sub = resource.partition("/")
    return bool(sub) and bool(r_sub) and head in ("*", r_head) and sub in ("*", r_sub)


def _grants(
    rules: list[dict], targets: set[str], verbs: set[str], names: set[str] | None = None, group: str | None = None
) -> bool:
    """Some rule allows one of `verbs` on one of `targets` (for a resource named in `names`, in API group
    `group`, when given: else any group, as the same resource name in another group is not told apart)."""
    for rule in rules:
        held = set(map(str, rule.get("verbs") or []))
        named = set(map(str, rule.get("resourceNames") or []))
        groups = set(map(str, rule.get("apiGroups") or ["*"]))
        if not (held & (verbs | {"*"})) or (names is not None and named and not named & names):
            continue
        if group is not None and not groups & {group, "*"}:
            continue
        if any(_covers(str(p), t) for p in rule.get("resources") or [] for t in targets):
            return True
    return False


def _runs_as_others(rules: list[dict]) -> bool:
    """A role whose rules let its subject run code as a service account, or obtain its credentials:
    write workloads or exec/attach into pods (any subresource wildcard included), or reach the kubelet
    API (`nodes/proxy`: exec into any pod of the node); impersonate; create a service account's token
    (which the Pod Identity agent exchanges for that account's role); `escalate`/`bind` on roles (then
    grant itself any of these: https://kubernetes.io/docs/concepts/security/rbac-good-practices/#privilege-escalation-risks);
    approve client certificates (a certificate for any user or group, `system:masters` too); or write
    admission webhooks and policies (rewrite every pod at admission)."""
    return (
        _grants(rules, _WORKLOADS, _WRITE_VERBS)
        # reads too (a read of `*` counts): the kubelet API, and exec/attach by a websocket upgrade (a GET)
        or _grants(rules, {"nodes/proxy"}, {"get", "create", "update", "patch"}, group="")
        or _grants(rules, {"pods/exec", "pods/attach"}, {"get"}, group="")
        or _grants(rules, {"serviceaccounts", "users", "groups"}, {"impersonate"})
        or _grants(rules, {"serviceaccounts/token"}, {"create"})
        or _grants(rules, {"roles", "clusterroles"}, {"escalate", "bind"})
        or _grants(rules, _ADMISSION, {"create", "update", "patch"})
        or (
            _grants(rules, {"signers"}, {"approve"}, _CLIENT_SIGNERS)
            and _grants(rules, {"certificatesigningrequests/approval"}, {"update", "patch"})
        )
    )


def _rule_problem(rule: Any) -> str | None:
    if not isinstance(rule, dict):
        return "a rule that is not a map"
    if _has_unknown(rule):
        return "a rule's resources, verbs or resource names"
    return None


def _rbac(stack: Stack, unknowns: list) -> list[tuple[str, str, str, Any]]:
    """(subject kind, name, namespace, reach) for every binding whose role lets its subjects run code in
    pods (create workloads, exec, attach, add ephemeral containers), impersonate, mint service account
    tokens or credentials, or grant themselves more (`_runs_as_others`), counting a ClusterRole's
    aggregated rules; the built-in `system:` ClusterRoles (the controllers' create pods in every
    namespace) count, but for the few that grant nothing of the kind (`SAFE_SYSTEM_CLUSTER_ROLES`). A
    role, binding or subject it cannot read at preview is an unknown (never "no rules", "no subjects")."""
    creating: set[tuple[str, str]] = {("ClusterRole", n) for n in POD_CREATING_CLUSTER_ROLES}
    aggregators: list[tuple[str, list]] = []
    labelled: list[tuple[str, dict]] = []  # the plan's ClusterRoles: name, labels
    for r in stack.of(CLUSTER_ROLE, K8S_ROLE):
        kind = "ClusterRole" if r.resource_type == CLUSTER_ROLE else "Role"
        rules = known(peek(r.props, "rules", default=[]))
        rules = [] if rules is None else rules
        unread = (
            "`rules`" if not isinstance(rules, list) else next((f"`rules` ({p})" for p in map(_rule_problem, rules) if p), None)
        )
        name = peek(r.props, "metadata", "name")
        if not isinstance(name, str):
            unread = "`metadata.name` (which bindings grant it)" if unread is None else f"{unread} and `metadata.name`"
        if unread:
            unknowns.append((r.urn, f"{kind} {r.name}'s {unread}: whether its subjects may run code in pods"))
        if not isinstance(name, str):
            continue
        if kind == "ClusterRole":
            labelled.append((name, labels_of(r.props)))
            selectors = known(peek(r.props, "aggregationRule", "clusterRoleSelectors"))
            if selectors:
                aggregators.append((name, selectors if isinstance(selectors, list) else [selectors]))
        readable = [rule for rule in rules if _rule_problem(rule) is None] if isinstance(rules, list) else []
        if _runs_as_others(readable):
            creating.add((kind, name))
    # an aggregated ClusterRole holds the rules of every ClusterRole its selectors match (built-in ones included)
    changed = True
    while changed:
        changed = False
        for name, selectors in aggregators:
            if ("ClusterRole", name) in creating:
                continue
            candidates = [(labels, runs) for labels, runs in _BUILT_IN_AGGREGATED] + [
                (labels, ("ClusterRole", n) in creating) for n, labels in labelled if n != name
            ]
            if any(runs and _selects(sel, labels) for sel in selectors for labels, runs in candidates):
                creating.add(("ClusterRole", name))
                changed = True

    def grants_pods(ref: dict) -> bool:
        kind, name = str(ref.get("kind")), str(ref.get("name"))
        built_in = kind == "ClusterRole" and name.startswith("system:") and name not in SAFE_SYSTEM_CLUSTER_ROLES
        return (kind, name) in creating or built_in

    out = []
    for b in stack.of(CLUSTER_ROLE_BINDING, ROLE_BINDING):
        kind = "ClusterRoleBinding" if b.resource_type == CLUSTER_ROLE_BINDING else "RoleBinding"
        ref = known(peek(b.props, "roleRef"))
        if not isinstance(ref, dict) or _has_unknown(ref):
            unknowns.append((b.urn, f"{kind} {b.name}'s `roleRef` (which role it grants)"))
            continue
        if not grants_pods(ref):
            continue
        namespace = peek(b.props, "metadata", "namespace", default="default")
        if b.resource_type == ROLE_BINDING and not isinstance(namespace, str):
            unknowns.append((b.urn, f"{kind} {b.name}'s `metadata.namespace` (where it grants {ref.get('name')})"))
            continue
        reach: Any = "*" if b.resource_type == CLUSTER_ROLE_BINDING else [str(namespace)]
        subjects = known(peek(b.props, "subjects", default=[]))
        subjects = [] if subjects is None else subjects
        if not isinstance(subjects, list) or _has_unknown(subjects):
            unknowns.append((b.urn, f"{kind} {b.name}'s `subjects` (who it grants {ref.get('name')})"))
        for s in subjects if isinstance(subjects, list) else []:
            if isinstance(s, dict) and not _has_unknown(s):
                out.append((str(s.get("kind")), str(s.get("name")), str(s.get("namespace") or ""), reach))
    return out


def principal_account(arn: str) -> str | None:
    return account_of(arn)
