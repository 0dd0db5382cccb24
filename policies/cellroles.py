"""A cell judged alone and its platform's tenant role: which role ARN can be that role, and no cell
changes that role's permissions.

A cell's tenants get the platform's tenant role, read from the platform's `cell_handles` output at
`pulumi up`; the cell's plan never holds that role. Its generated policy config pins what the
platform's stack file fixes: the role's logical names (`platformTenantRoles`, one per region) and path
(`platformTenantRolePath`); the cell's own AWS providers pin the account (`allowedAccountIds`: a pod
identity association's role is in the cluster's account) and the partition. The role is auto-named
(components.naming.tenant_role_name): its name is the logical name plus Pulumi's 7-hex suffix, which
only the platform's `pulumi up` fixes. So an ARN differing in partition, account, path or name is
provably not the platform's role (a violation); one matching all of them may still carry another
suffix (a look-alike someone created), which no plan of the cell can tell: an advisory naming it.
"""

from __future__ import annotations

import re
from typing import Any

from destinations import stack_accounts
from ruleutil import (
    AWS_PROVIDER,
    POLICY_ATTACHMENT,
    ROLE,
    ROLE_ATTACHMENT,
    ROLE_ATTACHMENTS_EXCLUSIVE,
    ROLE_POLICY,
    InPlatform,
    Stack,
    as_list,
    judge_each,
    known,
    peek,
    resource_region,
)

_ROLE_ARN = re.compile(r"^arn:(aws[\w-]*):iam::(\d{12}):role(/(?:[^/]+/)*)([^/]+)$")
_AUTONAME = re.compile(r"^(.+)-[0-9a-f]{7}$")  # Pulumi's auto-name: `<logical name>-<7 hex>`
# what grants a role permissions, and the property naming the role(s)
ROLE_GRANTS = {ROLE_POLICY: "role", ROLE_ATTACHMENT: "role", POLICY_ATTACHMENT: "roles", ROLE_ATTACHMENTS_EXCLUSIVE: "roleName"}


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def named_like(value: str, names: list[str]) -> bool:
    """`value` (a role name or ARN) carries one of `names` (logical names), with or without a suffix."""
    name = value.rsplit("/", 1)[-1]
    auto = _AUTONAME.match(name)
    return name in names or bool(auto and auto.group(1) in names)


class PlatformRoles:
    """What the cell's config and providers pin of the platform's tenant roles."""

    def __init__(self, stack: Stack, config: dict):
        self.names = [str(n) for n in config.get("platformTenantRoles") or []]
        path = config.get("platformTenantRolePath")
        self.path = "/" + str(path).strip("/") + "/" if path and str(path).strip("/") else ("/" if path else None)
        self.accounts = stack_accounts(stack)
        self.partitions = {_partition(r) for p in stack.of(AWS_PROVIDER) if (r := resource_region(p))}

    def named_like(self, value: str) -> bool:
        return named_like(value, self.names)

    def judge(self, arn: str) -> tuple[str | None, list[str]]:
        """(why `arn` is provably not a platform tenant role, or None; what of it the cell cannot check)."""
        m = _ROLE_ARN.match(arn)
        if not m:
            return f"{arn} is no IAM role ARN", []
        partition, account, path, name = m.groups()
        auto = _AUTONAME.match(name)
        if not auto or auto.group(1) not in self.names:
            return f"{arn} is not named `<{' | '.join(self.names)}>-<7 hex>` (the platform's role is auto-named)", []
        if self.partitions and partition not in self.partitions:
            return f"{arn} is in partition {partition}, not the cell's ({', '.join(sorted(self.partitions))})", []
        if self.accounts and account not in self.accounts:
            return f"{arn} is in account {account}, not the cell's and its cluster's ({', '.join(sorted(self.accounts))})", []
        if self.path is not None and path != self.path:
            return f"{arn} has path {path}, not the platform tenant role's {self.path}", []
        unknown = [f"whether the auto-name suffix `{name[-7:]}` is the one the platform's `pulumi up` gave its role"]
        if not self.accounts:
            unknown.append(f"whether account {account} is the platform's (the cell's providers pin no `allowedAccountIds`)")
        if self.path is None:
            unknown.append(f"whether path {path} is the platform tenant role's (no `platformTenantRolePath` in the config)")
        return None, unknown

    def disagreements(self, users: dict[str, list[Any]], platform: str) -> list[tuple[str | None, str]]:
        """Associations naming different suffixes of one platform role: at most one suffix is the platform's,
        so each association in the minority (all of them on a tie) names a role that is provably not it."""
        by_role: dict[tuple[str, str], dict[str, list[Any]]] = {}
        for arn, assocs in users.items():
            m = _ROLE_ARN.match(arn)
            if m:
                by_role.setdefault((m.group(3), m.group(4)[:-8]), {})[arn] = assocs
        out = []
        for (_, base), arns in sorted(by_role.items()):
            if len(arns) < 2:
                continue
            most = max(len(a) for a in arns.values())
            leaders = [arn for arn, a in arns.items() if len(a) == most]
            for arn, assocs in sorted(arns.items()):
                if len(leaders) == 1 and arn == leaders[0]:
                    continue
                others = ", ".join(sorted(a for a in arns if a != arn))
                out += [
                    (
                        assoc.urn,
                        f"Pod identity association {assoc.name} of a cell must name its platform {platform!r}'s tenant "
                        f"role {base} by the one ARN the platform gave it: it names {arn}, other associations of the cell "
                        f"name {others}, and at most one of them is that role",
                    )
                    for assoc in assocs
                ]
        return out


def check_platform_role_grants(stack: Stack, config: dict, platform: str) -> list[tuple[str | None, Any]]:
    """A RolePolicy or policy attachment of a cell on a role named like its platform's tenant role."""
    roles = PlatformRoles(stack, config)
    if not roles.names:
        return []

    def judge(grant: Any) -> list[tuple[str | None, Any]]:
        prop = ROLE_GRANTS[grant.resource_type]
        if stack.linked(grant, prop, ROLE):
            return []  # a role the cell defines: judged with its plan
        named = [v for v in as_list(known(peek(grant.props, prop))) if isinstance(v, str) and roles.named_like(v)]
        return [
            (
                grant.urn,
                f"{grant.resource_type.rsplit(':', 1)[-1]} {grant.name} of a cell must not change the permissions of its "
                f"platform {platform!r}'s tenant role ({v}, or a role named like it): every tenant of the zone, the "
                "platform's and each cell's, holds that role, so whatever it grants reaches all of them; the platform's "
                "plan alone defines that role's policies",
            )
            for v in named
        ]

    return judge_each(stack.of(*ROLE_GRANTS), judge)


def suffix_note(config: dict, arn: str, unknown: list[str], users: list[str]) -> InPlatform | str:
    """The advisory for a role ARN that matches all the cell can pin of the platform's tenant role."""
    return InPlatform.note(
        config,
        f"unverifiable here: {arn} (named by {', '.join(users)}) matches all the cell pins of its platform's tenant "
        f"role, but not {'; nor '.join(unknown)} (the platform's `cell_handles` output gives that role's ARN at `pulumi up`)",
    )
