"""`meridian docs`: check (default) or `--write` the generated figures and diagrams in docs/."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from meridian.errors import EXIT_GATE, EXIT_OK
from meridian.output import Progress, report_console


@dataclass(frozen=True, kw_only=True)
class DocsRequest:
    project_dir: Path | None = None
    write: bool = False


def run_docs(req: DocsRequest) -> int:
    from meridian.docs import bench_problems, load_bench, render_docs, stack_facts
    from meridian.project import find_project_dir

    console = report_console()
    project = find_project_dir(req.project_dir)
    with Progress(console, "previewing every stack"):
        facts = stack_facts(project)
    bench = load_bench(project)
    wanted = render_docs(project, facts, bench)
    stale = [path for path, text in wanted.items() if (project / path).read_text() != text]
    if req.write:
        for path in stale:
            (project / path).write_text(wanted[path])
        console.print(f"rewrote {', '.join(stale)}" if stale else "docs already up to date")
        stale = []
    elif stale:
        console.print(f"[bold red]stale:[/] {', '.join(stale)}: run `meridian docs --write`")
    problems = bench_problems(facts, bench)
    for problem in problems:
        console.print(f"[bold red]stale figures:[/] {problem}")
    return EXIT_GATE if stale or problems else EXIT_OK
