"""A cell stack judged alone stays in its lane: its tenants get only the platform's tenant role (with
the session tags on that the role tells tenants apart by, as tenant-role-isolated holds the platform's
own associations: one check, sharedrole.association_session_problems), it takes none of the platform's namespaces, and it sets nothing on a bucket it does not define.

A cell runs its tenants on its platform's parts (cluster, tenant role) read through a StackReference;
the platform's plan never sees the cell's resources, so what the cell does to the platform's names is
judged here, from the names the cell's generated policy config carries (`meridian policy --stack
<cell> --write-config` reads them from the platform's stack file at the same commit):
`platformTenantRoles`, `platformNamespaces` (its tenants') and `platformServiceNamespaces` (where only the cell's
tenant file may go: the Secret `cellTenantFile`, of type Opaque, no service-account token and no forced takeover),
beside `platformStack`; and `platformClusters`, the clusters of the tenant cluster pair its platform places it on
(a pod identity association on any other cluster would put the cell's tenants' identity where the zone's Pod
Identity count, and the tenant role's pin, do not expect it).
"""

from __future__ import annotations

from typing import Any

from cellroles import PlatformRoles, check_platform_role_grants, suffix_note
from ruleutil import KMS_KEYS, S3_BUCKETS, UNKNOWN, Stack, UnknownValueError, Unverifiable, known, peek, setting_bucket
from sharedrole import association_session_problems

POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
NAMESPACE = "kubernetes:core/v1:Namespace"
SECRET = "kubernetes:core/v1:Secret"
# Annotations that turn a cell's tenant file into something else: a token the controller fills for a
# service account (https://kubernetes.io/docs/concepts/configuration/secret/#serviceaccount-token-secrets),
# or pulumi-kubernetes' server-side apply taking the object over from its field manager
# (https://www.pulumi.com/registry/packages/kubernetes/how-to-guides/managing-resources-with-server-side-apply/)
_TAKEOVER_ANNOTATIONS = ("kubernetes.io/service-account.", "pulumi.com/patchForce")
# what opens a key to principals besides the key itself: a grant, or a key policy set apart from the key
KEY_SETTINGS = ("aws:kms/grant:Grant", "aws:kms/keyPolicy:KeyPolicy")


def _namespaced(r: Any) -> Any:
    if r.resource_type == POD_IDENTITY:
        return peek(r.props, "namespace")
    if r.resource_type == NAMESPACE:
        return peek(r.props, "metadata", "name")
    return peek(r.props, "metadata", "namespace") if r.resource_type.startswith("kubernetes:") else None


def check_cell_lane(stack: Stack, config: dict) -> list[tuple[str | None, Any]]:
    platform = config.get("platformStack")
    if not platform:
        return []  # a platform stack: its own plan holds every name
    roles = [str(n) for n in config.get("platformTenantRoles") or []]
    namespaces = {str(n) for n in config.get("platformNamespaces") or []}
    service = {str(n) for n in config.get("platformServiceNamespaces") or []}
    clusters = [str(n) for n in config.get("platformClusters") or []]
    tenant_file = str(config.get("cellTenantFile") or "")
    out: list[tuple[str | None, Any]] = []
    if not roles or not service or not clusters or not tenant_file:
        out.append(
            (
                None,
                Unverifiable(
                    f"unverifiable: cell of platform {platform!r} without `platformTenantRoles` / `platformServiceNamespaces` "
                    f"/ `platformClusters` / `cellTenantFile` in its policy config: run `meridian policy --stack <cell> --write-config`"
                ),
            )
        )
    pinned, unpinned = PlatformRoles(stack, config), {}
    for assoc in stack.of(POD_IDENTITY):
        cluster = peek(assoc.props, "clusterName")
        if clusters and isinstance(cluster, str) and cluster not in clusters:  # unknown: tenant-data-access says so
            out.append(
                (
                    assoc.urn,
                    f"Pod identity association {assoc.name} of a cell must be on its tenant cluster pair's clusters "
                    f"({', '.join(clusters)}, from its platform {platform!r}'s cells.cluster_pairs), not {cluster}: the "
                    "zone's Pod Identity count and the tenant role's cluster pin hold the cell's tenants there",
                )
            )
        for prop in ("roleArn", "targetRoleArn"):
            arn = peek(assoc.props, prop)
            if not isinstance(arn, str) or not roles or stack.linked(assoc, prop, "aws:iam/role:Role"):
                continue  # unknown (tenant-data-access says so), or a role the cell defines (judged there)
            problem, unknown = pinned.judge(arn)
            if problem:
                out.append(
                    (
                        assoc.urn,
                        f"Pod identity association {assoc.name} of a cell must name only its platform {platform!r}'s tenant "
                        f"role ({', '.join(roles)}) as `{prop}`: {problem}; any other role (the platform's broker chooses "
                        "any tenant's session; a look-alike is anyone's) hands other permissions to the cell's tenant",
                    )
                )
            else:
                unpinned.setdefault(arn, (assoc.urn, unknown, []))[2].append(assoc)
                if prop == "roleArn":  # the platform's shared role: its sessions keep the tags it tells tenants apart by
                    out += _session_problems(assoc, arn)
    out += [
        (urn, suffix_note(config, arn, unknown, [a.name for a in users]))
        for arn, (urn, unknown, users) in sorted(unpinned.items())
    ] + pinned.disagreements({arn: users for arn, (_, _, users) in unpinned.items()}, platform)
    out += check_platform_role_grants(stack, config, platform)
    for r in stack.resources:
        ns = _namespaced(r)
        if isinstance(ns, str) and ns in namespaces:
            out.append(
                (
                    r.urn,
                    f"{r.resource_type.rsplit(':', 1)[-1]} {r.name} of a cell must not be in namespace {ns}, a tenant namespace "
                    f"of its platform {platform!r}: the cell would share (a Namespace: take over) the platform's namespace, "
                    "its pods, service accounts and identity",
                )
            )
        elif isinstance(ns, str) and ns in service:
            problem = _tenant_file_problems(r, tenant_file)
            if isinstance(problem, list) and problem:
                out.append(
                    (
                        r.urn,
                        f"{r.resource_type.rsplit(':', 1)[-1]} {r.name} of a cell must not be in namespace {ns}, the service "
                        f"namespace of its platform {platform!r}, unless it is the cell's own tenant file (Secret "
                        f"`{tenant_file or '?'}`, type Opaque, no service-account or takeover annotation): {'; '.join(problem)}. "
                        "Anything else there is read or run by the platform's API (its settings, its service account's token)",
                    )
                )
            elif isinstance(problem, Unverifiable):
                out.append((r.urn, problem))
    for setting in stack.resources:
        kind = setting.resource_type
        if not kind.startswith("aws:s3/bucket") or kind in S3_BUCKETS or peek(setting.props, "bucket") is None:
            continue
        try:
            target = setting_bucket(stack, setting)
        except UnknownValueError:
            continue  # the bucket rules report the unknown name
        if isinstance(target, Unverifiable):
            out.append(
                (
                    setting.urn,
                    f"{kind.rsplit(':', 1)[-1]} {setting.name} of a cell must set only the cell's own buckets: it names "
                    f"{peek(setting.props, 'bucket')!r}, no bucket of this stack (its platform {platform!r}'s? a bucket has "
                    "one policy, one public access block, one lifecycle...: the last stack to write it wins)",
                )
            )
    out += _key_settings(stack, platform)
    return out


def _session_problems(assoc: Any, role: str) -> list[tuple[str | None, Any]]:
    """The platform's check of a shared-role association (tenant-role-isolated's), on a cell's association."""
    try:
        return [(assoc.urn, problem) for problem in association_session_problems(assoc, role)]
    except UnknownValueError as unread:
        return [(assoc.urn, Unverifiable(f"unverifiable at preview: Pod identity association {assoc.name}: {unread}"))]


def _tenant_file_problems(r: Any, tenant_file: str) -> list[str] | Unverifiable:
    """What keeps `r` from being the cell's tenant file: its kind, name, type or annotations."""
    if r.resource_type != SECRET:
        return [f"it is a {r.resource_type.rsplit(':', 1)[-1]}, not a Secret"]
    if not tenant_file:
        return Unverifiable(
            f"unverifiable: whether Secret {r.name} is the cell's tenant file (no `cellTenantFile` in its config)"
        )
    name, kind = known(peek(r.props, "metadata", "name")), known(peek(r.props, "type"))
    annotations = known(peek(r.props, "metadata", "annotations"))
    unread = [p for p, v in (("metadata.name", name), ("type", kind), ("metadata.annotations", annotations)) if v is UNKNOWN]
    out = []
    if name != tenant_file and name is not UNKNOWN:
        out.append(f"its name is {name!r}" if isinstance(name, str) else "it has no `metadata.name` (Pulumi names it)")
    if kind != "Opaque" and kind is not UNKNOWN:
        out.append(f"its type is {kind!r}" if kind is not None else "it sets no `type`")
    if isinstance(annotations, dict):
        out += [f"it carries annotation {k}" for k in sorted(map(str, annotations)) if k.startswith(_TAKEOVER_ANNOTATIONS)]
    if out or not unread:
        return out
    return Unverifiable(f"unverifiable at preview: Secret {r.name}'s {', '.join(unread)} (is it the cell's tenant file?)")


def _key_settings(stack: Stack, platform: str) -> list[tuple[str | None, Any]]:
    """A grant or key policy of a cell on a key it does not define (its platform's tenant key, by ARN):
    the cell's plan holds neither that key's policy nor whose data it protects, so nothing here proves
    the grantee is limited to the key's tenant. A cell's own keys are judged with its plan."""
    out: list[tuple[str | None, Any]] = []
    for setting in stack.of(*KEY_SETTINGS):
        if stack.linked(setting, "keyId", *KMS_KEYS):
            continue
        key = known(peek(setting.props, "keyId"))
        kind = setting.resource_type.rsplit(":", 1)[-1]
        if not isinstance(key, str):  # unknown at preview
            out.append((setting.urn, Unverifiable(f"unverifiable at preview: {kind} {setting.name}'s `keyId`")))
            continue
        out.append(
            (
                setting.urn,
                f"{kind} {setting.name} of a cell must open only the cell's own keys: it names {key!r}, no key of this "
                f"stack (its platform {platform!r}'s? the platform's tenant keys are opened only by the platform's plan, "
                "where the key's policy and tenant are judged)",
            )
        )
    return out
