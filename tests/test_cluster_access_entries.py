"""EKS access entries are named by their principal (review aws-19, finding 9): EKS allows one entry per
principal and cluster, and an entry renamed for the same principal is created before the old one is
deleted, so reordering or extending the role lists must leave every principal's entry under its name.
The names entries had by list position stay as aliases, so stacks brought up before keep theirs."""

from __future__ import annotations

import json
import subprocess
import textwrap

from components.cluster import access_key

from .helpers import ROOT

DEPLOY = "arn:aws:iam::123456789012:role/deploy"
OPS = ["arn:aws:iam::123456789012:role/ops-a", "arn:aws:iam::123456789012:role/ops-b"]
PLAN = "arn:aws:iam::123456789012:role/plan"
SUPPORT = "arn:aws:iam::123456789012:role/support"
PREVIEW = "arn:aws:iam::123456789012:role/preview"


def _entries(*, operators: list[str], viewers: list[str], pr_viewers: list[str]) -> dict[str, dict]:
    """Build one Cluster under the engine's mocks in a fresh process; every access entry and policy
    association it makes: name -> principal, policy and the names it aliases."""
    script = textwrap.dedent(
        f"""
        import asyncio, json
        import pulumi, pulumi_aws as aws
        from pulumi.runtime.stack import run_pulumi_func
        from meridian.engine.mocks import MeridianMocks
        from components.cluster import Cluster, ClusterArgs
        loop = asyncio.new_event_loop(); asyncio.set_event_loop(loop)
        pulumi.runtime.set_mocks(MeridianMocks("us-east-1"), project="meridian", stack="t", preview=True, organization="organization")
        seen = {{}}
        for cls in (aws.eks.AccessEntry, aws.eks.AccessPolicyAssociation):
            def recording(self, resource_name, *a, __init=cls.__init__, **kw):
                opts = kw.get("opts")
                seen[resource_name] = {{
                    "principal": kw["principal_arn"],
                    "policy": kw.get("policy_arn"),
                    "aliases": [alias.name for alias in (opts.aliases or [])],
                }}
                __init(self, resource_name, *a, **kw)
            cls.__init__ = recording
        args = ClusterArgs(
            region="us-east-1", private_subnet_ids=["subnet-a", "subnet-b"], version="1.33", node_instance_types=["m7g.large"],
            node_ami_type="AL2023_ARM_64_STANDARD", node_min=1, node_desired=1, node_max=2, vpc_id="vpc-1",
            deploy_role_arn={DEPLOY!r}, public_access_cidrs=["203.0.113.0/24"], operator_role_arns={operators!r},
            viewer_role_arns={viewers!r}, pr_viewer_role_arns={pr_viewers!r},
        )
        loop.run_until_complete(run_pulumi_func(lambda: Cluster("c", args)))
        print(json.dumps(seen))
        """
    )
    proc = subprocess.run([str(ROOT / ".venv/bin/python"), "-c", script], capture_output=True, text=True, timeout=180, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _by_principal(entries: dict[str, dict]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name, e in entries.items():
        out.setdefault(e["principal"], set()).add(name)
    return out


def test_reordering_the_role_lists_keeps_every_principals_entry_names():
    before = _entries(operators=OPS, viewers=[PLAN, SUPPORT], pr_viewers=[PREVIEW])
    after = _entries(operators=OPS[::-1], viewers=[SUPPORT, PLAN], pr_viewers=[PREVIEW])
    assert _by_principal(before) == _by_principal(after)
    # every principal has its own entry (and its association), none shared
    assert sorted(map(len, _by_principal(before).values())) == [2] * 6
    # the policy follows the list a principal is on, under the same names
    assert {n: e["policy"] for n, e in before.items()} == {n: e["policy"] for n, e in after.items()}


def test_adding_a_pull_request_viewer_in_front_renames_no_existing_entry():
    before = _by_principal(_entries(operators=[], viewers=[PLAN], pr_viewers=[]))
    after = _by_principal(_entries(operators=[], viewers=[PLAN], pr_viewers=[PREVIEW]))
    assert after[PLAN] == before[PLAN]
    assert not after[PREVIEW] & before[PLAN]


def test_entries_alias_the_names_they_had_by_position():
    entries = _entries(operators=OPS, viewers=[PLAN, SUPPORT], pr_viewers=[PREVIEW])
    # pull-request viewers came first, then the other viewers; operators after the deploy role
    positions = {PREVIEW: "viewer-0", PLAN: "viewer-1", SUPPORT: "viewer-2", OPS[0]: "operator-0", OPS[1]: "operator-1"}
    for principal, old in positions.items():
        kind = old.split("-")[0]
        entry = f"c-access-{access_key(kind, principal)}"
        grant = f"{entry}-view" if kind == "viewer" else f"{entry}-admin"
        assert entries[entry]["aliases"] == [f"c-access-{old}"], entry
        assert entries[grant]["aliases"] == [f"c-access-{old}-{'view' if kind == 'viewer' else 'admin'}"], grant
    # the deploy role's entry kept its name all along
    assert entries["c-access-deploy"]["aliases"] == [] and entries["c-access-deploy"]["principal"] == DEPLOY


def test_the_key_is_the_principals_not_its_position():
    assert access_key("viewer", PLAN) == access_key("viewer", PLAN) != access_key("viewer", SUPPORT)
    assert access_key("viewer", PLAN).startswith("viewer-") and len(access_key("viewer", PLAN)) == len("viewer-") + 8
