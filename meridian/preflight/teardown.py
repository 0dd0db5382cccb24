"""Teardown, read from the plan: what stops `pulumi destroy` of a stack, for how long, and the steps
that clear it, in order; and the preflight check that the plan locks and deletes what the config says.

Everything here is offline: it reads the rendered plan (protect flags, vault locks, deletion
protection, force-delete flags, KMS deletion windows) and the config. What only the account knows
(how many recovery points a vault holds, whether a bucket is empty, the lock's real age) is named
in the wait of each blocker, never assumed.

AWS rules encoded (sources):
- Backup Vault Lock: governance mode can be removed by a principal allowed
  `backup:DeleteBackupVaultLockConfiguration`; compliance mode becomes immutable `ChangeableForDays`
  (at least 3) after it is set, and from then on the vault can never be deleted
  (https://docs.aws.amazon.com/aws-backup/latest/devguide/vault-lock.html).
- A backup vault is deleted only when empty (DeleteBackupVault); recovery points live until their
  lifecycle's `DeleteAfterDays` or until deleted.
- KMS ScheduleKeyDeletion: 7-30 days pending deletion, cancellable until then; after it, what the key
  encrypted cannot be decrypted (https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html).
- S3 DeleteBucket needs an empty bucket (every object version and delete marker); pulumi-aws
  `force_destroy` empties it first. ECR DeleteRepository fails while images remain unless `force_delete`.
- RDS refuses to delete a cluster, instance or global cluster with deletion protection on; a
  deletion without `skip_final_snapshot` leaves a final snapshot behind.
- Route 53 DeleteHostedZone fails while records other than the zone's SOA and NS remain.
- Pulumi refuses to delete a resource with `protect` set until `pulumi state unprotect`.
- A cell stack stands on its platform's clusters, roles, pool buckets and alert topic: destroying the
  platform first deletes what the cell's state still holds and leaves the cell's kubernetes provider
  without a cluster (pulumi-kubernetes then needs PULUMI_K8S_DELETE_UNREACHABLE), so cells go first.
- A cell's pool tenants keep their objects under `tenants/t-<id>/` of the platform's pool buckets:
  destroying the cell deletes none of them (and schedules the deletion of the keys they are under).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from components.naming import tenant_data_prefix
from meridian.preflight.context import CheckResult, Context, Finding
from stackconfig import StackConfig

VAULT = "aws:backup/vault:Vault"
VAULT_LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
BACKUP_PLAN = "aws:backup/plan:Plan"
KMS_KEY = "aws:kms/key:Key"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
ECR_REPOSITORY = "aws:ecr/repository:Repository"
GLOBAL_CLUSTER = "aws:rds/globalCluster:GlobalCluster"
DB_CLUSTER = "aws:rds/cluster:Cluster"
DB_INSTANCE = "aws:rds/instance:Instance"
ZONE = "aws:route53/zone:Zone"
SECRET = "aws:secretsmanager/secret:Secret"
COST_ALLOCATION_TAG = "aws:costexplorer/costAllocationTag:CostAllocationTag"

VAULT_LOCK_DOC = "https://docs.aws.amazon.com/aws-backup/latest/devguide/vault-lock.html"
KMS_DEFAULT_WINDOW_DAYS = 30  # AWS's default when the key names none


@dataclass(frozen=True)
class Blocker:
    """One thing that stops (or outlives) `pulumi destroy`."""

    kind: str
    urn: str
    name: str
    region: str | None
    blocks: str  # what AWS or Pulumi refuses, in words
    wait: str  # how long it holds
    step: str  # the step (STEPS key) that clears it
    wait_days: int | None = None  # the measurable part of the wait, when there is one
    permanent: bool = False  # once its time has passed, nothing clears it

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "urn": self.urn,
            "name": self.name,
            "region": self.region,
            "blocks": self.blocks,
            "wait": self.wait,
            "wait_days": self.wait_days,
            "permanent": self.permanent,
            "step": self.step,
        }


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    how: str


CELLS_FIRST = Step(
    "cells",
    "Destroy the cells first",
    "for each cell listed: `meridian teardown --stack <cell>` and its steps, `pulumi destroy --stack <cell>`, "
    "`pulumi stack rm <cell>`, remove it from `meridian:cells.names` in this platform's file and delete "
    "`Pulumi.<cell>.yaml`; then `pulumi up --stack <platform>` (its workload stops mounting the cell's tenant file)",
)
# A cell's own wording of the steps a platform's speak of databases in: a cell has none.
CELL_STEPS = {
    s.key: s
    for s in (
        Step(
            "keep",
            "Decide what outlives the cell",
            "a cell holds no database and no backup vault: what outlives it is its pool tenants' objects in the "
            "platform's pool buckets (listed below) and, until their windows end, its keys; copy out any object you must keep",
        ),
        Step(
            "keys",
            "Let the keys' deletion run out (or cancel it)",
            "each destroyed tenant key waits its pending-deletion window; `aws kms cancel-key-deletion` keeps one "
            "(e.g. a pool tenant's whose objects you keep); after the window what it encrypted is unreadable",
        ),
    )
}
POOL_OBJECTS = Step(
    "pool-objects",
    "Delete the cell's pool tenants' objects from the platform's pool buckets (or keep them on purpose)",
    "for each prefix listed, in both regions (the pool buckets replicate to the dr region): every object version "
    "and delete marker under it (`aws s3api list-object-versions --bucket <pool bucket> --prefix <prefix>` + "
    "`delete-objects`); the buckets: `pulumi stack output cell_handles --stack <platform>`, "
    "regions.<role>.pool_bucket_name. Left there they are billed for good, unreadable once the tenant's key is deleted",
)

# The order a teardown must follow: each step clears what the later ones would fail on.
STEPS = (
    CELLS_FIRST,
    Step(
        "keep",
        "Decide what outlives the stack",
        "final database snapshots are left behind (encrypted with the database keys: keep those keys "
        "from deletion, step 'keys', if you keep the snapshots); copy out any recovery point or object you must keep",
    ),
    Step(
        "vault-locks",
        "Remove the vault locks",
        "`aws backup delete-backup-vault-lock-configuration --backup-vault-name <vault> --region <region>` "
        "for each vault (names: `pulumi stack output dr`): governance mode needs "
        "backup:DeleteBackupVaultLockConfiguration; compliance mode only within its grace days",
    ),
    Step(
        "recovery-points",
        "Empty the backup vaults",
        "stop the plan's jobs (`pulumi destroy` removes the plan and selection), then "
        "`aws backup list-recovery-points-by-backup-vault` and `aws backup delete-recovery-point` for each "
        "(a continuous RDS/Aurora point: `aws backup disassociate-recovery-point`); a vault deletes only when empty",
    ),
    Step(
        "deletion-protection",
        "Turn off database deletion protection",
        "`aws rds modify-global-cluster --no-deletion-protection`, `aws rds modify-db-cluster "
        "--no-deletion-protection --apply-immediately` (or `modify-db-instance` for RDS) for each, then "
        "`pulumi refresh --stack <stack>` so the state agrees",
    ),
    Step(
        "empty-storage",
        "Empty what destroy will not",
        "buckets without force_destroy: delete every object version and delete marker "
        "(`aws s3api list-object-versions` + `delete-objects`); repositories without force_delete: "
        "`aws ecr batch-delete-image`; a zone the stack created: delete records other than SOA and NS "
        "and remove the parent's NS delegation",
    ),
    POOL_OBJECTS,
    Step(
        "unprotect",
        "Unprotect the protected resources",
        "`pulumi state unprotect --stack <stack> '<urn>'` for each protected URN listed (keys you keep: "
        "`pulumi state delete` them instead, so destroy leaves them alone)",
    ),
    Step("destroy", "Destroy", "`pulumi destroy --stack <stack>`"),
    Step(
        "keys",
        "Let the keys' deletion run out (or cancel it)",
        "each destroyed KMS key waits its pending-deletion window; `aws kms cancel-key-deletion` keeps one "
        "(e.g. a database key whose final snapshot you keep); after the window what it encrypted is unreadable",
    ),
    Step(
        "after",
        "What stays after destroy",
        "final snapshots, the deleted secret's name for its recovery window, an existing (not created) "
        "hosted zone, and the account-wide cost-allocation tags go inactive if this stack activated them",
    ),
)
STEP_KEYS = tuple(s.key for s in STEPS)


@dataclass
class TeardownReport:
    stack: str
    production: bool
    force_delete: bool
    vault_lock_changeable_days: int | None
    platform: str | None = None  # a cell's platform; None: this is a platform
    blockers: list[Blocker] = field(default_factory=list)

    @property
    def cells(self) -> list[Blocker]:
        """The live cells of a platform: what must be destroyed before it."""
        return [b for b in self.blockers if b.step == "cells"]

    @property
    def permanent(self) -> list[Blocker]:
        return [b for b in self.blockers if b.permanent]

    @property
    def protected(self) -> list[Blocker]:
        return [b for b in self.blockers if b.step == "unprotect"]

    def steps(self) -> list[tuple[Step, list[Blocker]]]:
        """The steps in order, each with what it clears; a step with nothing to clear is left out
        (except `destroy`)."""
        by_step: dict[str, list[Blocker]] = defaultdict(list)
        for b in self.blockers:
            by_step[b.step].append(b)
        steps = [(s, by_step[s.key]) for s in STEPS if by_step[s.key] or s.key in ("destroy", "keep")]
        return [((CELL_STEPS.get(s.key, s) if self.platform else s), bs) for s, bs in steps]

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "platform": self.platform,
            "production": self.production,
            "force_delete": self.force_delete,
            "vault_lock": (
                {"mode": "governance"}
                if self.vault_lock_changeable_days is None
                else {"mode": "compliance", "grace_days": self.vault_lock_changeable_days}
            ),
            "can_be_torn_down": not self.permanent,
            "cells_first": [b.name for b in self.cells],
            "blockers": [b.to_json() for b in self.blockers],
            "steps": [
                {"step": i, "key": s.key, "title": s.title, "how": s.how, "clears": [b.urn for b in bs]}
                for i, (s, bs) in enumerate(self.steps(), start=1)
            ],
        }


def _name(r: Mapping[str, Any]) -> str:
    return r.get("name") or r["urn"].rsplit("::", 1)[-1]


def _days(value: Any, default: int | None = None) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def lock_consequence(vault_name: str, changeable_days: int | None, min_retention: int | None) -> str:
    """The sentence an operator must read before the first `up`."""
    keep = f"; recovery points stay at least {min_retention} days" if min_retention else ""
    if changeable_days is None:
        return (
            f"vault {vault_name}: governance mode: a principal allowed backup:DeleteBackupVaultLockConfiguration "
            f"can remove the lock at any time, and then the recovery points and the vault{keep} while it holds"
        )
    return (
        f"vault {vault_name}: compliance mode: after {changeable_days} days this vault can never be deleted, "
        f"by anyone, nor its recovery points before their retention ends{keep}"
    )


def vault_locks(resources: Iterable[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """(vault, its lock or None) for every backup vault of the plan, linked by the lock's dependency."""
    resources = list(resources)
    locks = [r for r in resources if r["type"] == VAULT_LOCK]
    out = []
    for vault in (r for r in resources if r["type"] == VAULT):
        lock = next((lk for lk in locks if vault["urn"] in lk.get("dependencies", ())), None)
        out.append((vault, lock))
    return out


def vault_lock_consequences(resources: Iterable[Mapping[str, Any]]) -> list[str]:
    """One sentence per locked vault of the plan: what its lock commits the account to."""
    return [
        lock_consequence(
            _name(vault), _days(lock["inputs"].get("changeableForDays")), _days(lock["inputs"].get("minRetentionDays"))
        )
        for vault, lock in vault_locks(resources)
        if lock is not None
    ]


def analyze(resources: Iterable[Mapping[str, Any]], cfg: StackConfig, stack: str, cells: Sequence[str] = ()) -> TeardownReport:
    """Every blocker of `pulumi destroy` the plan shows, each with its wait and the step that clears it;
    `cells`: a platform's live cells (its `cells.names` and the cell files naming it)."""
    resources = list(resources)
    report = TeardownReport(
        stack=stack,
        production=cfg.production,
        force_delete=cfg.force_delete,
        vault_lock_changeable_days=cfg.vault_lock_changeable_days,
        platform=cfg.platform,
    )
    add = report.blockers.append
    for cell in sorted(set(cells)):
        add(
            Blocker(
                "cell",
                f"urn:pulumi:{cell}::meridian::pulumi:pulumi:Stack::meridian-{cell}",
                cell,
                None,
                "its tenants stand on this platform's clusters, tenant role, pool buckets, replication role and alert "
                "topic: destroyed first, the platform takes the cell's namespaces, associations and tenant file with "
                "its clusters, and the cell's own destroy cannot reach a cluster any more",
                "until the cell is destroyed and removed (step 1)",
                "cells",
            )
        )
    if cfg.platform is not None:
        _pool_prefixes(resources, cfg, add)
    retention = max(
        (
            _days((rule.get("lifecycle") or {}).get("deleteAfter")) or 0
            for plan in resources
            if plan["type"] == BACKUP_PLAN
            for rule in plan["inputs"].get("rules") or ()
        ),
        default=0,
    )
    for vault, lock in vault_locks(resources):
        name, region = _name(vault), vault.get("region")
        if lock is not None:
            grace = _days(lock["inputs"].get("changeableForDays"))
            minimum = _days(lock["inputs"].get("minRetentionDays"))
            add(
                Blocker(
                    "vault-lock",
                    lock["urn"],
                    _name(lock),
                    region,
                    "the lock stops the deletion of the vault and of its recovery points",
                    lock_consequence(name, grace, minimum),
                    "vault-locks",
                    wait_days=grace,
                    permanent=grace is not None,
                )
            )
        add(
            Blocker(
                "backup-vault",
                vault["urn"],
                name,
                region,
                "AWS deletes a backup vault only when it holds no recovery point",
                f"until its recovery points are deleted (else they expire after {retention} days, the plan's lifecycle)"
                if retention
                else "until its recovery points are deleted",
                "recovery-points",
                wait_days=retention or None,
            )
        )
    versioned = {
        dep
        for r in resources
        if r["type"] == BUCKET_VERSIONING and (r["inputs"].get("versioningConfiguration") or {}).get("status") == "Enabled"
        for dep in r.get("dependencies", ())
    }
    for r in resources:
        kind, inputs, name, region = r["type"], r["inputs"], _name(r), r.get("region")
        if kind == BUCKET and not inputs.get("forceDestroy"):
            add(
                Blocker(
                    "bucket",
                    r["urn"],
                    name,
                    region,
                    "S3 deletes only an empty bucket"
                    + (": every object version and delete marker" if r["urn"] in versioned else ""),
                    "until emptied by hand (force_destroy is off: meridian:teardown.force_delete)",
                    "empty-storage",
                )
            )
        elif kind == ECR_REPOSITORY and not inputs.get("forceDelete"):
            add(
                Blocker(
                    "image-repository",
                    r["urn"],
                    name,
                    region,
                    "ECR deletes a repository only when it holds no image",
                    "until its images are deleted (force_delete is off: meridian:teardown.force_delete)",
                    "empty-storage",
                )
            )
        elif kind in (GLOBAL_CLUSTER, DB_CLUSTER, DB_INSTANCE) and inputs.get("deletionProtection"):
            snapshot = inputs.get("finalSnapshotIdentifier") if not inputs.get("skipFinalSnapshot") else None
            add(
                Blocker(
                    "database",
                    r["urn"],
                    name,
                    region,
                    "RDS refuses to delete it while deletion protection is on"
                    + (f"; deleting it leaves the final snapshot {snapshot}" if snapshot else ""),
                    "minutes: until deletion protection is turned off",
                    "deletion-protection",
                )
            )
        elif kind == ZONE:
            add(
                Blocker(
                    "hosted-zone",
                    r["urn"],
                    name,
                    region,
                    "Route 53 deletes a zone only when it holds no records but its SOA and NS",
                    "until the other records (and the parent's delegation) are removed",
                    "empty-storage",
                )
            )
        elif kind == KMS_KEY:
            window = _days(inputs.get("deletionWindowInDays"), KMS_DEFAULT_WINDOW_DAYS)
            add(
                Blocker(
                    "kms-key",
                    r["urn"],
                    name,
                    region,
                    f"protected, it encrypts: {inputs.get('description') or 'no description'}",
                    f"{window} days pending deletion after destroy",
                    "keys",
                    wait_days=window,
                )
            )
        elif kind == SECRET:
            window = _days(inputs.get("recoveryWindowInDays"), 30)
            add(
                Blocker(
                    "secret",
                    r["urn"],
                    name,
                    region,
                    f"Secrets Manager keeps a deleted secret (and its name) for {window} days",
                    f"{window} days: a secret of the same name cannot be created until then",
                    "after",
                    wait_days=window,
                )
            )
        elif kind == COST_ALLOCATION_TAG:
            add(
                Blocker(
                    "cost-allocation-tag",
                    r["urn"],
                    name,
                    region,
                    f"destroy deactivates {inputs.get('tagKey')} for the whole account (other stacks' budgets included)",
                    "none; reactivate from the stack that takes over (cost.activate_cost_allocation_tags)",
                    "after",
                )
            )
        if r.get("protect") and r.get("custom", True):
            add(
                Blocker(
                    "protected",
                    r["urn"],
                    name,
                    region,
                    "Pulumi refuses to delete a protected resource",
                    "until `pulumi state unprotect`",
                    "unprotect",
                )
            )
    report.blockers.sort(key=lambda b: (STEP_KEYS.index(b.step), b.kind, b.urn))
    return report


def _pool_prefixes(resources: list[Mapping[str, Any]], cfg: StackConfig, add) -> None:
    """A cell's pool tenants' prefixes in the platform's pool buckets, one per region: they outlive the cell."""
    slices = {r["name"]: r["urn"] for r in resources if r["type"] == "meridian:tenant:Tenant"}
    for tenant in (t for t in cfg.tenants if t.data_tier == "pool"):
        for _, spec in cfg.regions.both:
            urn = next((u for n, u in slices.items() if n.endswith(f"-{spec.region}-t-{tenant.id}")), None)
            if urn is None:
                continue
            add(
                Blocker(
                    "pool-prefix",
                    urn,
                    tenant_data_prefix(tenant.id),
                    spec.region,
                    f"{cfg.platform}'s pool bucket keeps the tenant's objects: destroying the cell deletes none",
                    "for good (billed), unreadable once the tenant's key's deletion window ends",
                    "pool-objects",
                )
            )


# --- the preflight check ---------------------------------------------------------------------------


def check_teardown(ctx: Context) -> CheckResult:
    cfg = ctx.cfg
    result = CheckResult(
        "teardown",
        f"Backup Vault Lock: compliance mode is immutable after ChangeableForDays and its vault can never be deleted "
        f"({VAULT_LOCK_DOC}); S3 DeleteBucket needs an empty bucket, ECR DeleteRepository one without images "
        "(pulumi-aws force_destroy / force_delete empty them first)",
    )
    resources = ctx.plan.resource_dicts
    wanted = cfg.vault_lock_changeable_days
    for vault, lock in vault_locks(resources):
        result.checked += 1
        if lock is None:
            result.findings.append(
                Finding(vault["urn"], "a backup vault without a vault lock", "lock every vault (components.dr)")
            )
            continue
        grace = _days(lock["inputs"].get("changeableForDays"))
        minimum = _days(lock["inputs"].get("minRetentionDays"))
        if grace != wanted:
            plan_mode = "governance" if grace is None else f"compliance after {grace} days"
            cfg_mode = "governance" if wanted is None else f"compliance after {wanted} days"
            result.findings.append(
                Finding(
                    lock["urn"],
                    f"the plan locks the vault in {plan_mode}, the config asks {cfg_mode} "
                    "(meridian:dr.vault_lock_mode, dr.vault_lock_grace_days)",
                    "pass the config's resolved mode (StackConfig.vault_lock_changeable_days) to the vault lock",
                )
            )
        result.notes.append(lock_consequence(_name(vault), grace, minimum))
    for r in resources:
        flag = {BUCKET: "forceDestroy", ECR_REPOSITORY: "forceDelete"}.get(r["type"])
        if flag is None:
            continue
        result.checked += 1
        if bool(r["inputs"].get(flag)) != cfg.force_delete:
            result.findings.append(
                Finding(
                    r["urn"],
                    f"{flag} is {bool(r['inputs'].get(flag))}, the config's meridian:teardown.force_delete resolves to "
                    f"{cfg.force_delete}",
                    "pass StackConfig.force_delete to the bucket / repository",
                )
            )
    return result
