"""Tenant isolation: a tenant's role reaches only its own data, key and namespace; every tenant
namespace is fenced by a default-deny NetworkPolicy and bounded by a ResourceQuota.

Tenants are recognised by the tag `meridian:tenant` (AWS) and the label `meridian.io/tenant`
(Kubernetes), both configurable.
"""

from __future__ import annotations

import re
from typing import Any

from ruleutil import (
    CRITICAL, HIGH, Stack, UnknownValueError, as_list, dig, grants_service, labels_of, plain, stack_policy, statements,
    tags_of,
)

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
MANAGED_POLICY = "aws:iam/policy:Policy"
KMS_KEY = "aws:kms/key:Key"
S3_BUCKET = "aws:s3/bucket:Bucket"
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
QUOTA = "kubernetes:core/v1:ResourceQuota"
SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"

_TENANT_SCHEMA = {
    "tenantTag": {"type": "string", "default": "meridian:tenant", "description": "AWS tag naming a resource's tenant"},
    "tenantLabel": {"type": "string", "default": "meridian.io/tenant", "description": "Kubernetes label naming a namespace's tenant"},
    "tenantPrefix": {"type": "string", "default": "tenants/{tenant}/", "description": "the S3 key prefix of a tenant's data; {tenant} is the tenant id"},
}
_SUB = re.compile(r"^system:serviceaccount:([^:]*):(.*)$")


def _role_policies(stack: Stack) -> dict[str, list[tuple[Any, str, Any]]]:
    """Role URN -> [(resource holding the document, label, document props key)]."""
    out: dict[str, list[tuple[Any, str, Any]]] = {}
    for rp in stack.of(ROLE_POLICY):
        roles = stack.linked(rp, "role", ROLE) or ([rp.parent] if rp.parent is not None and rp.parent.resource_type == ROLE else [])
        for role in roles:
            out.setdefault(role.urn, []).append((rp, "inline policy", "policy"))
    for att in stack.of(ATTACHMENT):
        for role in stack.linked(att, "role", ROLE):
            for policy in stack.linked(att, "policyArn", MANAGED_POLICY):
                out.setdefault(role.urn, []).append((policy, "attached policy", "policy"))
    return out


def _tenant_namespaces(stack: Stack, label: str) -> dict[str, set[str]]:
    """Namespace name -> tenants whose namespace has that name (in any cluster)."""
    out: dict[str, set[str]] = {}
    for ns in stack.of(NAMESPACE):
        tenant = labels_of(ns.props).get(label)
        name = dig(ns.props, "metadata", "name")
        if tenant and isinstance(name, str):
            out.setdefault(name, set()).add(tenant)
    return out


def _s3_problems(tenant: str, prefix: str, st: dict[str, Any], resource: str, own_buckets: bool) -> list[str]:
    bucket, _, key = resource.removeprefix("arn:aws:s3:::").partition("/")
    if "*" in bucket or "?" in bucket:
        return [f"reaches every bucket matching {resource}"]
    if key:
        literal = re.split(r"[*?$]", key, maxsplit=1)[0]
        if not literal.startswith(prefix):
            return [f"reaches objects outside {prefix} ({resource})"]
        return []
    # The bucket itself (listing): only the tenant's prefix, unless the bucket is the tenant's own silo.
    if own_buckets:
        return []
    prefixes = [str(p) for op in st["condition"].values() if isinstance(op, dict) for p in as_list(op.get("s3:prefix"))]
    if not prefixes or any(not re.split(r"[*?$]", p, maxsplit=1)[0].startswith(prefix) for p in prefixes):
        return [f"lists {resource} beyond {prefix} (add a `s3:prefix` condition limited to it)"]
    return []


def check_tenant_roles(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    tag, label = config.get("tenantTag", "meridian:tenant"), config.get("tenantLabel", "meridian.io/tenant")
    policies = _role_policies(stack)
    namespaces = _tenant_namespaces(stack, label)
    out: list[tuple[str | None, str]] = []

    for role in stack.of(ROLE):
        tenant = tags_of(role.props).get(tag)
        if not tenant:
            continue
        prefix = str(config.get("tenantPrefix", "tenants/{tenant}/")).replace("{tenant}", tenant)
        for holder, label_, key in policies.get(role.urn, []):
            where = f"Tenant {tenant} role's {label_} {holder.name}"
            # What the document was built from: other tenants' keys and buckets are off limits.
            linked = stack.linked(holder, key)
            for dep in linked:
                owner = tags_of(dep.props).get(tag)
                if dep.resource_type == KMS_KEY and owner != tenant:
                    out.append((holder.urn, f"{where} must not reach KMS key {dep.name} ({'tenant ' + owner if owner else 'a platform key'}): only the tenant's own key"))
                elif dep.resource_type == S3_BUCKET and owner and owner != tenant:
                    out.append((holder.urn, f"{where} must not reach tenant {owner}'s bucket {dep.name}"))
            own_buckets = bool(linked) and all(tags_of(b.props).get(tag) == tenant for b in linked if b.resource_type == S3_BUCKET) \
                and any(b.resource_type == S3_BUCKET for b in linked)
            try:
                sts = statements(dig(holder.props, key))
            except UnknownValueError:
                continue  # a document only known after apply: its links were checked above; the text is checked at update
            for st in sts:
                if st["effect"] != "allow":
                    continue
                if st["not_resources"]:
                    out.append((holder.urn, f"{where} must not use NotResource: it reaches everything not listed"))
                    continue
                for res in st["resources"]:
                    problems = []
                    if res == "*" or res == "arn:aws:s3:::*":
                        problems += [f"reaches every {svc} resource (Resource \"*\")" for svc in ("s3", "kms") if grants_service(st, svc)]
                    elif res.startswith("arn:aws:s3:::"):
                        problems += _s3_problems(tenant, prefix, st, res, own_buckets)
                    elif res.startswith("arn:aws:kms:") and ("*" in res or "?" in res):
                        problems.append(f"reaches every KMS key matching {res}")
                    out += [(holder.urn, f"{where} must not widen access: it {p}") for p in problems]

        # Who may assume the role: only service accounts in the tenant's own namespace.
        try:
            trust = statements(dig(role.props, "assumeRolePolicy"))
        except UnknownValueError:
            trust = []
        for st in trust:
            for op in st["condition"].values():
                if not isinstance(op, dict):
                    continue
                for k, v in op.items():
                    if not str(k).endswith(":sub"):
                        continue
                    for subject in as_list(v):
                        m = _SUB.match(str(subject))
                        ns = m.group(1) if m else str(subject)
                        if "*" in ns or "?" in ns or namespaces.get(ns) != {tenant}:
                            out.append((role.urn, f"Tenant {tenant} role must be assumable only from tenant {tenant}'s namespace, not {subject}"))
        # Service accounts annotated with the role must live in the tenant's namespace.
        for sa in stack.referring(role, "metadata", SERVICE_ACCOUNT):
            ns = dig(sa.props, "metadata", "namespace")
            if namespaces.get(ns) != {tenant}:
                out.append((sa.urn, f"Service account in namespace {ns} must not use tenant {tenant}'s role"))
    return out


tenant_role_isolated = stack_policy(
    "tenant-role-isolated",
    what="Checks that each tenant's IAM role reaches only its own S3 prefix, its own KMS key and is assumable only from its own namespace (no wildcard reaches another tenant)",
    why="Tenants share buckets, clusters and accounts; the role's policy is the only wall between one tenant's pods and another tenant's data.",
    check=check_tenant_roles,
    severity=CRITICAL,
    config=_TENANT_SCHEMA,
    remediation="Scope object actions to `arn:aws:s3:::<bucket>/tenants/<id>/*`, `s3:ListBucket` to an `s3:prefix` condition "
                "of `tenants/<id>/*`, KMS actions to the tenant's key ARN, and the trust policy's `:sub` to "
                "`system:serviceaccount:t-<id>:<id>-app` (components.tenant).",
    tags=["tenancy", "iam"],
)


def _default_deny(policy: Any) -> bool:
    spec = dig(policy.props, "spec", default={})
    selector = plain(dig(spec, "podSelector", default={})) or {}
    selects_all = not selector.get("matchLabels") and not selector.get("matchExpressions")
    types = {str(t) for t in as_list(dig(spec, "policyTypes"))}
    return selects_all and {"Ingress", "Egress"} <= types and not as_list(dig(spec, "ingress")) and not as_list(dig(spec, "egress"))


def _cluster_of(resource: Any) -> str:
    return resource.provider.urn if resource.provider is not None else ""


def check_tenant_namespaces(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    label = config.get("tenantLabel", "meridian.io/tenant")
    denies: set[tuple[str, str]] = set()
    quotas: set[tuple[str, str]] = set()

    def keys(obj: Any) -> list[tuple[str, str]]:
        ns = dig(obj.props, "metadata", "namespace")
        found = [(_cluster_of(obj), ns)] if isinstance(ns, str) else []
        found += [(_cluster_of(n), n.urn) for n in stack.linked(obj, "metadata", NAMESPACE)]
        return found

    for policy in stack.of(NETWORK_POLICY):
        if _default_deny(policy):
            denies.update(keys(policy))
    for quota in stack.of(QUOTA):
        if plain(dig(quota.props, "spec", "hard", default={})):
            quotas.update(keys(quota))
    out = []
    for ns in stack.of(NAMESPACE):
        tenant = labels_of(ns.props).get(label)
        if not tenant:
            continue
        mine = {(_cluster_of(ns), dig(ns.props, "metadata", "name")), (_cluster_of(ns), ns.urn)}
        if not mine & denies:
            out.append((ns.urn, f"Tenant {tenant} namespace must have a default-deny NetworkPolicy (empty podSelector, policyTypes Ingress and Egress, no rules)"))
        if not mine & quotas:
            out.append((ns.urn, f"Tenant {tenant} namespace must have a ResourceQuota with `spec.hard` limits"))
    return out


tenant_namespace_guarded = stack_policy(
    "tenant-namespace-guarded",
    what="Checks that every tenant namespace (label `meridian.io/tenant`) has a default-deny NetworkPolicy for ingress and egress and a ResourceQuota, in the same cluster",
    why="Without a default deny, any pod in the cluster can reach the tenant's pods (and they can reach anything); without a quota, one tenant can starve the others of nodes.",
    check=check_tenant_namespaces,
    severity=HIGH,
    config={"tenantLabel": _TENANT_SCHEMA["tenantLabel"]},
    remediation="Create, in the namespace, a NetworkPolicy with `podSelector: {}` and `policyTypes: [Ingress, Egress]` and no rules, "
                "then the explicit allows; and a ResourceQuota sized by the tenant's plan (components.tenant).",
    tags=["tenancy", "kubernetes"],
)

POLICIES = [tenant_role_isolated, tenant_namespace_guarded]
