"""`meridian preflight`: run the program offline and judge the plan against what only `up` would reveal."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from meridian.errors import EXIT_GATE, EXIT_OK, BadInput
from meridian.output import Progress, report_console


@dataclass(frozen=True, kw_only=True)
class PreflightRequest:
    stack: str
    project_dir: Path | None = None
    json_path: Path | None = None
    tenants: int | None = None
    online: bool = False


def run_preflight(req: PreflightRequest, console: Console | None = None) -> int:
    from meridian.commands.common import prepare, writable

    console = console or report_console()
    prep = prepare(req.stack, req.project_dir, req.tenants)
    json_path = writable(req.json_path)

    from meridian.engine.plan import Plan
    from meridian.engine.run import run_program
    from meridian.preflight.checks import Context, run_checks
    from meridian.preflight.run import print_report, summary_line, to_json

    with Progress(console, f"running the {req.stack} program offline"):
        run = run_program(prep.project_dir, req.stack, record=True, overrides=prep.overrides)
    plan = Plan("meridian", req.stack, run.registrations, run.outputs)
    results = run_checks(plan, prep.cfg, prep.project_dir)
    if req.online:
        import boto3

        from meridian.preflight.online import Aws, run_online_checks

        with Progress(console, f"asking AWS about {req.stack} (read-only)"):
            online = run_online_checks(Context.of(plan, prep.cfg, prep.project_dir), Aws(boto3.session.Session()))
        asked = {r.check for r in online}  # an offline check asked again online (image: ECR's platforms) is replaced
        results = [r for r in results if r.check not in asked] + online
    print_report(results, console)
    console.print(f"preflight of {req.stack} ({len(plan.custom)} resources): {summary_line(results)}")
    if json_path:
        json_path.write_text(json.dumps(to_json(results), indent=1))
        console.print(f"preflight written to {json_path}")
    return EXIT_OK if all(r.passed for r in results) else EXIT_GATE


# --- an account: every stack deploying into it, judged together ------------------------------------


@dataclass(frozen=True, kw_only=True)
class AccountRequest:
    account: str | None = None  # `--account ID`
    zone: str | None = None  # `--zone Z`: the account(s) zone Z's stacks deploy into
    project_dir: Path | None = None
    plans_dir: Path | None = None  # read `<stack>.plan.json` (`meridian preview --zone Z --json DIR`) instead of previewing
    json_path: Path | None = None
    tenants: int | None = None  # with `zone`: the zone filled to N tenants, as `meridian preview --zone Z --tenants N`
    cell_size: int | None = None  # with `tenants`: the synthetic cells' size
    unsupported: tuple[str, ...] = ()  # flags given that an account preflight does not take


ACCOUNT_ID = re.compile(r"^\d{12}$")


def run_account_preflight(req: AccountRequest, console: Console | None = None) -> int:
    """`meridian preflight --account ID` / `--zone Z`: every stack of the account (each zone's platform
    and its cells; stacks naming no account are counted in), previewed or read from plan files, then
    the account's quotas and document limits summed over all of them."""
    from meridian.commands.common import writable
    from meridian.commands.preview.zone import scaled_zone
    from meridian.preflight.account import Account, AccountStack, check_account, summary
    from meridian.preflight.run import print_report, to_json
    from meridian.project import find_project_dir

    if req.unsupported:
        raise BadInput(
            f"--account/--zone judge every stack of an account from their plans; they do not take {', '.join(req.unsupported)} "
            "(run `meridian preflight --stack S` for one stack)"
        )
    if (req.tenants is not None or req.cell_size is not None) and (req.zone is None or req.plans_dir is not None):
        raise BadInput(
            "--tenants/--cell-size fill a zone with synthetic cells to preview: give them with --zone Z, without --plans "
            "(plan files are judged as written: write them with `meridian preview --zone Z --tenants N --json DIR`)"
        )
    if (req.account is None) == (req.zone is None):
        raise BadInput("give one of --account ID (a 12-digit AWS account id) or --zone Z (a platform stack), not both")
    if req.account is not None and not ACCOUNT_ID.match(req.account):
        raise BadInput(f"--account {req.account!r}: an AWS account id is 12 digits (as in meridian:aws_account_id)")
    if req.plans_dir is not None and not req.plans_dir.is_dir():
        raise BadInput(f"--plans {req.plans_dir}: not a directory (write one with `meridian preview --zone Z --json DIR`)")
    console = console or report_console()
    project = find_project_dir(req.project_dir)
    json_path = writable(req.json_path)
    prepared, held = project_stacks(project), {}
    if req.zone is not None:
        accounts_for(req, {s: p.cfg for s, p in prepared.items()})  # an unknown zone is refused before it is scaled
        prepared, held = scaled_zone(project, req.zone, prepared, req.tenants, req.cell_size)
    accounts = accounts_for(req, {s: p.cfg for s, p in prepared.items()})
    stacks = sorted({s for members, assumed in accounts.values() for s in (*members, *assumed)}, key=list(prepared).index)
    plans, per_stack = (
        (read_plans(req.plans_dir, stacks), {})
        if req.plans_dir is not None
        else preview_plans(project, {s: prepared[s] for s in stacks}, console, held)
    )
    verdicts, report = [], []
    for account_id, (members, assumed) in accounts.items():
        account = Account(
            account_id,
            [AccountStack(s, prepared[s].cfg, plans[s]) for s in stacks if s in members or s in assumed],
            assumed=[s for s in stacks if s in assumed and account_id is not None],
        )
        results = check_account(account)
        if account_id is None:
            results[0].notes.insert(
                0,
                f"no stack names meridian:aws_account_id: {', '.join(s.stack for s in account.stacks)} are assumed to "
                "share one account (set it per stack to judge each account apart)",
            )
        console.print(f"[bold]{account.label}[/]: {', '.join(s.stack for s in account.stacks)}", highlight=False)
        for stack in (s.stack for s in account.stacks):
            if stack in per_stack:
                console.print(f"  {stack}: deploy preflight {per_stack[stack]}", highlight=False)
        print_report(results, console)
        resources = sum(len(s.plan.custom) for s in account.stacks)
        console.print(f"preflight of {account.label} ({len(account.stacks)} stacks, {resources} resources): {summary(results)}")
        failed = [s.stack for s in account.stacks if s.stack in per_stack and own_preflight_failed(per_stack[s.stack])]
        if failed:
            console.print(
                f"[bold red]stacks failing their own preflight:[/] {', '.join(failed)} (`meridian preflight --stack S`)"
            )
        verdicts.append(all(r.passed for r in results) and not failed)
        report.append(
            {
                "account": account_id,
                "stacks": [s.stack for s in account.stacks],
                "assumed": account.assumed,
                "stacks_failing_own_preflight": failed,
                **to_json(results),
                "passed": verdicts[-1],
            }
        )
    if req.plans_dir is not None:
        console.print(
            "[dim]each stack's own preflight is not run on plan files (their secrets are redacted): "
            "`meridian preflight --stack S` per stack[/]"
        )
    if json_path:
        json_path.write_text(json.dumps({"passed": all(verdicts), "accounts": report}, indent=1))
        console.print(f"preflight written to {json_path}")
    return EXIT_OK if all(verdicts) else EXIT_GATE


def own_preflight_failed(summary: str) -> bool:
    """A stack's own preflight as its worker summed it up (`run.summary_line`: a failure opens with FAILED)."""
    return "FAILED" in summary


def project_stacks(project: Path) -> dict[str, Any]:
    """Every stack of the project, zone by zone (platform, then its cells), validated as `--stack`
    validates it (`preview.zone.zone_stacks`)."""
    from meridian.commands.preview.zone import zone_stacks
    from meridian.project import platform_stacks_of, stacks_of

    prepared: dict[str, Any] = {}
    for zone in platform_stacks_of(project):
        prepared |= zone_stacks(project, zone)
    stray = [s for s in stacks_of(project) if s not in prepared]
    if stray:
        raise BadInput(
            f"{', '.join(f'Pulumi.{s}.yaml' for s in stray)}: a cell no platform lists in meridian:cells.names; "
            "an account preflight needs every stack of the project placed"
        )
    return prepared


def accounts_for(req: AccountRequest, cfgs: dict[str, Any]) -> dict[str | None, tuple[list[str], list[str]]]:
    """The accounts asked for: `--account ID`, or the account(s) of `--zone Z`'s stacks."""
    from meridian.preflight.account import account_of, group_accounts

    groups = group_accounts(cfgs)
    named = sorted(a for a in groups if a is not None)
    if req.account is not None:
        if req.account not in groups:
            unknown = [s for s, c in cfgs.items() if account_of(c) is None]
            if not unknown:
                raise BadInput(
                    f"--account {req.account}: no stack deploys into it (meridian:aws_account_id of the stacks: "
                    f"{', '.join(named) or 'none'})"
                )
            return {req.account: ([], unknown)} if named else {None: ([], unknown)}
        return {req.account: groups[req.account]}
    if req.zone not in cfgs or cfgs[req.zone].is_cell:
        zones = [s for s in cfgs if not cfgs[s].is_cell]
        raise BadInput(f"--zone {req.zone!r}: not a platform stack of the project (zones: {', '.join(zones) or 'none'})")
    account = account_of(cfgs[req.zone])
    return {account: groups[account]} if account is not None else groups


def read_plans(plans_dir: Path, stacks: list[str]) -> dict[str, Any]:
    """`<stack>.plan.json` of each stack, as `meridian preview --zone Z --json DIR` writes them."""
    from meridian.commands.preview.zone import index_entry_file
    from meridian.preflight.account import plan_from_document

    plans, problems = {}, []
    for stack in stacks:
        path = plans_dir / index_entry_file(stack)
        try:
            document = json.loads(path.read_text())
            if document.get("stack") != stack:
                problems.append(f"{path}: the plan of stack {document.get('stack')!r}, not {stack!r}")
                continue
            plans[stack] = plan_from_document(document)
        except FileNotFoundError:
            problems.append(f"{path}: missing (write it with `meridian preview --zone <its zone> --json {plans_dir}`)")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            problems.append(f"{path}: not a plan JSON of `meridian preview --json` ({type(exc).__name__}: {exc})")
    if problems:
        raise BadInput("--plans: " + "\n".join(problems))
    return plans


def preview_plans(
    project: Path, prepared: dict[str, Any], console: Console, held: dict[Path, dict[str, Any]] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Each stack previewed as `meridian preview --zone` previews it (`preview.zone.preview_in_workers`,
    a fresh worker process per stack, no policy pack): platforms first, then every cell with its
    platform's outputs; `held`: stack files held in memory (`--tenants N`'s synthetic cells). Returns
    the plans and each stack's own preflight summary."""
    import os
    import tempfile

    from meridian.commands.preview.zone import preview_in_workers

    platforms = [s for s, p in prepared.items() if not p.cfg.is_cell]
    cells = [s for s in prepared if s not in platforms]
    workers = max(1, min(os.cpu_count() or 1, len(prepared)))
    with tempfile.TemporaryDirectory(prefix="meridian-account-plans-") as scratch:  # each worker writes its plan there
        with Progress(console, f"previewing {len(platforms)} platform and {len(cells)} cell stacks on {workers} workers"):
            previews = preview_in_workers(project, prepared, workers=workers, plans_dir=Path(scratch), policy=False, held=held)
        return read_plans(Path(scratch), list(prepared)), {s: previews[s].preflight for s in prepared}
