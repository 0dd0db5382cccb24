"""The operator CLI. Thin commands: parse flags, hand off to plain functions, map errors to exit codes.

Imports of the engine are lazy so `--help` stays instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from meridian.errors import EXIT_GATE, MeridianError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="meridian: preview, gate and operate the multi-region SaaS platform. Exit codes: 0 ok, 1 a gate failed, 2 bad input.",
)

StackOpt = typer.Option("us", "--stack", "-s", help="stack (residency zone): a Pulumi.<stack>.yaml in the project")
ProjectOpt = typer.Option(None, "--project-dir", help="project directory (default: nearest with Pulumi.yaml)")
DebugOpt = typer.Option(False, "--debug", help="show tracebacks")
TenantsOpt = typer.Option(None, "--tenants", help="replace the stack's tenants with N synthetic ones of the same plan mix (scale runs)")


def _guard(debug: bool, fn, *args, **kwargs) -> None:
    from rich.console import Console

    try:
        code = fn(*args, **kwargs)
    except MeridianError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        if debug:
            raise
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:
        if debug:
            raise
        Console(stderr=True).print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", highlight=False)
        raise typer.Exit(EXIT_GATE) from None
    raise typer.Exit(code or 0)


@app.callback()
def _root() -> None:
    """meridian: the offline engine and operator tools of the platform."""


@app.command()
def preview(
    stack: str = StackOpt,
    json_path: Optional[Path] = typer.Option(None, "--json", help="write the plan JSON here"),
    diagram: Optional[Path] = typer.Option(None, "--diagram", help="write the topology (Mermaid in Markdown) here"),
    no_policy: bool = typer.Option(False, "--no-policy", help="skip the policy pack"),
    bare: bool = typer.Option(False, "--bare", help="the SDK floor: run the program under mocks and nothing else"),
    tenants: Optional[int] = TenantsOpt,
    project_dir: Optional[Path] = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Run the real program offline under mocks: resource tree, counts, policy, cost; exit 1 on a failed gate."""
    from meridian.commands.preview import PreviewRequest, run_preview

    _guard(debug, run_preview, PreviewRequest(stack, project_dir, json_path, diagram, not no_policy, bare, tenants))


@app.command()
def policy(
    stack: str = StackOpt,
    json_path: Optional[Path] = typer.Option(None, "--json", help="write the policy report (violations, counts, timings) here"),
    catalog: Optional[Path] = typer.Option(None, "--catalog", help="instead: write the policy catalog (Markdown) here, e.g. docs/policies.md"),
    project_dir: Optional[Path] = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Evaluate the CrossGuard pack on the stack offline (program + analyzer); exit 1 on a mandatory violation."""
    from meridian.commands.policy import PolicyRequest, run_policy

    _guard(debug, run_policy, PolicyRequest(stack, project_dir, json_path, catalog))


@app.command()
def cost(
    stack: str = StackOpt,
    json_path: Optional[Path] = typer.Option(None, "--json", help="write the estimate here"),
    tenants: Optional[int] = TenantsOpt,
    project_dir: Optional[Path] = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Offline monthly cost estimate per type, region and tenant, against the stack cap and tenant budgets; exit 1 if over."""
    from meridian.commands.cost import CostRequest, run_cost

    _guard(debug, run_cost, CostRequest(stack, project_dir, json_path, tenants))


@app.command()
def preflight(
    stack: str = StackOpt,
    json_path: Optional[Path] = typer.Option(None, "--json", help="write the checks and findings here"),
    tenants: Optional[int] = TenantsOpt,
    project_dir: Optional[Path] = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Deploy checks from the plan, without AWS: names, quotas, k8s API reachability, zone, certificates, service settings, images; exit 1 listing fixes."""
    from meridian.commands.preflight import PreflightRequest, run_preflight

    _guard(debug, run_preflight, PreflightRequest(stack, project_dir, json_path, tenants))


sandbox_app = typer.Typer(no_args_is_help=True, help="The local sandbox: the stack's region pair from real parts on 127.0.0.1.")
app.add_typer(sandbox_app, name="sandbox")
StateDirOpt = typer.Option(None, "--state-dir", help="where sandboxes live (default: <project>/.meridian/sandbox)")
JsonOpt = typer.Option(False, "--json", help="print JSON instead of text")


@sandbox_app.command("up")
def sandbox_up(
    stack: str = StackOpt,
    time_scale: float = typer.Option(10.0, "--time-scale", help="divide the stack's health-check interval by this (10: a 10 s check runs every 1 s); > 0"),
    fault_proxies: bool = typer.Option(False, "--fault-proxies", help="put a fault proxy in front of each database and service (chaos)"),
    fresh: bool = typer.Option(False, "--fresh", help="start from empty databases and new API keys"),
    json_out: bool = JsonOpt,
    state_dir: Optional[Path] = StateDirOpt,
    project_dir: Optional[Path] = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Start PostgreSQL primary + replica, the service per region and HAProxy; write the manifest."""
    from meridian.commands.sandbox import SandboxRequest, run_up

    _guard(debug, run_up, SandboxRequest(stack, project_dir, state_dir, time_scale, fault_proxies, fresh, json_out=json_out))


@sandbox_app.command("down")
def sandbox_down(
    stack: str = StackOpt,
    wipe: bool = typer.Option(False, "--wipe", help="also delete data, logs and the manifest (default: keep data)"),
    json_out: bool = JsonOpt,
    state_dir: Optional[Path] = StateDirOpt,
    project_dir: Optional[Path] = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Stop exactly the processes `up` started (by pid), check their ports are free."""
    from meridian.commands.sandbox import SandboxRequest, run_down

    _guard(debug, run_down, SandboxRequest(stack, project_dir, state_dir, wipe=wipe, json_out=json_out))


@sandbox_app.command("status")
def sandbox_status(
    stack: str = StackOpt,
    json_out: bool = JsonOpt,
    state_dir: Optional[Path] = StateDirOpt,
    project_dir: Optional[Path] = ProjectOpt,
    debug: bool = DebugOpt,
) -> None:
    """Each part's health and the replication lag; exit 1 unless all is healthy."""
    from meridian.commands.sandbox import SandboxRequest, run_status

    _guard(debug, run_status, SandboxRequest(stack, project_dir, state_dir, json_out=json_out))


def main() -> None:
    app(prog_name="meridian")


if __name__ == "__main__":
    sys.exit(main())
