"""After a platform's `up`: every EKS cluster of its plan ready for tenants (review aws-19 finding 8).

The zone's SLO gate probes the service, which runs on the platform's own clusters (pair 0); nothing
on a tenant cluster pair's clusters is on its path, so a pair whose nodes never joined, or whose
add-ons (the network policy agent, the Pod Identity agent) are broken, passes it. This asks EKS,
read-only, for each cluster the plan builds (the platform's own and every pair's):
- the cluster is `ACTIVE` (DescribeCluster);
- it has the plan's managed node groups, each `ACTIVE` with no health issue (ListNodegroups,
  DescribeNodegroup): a node group becomes `ACTIVE` once its nodes joined; nodes that cannot join
  leave it `CREATE_FAILED` or `DEGRADED` with an issue such as `NodeCreationFailure`;
- every add-on of the plan is `ACTIVE` with no health issue (DescribeAddon).
An answer it cannot get (no credentials, access denied) is a finding, never a pass.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from meridian.preflight.context import CheckResult, Context, Finding
from meridian.preflight.online import Aws

ENCODES = (
    "each EKS cluster of the plan ACTIVE, its managed node groups ACTIVE with no health issue (a node group is "
    "ACTIVE once its nodes joined: https://docs.aws.amazon.com/eks/latest/APIReference/API_Nodegroup.html, "
    "NodegroupHealth issues), its add-ons ACTIVE with no health issue "
    "(https://docs.aws.amazon.com/eks/latest/APIReference/API_Addon.html, AddonHealth)"
)
CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
FIX_UNREADABLE = "run with credentials that may read EKS (the plan role of docs/ci.md holds ReadOnlyAccess)"


def _issues(health: dict[str, Any] | None) -> str:
    issues = (health or {}).get("issues") or []
    return "; ".join(f"{i.get('code')}: {i.get('message')}" for i in issues)


def _not_found(error: Exception) -> bool:
    return getattr(error, "response", {}).get("Error", {}).get("Code") == "ResourceNotFoundException"


def check_cluster_readiness(ctx: Context, aws: Aws) -> CheckResult:
    result = CheckResult("cluster-readiness", ENCODES)
    groups: Counter[str] = Counter(str(ctx.inputs[r.urn].get("clusterName")) for r in ctx.of_type(NODE_GROUP))
    addons: dict[str, list[str]] = defaultdict(list)
    for r in ctx.of_type(ADDON):
        addons[str(ctx.inputs[r.urn].get("clusterName"))].append(str(ctx.inputs[r.urn].get("addonName")))
    for cluster in ctx.of_type(CLUSTER):
        name = str(ctx.inputs[cluster.urn].get("name"))
        eks = aws.client("eks", ctx.plan.region_of(cluster))
        result.checked += 1
        try:
            status = eks.describe_cluster(name=name)["cluster"]["status"]
        except Exception as e:  # noqa: BLE001 - any failure to answer is reported, never a pass
            missing = _not_found(e)
            result.findings.append(
                Finding(
                    cluster.urn,
                    f"cluster {name}: " + ("not found: `up` did not create it" if missing else f"could not read it: {e}"),
                    "run `pulumi up` of the platform again and read its errors" if missing else FIX_UNREADABLE,
                )
            )
            continue
        if status != "ACTIVE":
            result.findings.append(
                Finding(cluster.urn, f"cluster {name} is {status}, not ACTIVE", "wait for it, or read its events in EKS")
            )
            continue
        _node_groups(result, eks, cluster.urn, name, groups[name])
        for addon in sorted(addons[name]):
            _addon(result, eks, cluster.urn, name, addon)
    if not result.checked:
        result.notes.append("the plan builds no EKS cluster: nothing to ask")
    return result


def _node_groups(result: CheckResult, eks: Any, urn: str, cluster: str, planned: int) -> None:
    try:
        names = [n for page in eks.get_paginator("list_nodegroups").paginate(clusterName=cluster) for n in page["nodegroups"]]
        found = [eks.describe_nodegroup(clusterName=cluster, nodegroupName=n)["nodegroup"] for n in names]
    except Exception as e:  # noqa: BLE001 - any failure to answer is reported, never a pass
        result.findings.append(Finding(urn, f"cluster {cluster}: could not read its node groups: {e}", FIX_UNREADABLE))
        return
    if len(found) < planned:
        result.findings.append(
            Finding(
                urn,
                f"cluster {cluster} has {len(found)} managed node group(s), the plan {planned}: no nodes run its pods",
                "run `pulumi up` of the platform again and read the node group's errors",
            )
        )
    for group in found:
        issues = _issues(group.get("health"))
        if group.get("status") != "ACTIVE" or issues:
            result.findings.append(
                Finding(
                    urn,
                    f"cluster {cluster}: node group {group.get('nodegroupName')} is {group.get('status')}"
                    + (f" ({issues})" if issues else ""),
                    "fix what the health issue names (subnets, node role, instance quota: `meridian preflight` counts "
                    "vCPUs), then update the node group",
                )
            )


def _addon(result: CheckResult, eks: Any, urn: str, cluster: str, addon: str) -> None:
    try:
        found = eks.describe_addon(clusterName=cluster, addonName=addon)["addon"]
    except Exception as e:  # noqa: BLE001 - any failure to answer is reported, never a pass
        missing = _not_found(e)
        result.findings.append(
            Finding(
                urn,
                f"cluster {cluster}: add-on {addon} " + ("not installed" if missing else f"could not be read: {e}"),
                "run `pulumi up` of the platform again" if missing else FIX_UNREADABLE,
            )
        )
        return
    issues = _issues(found.get("health"))
    if found.get("status") != "ACTIVE" or issues:
        result.findings.append(
            Finding(
                urn,
                f"cluster {cluster}: add-on {addon} is {found.get('status')}" + (f" ({issues})" if issues else ""),
                "fix what the health issue names (`aws eks describe-addon`), then update the add-on",
            )
        )
