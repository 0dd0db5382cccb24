"""The stacks of a zone: a platform stack and the cell stacks that name it, read from their files.

What no single stack file can show is checked here, across every stack file of the zone in the
project directory (the tooling and the program see the same files at the same commit): a tenant
in two stacks, tenant budgets over the zone's cap, and more tenants on a tenant cluster pair (the
platform's own clusters, or a pair of `cells.cluster_pairs`) than its clusters can give Pod Identity
associations. Each problem names the file and key of the
stack being loaded, so every stack involved reports it when it is loaded.

A stack file that cannot be read is skipped here: loading that stack reports it. What a file holds
for the zone (its platform, tenant ids and budgets) is read once per content in a process, and a
process that starts others hands them what it read (`known_entries`, `learn`): a preview parses a
zone's files once, while every check still judges every file of the zone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stackconfig import memory
from stackconfig.errors import Problem
from stackconfig.models import CLUSTER_PAIRS_MAX, NAMESPACE, POD_IDENTITY_ASSOCIATIONS_PER_CLUSTER

# What the platform associates on each cluster besides its tenants. On its own clusters (pair 0): the
# service's broker (components.tenantidentity), the AWS Load Balancer Controller (components.lbcontroller)
# and the EBS CSI driver, whose add-on owns an association (components.cluster: an add-on's associations are
# the cluster's, listed with an `ownerArn`: https://docs.aws.amazon.com/eks/latest/APIReference/API_PodIdentityAssociation.html).
# On a tenant cluster pair's clusters: the EBS CSI driver's alone. Both counted in the rendered plans by
# tests/test_program_cells.py and tests/test_program_pairs.py.
PLATFORM_POD_IDENTITY_ASSOCIATIONS = 3
PAIR_POD_IDENTITY_ASSOCIATIONS = 1
POD_IDENTITY_LIMITS_URL = "https://docs.aws.amazon.com/eks/latest/userguide/pod-identities.html"

PLATFORM_KEY = f"{NAMESPACE}:platform"
TENANTS_KEY = f"{NAMESPACE}:tenants"
PAIRS_KEY = f"{NAMESPACE}:cells.cluster_pairs"


def stack_file(stack: str) -> str:
    return f"Pulumi.{stack}.yaml"


@dataclass(frozen=True)
class StackTenants:
    """One stack of a zone as its file lists its tenants: ids in order, and their budgets."""

    stack: str
    tenant_ids: tuple[str, ...]
    budgets_usd: float

    @property
    def file(self) -> str:
        return stack_file(self.stack)


# libyaml's safe loader where PyYAML has it (its wheels do): the same documents ~9x faster, which a
# zone of 10,000 tenants (every stack checks every cell file of its zone) needs
FAST_LOADER: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _config_of(path: Path) -> dict[str, Any] | None:
    doc = memory.document(path)
    try:
        doc = (yaml.load(path.read_text(encoding="utf-8"), Loader=FAST_LOADER) or {}) if doc is None else doc
    except (OSError, yaml.YAMLError):
        return None
    section = doc.get("config") if isinstance(doc, dict) else None
    return section if isinstance(section, dict) else None


def stack_config(project_dir: Path, stack: str) -> dict[str, Any] | None:
    """The `config` mapping of `Pulumi.<stack>.yaml`, or None when it cannot be read."""
    return _config_of(project_dir / stack_file(stack))


def stack_tenants(stack: str, entries: Any) -> StackTenants:
    """The ids and budgets of raw tenant entries (malformed entries are the stack's own parse's problem)."""
    entries = entries if isinstance(entries, list) else []
    ids = tuple(e["id"] for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str))
    budgets = sum(
        float(e["monthly_budget_usd"])
        for e in entries
        if isinstance(e, dict)
        and isinstance(e.get("monthly_budget_usd"), (int, float))
        and not isinstance(e.get("monthly_budget_usd"), bool)
    )
    return StackTenants(stack, ids, budgets)


_ZONE_ENTRIES: dict[tuple[str, str], tuple[Any, StackTenants] | None] = {}
# what reads an entry from a file: entries read by another version of this module are not learnt
_READER_DIGEST = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

# Entries as plain data: (reader digest, {(file name, sha256 of its bytes): (platform, stack, tenant ids,
# budgets) or None for a file that cannot be read})
KnownEntries = tuple[str, dict[tuple[str, str], tuple[Any, str, tuple[str, ...], float] | None]]


def zone_entry(path: Path) -> tuple[Any, StackTenants] | None:
    """(the platform a stack file names or None, its tenants' ids and budgets), or None when it
    cannot be read; kept per file name and content: every stack of a zone of 10,000 tenants reads
    every cell file of the zone (and a base commit's copy of a file is the same file)."""
    key = None
    if memory.document(path) is None:  # a held document is read as is (no file bytes to key it by)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        key = (path.name, hashlib.sha256(data).hexdigest())
        if key in _ZONE_ENTRIES:
            return _ZONE_ENTRIES[key]
    config = _config_of(path)
    stack = path.name.removeprefix("Pulumi.").removesuffix(".yaml")
    entry = None if config is None else (config.get(PLATFORM_KEY), stack_tenants(stack, config.get(TENANTS_KEY)))
    if key is not None:
        _ZONE_ENTRIES[key] = entry
    return entry


def known_entries() -> KnownEntries:
    """Every stack file this process has read for its zone, as plain data for another process's
    copy of this module to `learn`: the process that starts a preview's workers reads a zone's files
    once, and each worker (and the program it runs, with its own copy of `stackconfig`) checks the
    whole zone without parsing them again."""
    entries = {
        key: None if e is None else (e[0], e[1].stack, e[1].tenant_ids, e[1].budgets_usd) for key, e in _ZONE_ENTRIES.items()
    }
    return _READER_DIGEST, entries


def learn(known: KnownEntries) -> None:
    """Take the entries `known_entries` gave in another process. Each is keyed by its file's content,
    so a zone check still reads every file of the zone (a file edited since is parsed again); entries
    read by another version of this module (a base commit's program) are left out."""
    digest, entries = known
    if digest != _READER_DIGEST:
        return
    for key, e in entries.items():
        _ZONE_ENTRIES.setdefault(key, None if e is None else (e[0], StackTenants(*e[1:])))


def cells_of(project_dir: Path, platform: str) -> list[StackTenants]:
    """Every cell stack file of the project that names `platform` as its platform, sorted by name."""
    found = []
    for path in memory.stack_files(project_dir):
        entry = zone_entry(path)
        if entry is not None and entry[0] == platform:
            found.append(entry[1])
    return found


def cluster_pairs(platform_values: dict[str, Any]) -> list[list[str]]:
    """The platform's `cells.cluster_pairs` as written (pair k at index k - 1), the cell names only
    (a malformed entry is the platform's own parse's problem)."""
    cells = platform_values.get("cells")
    pairs = cells.get("cluster_pairs") if isinstance(cells, dict) else None
    return [[c for c in p if isinstance(c, str)] if isinstance(p, list) else [] for p in pairs] if isinstance(pairs, list) else []


def association_quota(platform_values: dict[str, Any]) -> int:
    """`quotas.pod_identity_associations_per_cluster` as written, or AWS's 5,000 where it is absent or
    invalid (the platform's own parse reports an invalid one)."""
    quotas = platform_values.get("quotas")
    quota = quotas.get("pod_identity_associations_per_cluster") if isinstance(quotas, dict) else None
    valid = isinstance(quota, int) and not isinstance(quota, bool) and 1 <= quota <= POD_IDENTITY_ASSOCIATIONS_PER_CLUSTER
    return quota if valid else POD_IDENTITY_ASSOCIATIONS_PER_CLUSTER


def zone_problems(
    project_dir: Path, stack: str, platform: str, this: StackTenants, platform_values: dict[str, Any]
) -> list[Problem]:
    """What is wrong across the zone of `platform`, as seen from `stack` (the platform or one of its
    cells): `this` is the stack's own tenants (as loaded, overrides included), `platform_values` the
    platform's `meridian:` keys as written (its inline tenants, cost cap, cells and quotas)."""
    platform_tenants = platform_values.get("tenants")
    stacks: list[StackTenants] = [this if stack == platform else stack_tenants(platform, platform_tenants)]
    stacks += [this if cell.stack == stack else cell for cell in cells_of(project_dir, platform)]
    if this not in stacks:  # a cell not naming this platform in its file (an override): still counted
        stacks.append(this)
    out: list[Problem] = []
    where: dict[str, list[str]] = {}
    for s in stacks:
        for tid in dict.fromkeys(s.tenant_ids):  # a duplicate within one stack is that stack's own check
            where.setdefault(tid, []).append(s.stack)
    for tid in dict.fromkeys(this.tenant_ids):
        others = [s for s in where.get(tid, []) if s != stack]
        if others:
            listed = ", ".join(f"{o} ({stack_file(o)})" for o in others)
            out.append(
                Problem(
                    this.file,
                    f"{TENANTS_KEY}[{tid!r}].id",
                    f"tenant {tid!r} is also in stack {listed}: a tenant lives in exactly one stack of the zone "
                    "(moving one is an edit of both files: docs/operations.md)",
                )
            )
    out += _pair_problems(stack, platform, this, stacks, platform_values)
    total = sum(s.budgets_usd for s in stacks)
    cost = platform_values.get("cost")
    stack_cap_usd = cost.get("stack_cap_usd") if isinstance(cost, dict) else None
    if isinstance(stack_cap_usd, (int, float)) and len(stacks) > 1 and total > stack_cap_usd:
        parts = ", ".join(f"{s.stack} ${s.budgets_usd:,.2f}" for s in stacks)
        out.append(
            Problem(
                this.file,
                TENANTS_KEY,
                f"the zone's tenant budgets sum to ${total:,.2f} ({parts}), over the platform's cost.stack_cap_usd "
                f"${float(stack_cap_usd):,.2f} (one budget watches the platform and its cells together)",
            )
        )
    return out


def _pair_problems(
    stack: str, platform: str, this: StackTenants, stacks: list[StackTenants], platform_values: dict[str, Any]
) -> list[Problem]:
    """Per tenant cluster pair, its tenants' Pod Identity associations (one per tenant on each cluster
    of the pair) and the platform's own there, against the configured per-cluster quota. Reported by
    the platform (it builds every pair) and by each stack on the pair over it."""
    pairs = cluster_pairs(platform_values)
    pair_of = {cell: k for k, cells in reversed(list(enumerate(pairs, 1))) for cell in cells}  # first pair wins
    quota = association_quota(platform_values)
    out: list[Problem] = []
    for k in range(len(pairs) + 1):
        on_pair = [s for s in stacks if s.stack != platform and pair_of.get(s.stack, 0) == k]
        if k == 0:
            on_pair.insert(0, next(s for s in stacks if s.stack == platform))
        if stack != platform and this not in on_pair:
            continue
        tenants = len({tid for s in on_pair for tid in s.tenant_ids})
        own = PLATFORM_POD_IDENTITY_ASSOCIATIONS if k == 0 else PAIR_POD_IDENTITY_ASSOCIATIONS
        if tenants + own <= quota:
            continue
        which = "pair 0 (the platform's own clusters)" if k == 0 else f"pair {k}"
        more = (
            "or add a pair: append a list of cells to cells.cluster_pairs in the platform's file"
            if len(pairs) < CLUSTER_PAIRS_MAX
            else f"or, as the zone has the {CLUSTER_PAIRS_MAX} pairs it may have (the tenant roles' trust policies name "
            "every cluster), serve the rest from a platform stack of their own"
        )
        parts = ", ".join(f"{s.stack} {len(s.tenant_ids):,}" for s in on_pair)
        key = f"{PAIRS_KEY}[{k - 1}]" if stack == platform and k else TENANTS_KEY
        out.append(
            Problem(
                this.file,
                key,
                f"tenant cluster {which} holds {tenants:,} tenants ({parts}): each needs a Pod Identity association on "
                f"each cluster of the pair, which with the platform's own {own} there is {tenants + own:,} per cluster, "
                f"over quotas.pod_identity_associations_per_cluster {quota:,} (EKS allows {POD_IDENTITY_ASSOCIATIONS_PER_CLUSTER:,}, "
                f"a fixed limit Service Quotas cannot raise: {POD_IDENTITY_LIMITS_URL}). Place cells on a pair with room, "
                f'{more} (docs/operations.md, "Tenant cluster pairs")',
            )
        )
    return out


def unlisted(stack: str, platform: str, names: Sequence[Any]) -> list[Problem]:
    if stack in names:
        return []
    return [
        Problem(
            stack_file(platform),
            f"{NAMESPACE}:cells.names",
            f"does not list cell {stack!r}, whose {stack_file(stack)} names {platform!r} as its platform: add it "
            "(the platform mounts only its listed cells' tenant files and exports cell_handles only when it lists cells)",
        )
    ]
