"""`tenant-data-access`: who can reach each tenant's data, decided by an IAM evaluator, and the
tenancy matrix `meridian policy --explain --tenant` prints.

A tenant's data (objects under its prefix in any bucket of no tenant, its silo bucket, its KMS keys,
its secrets) may be reached only by:
- the tenant's own workloads (sessions obtained by pods in its namespace);
- platform workloads through a session obtained by AssumeRole whose tags name that tenant (its
  namespace or id): the broker acting for one tenant, never for two, never with its own session;
- AWS services acting for the platform (replication, backup, monitoring, log delivery): roles only
  such a service assumes (access.sessions.PLATFORM_SERVICES), each bounded to what its service does
  (access.bounds: the actions AWS documents for its role, on resources of this stack; a statement
  outside is a violation with its path). A role of a service that runs code (EC2, Lambda,
  CodeBuild, ECS tasks) is a workload like any other and may not.
Anyone else (another tenant, a platform workload directly or by running code in pods, an IAM user, a
foreign account, anyone, principals of the account the stack does not define, whoever holds a role
the stack grants to without defining it, an AWS service acting for another account's resource) is
a violation that prints the path principal -> policy -> statement -> resource. The platform's
secrets (no tenant's tag) are reachable only by the platform and AWS services acting for it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from access.bounds import service_role_problems
from access.reach import Access, Deputy, Reach
from access.world import PLATFORM, World, build
from accesslogs import check_access_log_targets
from celllane import check_cell_lane
from cellroles import named_like
from keyowners import check_key_owners
from ruleutil import CRITICAL, Stack, Unverifiable, platform_stack_setting, stack_policy
from tenantns import SETTINGS as NAMESPACE_SETTINGS

_SCHEMA = {
    "tenantTag": {"type": "string", "default": "meridian:tenant", "description": "AWS tag naming a resource's tenant"},
    "tenantLabel": {
        "type": "string",
        "default": "meridian.io/tenant",
        "description": "Kubernetes label naming a namespace's tenant",
    },
    "tenantPrefix": {
        "type": "string",
        "default": "tenants/{tenant}/",
        "description": "the S3 key prefix of a tenant's data in a shared bucket; {tenant} is the tenant id, {namespace} its namespace",
    },
}
_SCHEMA.update(platform_stack_setting())
_SCHEMA["platformTenantRoles"] = {
    "type": "array",
    "items": {"type": "string"},
    "default": [],
    "description": "a cell stack's only: the logical names of its platform's tenant roles (generated): the only roles "
    "a cell's pod identity association may name that the cell does not define",
}
_SCHEMA["platformTenantRolePath"] = {
    "type": "string",
    "default": "",
    "description": "a cell stack's only: the IAM path of its platform's tenant roles (generated): an association's role "
    "on another path is not the platform's (empty: the path is not pinned, an advisory says so)",
}
_SCHEMA["platformNamespaces"] = {
    "type": "array",
    "items": {"type": "string"},
    "default": [],
    "description": "a cell stack's only: its platform's tenant namespaces (generated): no resource of the cell may be in one",
}
_SCHEMA["platformServiceNamespaces"] = {
    "type": "array",
    "items": {"type": "string"},
    "default": [],
    "description": "a cell stack's only: its platform's service namespace(s) (generated): a cell puts only its tenant "
    "file (`cellTenantFile`) there",
}
_SCHEMA["platformClusters"] = {
    "type": "array",
    "items": {"type": "string"},
    "default": [],
    "description": "a cell stack's only: the EKS clusters (names) of the tenant cluster pair its platform places it on "
    "(generated): the only clusters a cell's pod identity association may be on",
}
_SCHEMA["cellTenantFile"] = {
    "type": "string",
    "default": "",
    "description": "a cell stack's only: the name of its tenant file (generated, components.workload."
    "tenant_file_secret_name): the one object a cell may put in its platform's service namespace, a Secret of type Opaque",
}
_SCHEMA.update(NAMESPACE_SETTINGS)
_SCHEMA["podIdentityExternalRoles"] = {
    "type": "array",
    "items": {"type": "string"},
    "default": [],
    "description": "ARNs of roles outside the stack (in this or another account) that a pod identity association may name "
    "as `roleArn` or `targetRoleArn` once reviewed: their permissions are not judged",
}
_SHOWN = 3
# Who administers the platform from outside the plan: principals of the stack's account the plan does
# not define (through a key policy that lets the account's IAM decide, or their own identity
# policies), and cluster operators the stack's EKS access entries or bindings name (by running code in pods). The design
# allows them; the matrix lists what they reach, so that its count is not read as complete without them.
PLATFORM_ADMINISTRATION = {
    "account": "allowed: platform administration (the account's IAM, outside the plan)",
    "operator": "allowed: platform administration (a cluster operator outside the plan, by running code in pods)",
}
ASSUMED = "assumed: policy document not shipped"


def verdict(a: Access, world: World) -> str | None:
    """None when this access is one the design allows; else why it is not."""
    origin, tenant = a.session.origin, a.resource.tenant
    if origin.kind in PLATFORM_ADMINISTRATION:  # listed by the matrix only, never sessions of the rule
        return None
    if tenant == PLATFORM:  # a platform secret: the platform and AWS services for it, never a tenant or an outsider
        if origin.kind in ("platform", "service"):
            return None
        return f"tenant {origin.tenant}'s workloads reach it" if origin.kind == "tenant" else f"{origin.who} reaches it"
    if origin.kind == "tenant":
        return None if origin.tenant == tenant else f"tenant {origin.tenant}'s workloads reach it"
    if origin.kind == "service":
        return None
    if origin.kind == "platform":
        if a.session.chained and _names(a.session.tags, tenant, world):
            return None
        if a.session.chained:
            return "a platform workload reaches it through a session whose tags do not name this tenant"
        return "a platform workload reaches it without a session for this tenant"
    return f"{origin.who} reaches it"


def _names(tags: dict[str, str], tenant: str, world: World) -> bool:
    spellings = {tenant} | {ns for ns, t in world.namespaces.items() if t == tenant}
    return any(v in spellings for v in tags.values())


def _path(a: Access, why: tuple[str, ...]) -> str:
    steps = [*a.session.path]
    if a.escalated:
        steps.append(f"{a.escalated}: holds every permission")
    steps.append(why[0] if why else "(allowed)")
    return " -> ".join(steps) + f" -> {a.resource.label}"


def findings(
    resources: list[Any], config: dict, tenant: str | None = None
) -> tuple[World, Reach, list[Access], list[tuple[str | None, str]]]:
    world = build(resources, config)
    reach = Reach(world, tenant)
    accesses = reach.accesses()
    out: list[tuple[str | None, str]] = []
    groups: dict[tuple, list[tuple[Access, str]]] = defaultdict(list)
    for a in accesses:
        problem = verdict(a, world)
        if problem:
            groups[(a.resource.tenant, a.session.origin, a.session.principal.arn)].append((a, problem))
    for (tenant_, _origin, _arn), items in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1].who, kv[0][2])):
        first, problem = items[0]
        why, urn = reach.why(first)
        urn = urn or first.resource.urn
        tenant = tenant_
        labels = sorted({a.resource.label for a, _ in items})
        actions = sorted({x for a, _ in items for x in a.actions})
        more = f" and {len(labels) - _SHOWN} more" if len(labels) > _SHOWN else ""
        out.append(
            (
                urn,
                f"{_must(tenant)}: {problem} ({', '.join(actions)} on {', '.join(labels[:_SHOWN])}{more}). Path: {_path(first, why)}",
            )
        )
    out += _deputies(reach.deputies())
    out += world.problems
    out += service_role_problems(world)
    # a cell's grant to its platform's tenant role is the lane's violation (cellroles.py), not an unplaced role
    platform_roles = [str(n) for n in config.get("platformTenantRoles") or []] if config.get("platformStack") else []
    out += _unplaced(world, {k[2] for k in groups} | {a for a in world.principals if named_like(a, platform_roles)})
    out += _shared_roles(reach)
    out += [
        (urn, Unverifiable(f"unverifiable at preview: {what}; the rule judges it when the value is known"))
        for urn, what in world.unknowns
    ]
    return world, reach, accesses, out


def _must(tenant: str) -> str:
    if tenant == PLATFORM:
        return "The platform's secrets must be reachable only by the platform and AWS services acting for it"
    return f"Tenant {tenant}'s data must be reachable only by tenant {tenant}'s principals and the platform acting for it"


def _deputies(deputies: list[Deputy]) -> list[tuple[str | None, str]]:
    """A service principal granted tenant data for any account: one finding per service and tenant."""
    groups: dict[tuple[str, str], list[Deputy]] = defaultdict(list)
    for d in deputies:
        groups[(d.resource.tenant, d.service)].append(d)
    out = []
    for (tenant, service), items in sorted(groups.items()):
        first = items[0]
        labels = sorted({d.resource.label for d in items})
        actions = sorted({a for d in items for a in d.actions})
        more = f" and {len(labels) - _SHOWN} more" if len(labels) > _SHOWN else ""
        who = f"AWS service {service} acting for another account"
        path = " -> ".join([who, *(first.why[:1] or ["(allowed)"]), first.resource.label])
        out.append(
            (
                first.urn or first.resource.urn,
                f"{_must(tenant)}: {who} reaches it, since nothing pins the grant to this account's own resources "
                f"(add `aws:SourceAccount` and `aws:SourceArn` conditions: a confused deputy otherwise) "
                f"({', '.join(actions)} on {', '.join(labels[:_SHOWN])}{more}). Path: {path}",
            )
        )
    return out


def _unplaced(world: World, reported: set[str]) -> list[tuple[str | None, str]]:
    """A role the stack grants to but does not define, whose grant reaches no tenant data: what its
    holders do with the rest cannot be judged (an advisory; reaching tenant data is a violation above)."""
    return [
        (
            p.unplaced,
            Unverifiable(
                f"unverifiable: {p.label} is not in the plan, so who holds what this stack grants it is unknown; "
                "the grant reaches no tenant data or platform secret (define the role in the stack, or grant to one it defines)"
            ),
        )
        for arn, p in sorted(world.principals.items())
        if p.unplaced and arn not in reported
    ]


def _shared_roles(reach: Reach) -> list[tuple[str | None, str]]:
    """A role a tenant's pods get directly must not also be held directly by anyone but tenants:
    the tenant would act as the platform (or as whoever else holds it)."""
    holders: dict[str, list] = defaultdict(list)
    for s in reach.initial():
        if s.workload is not None and not s.chained:
            holders[s.principal.arn].append(s)
    out = []
    for sessions in holders.values():
        others = sorted({s.origin.who for s in sessions if s.origin.kind != "tenant"})
        if not others:
            continue
        for s in sessions:
            if s.origin.kind == "tenant":
                out.append(
                    (
                        s.principal.urn,
                        f"Tenant {s.origin.tenant}'s pods must not get {s.principal.label}, which {', '.join(others)} also hold: "
                        f"the tenant would act with the platform's permissions. Path: {' -> '.join(s.path)}",
                    )
                )
    return out


def check_tenant_data_access(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    world, _, _, out = findings(resources, config)
    stack = Stack(resources)
    keys: dict[str, set[str]] = defaultdict(set)
    for r in world.resources:
        if r.kind == "key" and r.tenant != PLATFORM:
            keys[r.arn].add(r.tenant)
    tag = str(config.get("tenantTag", "meridian:tenant"))
    platform_namespaces = [str(n) for n in config.get("platformNamespaces") or []]
    data_buckets: dict[str, set[str]] = defaultdict(set)
    for r in world.resources:
        if r.kind == "object":
            data_buckets[r.urn].add(r.tenant)
    whose = {urn: f"tenant {min(ts)}'s" if len(ts) == 1 else "every tenant's" for urn, ts in data_buckets.items()}
    return (
        out
        + check_cell_lane(stack, config)
        + check_key_owners(stack, keys, tag, world.namespaces, platform_namespaces)
        + check_access_log_targets(stack, whose)
    )


def tenant_matrix(world: World, reach: Reach, accesses: list[Access], tenant: str) -> list[dict[str, Any]]:
    """Who reaches `tenant`'s data, with which actions, and why: one row per principal, resource and
    path, and per basis: what the documents the stack and the pack hold prove, apart from what is only
    assumed of a managed policy whose text the pack does not ship (`assumed` names them)."""
    rows: dict[tuple, dict[str, Any]] = {}

    def add(a: Access, why: tuple[str, ...], path: str, assumed: tuple[str, ...]) -> None:
        problem = verdict(a, world)
        key = (a.resource.label, a.session.origin.who, path, bool(assumed))
        row = rows.setdefault(
            key,
            {
                "resource": a.resource.label,
                "who": a.session.origin.who,
                "origin": a.session.origin.kind,
                "principal": a.session.principal.label,
                "session_tags": dict(sorted(a.session.tags.items())),
                "actions": [],
                "allowed_by": list(why),
                "path": path,
                "assumed": list(assumed),
                "verdict": f"violation: {problem}" if problem else _allowed_as(a),
            },
        )
        row["actions"] = sorted(set(row["actions"]) | set(a.actions))

    for a in accesses:
        if a.resource.tenant != tenant:
            continue
        proven, rest, assumed = reach.split(a)
        if proven is not None:
            why, _ = reach.why(proven, known_only=True)
            add(proven, why, _path(proven, why), ())
        if rest is not None:
            why, _ = reach.why(rest)
            add(rest, why, _path(rest, why), assumed)
    for a, why in reach.account_principals():
        add(a, why, " -> ".join([*a.session.path, why[0], a.resource.label]), ())
    for d in reach.deputies():
        if d.resource.tenant != tenant:
            continue
        who = f"AWS service {d.service} acting for another account"
        path = " -> ".join([who, *(d.why[:1] or ["(allowed)"]), d.resource.label])
        rows[(d.resource.label, who, path, False)] = {
            "resource": d.resource.label,
            "who": who,
            "origin": "outsider",
            "principal": f"service principal {d.service}",
            "session_tags": {},
            "actions": sorted(d.actions),
            "allowed_by": list(d.why),
            "path": path,
            "assumed": [],
            "verdict": f"violation: {who} reaches it (no aws:SourceAccount / aws:SourceArn pins it to this account)",
        }
    return sorted(rows.values(), key=lambda r: (not r["verdict"].startswith("violation"), r["resource"], r["who"], r["path"]))


def _allowed_as(a: Access) -> str:
    return {
        "tenant": "allowed: the tenant's own workloads",
        "platform": "allowed: the platform, through a session for this tenant",
        "service": "allowed: an AWS service acting for the platform",
        **PLATFORM_ADMINISTRATION,
    }[a.session.origin.kind]


# What the matrix counts, by the origin of each row; and what no row can show.
CLASSES = (
    (
        "the plan's principals (tenant and platform workloads, AWS services, code run by them)",
        ("tenant", "platform", "service", "compute"),
    ),
    (
        "principals the plan names but does not hold (foreign accounts, anyone, IAM users, roles it does not define, "
        "AWS services acting for another account)",
        ("outsider",),
    ),
    (
        "principals of the stack's account outside the plan (through a key policy naming the account's root, or their own "
        "IAM policies)",
        ("account",),
    ),
    (
        "cluster operators outside the plan (EKS access entries, a cluster's creator, Kubernetes bindings: by running code in pods)",
        ("operator",),
    ),
)
NOT_COUNTED = (
    "what SCPs and RCPs deny (not in the plan: a row may be closed by them)",
    "S3 access points and Object Lambda",
    "node instance roles reached through the instance metadata service",
    "Kubernetes bindings and aws-auth entries the plan does not hold",
)


def coverage(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """How many rows each class of principal has (every class is listed, with none as 0)."""
    return [{"class": what, "ways": sum(r["origin"] in kinds for r in rows)} for what, kinds in CLASSES]


def tenants_of(world: World) -> list[str]:
    return sorted((set(world.namespaces.values()) | {r.tenant for r in world.resources}) - {PLATFORM})


tenant_data_access = stack_policy(
    "tenant-data-access",
    what="Checks that every tenant's data (objects under "
    "its prefix in shared buckets, its silo buckets, its KMS keys, its secrets) is reachable only by that tenant's own workloads, by "
    "platform workloads through an AssumeRole session whose tags name that tenant, and by AWS services acting for the platform; "
    "and that the platform's secrets (those no tenant's tag names, such as the database credential) are reachable by no tenant "
    "and no outsider. "
    "Principals are every role, user and group of the stack with their inline, attached, customer- and AWS-managed policies, "
    "permission boundaries and trust policies; foreign accounts named anywhere; anyone; and principals of the account the stack "
    "does not define; a role that a RolePolicy or an attachment names but the stack does not define is a principal of its own, "
    "held by someone unknown, with what the stack grants it (a violation if that reaches tenant data, else an advisory). "
    "Sessions come from Pod Identity associations (EKS session tags, session policy, targetRoleArn; an EKS add-on's "
    "`podIdentityAssociations` as associations of its kube-system service accounts), IRSA trusts "
    "(every service account their `:sub` admits), AssumeRole chains (with the request tags trusts admit and the transitive tags "
    "STS keeps), EKS access policies and Kubernetes RBAC that let a principal create pods in a namespace or exec or attach into them "
    "(or impersonate, create a service account's token, `escalate` or `bind` roles; a ClusterRole's `aggregationRule` counts the "
    "rules of every ClusterRole it selects, the built-in `admin`/`edit` aggregations included; a bound service account that runs "
    "no workload of the plan, such as kube-system's `default`, obtains what the pods it may create obtain), and a principal's "
    "ability to rewrite its own permissions; an association whose `roleArn` or `targetRoleArn` names a role the stack does not "
    "define (another account's, or this account's outside the plan) is a violation unless the role is listed in "
    "`podIdentityExternalRoles`. Resources carry their bucket policies and ACLs (canned and granted; a canonical user ID, in "
    "`CanonicalUser` or written as `AWS`, and an e-mail grantee are placed in an account of their own, never this one; "
    "AllUsers and AuthenticatedUsers are anyone), key policies and grants, and secret policies; keys and buckets "
    "are matched by ARN read from the plan (a grant or key policy naming its key by bare key ID or alias is that key of "
    "its own region and account, resolved through the plan's keys and aliases; an ID no placed key has, while some key "
    "of the plan has no ARN at preview, is an advisory). A KMS alias whose name holds a tenant's namespace as a whole "
    "segment (`alias/meridian/<stack>-<region>-t-<id>...`; the longest when one namespace begins another) targets that "
    "tenant's own key, never another tenant's, a platform key or a key outside the plan; in a cell, an alias named for "
    "a platform tenant (`platformNamespaces`) may target no key of the cell, and one on a key outside the cell is an "
    "advisory. A bucket holding tenant data (the pool, a silo) sends its server access logs (BucketLogging, "
    "BucketLoggingV2, inline `logging`) only to a bucket of the stack in its own region that holds no tenant data (each "
    "record names a tenant's object key and requester); a target unknown at preview is an advisory. Each AWS service principal a tenant resource's policy names is asked for a request "
    "made for another account's resource (its `aws:SourceAccount`, `aws:SourceArn`, `aws:SourceOwner` and `aws:SourceOrgID` that "
    "account's, including each foreign account the policy names as a source) and for one with no source at all: if either is "
    "allowed, the service is a confused deputy and the grant a violation (CloudWatch Logs is asked with the encryption context "
    "`aws:logs:arn` it sets itself, a log group of that account). A role that only an AWS service acting for the platform "
    "assumes (replication, batch operations, backup, RDS monitoring, flow logs, log delivery, budgets, FIS, the EKS cluster) "
    "must hold (and be granted by a key, bucket or secret policy, as must that service's service-linked role of the account, which "
    "the pack takes as the service acting for the platform) only the actions AWS documents for that service's role, minus those that run code (FIS's SSM commands, "
    "Batch Operations' Lambda invocation), each on resources of this stack (a bucket the plan defines, or a name pattern "
    "beginning with at least 12 characters of one; an ARN of the stack's account in one of its regions; `*` only for the "
    "few documented actions without resource-level permissions), and no AWS-managed policy but those AWS documents for "
    "that role: any other statement is a violation printing service -> role -> policy -> statement -> resource. A role a "
    "tenant's pods get must not also be held by platform workloads. Pods are a tenant's in a namespace the plan labels a "
    "tenant's, and in one it names without creating that a cell creates for its tenant (`cellTenantNamespaces`, set by "
    "hand for names without the prefix) or that carries the tenant prefix (`tenantNamespacePrefix`: its tenant is the rest of the "
    "name): never the platform's by absence. A cell stack, judged alone, names of its platform's "
    "roles only the tenant role (`platformTenantRoles`): an association's role ARN must have the partition of the cell's "
    "regions, the account its AWS providers pin (`allowedAccountIds`: a pod identity role is in the cluster's account), "
    "the path `platformTenantRolePath` and the name `<platformTenantRoles entry>-<7 hex>` (the platform's role is "
    "auto-named), and the same suffix as the cell's other associations of that role; one matching all of these is an "
    "advisory naming what the cell cannot pin, the auto-name suffix the platform's `pulumi up` chose; no RolePolicy or "
    "policy attachment of a cell names a role called like its platform's tenant role (every tenant of the zone holds it); "
    "it associates pods only on its tenant cluster pair's clusters (`platformClusters`), puts nothing in its platform's "
    "tenant namespaces (`platformNamespaces`) and in the service's (`platformServiceNamespaces`) only its own tenant file: "
    "a Secret named exactly `cellTenantFile`, of type Opaque, without a `kubernetes.io/service-account.*` or "
    "`pulumi.com/patchForce` annotation (all generated from the stack files), and sets nothing on a bucket it does not "
    "define, nor a KMS grant or key policy on a key it does not define (policies/celllane.py). No resource but the "
    "tenant's own names a tenant's KMS key in any input, by ARN, key id, alias name or ARN, or by a link where the "
    "value is unknown at preview (platform data, EKS envelope encryption, node volumes, Performance Insights, images "
    "under a tenant's key: policies/keyowners.py; keys, aliases, key policies, grants, IAM documents and Kubernetes "
    "objects are judged by their own rules). Access is "
    "decided by principalmapper's local policy simulation (AWS's evaluation logic: explicit deny, identity x boundary x session "
    "policy, resource policies, cross-account, KMS key policies, policy variables and condition operators). Chosen over "
    "policyuniverse (ARN and wildcard matching only) and parliament (lint only): of the candidates only principalmapper "
    "evaluates a whole request; pinned at 1.1.5 behind a version check, its Python 3.10 import fixed, and condition variables "
    "bound by the pack (it binds them in ARNs only); its condition operators held to AWS's documented result for a key the "
    "request lacks (true for a negated operator, `StringNotLike` included) and for every `...IfExists` form (it decided "
    "`StringNotLike` on an absent key as false and the Numeric, Date and IpAddress `IfExists` forms as other operators: "
    "tests/test_policy_review20.py holds each operator); a principal it does not take (a federated user's session, "
    "`arn:aws:sts::<acct>:federated-user/<name>`) evaluated under its own ARN.",
    why="Tenants share buckets, clusters and accounts; isolation holds only if every way in is closed, in both directions: what a "
    "tenant's principals reach, and who else reaches a tenant's data. A finding prints the path principal -> policy -> statement -> "
    "resource; `meridian policy --explain --tenant <id>` prints the whole matrix for one tenant.",
    check=check_tenant_data_access,
    severity=CRITICAL,
    config=_SCHEMA,
    remediation="Follow the printed path and close the link that should not be there: scope the statement to the tenant's own "
    "prefix, key ARN or session tag, remove a foreign account or `*` from a resource policy (or constrain it with "
    "`aws:PrincipalOrgID`), pin a service principal with `aws:SourceAccount` and `aws:SourceArn`, grant nothing through ACLs "
    "(BucketOwnerEnforced), keep a platform role out of tenant namespaces and pod identity on roles the stack defines, grant "
    "only to roles the stack defines, and give Kubernetes rights to create pods only to the platform's operators.",
    limits="Conditions on keys the caller chooses in a request (`aws:SourceIp`, `kms:ViaService`, encryption context, "
    "`aws:SecureTransport`, `sts:ExternalId`, ...) are taken as satisfiable, and a Deny that depends on one as avoidable: the rule "
    "over-approximates access and never credits them. The stack's own principals are taken to be in the organization; every "
    "other account is not. Principals of the account outside the stack are assumed to hold `sts:AssumeRole` on `*` and nothing "
    "else; cluster operators named only by EKS access entries to principals outside the stack are the platform's operators and "
    "are not judged. Both are platform administration: `--explain` lists what they reach (the account's principals with any "
    "identity permissions, through a key policy naming the account's root or with no resource policy denying them; the operators "
    "by running code in pods), never as a violation. S3 access points, Object Lambda, SCPs and RCPs are not modelled. A role only an AWS service that runs no "
    "code assumes acts for the platform: its trust is not asked for `aws:SourceAccount` (handing a role to a service takes "
    "`iam:PassRole` in the role's own account); within its service's bound it is trusted for any tenant, and the bound "
    "is the actions AWS documents, not what a runtime job (a batch operation's manifest, an experiment) does with them; "
    "an ARN of the stack's own account in its regions counts as the stack's, and a bucket name pattern is not told apart "
    "from another account's bucket with the same prefix; statement conditions are not credited in the bound; documented "
    "AWS-managed policies pass as AWS publishes them. A service's pin through an encryption context "
    "(`kms:EncryptionContext:...`) is not credited, as for any caller, except CloudWatch Logs' `aws:logs:arn`, which "
    "the service sets to the log group it acts for. Bucket ACLs never grant reading objects the owner wrote (object ACLs, not in the plan); "
    "`BucketOwnerEnforced`, which turns ACLs off, is not credited; the only canonical user ID taken as this account is the "
    "owner an ACL names itself. Roles listed in `podIdentityExternalRoles` are trusted, not judged; for a role the stack grants "
    "to but does not define, only what this stack grants it is known. Node instance roles reached through the instance metadata "
    "service are not modelled. A managed policy whose text neither the stack nor the pack holds is evaluated as granting every "
    'action, and the path says so ("unknown AWS-managed policy <arn> treated as every action"); a policy of the stack named by '
    "ARN is found by its given name or auto-name under its path, and an ARN that could be a policy of the stack whose path or "
    "name is unknown at preview gives an advisory (its document is judged once the ARN is known), and so does a pod identity "
    "association in a namespace whose tenant label (or a tenant namespace's name) is unknown; the pack ships the documents "
    "of every AWS-managed policy the program attaches (policies/access/aws_managed.json, each with its source and version id), "
    "and `--explain` prints a row that rests on one it does not ship as assumed, not as proven reach. principalmapper's matching is "
    "case-insensitive for ARNs (AWS is not for S3 keys): that can only add access.",
    tags=["tenancy", "iam"],
)

POLICIES = [tenant_data_access]
