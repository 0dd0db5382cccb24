"""`meridian up`: preview + policy gate -> apply -> SLO gate. Each gate stops the next step.

1. the offline preview of the real program with the policy pack and cost caps (`meridian preview`,
   in its own process: the SDK's runtime state is global); a mandatory violation or a cost over
   its cap exits 1 and nothing is applied;
2. apply: `--target sandbox` brings the stack's sandbox to the previewed plan: starts it, reuses a
   running one started from the same program, or restarts one whose plan changed (settings,
   quotas, versions); the SLO gate then fails unless the sandbox runs the previewed plan's hash;
   `--target aws` runs `pulumi up` through the Automation API with the same policy pack and its
   per-stack config (needs the Pulumi CLI and AWS credentials: without the CLI, exit 2 before
   anything runs);
3. the SLO gate (`meridian slo`) against the target; a breach exits 1 with what to do next.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from meridian.choices import Shape, Target
from meridian.commands.slo import SloBreached, breach_message, not_proven_line
from meridian.errors import BadInput, GateFailed
from meridian.evidence.manifest import sha256_of
from meridian.output import report_console, section
from meridian.project import find_project_dir, require_zone
from meridian.reports import report_dir

if TYPE_CHECKING:
    from meridian.targets.sandbox import PreviewedPlan

ADVICE = {
    "sandbox": "The sandbox stays up for inspection: `meridian sandbox status --stack {stack}`, the report above; "
    "see docs/slo.md (When the gate fails).",
    "aws": "The update is applied but fails its SLOs: follow the rollback runbook in docs/slo.md (When the gate fails): "
    "redeploy the last good commit with `meridian up --stack {stack} --target aws`, or shift traffic to the dr "
    "region (`meridian drill`) if the primary region is the cause.",
}


class PreviewGateFailed(GateFailed):
    """The preview's policy or cost gate failed: nothing was applied."""


class ApplyFailed(GateFailed):
    """`pulumi up` (or the sandbox) failed."""


@dataclass(frozen=True, kw_only=True)
class UpRequest:
    stack: str
    target: Target = Target.sandbox
    time_scale: float = 10.0
    fault_proxies: bool = False
    shape: Shape = Shape.steady
    users: int = 20
    duration_s: float = 60.0
    report_dir: Path | None = None
    slo_path: Path | None = None
    state_dir: Path | None = None
    project_dir: Path | None = None


def pulumi_cli() -> str:
    path = shutil.which("pulumi")
    if path is None:
        raise BadInput(
            "`meridian up --target aws` needs the Pulumi CLI (the Automation API drives it) and AWS credentials: "
            "install it (https://www.pulumi.com/docs/install/), `pulumi login`, then rerun. Nothing was run. "
            "Offline, `meridian preview` and `--target sandbox` work without it."
        )
    return path


def run_up(req: UpRequest) -> int:

    from meridian.slo import gate, objectives
    from meridian.slo.run import LoadSpec
    from meridian.targets import TARGET_KINDS, open_target
    from meridian.targets.sandbox import PreviewedPlan, program_hash

    if req.target not in TARGET_KINDS:
        raise BadInput(f"unknown target {req.target!r} (allowed: {', '.join(TARGET_KINDS)})")
    if not (req.time_scale > 0 and math.isfinite(req.time_scale)):
        raise BadInput(f"--time-scale must be a number > 0 (got {req.time_scale:g})")
    load = LoadSpec(req.shape, req.users, float(req.users), req.duration_s)
    project_dir = find_project_dir(req.project_dir)
    require_zone(project_dir, req.stack)
    slo = objectives.load(project_dir, req.stack, req.slo_path)  # bad config or SLO file: exit 2 before any step
    objectives.require_users_for_every_tenant(slo, load.users)
    if req.target == "aws":
        pulumi_cli()
    console = report_console()
    out = req.report_dir or report_dir(project_dir, "up", req.stack)
    out.mkdir(parents=True, exist_ok=True)

    section(console, f"1/3 preview + policy gate: {req.stack}")
    program = program_hash(project_dir, req.stack)  # before the preview: a change during it is caught
    code = subprocess.run(
        [
            sys.executable,
            "-m",
            "meridian",
            "preview",
            "--stack",
            req.stack,
            "--project-dir",
            str(project_dir),
            "--json",
            str(out / "plan.json"),
        ],
        cwd=project_dir,
    ).returncode
    if code == 1:
        raise PreviewGateFailed(f"preview gate failed for {req.stack} (see above): nothing was applied")
    if code != 0:
        raise BadInput(f"preview of {req.stack} could not run (exit {code}, see above): nothing was applied")

    previewed_sha256 = sha256_of(out / "plan.json")  # what evidence bundles and rollout provenance hash
    section(console, f"2/3 apply: {req.stack} on {req.target}")
    if req.target == "sandbox":
        _apply_sandbox(req, project_dir, PreviewedPlan(program, previewed_sha256))
    else:
        _apply_aws(req, project_dir, console)

    section(console, f"3/3 SLO gate: {req.stack} on {req.target}")
    options = {"state_dir": req.state_dir} if req.target == "sandbox" and req.state_dir else {}
    target = open_target(req.target, req.stack, project_dir, **options)
    result = gate.run_gate(
        target,
        project_dir,
        slo,
        load,
        out / "slo",
        console=console,
        slo_path=req.slo_path,
        title=f"meridian up {req.stack} on {req.target}: SLO gate",
        # on AWS `pulumi up` renders its own plan and records no hash to compare with
        previewed_sha256=previewed_sha256 if req.target == "sandbox" else None,
    )
    gate.print_verdict(console, result)
    if not result.verdict.passed:
        raise SloBreached(breach_message(result.verdict, result.paths, ADVICE[req.target].format(stack=req.stack)))
    console.print(
        f"[green]{req.stack} is up on {req.target}: preview, policy, cost and SLO gates passed[/]"
        f"{not_proven_line(result.verdict)} (reports in {out})"
    )
    return 0


def _apply_sandbox(req: UpRequest, project_dir: Path, previewed: PreviewedPlan) -> None:
    from meridian.commands.sandbox import SandboxRequest
    from meridian.commands.sandbox import run_up as sandbox_up

    sandbox_up(
        SandboxRequest(
            stack=req.stack,
            project_dir=project_dir,
            state_dir=req.state_dir,
            time_scale=req.time_scale,
            fault_proxies=req.fault_proxies,
            previewed=previewed,
        )
    )


def _apply_aws(req: UpRequest, project_dir: Path, console) -> None:
    from pulumi import automation as auto

    policy_config = project_dir / "policies" / "config" / f"{req.stack}.json"
    try:
        stack = auto.select_stack(stack_name=req.stack, work_dir=str(project_dir))
        result = stack.up(
            on_output=console.print,
            policy_packs=[str(project_dir / "policies")],
            policy_pack_configs=[str(policy_config)] if policy_config.exists() else None,
        )
    except FileNotFoundError as exc:  # the CLI vanished between the check and the call
        raise BadInput(f"the Pulumi CLI could not be run ({exc}): install it and rerun") from None
    except auto.errors.CommandError as exc:
        raise ApplyFailed(f"pulumi up failed for {req.stack}; nothing past the failure was applied:\n{exc}") from None
    console.print(f"pulumi up: {result.summary.result}, {result.summary.resource_changes}")
