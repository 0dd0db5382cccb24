"""The operator CLI. Thin commands: parse flags, hand off to plain functions, map errors to exit codes.

Imports of the engine are lazy so `--help` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
import typer.core

from meridian.choices import DrillMode, DrillName, Shape, Target
from meridian.errors import EXIT_BAD_INPUT, EXIT_GATE, MeridianError
from meridian.output import Format


class _FlagsTakeNoValue:
    """typer 0.29 shows a flag's type as `<bool>` in --help, as if it took a value; a flag takes none.
    An empty metavar is typer's own way to show no type (TyperOption.display_type_rich)."""

    def get_params(self, ctx: typer.Context) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if isinstance(param, typer.core.TyperOption) and param.is_flag and param.metavar is None:
                param.metavar = ""
        return params


class Command(_FlagsTakeNoValue, typer.core.TyperCommand):
    """Every meridian command (`cls=Command`)."""


class Group(_FlagsTakeNoValue, typer.core.TyperGroup):
    """Every meridian command group (`cls=Group`): the root, `sandbox`, `evidence`."""


# -h everywhere: click hands a group's context settings down to every sub-command's context.
CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    cls=Group,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT,
    help="meridian: preview, gate and operate the multi-region SaaS platform. Exit codes: 0 ok, 1 a gate failed, 2 bad input. "
    "Flags: --json PATH writes JSON to a file, --format says what goes to stdout, --out DIR is the folder a run writes into.",
)


StackOpt = typer.Option("us", "--stack", "-s", help="stack (residency zone): a Pulumi.<stack>.yaml in the project")
# what the harness acts on: a zone's one front door, database pair and workload, serving every stack's tenants
ZoneStackOpt = typer.Option(
    "us", "--stack", "-s", help="the zone, by its platform stack (us): its cells' tenants come with it; a cell stack is refused"
)
ProjectOpt = typer.Option(None, "--project-dir", help="project directory (default: nearest with Pulumi.yaml)")
DebugOpt = typer.Option(False, "--debug", help="show tracebacks")
BaseRefOpt = typer.Option(None, "--base", help="the git ref to compare with (default: the merge-base of HEAD and main)")
TenantsOpt = typer.Option(
    None, "--tenants", help="replace the stack's tenants with N synthetic ones of the same plan mix (scale runs)"
)
# --zone Z --tenants N [--cell-size S]: preview and preflight judge the same generated zone (commands.preview.zone.scaled_zone)
CellSizeOpt = typer.Option(
    None, "--cell-size", help="with --zone and --tenants: the synthetic cells' size (default: the platform's cells.size)"
)
FormatOpt = typer.Option(
    Format.text,
    "--format",
    help="what goes to stdout: text (terminal; plain and uncut when piped), json, or markdown (PR comments)",
)
StateDirOpt = typer.Option(None, "--state-dir", help="where sandboxes live (default: <project>/.meridian/sandbox)")
TargetOpt = typer.Option(Target.sandbox, "--target", help="sandbox (the local region pair) or aws (the stack's outputs)")
ShapeOpt = typer.Option(Shape.steady, "--shape", help="load shape: a stage table in loadtests/loadshapes.py")
OutOpt = typer.Option(
    None, "--out", help="folder the run writes its report into (default: .meridian/reports/<kind>-<stack>-<time>)"
)
SloFileOpt = typer.Option(
    None, "--slo", help="SLO file (default: loadtests/slo.yaml; stack-wide objectives from the stack config)"
)


def _guard(debug: bool, fn, *args, **kwargs) -> None:
    from rich.console import Console
    from rich.markup import escape  # messages carry user text: `[a-z]` in a pattern is not markup

    try:
        code = fn(*args, **kwargs)
    except MeridianError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        if debug:
            raise
        raise typer.Exit(exc.exit_code) from None
    except ModuleNotFoundError as exc:  # `make preview` installs only the base set (pyproject.toml's extras)
        if debug:
            raise
        Console(stderr=True).print(
            f"[bold red]error:[/] this command needs {escape(exc.name or str(exc))}, which is not installed: `make preview` "
            "installs only what a preview needs; `make setup` installs the rest (pyproject.toml's extras)",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except Exception as exc:
        if debug:
            raise
        Console(stderr=True).print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(str(exc))} (rerun with --debug for the traceback)",
            highlight=False,
        )
        raise typer.Exit(EXIT_GATE) from None
    raise typer.Exit(code or 0)


def _version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version

    try:
        typer.echo(f"meridian {version('meridian')}")
    except PackageNotFoundError:
        typer.echo("meridian: not installed as a package, so it has no version: `pip install -e .` in the project", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(0)


@app.callback()
def _root(
    _version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version of meridian and exit"
    ),
) -> None:
    """meridian: the offline engine and operator tools of the platform."""


@app.command(cls=Command)
def preview(
    stack: str = StackOpt,
    json_path: Path | None = typer.Option(None, "--json", help="write the plan JSON to this file"),
    diagram: Path | None = typer.Option(None, "--diagram", help="write the topology (Mermaid in Markdown) to this file"),
    no_policy: bool = typer.Option(False, "--no-policy", help="skip the policy pack"),
    bare: bool = typer.Option(False, "--bare", help="the SDK floor: run the program under mocks and nothing else"),
    tenants: int | None = TenantsOpt,
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
    fmt: Format = FormatOpt,
    full: bool = typer.Option(
        False, "--full", help="the tree lists every component and resource by name (default: by region, counts per type)"
    ),
    timings: bool = typer.Option(
        False, "--timings", help="put measured timings in the plan JSON (benchmarks; without it two runs write the same bytes)"
    ),
    diff_base: Path | None = typer.Option(
        None,
        "--diff",
        help="also show what changed against this base plan JSON (resources, violations, cost); see `meridian diff`",
    ),
    first_preview: bool = typer.Option(
        False,
        "--first-preview",
        help="outputs of resources being created are unknown, as in a first `pulumi preview`; lists what only `up` can verify",
    ),
    zone: str | None = typer.Option(
        None,
        "--zone",
        help="instead of --stack: the zone's platform stack, then its cells in parallel (one worker per core); "
        "--json names a directory (one plan per stack and zone.json); --tenants N fills the zone to N tenants "
        "(its real ones counted) with synthetic cells held in memory",
    ),
    cell_size: int | None = CellSizeOpt,
    changed: bool = typer.Option(
        False,
        "--changed",
        help="instead of --stack: only the stacks whose preview can differ from --base (platforms whose config changed, "
        "cells whose tenants changed, every stack when the program or pack changed), each with its diff against the base; "
        "--json names a directory",
    ),
    base: str | None = BaseRefOpt,
    only: str | None = typer.Option(
        None, "--only", help="with --changed: preview only this stack of the change set (CI's matrix: one job per stack)"
    ),
) -> None:
    """Run the real program offline under mocks: resource tree, counts, policy, cost; exit 1 on a failed gate."""
    from meridian.commands.preview import PreviewRequest, ZoneRequest, run_preview, run_zone_preview

    if changed or base is not None or only is not None:
        from meridian.commands.preview.changed import ChangedRequest, run_changed_preview

        given = {
            "--zone": zone is not None,
            "--diagram": diagram is not None,
            "--bare": bare,
            "--tenants": tenants is not None,
            "--diff": diff_base is not None,
            "--full": full,
            "--first-preview": first_preview,
            "--timings": timings,
            "--base without --changed": not changed and base is not None,
            "--only without --changed": not changed and only is not None,
        }
        req = ChangedRequest(
            project_dir=project_dir,
            base=base,
            format=fmt,
            policy=not no_policy,
            json_dir=json_path,
            only=only,
            unsupported=tuple(flag for flag, on in given.items() if on),
        )
        _guard(debug, run_changed_preview, req)
        return

    if zone is not None:
        _guard(
            debug,
            run_zone_preview,
            ZoneRequest(
                zone=zone,
                project_dir=project_dir,
                json_dir=json_path,
                policy=not no_policy,
                full=full,
                timings=timings,
                first_preview=first_preview,
                markdown=fmt == Format.markdown,
                diff_base=diff_base,
                tenants=tenants,
                cell_size=cell_size,
                bare=bare,
                unsupported=tuple(
                    flag
                    for flag, given in (
                        ("--diagram", diagram),
                        ("--format json", fmt == Format.json),
                        ("--diff without --format markdown", diff_base is not None and fmt != Format.markdown),
                    )
                    if given
                ),
            ),
        )
        return
    if cell_size is not None:
        typer.echo("error: --cell-size sizes the synthetic cells of --zone Z --tenants N; --stack takes no cells", err=True)
        raise typer.Exit(EXIT_BAD_INPUT)

    _guard(
        debug,
        run_preview,
        PreviewRequest(
            stack=stack,
            project_dir=project_dir,
            json_path=json_path,
            diagram_path=diagram,
            policy=not no_policy,
            bare=bare,
            tenants=tenants,
            format=fmt,
            full=full,
            timings=timings,
            diff_base=diff_base,
            first_preview=first_preview,
        ),
    )


@app.command(cls=Command)
def changes(
    base: str | None = BaseRefOpt,
    project_dir: Path | None = ProjectOpt,
    fmt: Format = FormatOpt,
    debug: bool = DebugOpt,
) -> None:
    """Which stacks a change touches against --base, and why (what `preview --changed` previews); nothing runs."""
    from meridian.commands.preview.changed import run_changes

    _guard(debug, run_changes, project_dir, base, fmt)


@app.command(cls=Command)
def policy(
    stack: str = StackOpt,
    json_path: Path | None = typer.Option(
        None, "--json", help="write the policy report (violations, counts, timings) to this file"
    ),
    catalog: Path | None = typer.Option(
        None, "--catalog", help="instead: write the policy catalog (Markdown) to this file, e.g. docs/policies.md"
    ),
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
    fmt: Format = FormatOpt,
    write_config: bool = typer.Option(
        False, "--write-config", help="instead: regenerate policies/config/<stack>.json from the stack config"
    ),
    explain: bool = typer.Option(
        False, "--explain", help="instead: print the tenancy matrix of --tenant (who reaches its data, with which actions, why)"
    ),
    tenant: str | None = typer.Option(None, "--tenant", help="the tenant id whose matrix --explain prints"),
) -> None:
    """Evaluate the CrossGuard pack on the stack offline (program + analyzer); exit 1 on a mandatory violation."""
    from meridian.commands.policy import PolicyRequest, run_policy

    _guard(
        debug,
        run_policy,
        PolicyRequest(
            stack=stack,
            project_dir=project_dir,
            json_path=json_path,
            catalog_path=catalog,
            format=fmt,
            write_config=write_config,
            explain=explain,
            tenant=tenant,
        ),
    )


@app.command(cls=Command)
def cost(
    stack: str = StackOpt,
    json_path: Path | None = typer.Option(None, "--json", help="write the estimate to this file"),
    tenants: int | None = TenantsOpt,
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Offline monthly cost estimate per type, region and tenant, against the stack cap and tenant budgets; exit 1 if over."""
    from meridian.commands.cost import CostRequest, run_cost

    _guard(
        debug,
        run_cost,
        CostRequest(stack=stack, project_dir=project_dir, json_path=json_path, tenants=tenants, format=fmt),
    )


@app.command(cls=Command)
def docs(
    write: bool = typer.Option(
        False, "--write", help="rewrite the generated sections (default: only check them; exit 1 if stale)"
    ),
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Figures and diagrams in docs/ generated from the program and `make bench`: check them, or --write them."""
    from meridian.commands.docs import DocsRequest, run_docs

    _guard(debug, run_docs, DocsRequest(project_dir=project_dir, write=write))


@app.command(cls=Command)
def diff(
    base: Path = typer.Argument(..., help="the base branch's plan JSON (`meridian preview --json PATH`)"),
    head: Path = typer.Argument(..., help="the plan JSON of the change under review, same stack"),
    markdown: Path | None = typer.Option(None, "--markdown", help="write the PR comment (Markdown) to this file"),
    json_path: Path | None = typer.Option(None, "--json", help="write the diff as JSON to this file"),
    title: str | None = typer.Option(None, "--title", help="heading of the comment (default: the stack)"),
    strict: bool = typer.Option(
        False, "--strict", help="exit 1 when `pulumi up` could not apply the change: a mandatory violation or a protected delete"
    ),
    debug: bool = DebugOpt,
    fmt: Format = FormatOpt,
) -> None:
    """What changed between two plans of a stack: resources added/removed/changed (secret values by digest), blockers, new and fixed violations, cost delta."""
    from meridian.commands.diff import DiffRequest, run_diff

    _guard(
        debug,
        run_diff,
        DiffRequest(base=base, head=head, markdown_path=markdown, json_path=json_path, title=title, format=fmt, strict=strict),
    )


@app.command(cls=Command)
def preflight(
    context: typer.Context,
    stack: str = StackOpt,
    json_path: Path | None = typer.Option(None, "--json", help="write the checks and findings to this file"),
    tenants: int | None = TenantsOpt,
    online: bool = typer.Option(
        False,
        "--online",
        help="also ask the account with the runner's credentials (read-only calls): the caller's account, the "
        "zone's public delegation, the image in ECR and its platform, cost-allocation tags billing knows",
    ),
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
    account: str | None = typer.Option(
        None,
        "--account",
        help="instead of --stack: every stack deploying into this AWS account (meridian:aws_account_id; stacks naming "
        "none are counted in), its quotas and document limits summed over all of them",
    ),
    zone: str | None = typer.Option(
        None,
        "--zone",
        help="instead of --stack: the account(s) this zone's platform and cells deploy into, as --account; with "
        "--tenants N the zone filled to N tenants as `meridian preview --zone Z --tenants N` fills it",
    ),
    cell_size: int | None = CellSizeOpt,
    plans_dir: Path | None = typer.Option(
        None,
        "--plans",
        help="with --account/--zone: read <stack>.plan.json from this directory (meridian preview --zone Z --json DIR) "
        "instead of previewing each stack",
    ),
) -> None:
    """Deploy checks from the plan (names, quotas, k8s API reachability, zone, certificates, service settings, images), offline unless --online; exit 1 listing fixes."""
    from meridian.commands.preflight import AccountRequest, PreflightRequest, run_account_preflight, run_preflight

    if account is not None or zone is not None or plans_dir is not None or cell_size is not None:
        given = context.get_parameter_source("stack").name == "COMMANDLINE"
        _guard(
            debug,
            run_account_preflight,
            AccountRequest(
                account=account,
                zone=zone,
                project_dir=project_dir,
                plans_dir=plans_dir,
                json_path=json_path,
                tenants=tenants,
                cell_size=cell_size,
                unsupported=tuple(flag for flag, on in (("--stack", given), ("--online", online)) if on),
            ),
        )
        return
    _guard(
        debug,
        run_preflight,
        PreflightRequest(stack=stack, project_dir=project_dir, json_path=json_path, tenants=tenants, online=online),
    )


@app.command(cls=Command)
def ready(
    stack: str = StackOpt,
    json_path: Path | None = typer.Option(None, "--json", help="write the check and its findings to this file"),
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """After a platform's `up`: each EKS cluster it builds (its own and every tenant cluster pair's) ACTIVE, its node groups ACTIVE, its add-ons healthy; read-only calls with the runner's credentials; exit 1 listing what is not ready."""
    from meridian.commands.ready import ReadyRequest, run_ready

    _guard(debug, run_ready, ReadyRequest(stack=stack, project_dir=project_dir, json_path=json_path))


@app.command(cls=Command)
def teardown(
    stack: str = StackOpt,
    json_path: Path | None = typer.Option(None, "--json", help="write the blockers and steps to this file"),
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Dry run, offline: what blocks `pulumi destroy` of the stack (vault locks, protected keys, non-empty buckets and
    repositories, deletion protection, zones, recovery points, a platform's cells), for how long, and the steps in order;
    exit 1 when a compliance-mode vault lock can make the stack undeletable or a platform still has cells."""
    from meridian.commands.teardown import TeardownRequest, run_teardown

    _guard(debug, run_teardown, TeardownRequest(stack=stack, project_dir=project_dir, json_path=json_path, format=fmt))


sandbox_app = typer.Typer(
    cls=Group, no_args_is_help=True, help="The local sandbox: the stack's region pair from real parts on 127.0.0.1."
)
app.add_typer(sandbox_app, name="sandbox")
TextOrJsonOpt = typer.Option(Format.text, "--format", help="what goes to stdout: text or json (markdown: `sandbox status` only)")


@sandbox_app.command("up", cls=Command)
def sandbox_up(
    stack: str = ZoneStackOpt,
    time_scale: float = typer.Option(
        10.0, "--time-scale", help="divide the stack's health-check interval by this (10: a 10 s check runs every 1 s); > 0"
    ),
    fault_proxies: bool = typer.Option(
        False, "--fault-proxies", help="put a fault proxy in front of each database and service (chaos)"
    ),
    fresh: bool = typer.Option(False, "--fresh", help="start from empty databases and new API keys"),
    fmt: Format = TextOrJsonOpt,
    state_dir: Path | None = StateDirOpt,
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Start PostgreSQL primary + replica, the service per region and HAProxy; write the manifest."""
    from meridian.commands.sandbox import SandboxRequest, run_up

    _guard(
        debug,
        run_up,
        SandboxRequest(
            stack=stack,
            project_dir=project_dir,
            state_dir=state_dir,
            time_scale=time_scale,
            fault_proxies=fault_proxies,
            fresh=fresh,
            format=fmt,
        ),
    )


@sandbox_app.command("down", cls=Command)
def sandbox_down(
    stack: str = ZoneStackOpt,
    wipe: bool = typer.Option(False, "--wipe", help="also delete data, logs and the manifest (default: keep data)"),
    fmt: Format = TextOrJsonOpt,
    state_dir: Path | None = StateDirOpt,
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Stop exactly the processes `up` started (by pid), check their ports are free."""
    from meridian.commands.sandbox import SandboxRequest, run_down

    _guard(
        debug,
        run_down,
        SandboxRequest(stack=stack, project_dir=project_dir, state_dir=state_dir, wipe=wipe, format=fmt),
    )


@sandbox_app.command("status", cls=Command)
def sandbox_status(
    stack: str = ZoneStackOpt,
    state_dir: Path | None = StateDirOpt,
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
    fmt: Format = FormatOpt,
) -> None:
    """Each part's health and the replication lag; exit 1 unless all is healthy."""
    from meridian.commands.sandbox import SandboxRequest, run_status

    _guard(debug, run_status, SandboxRequest(stack=stack, project_dir=project_dir, state_dir=state_dir, format=fmt))


SigningKeyOpt = typer.Option(
    None,
    "--signing-key",
    help="sign the evidence bundle: an Ed25519 private key (PEM) or an HMAC secret file (or $MERIDIAN_SIGNING_KEY)",
)


@app.command(cls=Command)
def slo(
    stack: str = ZoneStackOpt,
    target: Target = TargetOpt,
    shape: Shape = ShapeOpt,
    users: int = typer.Option(20, "--users", "-u", help="simulated users (each one tenant)"),
    spawn_rate: float = typer.Option(10.0, "--spawn-rate", "-r", help="users started per second"),
    duration: float = typer.Option(
        60.0, "--duration", "-t", help="seconds of load (60: what the default objectives need to be proven)"
    ),
    slo_path: Path | None = SloFileOpt,
    out: Path | None = OutOpt,
    workers: int = typer.Option(0, "--workers", help="run Locust as a master + N local workers"),
    state_dir: Path | None = StateDirOpt,
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Run the load suite against the target, judge exact percentiles against the SLOs, write a report; exit 1 on breach."""
    from meridian.commands.slo import SloRequest, run_slo

    _guard(
        debug,
        run_slo,
        SloRequest(
            stack=stack,
            target=target,
            shape=shape,
            users=users,
            spawn_rate=spawn_rate,
            duration_s=duration,
            slo_path=slo_path,
            report_dir=out,
            workers=workers,
            state_dir=state_dir,
            project_dir=project_dir,
        ),
    )


@app.command(cls=Command)
def chaos(
    scenario: str = typer.Argument(
        ...,
        help="a scenario in loadtests/chaos/: region-loss, database-failover, replica-loss, db-latency, packet-drops, noisy-neighbour",
    ),
    stack: str = ZoneStackOpt,
    target: Target = TargetOpt,
    users: int = typer.Option(20, "--users", "-u", help="simulated users during the experiment"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list what each action would do (on AWS: the API calls), do nothing"),
    out: Path | None = OutOpt,
    slo_path: Path | None = SloFileOpt,
    state_dir: Path | None = StateDirOpt,
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Run a chaos scenario under load: steady state, inject, detect, recover, roll back, judge; exit 1 on failure."""
    from meridian.commands.chaos import ChaosRequest, run_chaos

    _guard(
        debug,
        run_chaos,
        ChaosRequest(
            scenario=scenario,
            stack=stack,
            target=target,
            users=users,
            report_dir=out,
            slo_path=slo_path,
            state_dir=state_dir,
            project_dir=project_dir,
            dry_run=dry_run,
        ),
    )


@app.command(cls=Command)
def up(
    stack: str = ZoneStackOpt,
    target: Target = TargetOpt,
    time_scale: float = typer.Option(10.0, "--time-scale", help="sandbox: divide the health-check interval by this"),
    fault_proxies: bool = typer.Option(False, "--fault-proxies", help="sandbox: start fault proxies too (for chaos later)"),
    shape: Shape = typer.Option(Shape.steady, "--shape", help="SLO gate: load shape (stage tables in loadtests/loadshapes.py)"),
    users: int = typer.Option(20, "--users", "-u", help="SLO gate: simulated users"),
    duration: float = typer.Option(
        60.0, "--duration", "-t", help="SLO gate: seconds of load (60: what the default objectives need to be proven)"
    ),
    out: Path | None = typer.Option(
        None, "--out", help="folder for the plan and the SLO report (default: .meridian/reports/up-<stack>-<time>)"
    ),
    slo_path: Path | None = SloFileOpt,
    state_dir: Path | None = StateDirOpt,
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Preview + policy gate -> apply (sandbox up, or pulumi up on AWS) -> SLO gate; exit 1 at the first failed gate."""
    from meridian.commands.up import UpRequest, run_up

    _guard(
        debug,
        run_up,
        UpRequest(
            stack=stack,
            target=target,
            time_scale=time_scale,
            fault_proxies=fault_proxies,
            shape=shape,
            users=users,
            duration_s=duration,
            report_dir=out,
            slo_path=slo_path,
            state_dir=state_dir,
            project_dir=project_dir,
        ),
    )


@app.command(cls=Command)
def rollout(
    stack: str = ZoneStackOpt,
    target: Target = TargetOpt,
    version: str = typer.Option(
        "", "--version", help="the version to roll out (a name in loadtests/versions.yaml gets its rehearsal fault)"
    ),
    steps: str | None = typer.Option(
        None, "--steps", help="canary percentages, e.g. 1,5,25,100 (default: the stack's rollout.steps)"
    ),
    region_order: str = typer.Option("dr,primary", "--region-order", help="regions in the order they take the canary"),
    window: float | None = typer.Option(
        None, "--window", help="seconds each step holds (default: rollout.pause_s / the sandbox time scale)"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="print the plan and what a resumed run would do; change nothing"),
    rollback: bool = typer.Option(False, "--rollback", help="restore 100 % stable in every region at once"),
    fault: str | None = typer.Option(
        None, "--fault", help="sandbox rehearsal: the canary misbehaves, e.g. latency_ms=600,error_rate=0.02"
    ),
    versions_file: Path | None = typer.Option(
        None, "--versions", help="rehearsal versions file (default: loadtests/versions.yaml)"
    ),
    min_samples: int | None = typer.Option(
        None, "--min-samples", help="canary requests a step needs before it is judged (default 20)"
    ),
    users: int = typer.Option(40, "--users", "-u", help="simulated users loading the region under rollout"),
    out: Path | None = OutOpt,
    evidence: Path | None = typer.Option(
        None,
        "--evidence",
        help="evidence bundle (not the report folder) to add the provenance record to "
        "(default: a new one under .meridian/evidence)",
    ),
    signing_key: Path | None = typer.Option(
        None, "--signing-key", help="sign the bundle's manifest: Ed25519 PEM or an HMAC secret file (or $MERIDIAN_SIGNING_KEY)"
    ),
    digest: str | None = typer.Option(
        None, "--digest", help="aws: the image digest of the canary version, for the provenance record"
    ),
    slo_path: Path | None = SloFileOpt,
    state_dir: Path | None = StateDirOpt,
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Shift traffic to a canary version step by step, judge its own requests at each step, promote or roll back (exit 1)."""
    from meridian.commands.rollout import RolloutRequest, run_rollout

    _guard(
        debug,
        run_rollout,
        RolloutRequest(
            stack=stack,
            target=target,
            version=version,
            steps=steps,
            region_order=region_order,
            dry_run=dry_run,
            rollback=rollback,
            window_s=window,
            report_dir=out,
            fault=fault,
            versions_file=versions_file,
            min_samples=min_samples,
            users=users,
            evidence_dir=evidence,
            signing_key=signing_key,
            digest=digest,
            slo_path=slo_path,
            state_dir=state_dir,
            project_dir=project_dir,
        ),
    )


@app.command(cls=Command)
def drill(
    name: DrillName = typer.Argument(..., help="the drill to run"),
    stack: str = ZoneStackOpt,
    target: Target = typer.Option(..., "--target", help="sandbox (the local region pair) or aws (the stack's outputs)"),
    mode: DrillMode | None = typer.Option(
        None,
        "--mode",
        help="database-failover only: planned (default; switchover, RPO 0) or unplanned (crash, promotion)",
    ),
    execute: bool = typer.Option(False, "--execute", help="run it (default: dry run, print every step and call)"),
    allow_production: bool = typer.Option(
        False, "--allow-production", help="needed to --execute on a stack with production: true"
    ),
    evidence: Path | None = typer.Option(
        None, "--evidence", help="write an evidence bundle with the drill timeline into this new folder"
    ),
    signing_key: Path | None = SigningKeyOpt,
    resume: bool = typer.Option(
        False, "--resume", help="continue a partial run of the same drill from its first unfinished step"
    ),
    abandon: bool = typer.Option(False, "--abandon", help="forget a partial run (after checking the stack by hand)"),
    break_lock: bool = typer.Option(
        False, "--break-lock", help="take the stack's drill lock from its holder (after checking that no drill runs)"
    ),
    state_dir: Path | None = StateDirOpt,
    outputs: Path | None = typer.Option(
        None, "--outputs", help="aws: `pulumi stack output --json` of the stack (default .meridian/outputs/<stack>.json)"
    ),
    records: Path | None = typer.Option(
        None,
        "--records",
        help="state, not output: where drill runs are recorded and --resume finds them (default <project>/.meridian/drills)",
    ),
    lead: float | None = typer.Option(
        None, "--lead", help="seconds the probe writes before the fault (default 5: several replication intervals)"
    ),
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Run a DR drill as steps with measured RTO/RPO; exit 1 if a step failed or an objective was missed."""
    from meridian.commands.drill import DrillRequest, run_drill

    _guard(
        debug,
        run_drill,
        DrillRequest(
            drill=name,
            stack=stack,
            target=target,
            mode=mode,
            execute=execute,
            allow_production=allow_production,
            evidence=evidence,
            resume=resume,
            abandon=abandon,
            break_lock=break_lock,
            project_dir=project_dir,
            state_dir=state_dir,
            outputs=outputs,
            records=records,
            signing_key=signing_key,
            lead_s=lead,
        ),
    )


evidence_app = typer.Typer(
    cls=Group, help="Evidence bundles: plan, policy, cost, SLO report, drill timeline, residency attestation, sha256 manifest."
)
app.add_typer(evidence_app, name="evidence")


@evidence_app.callback(invoke_without_command=True)
def evidence(
    ctx: typer.Context,
    stack: str = ZoneStackOpt,
    out: Path | None = typer.Option(None, "--out", help="new or empty folder to write the bundle into"),
    slo_report: Path | None = typer.Option(
        None,
        "--slo-report",
        help="SLO report JSON to include (default: the newest `meridian slo` report of the stack under .meridian/reports)",
    ),
    drill_dir: Path | None = typer.Option(
        None, "--drill", help="drill run directory to include (default: the newest under .meridian/drills/<stack>)"
    ),
    signing_key: Path | None = SigningKeyOpt,
    project_dir: Path | None = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Build an evidence bundle for STACK into --out; exit 1 if residency or the policy gate fails."""
    if ctx.invoked_subcommand is not None:
        return
    from meridian.commands.evidence import EvidenceRequest, build
    from meridian.errors import BadInput

    if out is None:
        _guard(debug, _raise, BadInput("--out DIR is required (or use `meridian evidence verify DIR`)"))
    _guard(
        debug,
        build,
        EvidenceRequest(
            stack=stack, out=out, project_dir=project_dir, slo_report=slo_report, drill_dir=drill_dir, signing_key=signing_key
        ),
    )


@evidence_app.command("verify", cls=Command)
def evidence_verify(
    bundle_dir: Path = typer.Argument(..., help="a directory `meridian evidence` or `meridian drill --evidence` wrote"),
    key: Path | None = typer.Option(
        None,
        "--key",
        help="the key you trust the signer with: an Ed25519 public (or private) key in PEM, or the HMAC secret; "
        "the bundle must then be signed by it",
    ),
    allow_unsigned: bool = typer.Option(
        False, "--allow-unsigned", help="accept an unsigned bundle whose files match its manifest (no --key)"
    ),
    debug: bool = DebugOpt,
) -> None:
    """Check a bundle against its MANIFEST.sha256 and its signature under --key; exit 1 on any changed,
    missing or extra file, a missing, invalid or unchecked signature, or an unsigned bundle without --allow-unsigned."""
    from meridian.commands.evidence import verify

    _guard(debug, verify, bundle_dir, key=key, allow_unsigned=allow_unsigned)


def _raise(exc: Exception) -> None:
    raise exc


def main() -> None:
    app(prog_name="meridian")


if __name__ == "__main__":
    sys.exit(main())
