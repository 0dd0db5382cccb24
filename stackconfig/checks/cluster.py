"""The EKS clusters: node group sizes, and a Kubernetes API `pulumi up` can reach without opening it to the internet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def problems(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    has = s.keys().__contains__
    if has("cluster"):
        cl = s["cluster"]
        if not cl.node_min <= cl.node_desired <= cl.node_max:
            out.append(
                (
                    "cluster",
                    f"node sizes must satisfy node_min <= node_desired <= node_max (got {cl.node_min}, {cl.node_desired}, {cl.node_max})",
                )
            )
        nodes = cl.tenant_nodes
        if nodes is not None and not nodes.min <= nodes.desired <= nodes.max:
            out.append(
                (
                    "cluster.tenant_nodes",
                    f"node sizes must satisfy min <= desired <= max (got {nodes.min}, {nodes.desired}, {nodes.max})",
                )
            )
        for i, cidr in enumerate(cl.public_access_cidrs):
            if cidr.prefixlen == 0:
                out.append(
                    (
                        f"cluster.public_access_cidrs[{i}]",
                        "0.0.0.0/0 opens the Kubernetes API to the internet; list operator CIDRs or leave empty for private only",
                    )
                )
        if cl.api_access == "public-restricted" and not cl.public_access_cidrs:
            out.append(
                (
                    "cluster.public_access_cidrs",
                    "api_access public-restricted needs the runner's egress CIDRs here, or the "
                    "Kubernetes API is unreachable from `pulumi up`; or set api_access: private-runner",
                )
            )
        if cl.api_access == "private-runner" and not cl.runner_cidrs:
            out.append(
                ("cluster.runner_cidrs", "api_access private-runner needs the runner's network (routed into both VPCs) here")
            )
        if not cl.deploy_role_arn:
            out.append(
                (
                    "cluster.deploy_role_arn",
                    "required: the role `pulumi up` runs as; it gets cluster admin through an EKS "
                    "access entry (the creator gets no implicit admin), e.g. arn:aws:iam::<account>:role/meridian-deploy",
                )
            )
        if cl.api_access == "private-runner" and cl.public_access_cidrs:
            out.append(
                ("cluster.public_access_cidrs", "must be empty with api_access private-runner (the endpoint is private only)")
            )
    return out
