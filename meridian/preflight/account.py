"""Preflight of an AWS account: every stack deploying into it, judged together.

A stack's own preflight (`quotas`, `limits`) sees one plan. What AWS counts per account, per region
or per cluster is the sum over every stack in the account: the platform stacks of several zones
(three zones may share one account) and their cells, which add tenants' budgets, keys, buckets and
Pod Identity associations to the platform's clusters. Here the plans of those stacks are put
together into one union plan (URNs carry the stack, so nothing collides) and the per-stack rules are
asked once more of the union: each quota of `quotas.QUOTAS` whose scope several stacks reach
(account, region, cluster, hosted zone), and the document limits of `limits`, whose per-role and
per-bucket totals then cross stacks (a cell's policy on a platform role, a second replication
configuration for one bucket).

Which account a stack deploys into is its `meridian:aws_account_id` (a cell's is its platform's),
the value every AWS provider of the stack gets as `allowed_account_ids` (pulumi-aws 7 provider
config: credentials of any other account stop `up`; the `account` check holds every provider to it).
A stack without one may deploy into any account: it is counted in every account, and an account
view whose stacks name none assumes they all share one account, and says so.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format, struct_pb2

from meridian.engine.plan import Plan
from meridian.engine.recorder import Registration
from meridian.preflight import limits, quotas
from meridian.preflight.context import CheckResult, Context, Finding
from stackconfig import StackConfig

PROVIDER_ID = "id"  # provider ids are not in the plan JSON; only their URNs are read
ACCOUNT_SCOPES = ("account", "region", "cluster", "hosted zone")  # what stacks of one account share


@dataclass(frozen=True)
class AccountStack:
    stack: str
    cfg: StackConfig
    plan: Plan


@dataclass(frozen=True)
class Account:
    """The stacks judged together: those naming `account_id`, plus those naming none (`assumed`)."""

    account_id: str | None  # None: no stack names an account; all are assumed to share one
    stacks: list[AccountStack]
    assumed: list[str] = field(default_factory=list)  # stacks without meridian:aws_account_id, counted in

    @property
    def label(self) -> str:
        return f"account {self.account_id}" if self.account_id else "one assumed account"


def account_of(cfg: StackConfig) -> str | None:
    """The account a stack deploys into (a cell's config carries its platform's)."""
    return cfg.aws_account_id


def group_accounts(cfgs: Mapping[str, StackConfig]) -> dict[str | None, tuple[list[str], list[str]]]:
    """Account id -> (stacks naming it, stacks naming none: counted in each account). No stack names
    an account: one group, None, of every stack."""
    unknown = [s for s, c in cfgs.items() if account_of(c) is None]
    named: dict[str, list[str]] = {}
    for stack, cfg in cfgs.items():
        if (account := account_of(cfg)) is not None:
            named.setdefault(account, []).append(stack)
    if not named:
        return {None: ([], unknown)}
    return {account: (stacks, unknown) for account, stacks in sorted(named.items())}


# --- plans ----------------------------------------------------------------------------------------------


def plan_from_document(document: Mapping[str, Any]) -> Plan:
    """A plan JSON (`meridian preview --json`) back as a Plan: what the account checks read
    (types, inputs, providers, regions). Secrets stay redacted, resource ids are not in the JSON."""
    registrations = []
    for r in document["resources"]:
        inputs = struct_pb2.Struct()
        json_format.ParseDict(r.get("inputs") or {}, inputs)
        registrations.append(
            Registration(
                urn=r["urn"],
                type=r["type"],
                name=r["name"],
                custom=bool(r["custom"]),
                parent=r.get("parent") or "",
                # the JSON keeps the provider's URN; a registration's reference is `<urn>::<id>`
                provider=f"{r['provider']}::{PROVIDER_ID}" if r.get("provider") else "",
                dependencies=list(r.get("dependencies") or []),
                property_dependencies={k: list(v) for k, v in (r.get("propertyDependencies") or {}).items()},
                wire=inputs.SerializeToString(),
                protect=bool(r.get("protect")),
            )
        )
    return Plan(str(document.get("project", "meridian")), str(document["stack"]), registrations, {})


def union_context(account: Account) -> Context:
    """One context over every stack of the account (config: the first stack's; the account checks
    read each stack's quota settings themselves)."""
    registrations = [r for s in account.stacks for r in s.plan.registrations]
    plan = Plan("meridian", account.label, registrations, {})
    # each stack's plain inputs as its own plan made them (URNs are distinct across stacks)
    inputs = {r["urn"]: r["inputs"] for s in account.stacks for r in s.plan.resource_dicts}
    return Context(plan, account.stacks[0].cfg, inputs)


# --- quotas ---------------------------------------------------------------------------------------------


def _adjustable(quota: quotas.Quota) -> str:
    if quota.code is None:
        return "no Service Quotas code to request: planned as fixed"
    return f"adjustable ({quota.code}" + (f", up to {quota.maximum:,})" if quota.maximum else ")")


def _available(account: Account, quota: quotas.Quota, result: CheckResult) -> int:
    """What the account has of a quota, as its stacks' `meridian:quotas` say (one account, one value:
    stacks that disagree are told to agree; the largest value anyone declared is planned against)."""
    values = {s.stack: quotas.available(s.cfg.quotas, quota) for s in account.stacks}
    if len(set(values.values())) > 1:
        setting = f"meridian:quotas.{quota.setting}" if quota.setting else f"meridian:quotas.raised.{quota.code}"
        result.warnings.append(
            f"{quota.name}: the stacks of {account.label} declare different values of {setting} "
            f"({', '.join(f'{s} {v:,}' for s, v in sorted(values.items()))}); the account has one quota: set it alike"
        )
    return max(values.values())


def _stacks_using(account: Account, urns: Iterable[str]) -> str:
    per_stack = Counter(urn.split("::", 2)[0].removeprefix("urn:pulumi:") for urn in urns)
    return ", ".join(f"{stack} {n:,}" for stack, n in sorted(per_stack.items()))


def check_account_quotas(account: Account) -> CheckResult:
    shared = [q for q in quotas.QUOTAS if q.scope in ACCOUNT_SCOPES]
    result = CheckResult(
        "account-quotas",
        "service quotas summed over every stack of the account (platforms of each zone and their cells): "
        + "; ".join(f"{q.name} per {q.scope} {q.default:,}, {_adjustable(q)} ({q.source})" for q in shared)
        + ". Over the quota but within the maximum Service Quotas grants: a warning to request the increase; adjustable "
        "with no published maximum: fails naming the request until meridian:quotas declares it granted; past the "
        "maximum, or no code to request: fails (per VPC, AZ, security group and route table: each stack's `quotas`)",
    )
    ctx = union_context(account)
    for quota in shared:
        assert quota.count is not None
        if quota.uncounted is not None:
            result.findings += quota.uncounted(ctx)
        usage = quota.count(ctx)
        limit = _available(account, quota, result)
        keys = (
            {"account": usage.get("account", Counter())}
            if quota.scope == "account"
            else {k: v for k, v in usage.items() if k != "account"}
        )
        for key, users in sorted(keys.items()):
            result.checked += 1
            used = sum(users.values())
            if used <= limit:
                continue
            where = {"account": "", "region": f" in {key}"}.get(quota.scope, f" in {quota.scope} {key}")
            what = (
                f"{quota.name}{where}: {account.label} needs {used:,} ({_stacks_using(account, users)}), "
                f"over the {limit:,} available ({quota.source})"
            )
            setting = f"meridian:quotas.{quota.setting}" if quota.setting else f"meridian:quotas.raised.{quota.code}"
            request = (
                f"request an increase of quota {quota.code} ({quota.name}) to {used:,} before `up` "
                f"({quotas.request_command(quota, used)}), then set {setting}: {used:,} in every stack of the account"
            )
            if quota.code is not None and quota.maximum is not None and used <= quota.maximum:
                result.warnings.append(f"{what}: {request}")
                continue
            if quota.code is not None and quota.maximum is None:
                # adjustable, but no maximum is published: nothing proves the request is granted until the config says so
                result.findings.append(
                    Finding(
                        max(users, key=lambda u: users[u]),
                        f"{what}: Service Quotas publishes no maximum for it",
                        f"{request} once granted",
                    )
                )
                continue
            past = (
                f"past the {quota.maximum:,} Service Quotas grants"
                if quota.maximum
                else "a quota with no Service Quotas code to request"
            )
            result.findings.append(
                Finding(
                    max(users, key=lambda u: users[u]),
                    f"{what}: {past}",
                    "spread the stacks over more accounts (one per zone), or fewer of what needs it per "
                    + quota.scope
                    + (" (fewer tenants per cluster: more zones' platforms)" if quota.scope == "cluster" else ""),
                )
            )
    if account.assumed:
        result.notes.append(
            f"{', '.join(account.assumed)} name no meridian:aws_account_id: counted in {account.label}, "
            "as they may deploy into it; set it in each stack to judge each account on its own"
        )
    result.notes.append(
        "usage by other workloads in the account is not in any plan: compare with Service Quotas before up (`meridian preflight --online`)"
    )
    return result


# --- document limits across stacks ----------------------------------------------------------------------


def check_account_limits(account: Account) -> CheckResult:
    """`limits` over the union: per-document sizes of every stack, and the totals AWS keeps per role
    (inline policies together, managed policies attached) and per bucket (replication rules, one
    replication configuration), whichever stack adds to them."""
    result = limits.check_limits(union_context(account))
    result.check = "account-limits"
    result.encodes = (
        "the document limits of `limits` over every stack of the account together (a role's inline policies and "
        f"attached policies, a bucket's replication rules and configuration, added by any stack): {result.encodes}"
    )
    return result


def check_account(account: Account) -> list[CheckResult]:
    return [check_account_quotas(account), check_account_limits(account)]


def summary(results: list[CheckResult]) -> str:
    failed = [r.check for r in results if not r.passed]
    increases = sum("request an increase" in w for r in results for w in r.warnings)
    asks = f"; [yellow]{increases} quota increase{'s' if increases != 1 else ''} to request before `up`[/]" if increases else ""
    if failed:
        return f"[bold red]FAILED[/] {', '.join(failed)} ({len(failed)} of {len(results)} checks){asks}"
    return f"[green]passed[/] ({len(results)} checks){asks}"
