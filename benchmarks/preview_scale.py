"""Preview overhead: `meridian preview` vs the SDK floor `meridian preview --bare`, side by side.

Each stack runs both modes in fresh processes, alternating, REPEAT times; the table shows medians
of wall time and peak RSS and their ratio (target: preview / bare <= 1.3).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("us", "eu", "apac")
REPEAT = int(os.environ.get("BENCH_REPEAT", "3"))
TARGET = 1.3


def timed(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one fresh `meridian` process."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "meridian", *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"meridian {' '.join(args)} failed: {proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    console = Console()
    table = Table(title=f"meridian preview vs --bare (median of {REPEAT}, fresh process each)")
    for col in ("stack", "bare s", "preview s", "ratio", "bare RSS MiB", "preview RSS MiB", "target"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp, console.status("benchmarking") as status:
        for stack in STACKS:
            bare, full = [], []
            for i in range(REPEAT):
                status.update(f"{stack}: run {i + 1}/{REPEAT}")
                bare.append(timed(["preview", "--stack", stack, "--bare"]))
                full.append(timed(["preview", "--stack", stack, "--json", f"{tmp}/{stack}.json"]))
            b = statistics.median(t for t, _ in bare)
            f = statistics.median(t for t, _ in full)
            ratio = f / b
            table.add_row(
                stack, f"{b:.2f}", f"{f:.2f}", f"{ratio:.2f}",
                f"{statistics.median(m for _, m in bare):.0f}", f"{statistics.median(m for _, m in full):.0f}",
                "[green]ok[/]" if ratio <= TARGET else f"[red]> {TARGET}[/]",
            )
    console.print(table)


if __name__ == "__main__":
    main()
