"""`meridian ready`: after a platform's `up`, every EKS cluster its plan builds (its own and each
tenant cluster pair's) asked, read-only, whether it is ready for tenants (preflight.clusterready)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from meridian.errors import EXIT_GATE, EXIT_OK, BadInput
from meridian.output import Progress, report_console


@dataclass(frozen=True, kw_only=True)
class ReadyRequest:
    stack: str
    project_dir: Path | None = None
    json_path: Path | None = None


def run_ready(req: ReadyRequest, console: Console | None = None, aws=None) -> int:
    """`aws`: the account to ask (preflight.online.Aws); default, the runner's credentials."""
    from meridian.commands.common import prepare, writable

    console = console or report_console()
    prep = prepare(req.stack, req.project_dir, None)
    if prep.cfg.is_cell:
        raise BadInput(
            f"{req.stack} is a cell of {prep.cfg.platform}: a cell builds no cluster; run `meridian ready --stack "
            f"{prep.cfg.platform}` (its clusters, its pairs' included)"
        )
    json_path = writable(req.json_path)

    from meridian.engine.plan import Plan
    from meridian.engine.run import run_program
    from meridian.preflight.checks import Context
    from meridian.preflight.clusterready import check_cluster_readiness
    from meridian.preflight.run import print_report, summary_line, to_json

    with Progress(console, f"running the {req.stack} program offline (the clusters it builds)"):
        run = run_program(prep.project_dir, req.stack, record=True, overrides=prep.overrides)
    plan = Plan("meridian", req.stack, run.registrations, run.outputs)
    if aws is None:
        import boto3

        from meridian.preflight.online import Aws

        aws = Aws(boto3.session.Session())
    with Progress(console, f"asking EKS about {req.stack}'s clusters (read-only)"):
        results = [check_cluster_readiness(Context.of(plan, prep.cfg, prep.project_dir), aws)]
    print_report(results, console)
    console.print(f"readiness of {req.stack}'s clusters: {summary_line(results)}")
    if json_path:
        json_path.write_text(json.dumps(to_json(results), indent=1))
        console.print(f"readiness written to {json_path}")
    return EXIT_OK if all(r.passed for r in results) else EXIT_GATE
