"""`meridian sandbox up|down|status`: parse, hand off to `meridian.targets.sandbox`, report."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from meridian.errors import BadInput, GateFailed, MeridianError
from meridian.output import Format, Progress, report_console
from meridian.project import find_project_dir, require_zone

if TYPE_CHECKING:
    from meridian.targets.sandbox import Manifest


class SandboxFailed(GateFailed):
    """A part of the sandbox failed to start or is unhealthy (exit 1)."""


@dataclass(frozen=True, kw_only=True)
class SandboxRequest:
    stack: str
    project_dir: Path | None = None
    state_dir: Path | None = None
    time_scale: float = 10.0
    fault_proxies: bool = False
    fresh: bool = False
    wipe: bool = False
    format: Format = Format.text  # what goes to stdout; `up` and `down` print text or json
    previewed: object = None  # targets.sandbox.PreviewedPlan: the plan `meridian up` previewed (up only)


def _root(req: SandboxRequest) -> tuple[Path, Path]:
    project_dir = find_project_dir(req.project_dir)
    require_zone(project_dir, req.stack)
    from meridian.targets.sandbox import root_of

    return project_dir, root_of(project_dir, req.stack, req.state_dir)


def _text_or_json(req: SandboxRequest, command: str) -> None:
    if req.format == Format.markdown:
        raise BadInput(f"`meridian sandbox {command}` prints text or json, not markdown (`sandbox status` has a Markdown view)")


def _console():
    return report_console()


def run_up(req: SandboxRequest) -> int:
    _text_or_json(req, "up")
    if not (req.time_scale > 0 and math.isfinite(req.time_scale)):
        raise BadInput(
            f"--time-scale must be a number > 0 (got {req.time_scale:g}): 1 keeps real seconds, 10 makes a 10 s check 1 s"
        )
    project_dir, root = _root(req)
    from meridian.stackconfig import load_validated
    from meridian.targets import sandbox

    cfg = load_validated(project_dir, req.stack)
    progress = Progress(
        _console() if req.format != Format.json else report_console(stderr=True), f"sandbox {req.stack}: starting"
    )
    try:
        with progress:
            res = sandbox.up(
                cfg,
                req.stack,
                root,
                time_scale=req.time_scale,
                fault_proxies=req.fault_proxies,
                fresh=req.fresh,
                project_dir=project_dir,
                previewed=req.previewed,
                on_step=lambda what: progress.update(f"sandbox {req.stack}: {what}"),
            )
    except sandbox.SandboxMissing as exc:
        raise BadInput(str(exc)) from None
    except sandbox.SandboxError as exc:
        raise SandboxFailed(str(exc)) from None
    doc = res.manifest
    if req.format == Format.json:
        print(
            json.dumps({"already_up": res.already_up, "seconds": round(res.seconds, 3), "manifest": str(root / "manifest.json")})
        )
        return 0
    c = _console()
    if res.already_up:
        c.print(
            f"sandbox [bold]{req.stack}[/] is already up (time scale {doc.failover.time_scale:g}); "
            f"`meridian sandbox down --stack {req.stack}` first to change it"
        )
    else:
        if res.replanned:
            c.print(f"the plan changed since the sandbox started (program {res.replanned}): restarted it from the new plan")
        elif res.cleaned:
            c.print(f"cleaned stale processes of a previous run: {', '.join(res.cleaned)}")
        c.print(f"sandbox [bold]{req.stack}[/] up in {res.seconds:.1f} s")
    _print_summary(c, doc, root)
    return 0


def _print_summary(c, doc: Manifest, root: Path) -> None:
    fo = doc.failover
    c.print(f"  front door   {doc.endpoint}  (HAProxy: {', '.join(doc.haproxy.servers)})")
    for role, r in doc.regions.items():
        c.print(f"  {role:<8} {r.region:<15} service {r.service_url}  db 127.0.0.1:{r.db_port} ({r.db_role})")
    for name, f in doc.faults.items():
        c.print(f"  fault proxy  {name:<12} 127.0.0.1:{f.port} -> {f.upstream}  control {f.control_url}")
    h = fo.haproxy
    c.print(
        f"  failover     interval {fo.health_check_interval_s} s x threshold {fo.failure_threshold} at time scale "
        f"{fo.time_scale:g} -> inter {h.inter_ms} ms fall {h.fall} rise {h.rise}; "
        f"detection bound {fo.detection_bound_scaled_s:g} s (RTO target {fo.rto_target_scaled_s:g} s scaled)"
    )
    c.print(f"  tenants      {', '.join(f'{t.id} ({t.plan})' for t in doc.tenants)}; API keys in the manifest")
    c.print(f"  manifest     {root / 'manifest.json'}")


def run_down(req: SandboxRequest) -> int:
    _text_or_json(req, "down")
    _, root = _root(req)
    from meridian.targets import sandbox

    res = sandbox.down(root, wipe=req.wipe)
    if req.format == Format.json:
        print(
            json.dumps(
                {"stopped": res.stopped, "already_gone": res.already_gone, "ports_busy": res.ports_busy, "wiped": res.wiped}
            )
        )
    else:
        c = _console()
        if not res.was_up:
            c.print(f"sandbox [bold]{req.stack}[/] was not up" + ("; data wiped" if res.wiped else ""))
        else:
            c.print(
                f"sandbox [bold]{req.stack}[/] down: stopped {', '.join(res.stopped) or 'nothing'}"
                + (f"; already gone: {', '.join(res.already_gone)}" if res.already_gone else "")
                + ("; data wiped" if res.wiped else f"; data kept in {root}")
            )
    if res.ports_busy:
        raise SandboxFailed(f"ports still in use after down: {', '.join(map(str, res.ports_busy))}")
    return 0


def run_status(req: SandboxRequest) -> int:
    _, root = _root(req)
    from meridian.targets import sandbox

    st = sandbox.status(root)
    if st["state"] == "corrupt":
        raise BadInput(st["error"])
    if req.format == Format.json:
        print(json.dumps(st, indent=2, default=str))
    elif req.format == Format.markdown:
        print(status_markdown(req.stack, st), end="")
    else:
        _print_status(_console(), req.stack, st)
    return 0 if st["healthy"] else 1


def _part_detail(p: dict) -> str:
    """What a part reports, leaving out what it did not say (never `None`)."""
    detail = []
    if p.get("role") is not None:
        detail.append(f"role {p['role']}")
    if p.get("db") is not None:
        detail.append(f"db {p['db']}" + (f" ({p['db_role']})" if p.get("db_role") is not None else ""))
    if p.get("serving_region") is not None:
        detail.append(f"serving {p['serving_region']}")
    if p.get("servers"):
        detail.append("servers " + ", ".join(f"{k} {v}" for k, v in p["servers"].items()))
    if not p.get("running", True):
        detail.append("process not running")
    if p.get("error"):
        detail.append(str(p["error"]))
    return "; ".join(detail)


def _replication_detail(r: dict) -> str:
    if r.get("error"):
        return str(r["error"])
    if r.get("lag_bytes") is None:
        return ""
    # what is behind, and for how long: seconds since the last replay only mean lag while bytes are behind
    since = r.get("since_replay_s")
    if since is None:
        return f"{r['lag_bytes']} bytes behind"
    state = "stalled or catching up" if r["lag_bytes"] else "caught up"
    return f"{r['lag_bytes']} bytes behind, last replay {since:g} s ago ({state})"


def _print_status(c, stack: str, st: dict) -> None:
    from rich.markup import escape

    if not st["parts"]:
        c.print(f"sandbox [bold]{stack}[/]: {st['state']}" + (f" ({escape(str(st['error']))})" if st.get("error") else ""))
        return
    verdict = "[green]healthy[/]" if st["healthy"] else "[red]unhealthy[/]"
    c.print(f"sandbox [bold]{stack}[/]: {verdict}  front door {st['endpoint']}")
    for name, p in st["parts"].items():
        mark = "[green]ok  [/]" if p.get("healthy") else "[red]FAIL[/]"
        c.print(f"  {mark} {name:<15} pid {p.get('pid') or '-'!s:<8} port {p.get('port') or '-'!s:<6} {escape(_part_detail(p))}")
    r = st["replication"]
    c.print(f"  replication  {r['state']}  {escape(_replication_detail(r))}")


def status_markdown(stack: str, st: dict) -> str:
    from meridian.render import markdown_table

    verdict = "healthy" if st["healthy"] else "**unhealthy**"
    out = [f"## meridian sandbox `{stack}`: {verdict}", ""]
    if not st["parts"]:
        return "\n".join(out + [f"State: {st['state']}" + (f" ({st['error']})" if st.get("error") else "")]) + "\n"
    rows = [
        [name, "ok" if p.get("healthy") else "FAIL", str(p.get("pid") or "-"), str(p.get("port") or "-"), _part_detail(p)]
        for name, p in st["parts"].items()
    ]
    out += [
        f"Front door: {st['endpoint']}",
        "",
        markdown_table(["part", "health", "pid", "port", "detail"], rows),
        "",
        f"Replication: {st['replication']['state']}" + (f", {d}" if (d := _replication_detail(st["replication"])) else ""),
    ]
    return "\n".join(out) + "\n"


__all__ = ["SandboxRequest", "run_up", "run_down", "run_status", "MeridianError"]
