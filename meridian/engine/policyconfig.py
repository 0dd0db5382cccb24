"""The stack's policy config (`policies/config/<stack>.json`) generated from its stack config.

The residency zone's regions, the dr region and the failover-alarm exception have one source of
truth: `Pulumi.<stack>.yaml` (through components.config, and components.failover for where Route 53
publishes health-check metrics). `meridian policy --stack S --write-config` writes the file the
real CLI takes (`pulumi preview --policy-pack-config`); every preview refuses a file that has
drifted from what the stack config generates, naming both files and the command that fixes it.
The pack itself stays free of project imports: it only ever reads the generated JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from meridian.errors import BadInput

# The organisation's floor for automated database backups (days): a policy setting of its own, not
# a copy of the stack's `database.backup_retention_days` (the rule checks that value against it).
MIN_BACKUP_RETENTION_DAYS = 14


def generate(cfg: Any) -> dict[str, Any]:
    """policy name -> level / settings, from a validated StackConfig."""
    from components.failover import METRICS_REGION, METRICS_TYPES  # where Route 53 health-check metrics live

    allowed = list(cfg.allowed_regions)
    exceptions = []
    if METRICS_REGION not in allowed:
        exceptions.append({"region": METRICS_REGION, "component": "meridian:failover:Failover", "types": list(METRICS_TYPES),
                           "why": "Route 53 publishes health-check metrics only in us-east-1: the failover alarms, their topic and its key live there"})
    return {
        "aws-resource-region-allowed": {"enforcementLevel": "mandatory", "allowedRegions": allowed, "regionExceptions": exceptions},
        "aws-replication-destination-allowed": {"enforcementLevel": "mandatory", "allowedRegions": allowed},
        "rds-database-dr-member": {"enforcementLevel": "mandatory", "drRegion": cfg.regions.dr.region},
        "rds-backup-retention-sufficient": {"enforcementLevel": "mandatory", "minRetentionDays": MIN_BACKUP_RETENTION_DAYS},
        "aws-resource-required-tags": {"enforcementLevel": "mandatory"},
        "budgets-stack-budget-exists": "mandatory",
    }


def render(cfg: Any) -> str:
    return json.dumps(generate(cfg), indent=2) + "\n"


def drift(path: Path, cfg: Any, stack: str) -> str | None:
    """Why the checked-in file differs from what the stack config generates, or None."""
    expected = generate(cfg)
    try:
        current = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing or unreadable: load_policy_config reports it
    if current == expected:
        return None
    keys = sorted(k for k in set(current) | set(expected) if current.get(k) != expected.get(k))
    return (f"{path.name} is out of date with Pulumi.{stack}.yaml (differs in: {', '.join(keys)}); the regions, dr region and "
            f"exceptions come from the stack config: run `meridian policy --stack {stack} --write-config`")


def require_current(project_dir: Path, path: Path, cfg: Any, stack: str) -> None:
    problem = drift(path, cfg, stack)
    if problem:
        raise BadInput(f"{path.relative_to(project_dir)}: {problem}")
