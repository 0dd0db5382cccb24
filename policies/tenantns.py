"""Whose a namespace is when the plan names it but does not create it.

A stack's plan holds its own Namespaces only: a platform's plan never holds its cells' tenant
namespaces (each cell stack creates its own in the platform's clusters), yet a platform resource may
name one (an association, a binding's subject, a Secret's or a NetworkPolicy's `metadata.namespace`).
Such a namespace is a tenant's unless the plan shows otherwise (a Namespace of the plan without the
tenant label): one the platform's pack config lists among its cells' tenants
(`cellTenantNamespaces`, namespace -> tenant, set by hand for a name without the prefix), and by default any name
with the tenant namespace prefix (`t-`: components.naming.NAMESPACE_PREFIX), whose tenant is the
rest of the name. Never a platform namespace by absence.
"""

from __future__ import annotations

from typing import Any

from ruleutil import NAMESPACE, Stack, as_list, known, peek

CELL_TENANT_NAMESPACES = "cellTenantNamespaces"
NAMESPACE_PREFIX = "tenantNamespacePrefix"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
BINDINGS = ("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding")
SA_GROUP = "system:serviceaccounts:"  # every service account of one namespace

SETTINGS: dict[str, dict[str, Any]] = {
    CELL_TENANT_NAMESPACES: {
        "type": "object",
        "additionalProperties": {"type": "string"},
        "default": {},
        "description": "a platform stack's only, set by hand: tenant namespaces of its cells whose names lack the tenant "
        "prefix, namespace -> tenant id (the program names every tenant namespace with the prefix, so nothing generates "
        "it: a cell's onboarding never makes the platform's config stale)",
    },
    NAMESPACE_PREFIX: {
        "type": "string",
        "default": "t-",
        "description": "every tenant namespace's name starts with it (components.naming.NAMESPACE_PREFIX): a namespace "
        "with it that the plan names but does not create is a tenant's (the rest of the name is its tenant)",
    },
}


def undefined_tenant(name: Any, config: dict) -> str | None:
    """The tenant of namespace `name`, which the plan names but does not create: a cell's tenant, or
    the tenant its prefixed name spells; None for any other name (kube-system, a controller's)."""
    if not isinstance(name, str) or not name:
        return None
    cells = config.get(CELL_TENANT_NAMESPACES) or {}
    if isinstance(cells, dict) and isinstance(cells.get(name), str):
        return str(cells[name])
    prefix = str(config.get(NAMESPACE_PREFIX, "t-") or "")
    if prefix and name.startswith(prefix) and len(name) > len(prefix):
        return name[len(prefix) :]
    return None


def named_namespaces(stack: Stack) -> set[str]:
    """Every namespace a resource of the plan names: a Kubernetes object's `metadata.namespace`, a pod
    identity association's `namespace`, a binding's service account subjects (and their group)."""
    out: set[Any] = set()
    for r in stack.resources:
        if r.resource_type == POD_IDENTITY:
            out.add(peek(r.props, "namespace"))
        elif r.resource_type.startswith("kubernetes:") and r.resource_type != NAMESPACE:
            out.add(peek(r.props, "metadata", "namespace"))
    for b in stack.of(*BINDINGS):
        for s in as_list(known(peek(b.props, "subjects", default=[]))):
            name = s.get("name") if isinstance(s, dict) else None
            if isinstance(s, dict) and s.get("kind") == "ServiceAccount":
                out.add(s.get("namespace"))
            elif isinstance(name, str) and name.startswith(SA_GROUP):
                out.add(name[len(SA_GROUP) :])
    return {n for n in out if isinstance(n, str) and n}
