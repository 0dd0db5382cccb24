"""A program run closes every event loop it made (engine.run.program_loop): the one it runs on and
the one the SDK's mock monitor gives each executor thread. A loop left to the garbage collector is a
`ResourceWarning` from `BaseEventLoop.__del__`, printed as "Exception ignored ..." with a traceback
on stderr whenever the collector runs late (a zone's worker at exit, under load): run here with
`-W error::ResourceWarning`, so a leaked loop or socket is always on stderr, never only sometimes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from .helpers import ROOT, full_project_copy

RUN = textwrap.dedent(
    """
    import gc, sys
    from pathlib import Path
    from meridian.engine.run import run_program
    from meridian.errors import ProgramFailed
    try:
        run = run_program(Path(sys.argv[1]), sys.argv[2], record=sys.argv[3] == "record", reveal=["tenant_api_keys"])
        print("resources", run.resource_count, "keys", sorted(run.revealed["tenant_api_keys"]))
    except ProgramFailed as exc:
        print("failed:", exc)
    run = None
    gc.collect()
    print("collected")
    """
)
LEAKS = ("Exception ignored", "ResourceWarning", "unclosed")


def _run(project, stack: str, mode: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c", RUN, str(project), stack, mode],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
        env=env,
    )


@pytest.mark.parametrize(("stack", "mode"), [("us", "bare"), ("us-cell-001", "record")])
def test_a_program_run_closes_every_event_loop_it_made(stack, mode):
    """The cell also runs its platform first, in a worker process of its own (warning options pass to it)."""
    proc = _run(ROOT, stack, mode)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "collected" in proc.stdout and "resources" in proc.stdout, proc.stdout
    assert "keys [" in proc.stdout and "keys []" not in proc.stdout  # the revealed output, resolved before the loop closed
    assert not [w for w in LEAKS if w in proc.stderr], proc.stderr[-3000:]


def test_a_program_that_fails_closes_its_loops_too(tmp_path):
    project = full_project_copy(tmp_path)
    main = project / "__main__.py"
    main.write_text(main.read_text() + '\nraise RuntimeError("the program broke after registering everything")\n')
    proc = _run(project, "us", "record")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "failed: the program raised RuntimeError: the program broke" in proc.stdout, proc.stdout
    assert not [w for w in LEAKS if w in proc.stderr], proc.stderr[-3000:]
