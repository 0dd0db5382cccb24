"""The AWS account: pinned for production stacks, and the cluster's roles inside it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def problems(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    has = s.keys().__contains__
    if s.get("production") and not s.get("aws_account_id"):
        out.append(("aws_account_id", "required for a production stack: every provider is pinned to it (allowed_account_ids)"))
    account = s.get("aws_account_id")
    if account and has("cluster"):
        roles = [("cluster.deploy_role_arn", s["cluster"].deploy_role_arn)]
        roles += [(f"cluster.operator_role_arns[{i}]", a) for i, a in enumerate(s["cluster"].operator_role_arns)]
        roles += [(f"cluster.viewer_role_arns[{i}]", a) for i, a in enumerate(s["cluster"].viewer_role_arns)]
        roles += [(f"cluster.pr_viewer_role_arns[{i}]", a) for i, a in enumerate(s["cluster"].pr_viewer_role_arns)]
        for key, arn in roles:
            if arn and arn.split(":")[4] != account:
                out.append((key, f"{arn} is in account {arn.split(':')[4]}, not the stack's aws_account_id {account}"))
    return out
