"""The zone judged as a whole: what no stack's plan shows alone, from small facts each worker takes
from its own plan (the zone's process never holds the plans).

What is proved, on the plans' known values (a value unknown at preview is named, never passed):
- **one stack per tenant**: no tenant id tags resources (`meridian:tenant`) in two stacks' plans
  (the configs are checked already, stackconfig.zone: this holds for what the program made of them);
- **residency across stacks**: every resource of a cell is in a region of the zone, every ARN a
  cell's inputs name (its platform's outputs flow there through the StackReference) names a region
  of the zone or none, and every S3 replication destination of a cell is a bucket some stack of the
  zone plans in a region of the zone (a bucket the zone does not plan is a violation: its region is
  unknowable from here);
- **no cross-cell tenant reach**: a cell's principals are its IAM policy documents (identity and
  resource policies: every Allow statement's Resource, a NotResource counting as `*`) and its EKS
  Pod Identity associations (the platform's tenant role, whose session is scoped by the pod's
  namespace: ABAC). No Allow statement of a cell matches, with IAM's `*`/`?` wildcards and every
  policy variable `${...}` read as `*`, another stack's silo bucket itself or any object under a
  tenant's prefix (`tenants/t-<id>/`) in another stack's silo buckets or, for another stack's
  tenants, in the platform's pool buckets; no association of a
  cell binds a tenant namespace (`t-<tenant>`, or a namespace labelled with a tenant) of a tenant
  it does not hold. KMS keys and Kubernetes RBAC are not covered here (the pack judges them per
  stack).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

UNKNOWN = "[unknown]"
# a finding on a value unknown at preview: reported, not failing the zone (as the pack's
# unverifiable findings are advisories); every other finding is a violation
UNVERIFIABLE = "unverifiable at preview: "
TENANT_TAG = "meridian:tenant"
TENANT_LABEL = "meridian.io/tenant"
BUCKET = "aws:s3/bucket:Bucket"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
NAMESPACE = "kubernetes:core/v1:Namespace"
# where a resource holds a policy document (JSON text), by type
POLICY_DOCUMENTS = {
    "aws:iam/policy:Policy": ("policy",),
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/userPolicy:UserPolicy": ("policy",),
    "aws:iam/groupPolicy:GroupPolicy": ("policy",),
    "aws:s3/bucketPolicy:BucketPolicy": ("policy",),
    "aws:s3/accessPointPolicy:AccessPointPolicy": ("policy",),
}
ARN = re.compile(r"arn:aws[a-z-]*:([a-z0-9-]+):([a-z0-9-]*):")


@dataclass
class StackFacts:
    """What the zone's checks need of one stack's plan: small, whatever the stack's size."""

    stack: str
    tenants: list[str] = field(default_factory=list)  # ids tagging its resources
    buckets: dict[str, str] = field(default_factory=dict)  # known bucket name -> region
    silo_buckets: dict[str, str] = field(default_factory=dict)  # tenant bucket name -> tenant
    grants: list[tuple[str, str]] = field(default_factory=list)  # (resource urn, Allow statement's resource pattern)
    associations: list[tuple[str, str]] = field(default_factory=list)  # (urn, namespace)
    namespace_tenants: dict[str, str] = field(default_factory=dict)  # namespace -> its tenant label
    replications: list[tuple[str, str]] = field(default_factory=list)  # (urn, destination bucket ARN)
    outside: list[str] = field(default_factory=list)  # residency findings of its own resources and inputs


def _strings(value: Any, path: str = "") -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def _statements(text: Any) -> list[dict[str, Any]]:
    try:
        doc = json.loads(text) if isinstance(text, str) else text
    except json.JSONDecodeError:
        return []
    statements = doc.get("Statement", []) if isinstance(doc, dict) else []
    return [s for s in (statements if isinstance(statements, list) else [statements]) if isinstance(s, dict)]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def stack_facts(stack: str, resources: Iterable[Mapping[str, Any]], zone_regions: Iterable[str]) -> StackFacts:
    """The facts of one stack, from its plan's resources (plan-JSON shape: type, urn, region, inputs)."""
    allowed = set(zone_regions)
    facts = StackFacts(stack)
    tenants: dict[str, None] = {}
    for r in resources:
        kind, urn, inputs = r["type"], r["urn"], r.get("inputs") or {}
        region = r.get("region")
        if kind.startswith(("aws:", "kubernetes:")) and region not in (None, "global") and region not in allowed:
            facts.outside.append(f"{urn} is in region {region}, outside the zone's {', '.join(sorted(allowed))}")
        for path, text in _strings(inputs):
            for m in ARN.finditer(text):
                if m.group(2) and m.group(2) not in allowed:
                    facts.outside.append(
                        f"{urn} input {path} names {m.group(0)}..., a resource in {m.group(2)}, outside the zone"
                    )
        tags = inputs.get("tags") if isinstance(inputs.get("tags"), dict) else {}
        tenant = tags.get(TENANT_TAG)
        if isinstance(tenant, str) and tenant != UNKNOWN:
            tenants[tenant] = None
        if kind == BUCKET and isinstance(name := inputs.get("bucket"), str) and name != UNKNOWN:
            facts.buckets[name] = region or "global"
            if isinstance(tenant, str):
                facts.silo_buckets[name] = tenant
        elif kind == REPLICATION:
            for rule in _as_list(inputs.get("rules") or []):
                dest = (rule or {}).get("destination", {}).get("bucket") if isinstance(rule, dict) else None
                facts.replications.append((urn, dest if isinstance(dest, str) else UNKNOWN))
        elif kind == ASSOCIATION:
            facts.associations.append((urn, str(inputs.get("namespace", UNKNOWN))))
        elif kind == NAMESPACE:
            meta = inputs.get("metadata") or {}
            label = (meta.get("labels") or {}).get(TENANT_LABEL)
            if isinstance(meta.get("name"), str) and isinstance(label, str):
                facts.namespace_tenants[meta["name"]] = label
        for prop in POLICY_DOCUMENTS.get(kind, ()):
            for statement in _statements(inputs.get(prop)):
                if statement.get("Effect") != "Allow":
                    continue
                patterns = ["*"] if "NotResource" in statement else _as_list(statement.get("Resource", []))
                facts.grants += [(urn, p if isinstance(p, str) else UNKNOWN) for p in patterns]
    facts.tenants = list(tenants)
    return facts


def _reaches(pattern: str, prefix: str) -> bool:
    """Whether the IAM resource pattern matches some ARN starting with `prefix` (an object under a
    tenant's prefix, any key): `*` and `?` wildcards, every policy variable `${...}` read as `*`.
    The pattern run as a glob automaton over `prefix`: any state left can be completed by a key."""
    pattern = re.sub(r"\$\{[^}]*\}", "*", pattern)
    if "*" not in pattern and "?" not in pattern:
        return pattern.startswith(prefix)

    def closure(states: set[int]) -> set[int]:
        out, todo = set(states), list(states)
        while todo:
            i = todo.pop()
            if i < len(pattern) and pattern[i] == "*" and i + 1 not in out:
                out.add(i + 1)
                todo.append(i + 1)
        return out

    states = closure({0})
    for c in prefix:
        states = closure({i if pattern[i] == "*" else i + 1 for i in states if i < len(pattern) and pattern[i] in ("*", "?", c)})
        if not states:
            return False
    return True


def _matches(pattern: str, arn: str) -> bool:
    """Whether the IAM resource pattern matches exactly `arn` (a bucket itself)."""
    pattern = re.sub(r"\$\{[^}]*\}", "*", pattern)
    return re.fullmatch("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), arn, re.S) is not None


def zone_findings(
    zone: str,
    platform: StackFacts,
    cells: list[StackFacts],
    zone_regions: Iterable[str],
    pool_buckets: Iterable[str],
    tenant_prefix: str,
) -> list[str]:
    """The zone's findings (those starting with UNVERIFIABLE name a value unknown at preview, the
    others are violations). `tenant_prefix`: a tenant's key prefix in a pool bucket with `{tenant}`
    for its id (components.tenant); `pool_buckets`: the platform's shared tenant buckets."""
    allowed = set(zone_regions)
    stacks = [platform, *cells]
    out: list[str] = []
    where: dict[str, list[str]] = {}
    for s in stacks:
        for t in s.tenants:
            where.setdefault(t, []).append(s.stack)
    out += [
        f"tenant {t!r} has resources in stacks {', '.join(found)}: a tenant lives in one stack"
        for t, found in where.items()
        if len(found) > 1
    ]
    buckets = {name: region for s in stacks for name, region in s.buckets.items()}
    for cell in cells:
        out += [f"cell {cell.stack}: {finding}" for finding in cell.outside]
        for urn, dest in cell.replications:
            name = dest.removeprefix("arn:aws:s3:::")
            if dest == UNKNOWN or UNKNOWN in dest:
                out.append(f"{UNVERIFIABLE}cell {cell.stack}: {urn} replicates to a bucket unknown at preview (its region)")
            elif name not in buckets:
                out.append(f"cell {cell.stack}: {urn} replicates to {dest}, a bucket no stack of zone {zone} plans")
            elif buckets[name] not in allowed:
                out.append(f"cell {cell.stack}: {urn} replicates to {dest} in {buckets[name]}, outside the zone")
        out += _reach(cell, stacks, list(pool_buckets), tenant_prefix, where)
    return out


def _reach(cell: StackFacts, stacks: list[StackFacts], pools: list[str], prefix: str, where: dict[str, list[str]]) -> list[str]:
    own = set(cell.tenants)
    others = {t: found for t, found in where.items() if t not in own}
    silos = {name: (s.stack, tenant) for s in stacks if s is not cell for name, tenant in s.silo_buckets.items()}
    out = []
    for urn, pattern in cell.grants:
        if pattern == UNKNOWN or UNKNOWN in pattern:
            out.append(f"{UNVERIFIABLE}cell {cell.stack}: {urn} grants a resource unknown at preview (its reach)")
            continue
        reached = [
            f"silo bucket {name} of tenant {t!r} (stack {s})"
            for name, (s, t) in silos.items()
            if _matches(pattern, f"arn:aws:s3:::{name}") or _reaches(pattern, f"arn:aws:s3:::{name}/{prefix.format(tenant=t)}")
        ]
        reached += [
            f"tenant {t!r}'s prefix in pool bucket {pool} (stack {', '.join(found)})"
            for pool in pools
            for t, found in others.items()
            if _reaches(pattern, f"arn:aws:s3:::{pool}/{prefix.format(tenant=t)}")
        ]
        if reached:
            shown = "; ".join(reached[:3]) + (f"; and {len(reached) - 3} more" if len(reached) > 3 else "")
            out.append(f"cell {cell.stack}: {urn} allows {pattern}, which reaches another stack's tenant data: {shown}")
    for urn, namespace in cell.associations:
        tenant = cell.namespace_tenants.get(namespace) or (namespace[2:] if namespace.startswith("t-") else None)
        if namespace == UNKNOWN:
            out.append(f"{UNVERIFIABLE}cell {cell.stack}: {urn} binds a namespace unknown at preview (its reach)")
        elif tenant is not None and tenant not in own:
            held = ", ".join(where.get(tenant, [])) or "no stack of the zone"
            out.append(
                f"cell {cell.stack}: {urn} binds namespace {namespace} of tenant {tenant!r} ({held}), not a tenant of "
                f"this cell: its pods would get that tenant's session (the platform's tenant role scopes by namespace)"
            )
    return out
