"""The fixed choices of the CLI's options, as enums so `--help` lists them and a bad value exits 2
naming the allowed ones.

Kept free of imports: the CLI declares its options from here before any command runs. Each enum
mirrors the tuple its module validates against (tests/test_cli.py fails when they drift).
"""

from __future__ import annotations

from enum import StrEnum


class Target(StrEnum):
    """Where a command acts: the local region pair, or the stack's AWS outputs (`meridian.targets.TARGET_KINDS`)."""

    sandbox = "sandbox"
    aws = "aws"


class Shape(StrEnum):
    """A load shape: a stage table in loadtests/loadshapes.py (`meridian.slo.run.SHAPES`)."""

    flat = "flat"
    steady = "steady"
    spike = "spike"
    soak = "soak"


class DrillName(StrEnum):
    """A DR drill of the catalog (`meridian.drills.catalog.DRILLS`)."""

    region_failover = "region-failover"
    database_failover = "database-failover"
    failback = "failback"
    restore_from_backup = "restore-from-backup"


class DrillMode(StrEnum):
    """How `database-failover` fails over (`meridian.drills.catalog.MODES`)."""

    planned = "planned"
    unplanned = "unplanned"
