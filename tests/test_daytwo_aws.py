"""Day two on AWS (the second AWS review's N4-N7): what the next `up`, the drift job and the plan job
meet once the stack has run for a while. Each test reads the rendered plans or the config models."""

from __future__ import annotations

import pytest

from stackconfig import ConfigError, parse_config
from tests.helpers import STACKS, of_type, small_raw_config

RDS_VERSIONED = (
    "aws:rds/globalCluster:GlobalCluster",
    "aws:rds/cluster:Cluster",
    "aws:rds/clusterInstance:ClusterInstance",
    "aws:rds/instance:Instance",
)


# --- N6: minor versions are AWS's ----------------------------------------------------------------------


@pytest.mark.parametrize("stack", STACKS)
def test_every_database_member_names_the_major_version_only(previews, stack):
    """Members upgrade their minor version themselves (auto_minor_version_upgrade): a pinned minor
    is a difference the next `up` after an AWS upgrade tries to undo."""
    members = [r for t in RDS_VERSIONED for r in of_type(previews[stack].plan, t)]
    assert len(members) >= 3
    for member in members:
        inputs = member["inputs"]
        assert str(inputs["engineVersion"]).isdigit(), f"{member['urn']}: engine version {inputs['engineVersion']} pins a minor"
        if member["type"] != "aws:rds/globalCluster:GlobalCluster" and member["type"] != "aws:rds/cluster:Cluster":
            assert inputs.get("autoMinorVersionUpgrade") is True, f"{member['urn']}: who applies the minor versions?"


def test_a_pinned_minor_version_is_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        parse_config(small_raw_config(database={"engine": "postgres", "engine_version": "16.4"}))
    assert "meridian:database.engine_version" in str(err.value)
    assert parse_config(small_raw_config(database={"engine": "postgres", "engine_version": "17"})).database.engine_version == "17"


def test_the_component_refuses_a_minor_version_too():
    from components.database import DatabaseRegion, ReplicatedDatabaseArgs

    side = {"provider": None, "vpc_id": "vpc", "data_subnet_ids": [], "client_security_group_id": "sg", "cidr": "10.0.0.0/16"}
    with pytest.raises(ValueError, match="major version only"):
        ReplicatedDatabaseArgs(
            engine="postgres",
            engine_version="16.4",
            instance_class="db.r6g.large",
            readers=0,
            backup_retention_days=35,
            primary=DatabaseRegion(region="us-east-1", **side),
            dr=DatabaseRegion(region="us-west-2", **side),
        )
