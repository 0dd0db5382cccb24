"""Tenant isolation: a tenant's role reaches only its own data and key and is assumable only from
its own namespace; no other workload role reaches tenant data; every tenant namespace is fenced
by a default deny that no other NetworkPolicy undoes, and bounded by a ResourceQuota.

Tenants are recognised by the tag `meridian:tenant` (AWS) and the label `meridian.io/tenant`
(Kubernetes), both configurable. The proof is an allowlist: a tenant role's Allow statements may
only name (a) S3 objects under `arn:aws:s3:::<bucket>/tenants/<id>/`, (b) listing of a bucket
limited by a positive `s3:prefix` condition to that prefix (or the tenant's own silo bucket),
(c) KMS actions on exact key ARNs, the document being built from the tenant's own key(s) only.
Anything else (another service, a wildcard in any ARN segment, a policy variable, an alias,
NotAction / NotResource, a negated condition, a managed policy whose text the stack does not
hold) is a violation, because it cannot be proven isolated.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import replace
from fnmatch import fnmatchcase
from typing import Any

from destinations import stack_accounts
from iamdoc import (
    UNKNOWN,
    WILDCARD,
    Statement,
    _Path,
    grant_statements,
    grants_by_role,
    literal_prefix,
    negated,
    principals,
    public,
    read_statements,
    services,
)
from k8snet import ip_blocks_problem, namespace_selector_problem
from ruleutil import (
    AWS_PROVIDER,
    CRITICAL,
    HIGH,
    KMS_KEYS,
    MANAGED_POLICY,
    NAMESPACE,
    POLICY_ATTACHMENT,
    ROLE,
    ROLE_ATTACHMENT,
    ROLE_ATTACHMENTS_EXCLUSIVE,
    ROLE_POLICY,
    S3_BUCKETS,
    Stack,
    UnknownValueError,
    Unverifiable,
    as_list,
    dig,
    judge_each,
    key_tenant,
    known,
    labels_of,
    peek,
    provider_accounts,
    resource_region,
    stack_policy,
    stack_role,
    tags_of,
    unknown,
)
from sharedrole import READS as SHARED_ROLE_READS
from sharedrole import SharedRoles, association_session_problems, check_shared_role_on_tenant_data
from tenantns import NAMESPACE_PREFIX, named_namespaces, undefined_tenant
from tenantns import SETTINGS as NAMESPACE_SETTINGS

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
QUOTA = "kubernetes:core/v1:ResourceQuota"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ADDON = "aws:eks/addon:Addon"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
SUBNET = "aws:ec2/subnet:Subnet"
EKS_CLUSTER = "aws:eks/cluster:Cluster"

_TENANT_SCHEMA = {
    "tenantTag": {"type": "string", "default": "meridian:tenant", "description": "AWS tag naming a resource's tenant"},
    "tenantLabel": {
        "type": "string",
        "default": "meridian.io/tenant",
        "description": "Kubernetes label naming a namespace's tenant",
    },
    "tenantPrefix": {
        "type": "string",
        "default": "tenants/{tenant}/",
        "description": "the S3 key prefix of a tenant's data; {tenant} is the tenant id",
    },
}
_SUB = re.compile(r"^system:serviceaccount:([^:]*):(.*)$")
_KEY_ARN = re.compile(r"^arn:aws[\w-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
_LIST_ACTIONS = ("s3:listbucket", "s3:listbucketversions")


_BUILT_IN_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})  # exist before the stack


class _Namespaces(dict[str, set[str]]):
    """Namespace name -> tenants whose namespace has that name (in any cluster); `unsure` holds the
    names of namespaces whose labels are unknown at preview, so whose tenant is too."""

    def __init__(self, label: str):
        super().__init__()
        self.label = label
        self.unsure: set[str] = set()
        self.names: set[str] = set()  # every namespace name the plan shows, tenant or not
        self.unnamed: set[str] = set()  # tenants with a namespace whose name is unknown at preview
        self.undefined: set[str] = set()  # tenant namespaces the plan names but another stack creates

    def could_be_unnamed(self, ns: Any) -> bool:
        """Whether `ns` might be a tenant namespace whose name is known only after apply."""
        return bool(self.unnamed) and ns not in self.names and ns not in _BUILT_IN_NAMESPACES

    def unknown_owner(self, ns: Any) -> UnknownValueError:
        """What keeps `ns`'s tenant unknown: its own labels, or the name of a tenant namespace."""
        if ns in self.unsure:
            return unknown(f"namespace {ns}'s metadata", "labels", self.label)
        return unknown(f"namespace of tenant(s) {', '.join(sorted(self.unnamed))}: metadata", "name")

    def owned_by(self, ns: Any, tenant: str) -> bool:
        """Namespace `ns` is tenant `tenant`'s alone (unknown if its labels are, or if it could be a
        tenant namespace whose name is unknown)."""
        if ns in self.unsure:
            raise self.unknown_owner(ns)
        if self.get(ns) == {tenant}:
            return True
        if self.could_be_unnamed(ns):
            raise self.unknown_owner(ns)
        return False


def _tenant_namespaces(stack: Stack, label: str, config: dict) -> _Namespaces:
    """The plan's namespaces by tenant label, and the tenant namespaces it names without creating
    them (a cell's, or prefixed: tenantns), which `undefined` lists."""
    out = _Namespaces(label)
    for ns in stack.of(NAMESPACE):
        tenant = labels_of(ns.props).get(label) if peek(ns.props, "metadata") is not UNKNOWN else None
        name = peek(ns.props, "metadata", "name")
        if not isinstance(name, str):
            if isinstance(tenant, str) and tenant:
                out.unnamed.add(tenant)
            continue
        out.names.add(name)
        if tenant is UNKNOWN:
            out.unsure.add(name)
        elif tenant:
            out.setdefault(name, set()).add(tenant)
    for name in named_namespaces(stack) - out.names - _BUILT_IN_NAMESPACES:
        if (tenant := undefined_tenant(name, config)) is not None:
            out.setdefault(name, set()).add(tenant)
            out.undefined.add(name)
    return out


def _s3_problems(st: Statement, resource: str, prefix: str, own_buckets: set[str]) -> list[str]:
    """What an S3 statement on `resource` reaches beyond the tenant's prefix."""
    if not resource.startswith("arn:aws:s3:::"):
        return [f"reaches S3 through {resource} (not a literal `arn:aws:s3:::<bucket>/{prefix}...` ARN)"]
    lit = literal_prefix(resource)
    bucket, slash, key = resource.removeprefix("arn:aws:s3:::").partition("/")
    if WILDCARD.search(bucket):
        return [f"reaches every bucket matching {resource}"]
    if slash:  # objects: anywhere in the tenant's own (silo) bucket, else under its prefix
        if bucket in own_buckets:
            return []
        if not lit.removeprefix(f"arn:aws:s3:::{bucket}/").startswith(prefix) or len(lit) < len(
            f"arn:aws:s3:::{bucket}/{prefix}"
        ):
            return [f"reaches objects outside {prefix} ({resource})"]
        return []
    # the bucket itself: only listing (its policy, encryption, ACLs stay the platform's), limited to the prefix unless the bucket is the tenant's own
    wider = [a for a in st.actions if a is not UNKNOWN and a.startswith(("s3:", "*")) and a not in _LIST_ACTIONS]
    if wider:
        return [f"acts on the bucket {bucket} itself ({', '.join(wider)}): a tenant may only list it"]
    if bucket in own_buckets:
        return []
    conditions = st.condition_values("s3:prefix")
    if not conditions:
        return [f"lists {resource} beyond {prefix} (add a `StringLike` `s3:prefix` condition limited to it)"]
    for op, values in conditions:
        if negated(op):
            return [f"lists {resource} under a negated condition ({op} on s3:prefix grants every other prefix)"]
        for v in values:
            if v is UNKNOWN:
                raise unknown("Condition", op, "s3:prefix")
            if not literal_prefix(v).startswith(prefix):
                return [f"lists {resource} beyond {prefix} (s3:prefix {v})"]
    return []


def _grant_problem(st: Statement) -> str | None:
    """`kms:CreateGrant` lets the caller hand its key to any principal of any account, at runtime and
    outside every policy the plan holds; only grants an AWS service makes for the caller's resource
    (`kms:GrantIsForAWSResource` true: https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-grant-is-for-aws-resource)
    stay with the caller."""
    if not st.allow:
        return None
    if UNKNOWN in st.actions:
        raise unknown("Statement", "Action")
    if not any(fnmatchcase("kms:creategrant", str(a)) for a in st.actions):
        return None
    pinned = [
        vals
        for op, vals in st.condition_values("kms:grantisforawsresource")
        if not negated(op) and "ifexists" not in op.lower() and op.lower() in ("bool", "stringequals", "stringequalsignorecase")
    ]
    if any(vals and all(str(v).lower() == "true" for v in vals) for vals in pinned):
        return None
    return (
        "grants kms:CreateGrant without `kms:GrantIsForAWSResource: true`: the tenant could grant its key to any "
        "account at runtime, outside every policy the plan holds"
    )


# Every KMS action (AWS Service Authorization Reference, AWS Key Management Service:
# https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html),
# lower case, and the ones a tenant may hold on its own key: use it, never administer it (a key policy,
# tag, alias or grant the tenant writes reaches every account; `kms:CreateGrant` is judged by `_grant_problem`).
_KMS_ACTIONS = frozenset(
    "kms:" + a.lower()
    for a in (
        "CancelKeyDeletion ConnectCustomKeyStore CreateAlias CreateCustomKeyStore CreateGrant CreateKey Decrypt DeleteAlias "
        "DeleteCustomKeyStore DeleteImportedKeyMaterial DeriveSharedSecret DescribeCustomKeyStores DescribeKey DisableKey "
        "DisableKeyRotation DisconnectCustomKeyStore EnableKey EnableKeyRotation Encrypt GenerateDataKey GenerateDataKeyPair "
        "GenerateDataKeyPairWithoutPlaintext GenerateDataKeyWithoutPlaintext GenerateMac GenerateRandom GetKeyPolicy "
        "GetKeyRotationStatus GetParametersForImport GetPublicKey ImportKeyMaterial ListAliases ListGrants ListKeyPolicies "
        "ListKeyRotations ListKeys ListResourceTags ListRetirableGrants PutKeyPolicy ReEncryptFrom ReEncryptTo ReplicateKey "
        "RetireGrant RevokeGrant RotateKeyOnDemand ScheduleKeyDeletion Sign SynchronizeMultiRegionKey TagResource "
        "UntagResource UpdateAlias UpdateCustomKeyStore UpdateKeyDescription UpdatePrimaryRegion Verify VerifyMac"
    ).split()
)
_TENANT_KMS_ACTIONS = frozenset(
    "kms:" + a.lower()
    for a in (
        "Encrypt Decrypt ReEncryptFrom ReEncryptTo GenerateDataKey GenerateDataKeyWithoutPlaintext GenerateDataKeyPair "
        "GenerateDataKeyPairWithoutPlaintext DescribeKey CreateGrant GetPublicKey Sign Verify GenerateMac VerifyMac"
    ).split()
)


def _kms_admin_problem(st: Statement) -> str | None:
    """KMS actions of an Allow statement beyond using a key: each pattern is expanded over every KMS
    action, and an action the pack does not know is refused rather than trusted."""
    beyond = sorted(
        {
            str(a)
            for a in st.actions
            if str(a).startswith("kms:")
            and (
                str(a) not in _KMS_ACTIONS
                and not WILDCARD.search(str(a))
                or any(fnmatchcase(k, str(a)) for k in _KMS_ACTIONS - _TENANT_KMS_ACTIONS)
            )
        }
    )
    if not beyond:
        return None
    return (
        f"grants {', '.join(beyond)}: a tenant may only use its key (encrypt, decrypt, data keys, describe), never change "
        "its policy, tags, aliases, grants or state"
    )


def _statement_problems(st: Statement, prefix: str, own_buckets: set[str], own_keys: int) -> list[str]:
    if not st.allow:
        return []
    if st.not_actions:
        return ["uses NotAction, which grants every action not listed"]
    if st.not_resources:
        return ["uses NotResource, which reaches everything not listed"]
    granted = services(st)
    others = sorted(granted - {"s3", "kms"})
    if others:
        return [f"grants {', '.join(others)} actions (a tenant reaches only S3 under its prefix and its own key)"]
    grant = _grant_problem(st) or ("kms" in granted and _kms_admin_problem(st))
    if grant:
        return [grant]
    if UNKNOWN in st.resources:
        raise unknown("Statement", "Resource")
    out = []
    for res in st.resources:
        if res == "*":
            out.append(f'reaches every {"/".join(sorted(granted))} resource (Resource "*")')
        elif ":kms:" in res or ("kms" in granted and not res.startswith("arn:aws:s3:::")):
            if not _KEY_ARN.match(res):
                out.append(f"reaches KMS keys through {res}: name the tenant's key by its exact key ARN (no wildcard, no alias)")
        else:
            out += _s3_problems(st, res, prefix, own_buckets)
    return out


def _kms_arns(sts: list[Statement]) -> set[str]:
    return {r for st in sts if st.allow for r in st.resources if isinstance(r, str) and _KEY_ARN.match(r)}


def _tenant_document(
    stack: Stack, tenant: str, where: str, holder: Any, prop: str, read, prefix: str, tag: str, tenant_keys: dict[str, Any]
) -> list[tuple[str | None, str]]:
    """One document that grants a tenant principal permissions, judged against the allowlist;
    `read()` gives its statements (raising `UnknownValueError` when it is unknown)."""
    out: list[tuple[str | None, str]] = []
    linked = stack.linked(holder, prop)
    own_keys = 0
    for dep in linked:
        owner = tenant_keys.get(dep.urn, "-") if dep.resource_type in KMS_KEYS else tags_of(dep.props).get(tag)
        if dep.resource_type in KMS_KEYS:
            if owner != tenant:
                out.append(
                    (
                        holder.urn,
                        f"{where} must not reach KMS key {dep.name} ({'tenant ' + owner if owner else 'a platform key'}): only the tenant's own key",
                    )
                )
            else:
                own_keys += 1
        elif dep.resource_type in S3_BUCKETS and owner and owner != tenant:
            out.append((holder.urn, f"{where} must not reach tenant {owner}'s bucket {dep.name}"))
    own_buckets = {
        b
        for dep in linked
        if dep.resource_type in S3_BUCKETS and tags_of(dep.props).get(tag) == tenant
        for b in [peek(dep.props, "bucket")]
        if isinstance(b, str)
    }
    try:
        sts = read()
    except UnknownValueError as exc:
        return out + [(holder.urn, Unverifiable.of(exc, "a tenant's policy document"))]
    for st in sts:
        try:
            out += [
                (holder.urn, f"{where} must not widen access: it {p} ({st.label})")
                for p in _statement_problems(st, prefix, own_buckets, own_keys)
            ]
        except UnknownValueError as exc:
            out.append((holder.urn, Unverifiable.of(exc, f"{where}, {st.label}")))
    extra = len(_kms_arns(sts)) - own_keys
    if extra > 0:
        out.append(
            (holder.urn, f"{where} must not widen access: it names {extra} KMS key ARN(s) not built from the tenant's own key")
        )
    return out


def check_tenant_roles(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    tag, label = config.get("tenantTag", "meridian:tenant"), config.get("tenantLabel", "meridian.io/tenant")
    grants = grants_by_role(stack)
    namespaces = _tenant_namespaces(stack, label, config)
    tenant_keys = {k.urn: key_tenant(stack, k, tag) for k in stack.of(*KMS_KEYS)}

    shared: set[str] = set()  # the tenants' shared roles, found while judging each role

    def prefix_of(tenant: str) -> str:
        return str(config.get("tenantPrefix", "tenants/{tenant}/")).replace("{tenant}", tenant)

    def namespace_of(tenant: str) -> str | None:
        if tenant in namespaces.unnamed:
            raise unknown(f"namespace of tenant {tenant}: metadata", "name")
        return min((ns for ns, ts in namespaces.items() if tenant in ts), default=None)

    def judge(role: Any) -> list[tuple[str | None, str]]:
        tenant = tags_of(role.props).get(tag)
        if tenant is UNKNOWN:
            raise unknown("tags", tag)
        if not tenant:
            return _untagged_role(stack, role, grants.get(role.urn, []), tenant_keys, namespaces, config, grants, shared)
        out: list[tuple[str | None, str]] = []
        for grant in grants.get(role.urn, []):
            where = f"Tenant {tenant} role's {grant.label}"
            if grant.managed_arn is not None:
                out.append(
                    (
                        grant.holder.urn,
                        f"{where} must be removed: a managed policy the stack does not define "
                        "cannot be proven to stay inside the tenant's prefix and key",
                    )
                )
                continue
            out += _tenant_document(
                stack,
                tenant,
                where,
                grant.holder,
                grant.prop,
                lambda g=grant: grant_statements(g),
                prefix_of(tenant),
                tag,
                tenant_keys,
            )
        out += _trust_problems(stack, role, tenant, namespaces)
        return out

    def judge_association(assoc: Any) -> list[tuple[str | None, str]]:
        """A tenant's EKS Pod Identity association: its namespace, and its session policy (which
        narrows whatever the role grants) against the same allowlist."""
        if peek(assoc.props, "roleArn") is UNKNOWN and not stack.linked(assoc, "roleArn", ROLE):
            raise unknown("roleArn")  # which role its pods hold, tenant or not, is known only after apply
        tenant = tags_of(assoc.props).get(tag)
        if tenant is UNKNOWN:
            raise unknown("tags", tag)
        if not tenant:
            return []
        out: list[tuple[str | None, str]] = []
        ns = dig(assoc.props, "namespace")
        if not namespaces.owned_by(ns, tenant):
            out.append(
                (assoc.urn, f"Tenant {tenant}'s pod identity association must be in tenant {tenant}'s namespace, not {ns}")
            )
        if dig(assoc.props, "policy") is not None:
            out += _tenant_document(
                stack,
                tenant,
                f"Tenant {tenant}'s pod identity session policy",
                assoc,
                "policy",
                lambda: read_statements(_Path(assoc.props, "policy")),
                prefix_of(tenant),
                tag,
                tenant_keys,
            )
        return out

    roles = judge_each(stack.of(ROLE), judge)
    return (
        roles
        + check_shared_role_on_tenant_data(stack, SharedRoles(stack, shared, tag), namespace_of, tag)
        + judge_each(stack.of(POD_IDENTITY), judge_association)
        + judge_each(stack.of(*_ROLE_GRANTS), lambda g: _unplaced_grant(stack, g))
        + judge_each(stack.of(SERVICE_ACCOUNT), lambda sa: _irsa_problems(stack, sa, namespaces, tag))
    )


IRSA = "eks.amazonaws.com/role-arn"  # IAM roles for service accounts: the role the SDKs in its pods assume


def _irsa_problems(stack: Stack, sa: Any, namespaces: _Namespaces, tag: str) -> list[tuple[str | None, str]]:
    """A service account in a tenant's namespace may name through IRSA only a role its tenant
    already holds: one tagged as that tenant's, or one the tenant's pod identity associations name.
    Any other role (of the platform, of another account, one the stack does not define) would hand
    the tenant's pods that role's permissions wherever its trust admits the cluster's OIDC provider."""
    annotations = known(peek(sa.props, "metadata", "annotations"))
    value = annotations.get(IRSA) if isinstance(annotations, dict) else annotations
    if value is None:
        return []
    ns = peek(sa.props, "metadata", "namespace", default="default")
    if ns is UNKNOWN:
        raise unknown("metadata", "namespace")
    if ns in namespaces.unsure or namespaces.could_be_unnamed(ns):
        raise namespaces.unknown_owner(ns)
    tenants = namespaces.get(ns, set())
    if not tenants:
        return []  # not a tenant's: a platform role by annotation is judged where that role is
    if annotations is UNKNOWN:
        raise unknown("metadata", "annotations")
    linked = stack.linked(sa, "metadata", ROLE)
    if value is UNKNOWN:
        if len(linked) != 1:
            raise unknown("metadata", "annotations", IRSA)
        role = linked[0]
    else:
        role = stack_role(stack, value)
    who = " and ".join(f"tenant {t}" for t in sorted(tenants))
    name = f"{ns}/{peek(sa.props, 'metadata', 'name')}"
    if role is None:
        return [
            (
                sa.urn,
                f"Service account {name} of {who} must not name role {value} (`{IRSA}`): no role of this stack, so it "
                "cannot be proven one the tenant holds",
            )
        ]
    if any(not _tenant_holds(stack, role, t, namespaces, tag) for t in tenants):
        return [
            (
                sa.urn,
                f"Service account {name} of {who} must name only a role the tenant holds (`{IRSA}`), not {role.name}: "
                "neither tagged as the tenant's nor named by the tenant's pod identity associations",
            )
        ]
    return []


def _tenant_holds(stack: Stack, role: Any, tenant: str, namespaces: _Namespaces, tag: str) -> bool:
    """Role `role` is tenant `tenant`'s: tagged as its, or named by a pod identity association in its namespace."""
    if tags_of(role.props).get(tag) == tenant:
        return True
    for assoc in stack.of(POD_IDENTITY):
        arn = peek(assoc.props, "roleArn")
        names = role in stack.linked(assoc, "roleArn", ROLE) if arn is UNKNOWN else stack_role(stack, arn) is role
        if names and namespaces.owned_by(peek(assoc.props, "namespace"), tenant):
            return True
    return False


_ROLE_GRANTS = {ROLE_POLICY: "role", ROLE_ATTACHMENT: "role", POLICY_ATTACHMENT: "roles", ROLE_ATTACHMENTS_EXCLUSIVE: "roleName"}


def _unplaced_grant(stack: Stack, grant: Any) -> list[tuple[str | None, str]]:
    """A policy or attachment whose role is unknown at preview and built from no role of the stack:
    whose permissions it widens (a tenant's role?) is known only after apply."""
    prop = _ROLE_GRANTS[grant.resource_type]
    value = peek(grant.props, prop)
    in_role = grant.resource_type == ROLE_POLICY and grant.parent is not None and grant.parent.resource_type == ROLE
    if (value is UNKNOWN or UNKNOWN in as_list(value)) and not stack.linked(grant, prop, ROLE) and not in_role:
        raise unknown(prop)
    return []


def _trust_problems(stack: Stack, role: Any, tenant: str, namespaces: _Namespaces) -> list[tuple[str | None, str]]:
    """Who may assume the role: only service accounts in the tenant's own namespace."""
    out: list[tuple[str | None, str]] = []
    try:
        trust = read_statements(_Path(role.props, "assumeRolePolicy"))
    except UnknownValueError as exc:
        return [(role.urn, Unverifiable.of(exc, "a tenant role's trust policy"))]
    for st in trust:
        if not st.allow:
            continue
        if public(st) or principals(st, "AWS"):
            out.append(
                (
                    role.urn,
                    f"Tenant {tenant} role must be assumable only by tenant {tenant}'s service account, not by AWS principals ({st.label})",
                )
            )
            continue
        services_ = [s for s in principals(st, "Service") if s != "pods.eks.amazonaws.com"]
        if services_:
            out.append((role.urn, f"Tenant {tenant} role must not be assumable by {', '.join(map(str, services_))} ({st.label})"))
        if principals(st, "Federated"):
            subjects = st.condition_values(":sub")
            if not subjects:
                out.append(
                    (
                        role.urn,
                        f"Tenant {tenant} role must limit its web-identity trust with a `:sub` condition naming the tenant's service account ({st.label})",
                    )
                )
            for op, values in subjects:
                if negated(op):
                    out.append(
                        (
                            role.urn,
                            f"Tenant {tenant} role must not use a negated condition ({op}) on `:sub`: it admits every other subject",
                        )
                    )
                    continue
                for subject in values:
                    if subject is UNKNOWN:
                        out.append((role.urn, Unverifiable.at("assumeRolePolicy.Statement.Condition", ":sub")))
                        continue
                    m = _SUB.match(str(subject))
                    ns = m.group(1) if m else str(subject)
                    if WILDCARD.search(ns) or not namespaces.owned_by(ns, tenant):
                        out.append(
                            (
                                role.urn,
                                f"Tenant {tenant} role must be assumable only from tenant {tenant}'s namespace, not {subject}",
                            )
                        )
    out += [(role.urn, p) for p in _cluster_pin_problems(stack, role, f"Tenant {tenant} role")]
    # Service accounts annotated with the role, and pod identity associations, must be in the tenant's namespace.
    for sa in stack.referring(role, "metadata", SERVICE_ACCOUNT):
        ns = dig(sa.props, "metadata", "namespace")
        if not namespaces.owned_by(ns, tenant):
            out.append((sa.urn, f"Service account in namespace {ns} must not use tenant {tenant}'s role"))
    for assoc in stack.referring(role, "roleArn", POD_IDENTITY):
        ns = dig(assoc.props, "namespace")
        if not namespaces.owned_by(ns, tenant):
            out.append((assoc.urn, f"Pod identity association in namespace {ns} must not use tenant {tenant}'s role"))
    return out


_PIN_OPERATORS = ("arnequals", "stringequals", "arnlike", "stringlike")  # the -like ones only without a wildcard
_CLUSTER_PIN_KEYS = ("aws:requesttag/eks-cluster-arn", "aws:sourcearn")  # see _cluster_pin_problems


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def _stack_clusters(stack: Stack) -> set[str]:
    """ARNs of the EKS clusters this stack defines (`aws:eks/cluster:Cluster`): partition and region from the cluster's
    provider, account from that provider's `allowedAccountIds` (else the stack's providers'). A name some pod identity
    association mentions is not a cluster of the stack; a cluster whose region or account is not known gives no ARN."""
    arns = set()
    for cluster in stack.of(EKS_CLUSTER):
        name, region = peek(cluster.props, "name"), resource_region(cluster)
        provider = cluster.provider
        accounts = (provider_accounts(provider.props) if provider is not None else set()) or stack_accounts(stack)
        if isinstance(name, str) and isinstance(region, str):
            arns |= {f"arn:{_partition(region)}:eks:{region}:{account}:cluster/{name}" for account in accounts}
    return arns


def _cluster_pin_problems(stack: Stack, role: Any, what: str) -> list[Any]:
    """EKS Pod Identity assumes a role for a pod of any cluster of any account the trust admits; only a pin on
    the cluster limits it to the stack's own clusters: the request tag `aws:RequestTag/eks-cluster-arn`, which
    Pod Identity sets to the cluster the pod runs in (the EKS user guide's documented trust condition:
    https://docs.aws.amazon.com/eks/latest/userguide/pod-id-role.html, "Setting Conditions"), or `aws:SourceArn`
    (no AWS page says Pod Identity sends it; where it does not, the statement admits no pod at all, so it still
    admits none of another cluster). `aws:SourceAccount` alone admits every cluster of the account (a sandbox
    one too), whose pods set their own namespace tag."""
    try:
        trust = [st for st in read_statements(_Path(role.props, "assumeRolePolicy")) if st.allow]
    except UnknownValueError:
        return []  # said by the callers
    clusters = _stack_clusters(stack)
    out: list[Any] = []
    for st in trust:
        if "pods.eks.amazonaws.com" not in principals(st, "Service"):
            continue
        pins = [vals for op, key, vals in st.conditions if str(key).lower() in _CLUSTER_PIN_KEYS and op.lower() in _PIN_OPERATORS]
        if any(v is UNKNOWN for vals in pins for v in vals):
            out.append(Unverifiable.at("assumeRolePolicy.Statement.Condition", "aws:RequestTag/eks-cluster-arn"))
            continue
        held = [vals for vals in pins if vals and all(str(v) in clusters for v in vals)]
        if not held:
            named = ", ".join(str(v) for vals in pins for v in vals) or "none"
            out.append(
                f"{what} must pin EKS Pod Identity to the clusters the stack defines, by their full ARN ({', '.join(sorted(clusters)) or 'none'}) "
                f"by `StringEquals` `aws:RequestTag/eks-cluster-arn` = the cluster's ARN ({st.label} names {named}): otherwise a pod of any "
                "cluster the trust admits holds it with the namespace tag that cluster sets"
            )
    return out


def _workload_assumable(role: Any) -> bool:
    """Assumable by something other than an AWS service (pods, people, other accounts)."""
    try:
        trust = read_statements(_Path(role.props, "assumeRolePolicy"))
    except UnknownValueError:
        return True
    return any(
        st.allow
        and (
            public(st)
            or principals(st, "AWS")
            or principals(st, "Federated")
            or "pods.eks.amazonaws.com" in principals(st, "Service")
        )
        for st in trust
    )


def _reaches_tenant_objects(res: str, marker: str) -> bool:
    """Whether an S3 resource pattern can match an object under `marker` (`tenants/`) in some bucket."""
    if res == "*":
        return True
    lit = literal_prefix(res)
    if not lit.startswith("arn:aws:s3:::"):
        return "arn:aws:s3:::".startswith(lit)  # a wildcard before the bucket (`arn:*:s3:::...`)
    bucket, slash, key = lit.removeprefix("arn:aws:s3:::").partition("/")
    if not slash:
        return lit != res  # a wildcard inside the bucket name can run on into any key
    return marker.startswith(key) or key.startswith(marker)


NAMESPACE_VARIABLE = "${aws:PrincipalTag/kubernetes-namespace}"  # set by EKS Pod Identity from the pod's namespace
BROKER_TAG = "meridian-tenant"  # set by a broker of the stack on the sessions it opens: the tenant's namespace
BROKERED_VARIABLE = "${aws:PrincipalTag/" + BROKER_TAG + "}"
TENANT_VARIABLES = (NAMESPACE_VARIABLE, BROKERED_VARIABLE)  # each names one tenant namespace per session


def _names_a_tenant(value: object) -> bool:
    return isinstance(value, str) and any(v in value for v in TENANT_VARIABLES)


def _with_namespace(value: object, namespace: str) -> object:
    if not isinstance(value, str):
        return value
    for variable in TENANT_VARIABLES:
        value = value.replace(variable, namespace)
    return value


def _pod_identity_only(role: Any) -> bool:
    """Whether only EKS Pod Identity may assume the role: then the session tag `kubernetes-namespace`
    is set by EKS from the pod's namespace and no principal can choose it (sts:TagSession is the
    pods.eks.amazonaws.com service's alone)."""
    try:
        trust = [st for st in read_statements(_Path(role.props, "assumeRolePolicy")) if st.allow]
    except UnknownValueError:
        return False
    return bool(trust) and all(
        st.principal != "*"
        and isinstance(st.principal, dict)
        and set(st.principal) == {"Service"}
        and set(st.principal["Service"]) == {"pods.eks.amazonaws.com"}
        for st in trust
    )


def _pod_identity_statement(st: Statement) -> bool:
    return (
        st.principal != "*"
        and isinstance(st.principal, dict)
        and set(st.principal) == {"Service"}
        and set(st.principal["Service"]) == {"pods.eks.amazonaws.com"}
    )


SECRET = "aws:secretsmanager/secret:Secret"
_SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[^*?]+$")
_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[^*?]+$")
_VIA_SECRETS_MANAGER = re.compile(r"^secretsmanager\.[a-z0-9-]+\.amazonaws\.com$")


def _reads_named_secret(st: Statement) -> bool:
    """The one thing a broker may do besides sts: read secrets named by exact ARN (its database
    password), and decrypt only on Secrets Manager's behalf (`kms:ViaService`), which reaches no
    S3 object of any tenant."""
    if not st.allow or st.not_actions or st.not_resources or not st.resources or UNKNOWN in st.actions:
        return False
    if UNKNOWN in st.resources or not all(isinstance(r, str) for r in st.resources):
        return False
    actions = set(st.actions)
    if actions == {"secretsmanager:getsecretvalue"}:
        return all(_SECRET_ARN.match(r) for r in st.resources)
    if actions == {"kms:decrypt"}:
        via = [vals for op, key, vals in st.conditions if op.lower() == "stringequals" and str(key).lower() == "kms:viaservice"]
        return (
            all(_KEY_ARN.match(r) for r in st.resources)
            and bool(via)
            and all(vals and all(isinstance(v, str) and _VIA_SECRETS_MANAGER.match(v) for v in vals) for vals in via)
        )
    return False


def _broker_problems(
    stack: Stack, broker: Any, grants: dict, namespaces: _Namespaces, tag: str, holder: tuple[str, str]
) -> list[str]:
    """A role trusted to set a tenant's session tags (the service's broker) chooses the tenant, so
    it must be reachable by no tenant: held only through pod identity, only by the service's own
    service account `holder` (namespace, name), and able to do nothing but assume roles (sts)
    itself, besides reading secrets named by exact ARN (`_reads_named_secret`)."""
    out = []
    if not _pod_identity_only(broker):
        out.append(f"broker {broker.name} must be assumable only through EKS Pod Identity")
    out += _cluster_pin_problems(stack, broker, f"broker {broker.name}")
    for assoc in _holding_associations(stack, broker, out):
        ns, sa = dig(assoc.props, "namespace"), dig(assoc.props, "serviceAccount")
        if ns is UNKNOWN:
            out.append(Unverifiable.of(unknown("namespace"), f"broker {broker.name}'s pod identity association: a tenant's?"))
        elif not isinstance(ns, str) or ns in namespaces:
            out.append(f"broker {broker.name} is associated with namespace {ns}, a tenant's")
        elif ns in namespaces.unsure or namespaces.could_be_unnamed(ns):
            out.append(
                Unverifiable.of(
                    namespaces.unknown_owner(ns), f"broker {broker.name} is associated with namespace {ns}: a tenant's?"
                )
            )
        elif (ns, sa) != holder:
            out.append(
                f"broker {broker.name} must be held only by the service's account {'/'.join(holder)}, not {ns}/{sa} "
                f"({assoc.name}): whoever holds it chooses the tenant"
            )
    for addon in stack.of(ADDON):
        linked = broker in stack.linked(addon, "podIdentityAssociations", ROLE)
        named = [
            e
            for e in as_list(known(peek(addon.props, "podIdentityAssociations")))
            if getattr(stack_role(stack, dig(e, "roleArn")), "urn", None) == broker.urn
        ]
        if linked or named:
            out.append(
                f"broker {broker.name} must not be held through add-on {addon.name}'s pod identity associations: "
                f"only the service's account {'/'.join(holder)} may choose the tenant"
            )
    for sa in stack.referring(broker, "metadata", SERVICE_ACCOUNT):
        out.append(f"broker {broker.name} must not be held through a service account annotation ({sa.name})")
    for grant in grants.get(broker.urn, []):
        if grant.managed_arn is not None:
            out.append(f"broker {broker.name} must hold no managed policy ({grant.label})")
            continue
        try:
            sts = grant_statements(grant)
        except UnknownValueError as exc:
            out.append(Unverifiable.of(exc, f"broker {broker.name}'s {grant.label}"))
            continue
        # the secrets a document is built from: none may be a tenant's
        owned = sorted(s.name for s in stack.linked(grant.holder, grant.prop, SECRET) if tags_of(s.props).get(tag) is not None)
        if owned and any(st.allow and _reads_named_secret(st) for st in sts):
            out.append(f"broker {broker.name} may not read a tenant's secret ({', '.join(owned)}) through {grant.label}")
        for st in sts:
            if st.allow and not _reads_named_secret(st) and (services(st) != {"sts"} or st.not_actions):
                out.append(
                    f"broker {broker.name} may only assume roles (sts) and read secrets named by ARN "
                    f"(kms:Decrypt only via Secrets Manager), not {st.label}"
                )
            elif st.allow and services(st) == {"sts"}:
                foreign = [r for r in st.resources if not _stack_role(stack, r)] + (["NotResource"] if st.not_resources else [])
                if foreign:
                    out.append(
                        f"broker {broker.name} may assume only the stack's own roles, not {', '.join(map(str, foreign))} "
                        f"({st.label}): it chooses the tenant, and any other role trusting the account is a way out"
                    )
    return out


def _holding_associations(stack: Stack, role: Any, out: list) -> list[Any]:
    """The pod identity associations that hand out `role`: its `roleArn` built from the role, or its
    literal ARN (a value typed by hand keeps no link). An ARN that may name the role once an
    unknown path is known is reported into `out`."""
    held = []
    for assoc in stack.of(POD_IDENTITY):
        if role in stack.linked(assoc, "roleArn", ROLE):
            held.append(assoc)
            continue
        try:
            if stack_role(stack, peek(assoc.props, "roleArn")) is role:
                held.append(assoc)
        except UnknownValueError as exc:
            out.append(Unverifiable.of(exc, f"pod identity association {assoc.name}: does it hand out {role.name}?"))
    return held


def _stack_role(stack: Stack, arn: Any) -> bool:
    """`arn` is the exact ARN of a role the stack defines (ruleutil.stack_role)."""
    return stack_role(stack, arn) is not None


def _session_tags_trusted(
    stack: Stack, role: Any, grants: dict, namespaces: _Namespaces, tag: str, holder: tuple[str, str]
) -> tuple[bool, list[str]]:
    """Whether every principal that may assume the role with session tags either is EKS Pod Identity
    (which sets `kubernetes-namespace` from the pod's namespace) or a broker of this stack that
    no tenant can reach and that must name the tenant in a `meridian-tenant` tag (`_broker_problems`).
    A broker cannot set `kubernetes-namespace` itself: its own Pod Identity session carries that key,
    transitively, and STS refuses a request tag with an inherited key."""
    try:
        trust = [st for st in read_statements(_Path(role.props, "assumeRolePolicy")) if st.allow]
    except UnknownValueError:
        return False, []
    problems: list[str] = []
    brokers = [b for b in stack.linked(role, "assumeRolePolicy", ROLE) if b.urn != role.urn]
    named: set[Any] = set()
    for st in trust:
        if _pod_identity_statement(st):
            continue
        if st.principal == "*" or not isinstance(st.principal, dict) or set(st.principal) != {"AWS"}:
            return False, []
        named |= {str(p) for p in principals(st, "AWS")}
        tagged = [
            vals
            for op, key, vals in st.conditions
            if not negated(op) and str(key).lower() == f"aws:requesttag/{BROKER_TAG}" and "*" not in vals
        ]
        if not tagged:
            problems.append(f"trust statement {st.label} must require a `{BROKER_TAG}` session tag naming the tenant")
    if not named:
        return bool(trust), []
    if len(named) > len(brokers):
        problems.append(f"trust admits AWS principals {sorted(named)} that are not roles of this stack")
    for broker in brokers:
        problems += _broker_problems(stack, broker, grants, namespaces, tag, holder)
    # what is only unknown at preview is reported (advisory) and does not decide the verdict
    return not [p for p in problems if not isinstance(p, Unverifiable)], problems


def _substituted(st: Statement, namespace: str) -> Statement:
    sub = lambda v: _with_namespace(v, namespace)  # noqa: E731
    return replace(
        st,
        resources=tuple(sub(r) for r in st.resources),
        conditions=tuple((op, key, tuple(sub(v) for v in vals)) for op, key, vals in st.conditions),
    )


def _keys_in_stack(stack: Stack, patterns: list[str]) -> str | None:
    """`key/*` reaches keys of the account and region its ARN names: a wildcard there (or another account or
    region than the stack's providers') takes in other accounts' keys (an attacker's: kms:Encrypt sends it
    plaintext) or other regions', other zones' included."""
    accounts = stack_accounts(stack)
    regions = {resource_region(p) for p in stack.of(AWS_PROVIDER)} - {None}
    for pattern in patterns:
        _, _, _, region, account, *_ = pattern.split(":") + [""] * 6
        if WILDCARD.search(account) or not account or (accounts and account not in accounts):
            return f"reaches KMS keys ({pattern}) of an account other than the stack's ({', '.join(sorted(accounts)) or 'none pinned'})"
        if WILDCARD.search(region) or not region or (regions and region not in regions):
            return f"reaches KMS keys ({pattern}) of a region other than the stack's ({', '.join(sorted(regions))})"
    return None


def _abac_keys_sound(stack: Stack, st: Statement, namespaces: _Namespaces, tenant_keys: dict[str, Any]) -> str | None:
    """KMS through `key/*` is isolated only under `aws:ResourceTag/<T>` = the namespace variable, and
    only if every tenant key carries <T> = its own namespace and no other key a tenant namespace."""
    tags = [
        key.split("/", 1)[1]
        for op, key, vals in st.conditions
        if not negated(op) and str(key).lower().startswith("aws:resourcetag/") and len(vals) == 1 and vals[0] in TENANT_VARIABLES
    ]
    if not tags:
        return "reaches every KMS key (`key/*`) without an `aws:ResourceTag/...` = the caller's namespace condition"
    ns_of = {t: ns for ns, ts in namespaces.items() for t in ts}
    for key in stack.of(*KMS_KEYS):
        value = tags_of(key.props).get(tags[0])
        owner = tenant_keys.get(key.urn)
        if owner is UNKNOWN or value is UNKNOWN:  # whose key, or the tag the statement relies on
            raise unknown(f"key {key.name}'s tags", tags[0] if value is UNKNOWN else "(its tenant)")
        if owner and owner not in ns_of and namespaces.unsure:
            raise unknown(f"namespaces {', '.join(sorted(namespaces.unsure))}' metadata", "labels", namespaces.label)
        if owner and owner in namespaces.unnamed:
            raise unknown(f"namespace of tenant {owner}: metadata", "name")
        if owner and value != ns_of.get(owner):
            return f"relies on KMS tag {tags[0]}, but tenant {owner}'s key {key.name} carries {value!r}, not its namespace"
        if not owner and value in ns_of.values():
            return f"relies on KMS tag {tags[0]}, but the non-tenant key {key.name} carries the tenant namespace {value!r}"
    return None


def _abac_problems(
    stack: Stack,
    role: Any,
    grant: Any,
    st: Statement,
    namespaces: _Namespaces,
    tenant_keys: dict[str, Any],
    tag: str,
    config: dict,
) -> list[str]:
    """A statement of a pod-identity role that names tenant data through the namespace variable is
    isolated if, for every tenant namespace, substituting it yields what that tenant alone may reach."""
    out = []
    kms = [r for r in st.resources if isinstance(r, str) and ":kms:" in r and r.endswith(":key/*")]
    if kms:
        problem = _keys_in_stack(stack, kms) or _abac_keys_sound(stack, st, namespaces, tenant_keys)
        if problem:
            out.append(problem)
        grant = _grant_problem(st) or _kms_admin_problem(st)
        if grant:
            out.append(grant)
        st = replace(st, resources=tuple(r for r in st.resources if r not in kms))
        if not st.resources:
            return out
    owners = {
        peek(b.props, "bucket"): tags_of(b.props).get(tag)
        for b in stack.of(*S3_BUCKETS)
        if isinstance(peek(b.props, "bucket"), str)
    }
    # a bucket named by `<literal>${namespace}` is the namespace's own (a silo bucket by convention) unless the
    # stack gives that name to a bucket of someone else
    ns_mark = "\0ns\0"  # the variable holds a "/": mark it before splitting bucket from key
    per_ns_buckets = [
        b
        for b in (
            str(_with_namespace(r, ns_mark)).removeprefix("arn:aws:s3:::").partition("/")[0]
            for r in st.resources
            if isinstance(r, str) and r.startswith("arn:aws:s3:::")
        )
        # a literal part before the namespace: a bucket named just `t-acme` may be anyone's, in any account
        if b.endswith(ns_mark) and b != ns_mark and ns_mark not in b[: -len(ns_mark)] and not WILDCARD.search(b[: -len(ns_mark)])
    ]
    for ns, tenants in sorted(namespaces.items()):
        for tenant in sorted(tenants):
            prefix = str(config.get("tenantPrefix", "tenants/{tenant}/")).replace("{tenant}", tenant)
            own = {b for b, owner in owners.items() if owner == tenant}
            for pattern in per_ns_buckets:
                name = pattern.replace(ns_mark, ns)
                if owners.get(name) is UNKNOWN:
                    raise unknown(f"bucket {name}'s tags", tag)
                if name in owners and owners[name] != tenant:
                    return out + [
                        f"names bucket {name} through the namespace, but it belongs to {owners[name] or 'the platform'}"
                    ]
                own.add(name)
            found = _statement_problems(_substituted(st, ns), prefix, own, 0)
            if found:
                return out + [f"{found[0]}, for namespace {ns} (tenant {tenant})"]
    return out


def _names_tenants(grants: list) -> bool:
    """Some statement of the role's own documents names a tenant through a session-tag variable."""
    for grant in grants:
        if grant.managed_arn is not None:
            continue
        try:
            sts = grant_statements(grant)
        except UnknownValueError:
            continue
        if any(
            any(_names_a_tenant(r) for r in st.resources) or any(_names_a_tenant(v) for _, _, vals in st.conditions for v in vals)
            for st in sts
        ):
            return True
    return False


def _untagged_role(
    stack: Stack,
    role: Any,
    grants: list,
    tenant_keys: dict[str, Any],
    namespaces: _Namespaces,
    config: dict,
    all_grants: dict | None = None,
    shared_roles: set[str] | None = None,
) -> list[tuple[str | None, str]]:
    """A role without the tenant tag that a workload can assume must not reach tenant data, unless
    it is a pod-identity role whose every reach into tenant data goes through the namespace variable."""
    if not _workload_assumable(role):
        return []  # AWS service roles (replication, backup): they act for the platform, not for a tenant
    tag = config.get("tenantTag", "meridian:tenant")
    marker = str(config.get("tenantPrefix", "tenants/{tenant}/")).split("{tenant}")[0]
    holder = (str(config.get("brokerNamespace", "platform")), str(config.get("brokerServiceAccount", "meridian-api")))
    abac, broker_problems = _session_tags_trusted(stack, role, all_grants or {}, namespaces, tag, holder)
    out: list[tuple[str | None, str]] = [
        (role.urn, p if isinstance(p, Unverifiable) else f"Role {role.name} trusts session tags it cannot: {p}")
        for p in broker_problems
    ]
    if abac:
        shadowed = sorted(k for k in tags_of(role.props) if str(k).lower() in ("kubernetes-namespace", BROKER_TAG))
        if shadowed:
            out.append(
                (
                    role.urn,
                    f"Role {role.name} must not carry the IAM tag(s) {', '.join(shadowed)}: a session without that session tag "
                    "would take the role's value as its tenant",
                )
            )
        out += [
            (assoc.urn, problem)
            for assoc in stack.referring(role, "roleArn", POD_IDENTITY)
            for problem in association_session_problems(assoc, role.name)
        ]
    holding = [dig(a.props, "namespace") for a in stack.referring(role, "roleArn", POD_IDENTITY)] + [
        dig(sa.props, "metadata", "namespace") for sa in stack.referring(role, "metadata", SERVICE_ACCOUNT)
    ]
    held_in = sorted({str(ns) for ns in holding if ns in namespaces})
    # a namespace whose labels (or name) are unknown may or may not be a tenant's: an advisory, never a verdict
    unsure = sorted(
        {
            str(ns)
            for ns in holding
            if ns is UNKNOWN or (ns not in namespaces and (ns in namespaces.unsure or namespaces.could_be_unnamed(ns)))
        }
    )
    # the shared tenant role (held in tenant namespaces, or telling tenants apart by a session tag): every statement
    # answers to the tenant allowlist, with the session tag standing for each tenant in turn
    shared = abac and (bool(held_in) or _names_tenants(grants))
    if shared and shared_roles is not None:
        shared_roles.add(role.urn)  # its resource side answers to sharedrole.py
    if shared:
        out += [(role.urn, p) for p in _cluster_pin_problems(stack, role, f"Role {role.name} (the tenants' shared role)")]
    for grant in grants:
        for dep in stack.linked(grant.holder, grant.prop, *KMS_KEYS):
            if tenant_keys.get(dep.urn):
                out.append(
                    (
                        grant.holder.urn,
                        f"Role {role.name} (no tenant tag, assumable by workloads) must not reach tenant {tenant_keys[dep.urn]}'s key {dep.name}",
                    )
                )
        if grant.managed_arn is not None:
            if shared:
                out.append(
                    (
                        grant.holder.urn,
                        f"Role {role.name} (the tenants' shared role) must hold no managed policy ({grant.label}): "
                        "a policy the stack does not define cannot be proven to stay inside each tenant's prefix and key",
                    )
                )
            continue
        try:
            sts = grant_statements(grant)
        except UnknownValueError as exc:
            out.append((grant.holder.urn, Unverifiable.of(exc, f"role {role.name}'s {grant.label}")))
            continue
        for st in sts:
            try:
                beyond = sorted(services(st) - {"s3", "kms"})
                if unsure and not held_in and beyond:
                    out.append(
                        (
                            grant.holder.urn,
                            Unverifiable.of(
                                namespaces.unknown_owner(unsure[0]) if unsure[0] != str(UNKNOWN) else unknown("namespace"),
                                f"role {role.name} grants {', '.join(beyond)} actions ({st.label}) and is held in namespace "
                                f"{', '.join(unsure)}: a tenant's?",
                            ),
                        )
                    )
                if held_in and beyond:
                    out.append(
                        (
                            grant.holder.urn,
                            f"Role {role.name} is held by tenant namespaces ({', '.join(held_in)}), so it must grant only S3 under "
                            f"the tenant's prefix and its own key, not {', '.join(beyond)} actions ({st.label}): "
                            "sts:AssumeRole on other roles, for one, lets every tenant's pods leave their prefix",
                        )
                    )
                    continue
                if not st.allow or not ({"s3", "kms", "*"} & services(st)):
                    continue
                if UNKNOWN in st.resources:
                    raise unknown("Statement", "Resource")
                if shared:
                    out += [
                        (
                            grant.holder.urn,
                            f"Role {role.name} (pod identity, by namespace) must not widen access: it {p} ({st.label})",
                        )
                        for p in _abac_problems(stack, role, grant, st, namespaces, tenant_keys, tag, config)
                    ]
                    continue
            except UnknownValueError as exc:
                out.append((grant.holder.urn, Unverifiable.of(exc, f"role {role.name}'s {grant.label}, {st.label}")))
                continue
            wide = [r for r in st.resources if services(st) & {"s3", "*"} and _reaches_tenant_objects(r, marker)] + (
                ["NotResource"] if st.not_resources else []
            )
            wide += [r for r in st.resources if ":kms:" in r and WILDCARD.search(r) and ({"kms", "*"} & services(st))]
            if wide:
                out.append(
                    (
                        grant.holder.urn,
                        f"Role {role.name} (no tenant tag, assumable by workloads) must not reach tenant data: "
                        f"{', '.join(wide)} covers tenant prefixes or keys ({st.label})",
                    )
                )
    return out


tenant_role_isolated = stack_policy(
    "tenant-role-isolated",
    what="Checks that every tenant principal reaches only its own data and key: each tenant-tagged IAM role, through every source of permissions "
    "(inline and RolePolicy documents, managed policy ARNs, attachments), and each tenant-tagged EKS Pod Identity association's session policy, "
    "allow only S3 objects under the tenant's prefix (or in its own silo bucket), listing limited to that prefix, and KMS on exact key ARNs "
    "built from the tenant's own key, only KMS actions that use a key (encrypt, decrypt, data keys, describe; never its policy, tags, "
    "aliases or state: `kms:*` is expanded over every KMS action), with `kms:CreateGrant` only under `kms:GrantIsForAWSResource: true` (else the tenant can hand its key "
    "to any account at runtime); that a tenant role's trust admits only web identities of its own namespace, and EKS Pod Identity "
    "only from a cluster the stack defines (`StringEquals` `aws:RequestTag/eks-cluster-arn`, the tag Pod Identity sets, or `aws:SourceArn` = its full ARN: partition, the region of its provider, the providers' pinned account, its name; `aws:SourceAccount` alone admits every "
    "cluster of the account); and that an untagged role "
    "a workload can assume reaches tenant prefixes or keys only as a pod-identity role whose every such reach goes through the "
    "`kubernetes-namespace` session tag or a broker's `meridian-tenant` tag (a whole path segment, or a KMS `aws:ResourceTag` "
    "condition that every tenant key satisfies for its own namespace only); the tenants' shared role (held in tenant namespaces, or "
    "naming a session-tag variable) answers to the tenant allowlist in every statement, for each tenant namespace in turn (no "
    "bucket-level action but listing, no `*` or access-point ARN, no managed policy), with session tags on, no session policy on its "
    "associations (EKS takes one only with session tags off) and no role chaining, and carries neither tag key as an IAM tag; "
    "on the resource side, a tenant's KMS key (its policy, an `aws:kms/keyPolicy` on it), silo bucket (its policy, a "
    "BucketPolicy) or secret (its policy, a SecretPolicy) names the shared role (as a principal, or `*` under an "
    "`aws:PrincipalArn` matching it; in a cell, a role ARN the associations of more than one tenant name) only in a "
    "statement that itself pins `aws:PrincipalTag/kubernetes-namespace` (or the broker's `meridian-tenant`) to the owner's "
    "namespace under `StringEquals`/`StringLike` with that literal value (never negated, `...IfExists` or a set operator), "
    "and no KMS grant on a tenant's key names it as grantee (a grant cannot require a session tag; a key named by ARN, "
    "bare key ID or alias); "
    "an untagged role associated with (or annotated on a service account in) a tenant namespace grants nothing but S3 and KMS; "
    "that a service account in a tenant namespace names through IRSA (`eks.amazonaws.com/role-arn`) only a role of the stack "
    "its tenant holds (tagged as its, or named by its pod identity associations), its value unknown at preview an advisory; "
    "a role it trusts to set the tenant tag (the reference "
    "service's broker) must be one of the stack's, held only through pod identity (pinned to the stack's cluster) by the service's own service account "
    "(`brokerNamespace`/`brokerServiceAccount`), never through an EKS add-on's associations, allowed only sts "
    "on exact ARNs of the stack's own roles "
    "(besides `secretsmanager:GetSecretValue` on secrets named by exact ARN, none of them a secret the stack tags as a tenant's, "
    "and `kms:Decrypt` on exact key ARNs under a `kms:ViaService` condition naming Secrets Manager: its database password), "
    "and the trust must require a "
    "`meridian-tenant` session tag (its own Pod Identity tags are transitive, so it cannot set `kubernetes-namespace`)",
    why="Tenants share buckets, clusters and accounts; the role's policy is the only wall between one tenant's pods and another tenant's data. "
    "The rule is an allowlist: what it cannot prove isolated is a violation.",
    reads=[
        ROLE,
        POD_IDENTITY,
        ROLE_POLICY,
        ROLE_ATTACHMENT,
        POLICY_ATTACHMENT,
        ROLE_ATTACHMENTS_EXCLUSIVE,
        MANAGED_POLICY,
        SERVICE_ACCOUNT,
        *KMS_KEYS,
        *SHARED_ROLE_READS,
    ],
    check=check_tenant_roles,
    severity=CRITICAL,
    config={
        **_TENANT_SCHEMA,
        **NAMESPACE_SETTINGS,
        "brokerNamespace": {
            "type": "string",
            "default": "platform",
            "description": "namespace of the only service account that may hold the broker role (components.workload.NAMESPACE)",
        },
        "brokerServiceAccount": {
            "type": "string",
            "default": "meridian-api",
            "description": "the only service account that may hold the broker role (components.workload.SERVICE_ACCOUNT)",
        },
    },
    remediation="Scope object actions to `arn:aws:s3:::<bucket>/tenants/<id>/*`, `s3:ListBucket` to a `StringLike` `s3:prefix` condition "
    "of `tenants/<id>/*`, KMS actions to the tenant's key ARN (built from the key resource), and the trust policy's `:sub` to "
    "`system:serviceaccount:t-<id>:<id>-app` (components.tenant). Do not attach managed policies to tenant roles.",
    limits="The `kubernetes-namespace` session tag is trusted only because the role admits no principal but pods.eks.amazonaws.com (EKS sets "
    "it from the pod's namespace and no caller can choose it through sts:TagSession) and brokers of the stack that no tenant can reach: "
    "a broker chooses the tenant by design (the service serves every tenant, naming it in `meridian-tenant`, a key only those brokers may set), "
    "so its own holders are trusted. Which clusters' pods hold the role is the trust's pin (`aws:RequestTag/eks-cluster-arn`, which "
    "Pod Identity sets on its AssumeRole per the EKS user guide, or `aws:SourceArn`, which no AWS page says it sends: a trust pinned "
    "by it alone admits the stack's clusters' pods or none); the role's own `aws:PrincipalTag/eks-cluster-arn` conditions (patterns "
    "for tenant cluster pairs) are not what the rule credits. The rule assumes that tenants cannot create "
    "namespaces, service accounts or pod identity associations (RBAC, outside the stack), that the OIDC provider is the stack's own "
    "cluster's, and that only this stack labels tenant namespaces. It does not read AWS managed policies or policies outside the "
    "stack, so it refuses them rather than trust them. Permission boundaries, SCPs and bucket / key policies that restrict access "
    "further are not credited (so a Deny in a tenant key's policy does not excuse a statement or grant naming the shared "
    "role: each is proved on its own). Whose secret a broker reads is known only for secrets of the stack its policy is built from; "
    "an ARN written by hand is trusted to be the platform's. A broker's assume target is matched to the stack's roles by path and "
    "name: a role whose `path` is unknown at preview, where the target could be it, gives an advisory. A namespace whose labels "
    "(or, labelled a tenant's, whose name) are unknown at preview, a key or silo bucket whose tags are unknown, or an association or policy whose role is unknown and built from no "
    "role of the stack, gives an advisory naming the value, never a verdict. A namespace the plan names without creating it "
    "is a tenant's when a cell lists it (`cellTenantNamespaces`) or it carries the tenant prefix, never the platform's by absence.",
    tags=["tenancy", "iam"],
)


# --- namespaces ----------------------------------------------------------------------------------

_PRIVATE = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def _selects_all(selector: Any) -> bool:
    selector = known(selector) or {}
    return isinstance(selector, dict) and not selector.get("matchLabels") and not selector.get("matchExpressions")


def _default_deny(spec: Any) -> bool:
    types = {str(t) for t in as_list(dig(spec, "policyTypes"))}
    return (
        _selects_all(dig(spec, "podSelector", default={}))
        and {"Ingress", "Egress"} <= types
        and not as_list(dig(spec, "ingress"))
        and not as_list(dig(spec, "egress"))
    )


def _opens(spec: Any, label: str, own: set[str], tenants: frozenset[str], unsure: frozenset[str], prefix: str) -> list[str]:
    """Rules of a NetworkPolicy that admit every peer, other namespaces' pods, or the internet with
    the private ranges (selectors and ipBlock unions by meaning: k8snet)."""
    out = []
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(as_list(dig(spec, direction))):
            peers = as_list(dig(rule, peers_key))
            if not peers:
                out.append(f"{direction}[{i}] has no `{peers_key}`: it admits every peer")
            for peer in peers:
                ns_sel = dig(peer, "namespaceSelector")
                problem = namespace_selector_problem(ns_sel, label, own, tenants, unsure, prefix) if ns_sel is not None else None
                if problem:
                    out.append(f"{direction}[{i}] {problem}")
            problem = ip_blocks_problem([dig(p, "ipBlock") for p in peers if dig(p, "ipBlock") is not None], _PRIVATE)
            if problem:
                out.append(f"{direction}[{i}] {problem}")
    return out


def _pod_subnets(stack: Stack) -> list[Any]:
    """IPv4 ranges of the subnets EKS nodes run in: with the VPC CNI, pods of every tenant take their
    addresses there. `UNKNOWN` stands for a range only known after apply."""
    out: list[Any] = []
    for group in stack.of(NODE_GROUP):
        for subnet in stack.linked(group, "subnetIds", SUBNET):
            cidr = peek(subnet.props, "cidrBlock")
            if cidr is UNKNOWN:
                out.append(UNKNOWN)
            elif isinstance(cidr, str):
                try:
                    out.append(ipaddress.ip_network(cidr, strict=False))
                except ValueError:
                    continue
    return out


def _pod_subnet_ingress(spec: Any, pod_subnets: list[Any]) -> list[str]:
    """Ingress ipBlocks that, after their `except`s, still cover addresses of a pod subnet: they admit
    other tenants' pods, whatever the namespace selectors say."""
    out = []
    for i, rule in enumerate(as_list(dig(spec, "ingress"))):
        for peer in as_list(dig(rule, "from")):
            block = dig(peer, "ipBlock")
            if block is None:
                continue
            if UNKNOWN in pod_subnets:
                raise unknown("aws:ec2/subnet", "cidrBlock")
            try:
                cidr = ipaddress.ip_network(str(dig(block, "cidr")), strict=False)
                excepts = [ipaddress.ip_network(str(e), strict=False) for e in as_list(dig(block, "except"))]
            except ValueError:
                continue  # not a range: k8snet's ipBlock check reports it
            for pod in pod_subnets:
                if pod.version != cidr.version or not cidr.overlaps(pod):
                    continue
                rest = [pod if pod.subnet_of(cidr) else cidr]
                for e in excepts:
                    rest = [
                        piece
                        for r in rest
                        for piece in (
                            r.address_exclude(e)
                            if e.version == r.version and e.subnet_of(r) and e != r
                            else ([] if e.version == r.version and r.subnet_of(e) else [r])
                        )
                    ]
                if rest:
                    out.append(
                        f"ingress[{i}] admits ipBlock {cidr}, which covers pod subnet {pod}: pods take VPC addresses, "
                        "so it admits other tenants' pods"
                    )
                    break
    return out


def _cluster_of(resource: Any) -> str:
    return resource.provider.urn if resource.provider is not None else ""


# Pod Security Admission: https://kubernetes.io/docs/concepts/security/pod-security-admission/
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"


PSA_ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"
_PSA_VERSION = re.compile(r"^v1\.(\d+)$")


def _psa_version_problems(ns: Any, tenant: str, config: dict) -> list[Any]:
    """`enforce-version` pins the standard's checks to a release: an old one lacks controls added since (absent: latest)."""
    version = labels_of(ns.props).get(PSA_ENFORCE_VERSION)
    if version is None or version == "latest":
        return []
    if version is UNKNOWN:
        return [Unverifiable.of(unknown("metadata", "labels", PSA_ENFORCE_VERSION), "which Pod Security version is enforced?")]
    floor = str(config.get("minPodSecurityVersion", "v1.25"))
    m, least = _PSA_VERSION.match(str(version)), _PSA_VERSION.match(floor)
    if m and least and int(m.group(1)) >= int(least.group(1)):
        return []
    return [
        f"Tenant {tenant} namespace must enforce Pod Security at `latest` or a version from {floor} on "
        f"(label `{PSA_ENFORCE_VERSION}`), not {version!r}: an older version's `restricted` lacks the controls added since"
    ]


def _tenant_ties(stack: Stack, config: dict) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Namespace name -> what in the plan makes it a tenant's, whatever its labels say: the tenant
    namespace prefix, a pod identity association into it tagged for a tenant or holding the role
    tenants' associations hold, a key tagged with it as its tenant namespace. Second: namespace
    name -> the association whose tags are unknown at preview (so may tie it)."""
    tag, ns_tag = config.get("tenantTag", "meridian:tenant"), config.get("namespaceTag", "meridian:namespace")
    prefix = config.get("tenantNamespacePrefix", "t-")
    ties: dict[str, list[str]] = {}
    unsure: dict[str, str] = {}
    for ns in stack.of(NAMESPACE):
        name = peek(ns.props, "metadata", "name")
        if isinstance(name, str) and prefix and name.startswith(prefix):
            ties.setdefault(name, []).append(f"its name starts with the tenant prefix {prefix}")

    def role_of(assoc: Any) -> set[str]:
        arn = peek(assoc.props, "roleArn")
        return {r.urn for r in stack.linked(assoc, "roleArn")} | ({arn} if isinstance(arn, str) else set())

    associations = stack.of(POD_IDENTITY)
    tenant_roles = set().union(*[role_of(a) for a in associations if isinstance(tags_of(a.props).get(tag), str)])
    for assoc in associations:
        ns, tenant = peek(assoc.props, "namespace"), tags_of(assoc.props).get(tag)
        if not isinstance(ns, str):
            continue
        if isinstance(tenant, str) and tenant:
            ties.setdefault(ns, []).append(f"pod identity association {assoc.name} is tenant {tenant}'s")
        elif role_of(assoc) & tenant_roles:
            ties.setdefault(ns, []).append(f"pod identity association {assoc.name} holds the tenants' role")
        elif tenant is UNKNOWN:
            unsure.setdefault(ns, assoc.name)
    for key in stack.of(*KMS_KEYS):
        ns = tags_of(key.props).get(ns_tag)
        if isinstance(ns, str) and ns:
            ties.setdefault(ns, []).append(f"key {key.name} is tagged {ns_tag}={ns}")
    return ties, unsure


def check_tenant_namespaces(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    label = config.get("tenantLabel", "meridian.io/tenant")
    ties, unsure = _tenant_ties(stack, config)
    denies: set[tuple[str, str]] = set()
    quotas: set[tuple[str, str]] = set()
    policies_in: dict[tuple[str, str], list[Any]] = {}

    def keys(obj: Any) -> list[tuple[str, str]]:
        ns = peek(obj.props, "metadata", "namespace")
        found = [(_cluster_of(obj), ns)] if isinstance(ns, str) else []
        found += [(_cluster_of(n), n.urn) for n in stack.linked(obj, "metadata", NAMESPACE)]
        return found

    def index_policy(policy: Any) -> list[tuple[str | None, str]]:
        for k in keys(policy):
            policies_in.setdefault(k, []).append(policy)
        if _default_deny(dig(policy.props, "spec", default={})):
            denies.update(keys(policy))
        return []

    def index_quota(quota: Any) -> list[tuple[str | None, str]]:
        if known(dig(quota.props, "spec", "hard", default={})):
            quotas.update(keys(quota))
        return []

    out = judge_each(stack.of(NETWORK_POLICY), index_policy) + judge_each(stack.of(QUOTA), index_quota)
    pod_subnets = _pod_subnets(stack)
    namespaces = _tenant_namespaces(stack, label, config)
    tenant_names, unsure_names = frozenset(namespaces), frozenset(namespaces.unsure)
    prefix = str(config.get(NAMESPACE_PREFIX, "t-"))

    def judge(ns: Any) -> list[tuple[str | None, str]]:
        tenant = labels_of(ns.props).get(label)
        if tenant is UNKNOWN:  # whose namespace it is decides whether it must be guarded
            raise unknown("metadata", "labels", label)
        if not tenant:
            name = peek(ns.props, "metadata", "name")
            if name in ties:
                return [
                    (
                        ns.urn,
                        f"Namespace {name} must carry the tenant label {label}: the plan makes it a tenant's "
                        f"({'; '.join(dict.fromkeys(ties[name]))}), and without the label neither this pack nor the admission policies "
                        "guard it as one",
                    )
                ]
            if name in unsure:
                raise unknown("pod identity association " + unsure[name], "tags", config.get("tenantTag", "meridian:tenant"))
            return []
        found = []
        mine = {(_cluster_of(ns), dig(ns.props, "metadata", "name")), (_cluster_of(ns), ns.urn)}
        if not mine & denies:
            found.append(
                (
                    ns.urn,
                    f"Tenant {tenant} namespace must have a default-deny NetworkPolicy (empty podSelector, policyTypes Ingress and Egress, no rules)",
                )
            )
        if not mine & quotas:
            found.append((ns.urn, f"Tenant {tenant} namespace must have a ResourceQuota with `spec.hard` limits"))
        level = labels_of(ns.props).get(PSA_ENFORCE)
        if level is UNKNOWN:
            found.append(
                (ns.urn, Unverifiable.of(unknown("metadata", "labels", PSA_ENFORCE), "which Pod Security level is enforced?"))
            )
        elif level != "restricted":
            found.append(
                (
                    ns.urn,
                    f"Tenant {tenant} namespace must enforce the `restricted` Pod Security Standard "
                    f"(label `{PSA_ENFORCE}: restricted`), not {level or 'none'}: "
                    "baseline and privileged admit pods that run as root, add capabilities or escalate privileges",
                )
            )
        found += [(ns.urn, p) for p in _psa_version_problems(ns, tenant, config)]
        seen = set()
        for key in mine:
            for policy in policies_in.get(key, []):
                if policy.urn in seen:
                    continue
                seen.add(policy.urn)
                try:
                    spec = dig(policy.props, "spec", default={})
                    found += [
                        (policy.urn, f"NetworkPolicy in tenant {tenant}'s namespace must not undo the default deny: {p}")
                        for p in _opens(
                            spec, label, {tenant, str(dig(ns.props, "metadata", "name"))}, tenant_names, unsure_names, prefix
                        )
                        + _pod_subnet_ingress(spec, pod_subnets)
                    ]
                except UnknownValueError as exc:
                    found.append((policy.urn, Unverifiable.of(exc)))
        return found

    def judge_elsewhere(policy: Any) -> list[tuple[str | None, str]]:
        """A NetworkPolicy of this plan in a tenant namespace another stack creates (a cell's): its
        default deny and quota are that stack's, what this policy opens is judged here."""
        ns = peek(policy.props, "metadata", "namespace")
        if ns not in namespaces.undefined:
            return []
        (tenant,) = namespaces[ns]
        spec = dig(policy.props, "spec", default={})
        return [
            (
                policy.urn,
                f"NetworkPolicy {policy.name} in tenant {tenant}'s namespace {ns} (created by another stack: the plan names it "
                f"and it carries the tenant prefix {prefix} or is a cell's tenant namespace) must not undo its default deny: {p}",
            )
            for p in _opens(spec, label, {tenant, ns}, tenant_names, unsure_names, prefix)
            + _pod_subnet_ingress(spec, pod_subnets)
        ]

    created = {peek(ns.props, "metadata", "name") for ns in stack.of(NAMESPACE)}
    tenant_roles = _tenant_role_refs(stack, config)

    def judge_association(assoc: Any) -> list[tuple[str | None, str]]:
        """A tenant's pod identity in a namespace the stack does not create is in a namespace nobody guards
        (no default deny, quota or Pod Security label of this stack's): each stack creates the namespaces
        of the tenants it associates (review 18/19 P42)."""
        ns = peek(assoc.props, "namespace")
        tenant = tags_of(assoc.props).get(config.get("tenantTag", "meridian:tenant"))
        arn = peek(assoc.props, "roleArn")
        holds = {r.urn for r in stack.linked(assoc, "roleArn")} | ({arn} if isinstance(arn, str) else set())
        if not (isinstance(tenant, str) and tenant) and not holds & tenant_roles:
            return []
        if ns is UNKNOWN:
            raise unknown("namespace")
        if not isinstance(ns, str) or ns in created:
            return []
        if UNKNOWN in created:  # the namespace may be the one whose name is unknown: never silent
            return [
                (
                    assoc.urn,
                    Unverifiable(
                        f"unverifiable at preview: whether this stack creates namespace {ns}, where pod identity "
                        f"association {assoc.name} gives a tenant's role (a Namespace of the plan is named only after "
                        "apply); the rule judges it at `pulumi up`, when the name is known"
                    ),
                )
            ]
        return [
            (
                assoc.urn,
                f"Pod identity association {assoc.name} gives a tenant's role in namespace {ns}, which this stack does not "
                "create: the stack that associates a tenant's pods creates its namespace with the tenant label and its "
                "guards (default deny, quota, restricted Pod Security), or nothing guards it",
            )
        ]

    return (
        out
        + judge_each(stack.of(NAMESPACE), judge)
        + judge_each(stack.of(NETWORK_POLICY), judge_elsewhere)
        + judge_each(stack.of(POD_IDENTITY), judge_association)
    )


def _tenant_role_refs(stack: Stack, config: dict) -> set[str]:
    """The role (URN or ARN) tenants' pod identity associations hold: the tenant-tagged ones'."""
    tag = config.get("tenantTag", "meridian:tenant")
    refs: set[str] = set()
    for assoc in stack.of(POD_IDENTITY):
        if isinstance(tags_of(assoc.props).get(tag), str) and tags_of(assoc.props).get(tag):
            arn = peek(assoc.props, "roleArn")
            refs |= {r.urn for r in stack.linked(assoc, "roleArn")} | ({arn} if isinstance(arn, str) else set())
    return refs


tenant_namespace_guarded = stack_policy(
    "tenant-namespace-guarded",
    what="Checks that every namespace the plan makes a tenant's (its name starts with `tenantNamespacePrefix`, a pod identity association into it is tagged for a tenant or holds the role tenants' associations hold, or a key is tagged `meridian:namespace` with its name) carries the tenant label `meridian.io/tenant`, and that every tenant namespace (that label) has a default-deny NetworkPolicy for ingress and egress and a ResourceQuota in the same cluster, enforces the `restricted` Pod Security Standard (label `pod-security.kubernetes.io/enforce: restricted`, its `enforce-version` `latest`, absent or from `minPodSecurityVersion` on), and that no NetworkPolicy in it (nor one of the plan in a tenant namespace another stack creates: a cell's, listed in `cellTenantNamespaces` or named with the tenant prefix) admits every peer, every namespace, a namespace selector that does not name its namespaces by `kubernetes.io/metadata.name` (a shared label such as `meridian.io/plan` reaches other tenants), another tenant's namespace, 0.0.0.0/0 without excepting the private ranges, or ingress from an ipBlock covering "
    "(after its excepts) any address of the subnets the stack's EKS node groups run in (where the VPC CNI gives every tenant's pods their IPs); and that every pod identity association giving a tenant's role (tenant-tagged, or holding the role tenant-tagged associations hold) is in a namespace the same stack creates (a namespace it only names is guarded by no stack's default deny, quota or Pod Security label)",
    why="NetworkPolicies add up: one allow-all policy beside the default deny undoes it, and any pod in the cluster (another tenant's) can reach the tenant's pods; without a quota one tenant can starve the others of nodes.",
    reads=[NAMESPACE, NETWORK_POLICY, QUOTA, NODE_GROUP, SUBNET, POD_IDENTITY, *KMS_KEYS],
    check=check_tenant_namespaces,
    severity=HIGH,
    config={
        "tenantLabel": _TENANT_SCHEMA["tenantLabel"],
        "tenantTag": _TENANT_SCHEMA["tenantTag"],
        **NAMESPACE_SETTINGS,
        "namespaceTag": {
            "type": "string",
            "default": "meridian:namespace",
            "description": "tag naming the namespace whose sessions may use a tenant key (components.tenantidentity.TAG_NAMESPACE)",
        },
        "minPodSecurityVersion": {
            "type": "string",
            "default": "v1.25",
            "description": "the oldest `pod-security.kubernetes.io/enforce-version` a tenant namespace may pin (else `latest` "
            "or absent): v1.25, where Pod Security Admission became stable with every control of today's `restricted` "
            "profile for Linux pods (https://kubernetes.io/docs/concepts/security/pod-security-standards/ lists each control's "
            "version); raise it to pin newer baseline controls (AppArmor fields v1.30, host probes v1.34)",
        },
    },
    remediation="Create, in the namespace, a NetworkPolicy with `podSelector: {}` and `policyTypes: [Ingress, Egress]` and no rules, "
    "then explicit allows naming namespaces, pods or CIDRs (internet egress excepting 10/8, 172.16/12, 192.168/16); "
    "and a ResourceQuota sized by the tenant's plan (components.tenant); label the namespace `pod-security.kubernetes.io/enforce: restricted`.",
    limits="The Pod Security label is judged for its level and its `enforce-version` (`latest`, absent, or from `minPodSecurityVersion` on). That NetworkPolicies are enforced at all depends on the VPC CNI's `enableNetworkPolicy`, which eks-addon-reviewed requires on every `vpc-cni` add-on of the stack, and the add-on itself on every EKS cluster of the plan that runs tenants; a tenant namespace on a cluster no plan of the zone builds is not judged for it. "
    "Pod subnets are the IPv4 ranges of the node groups' subnets: pods on IPv6, on custom-networking (ENIConfig) subnets or on nodes "
    "outside the stack are not covered by the ipBlock check; egress ipBlocks to pod subnets are allowed (the peer's ingress decides). "
    "Another tenant's namespace is known by the `t-` prefix, the stack's tenant label or its cells' list (`cellTenantNamespaces`); a name selector naming a namespace outside the stack without that prefix, listed by no cell, is taken as a platform namespace. "
    "A tenant namespace another stack creates is judged here only for what this plan's NetworkPolicies in it open: its default deny, quota and labels are its own stack's.",
    tags=["tenancy", "kubernetes"],
)

POLICIES = [tenant_role_isolated, tenant_namespace_guarded]
