"""HAProxy as the Route 53 stand-in: pure config rendering from the stack's failover settings.

Route 53 failover routing, mapped:
- PRIMARY record + health check  -> the primary region's service, an active server checked with
  `GET /healthz` (deep: the region's database reachable, its role known);
- SECONDARY record               -> the dr region's service, a `backup` server: it gets traffic only
  while the primary is marked down;
- health check interval          -> `inter` = interval / time scale (also `fastinter`, `downinter`);
- failure threshold              -> `fall` = threshold (the count is kept; each check is scaled),
  and `rise` = threshold too (Route 53 uses the same threshold to mark an endpoint healthy again);
- a check's own timeout          -> `timeout check` = min(inter, 2 s), as Route 53 gives a check
  less than its interval;
- DNS TTL                        -> nothing in HAProxy (clients re-resolve instantly); it is kept in
  the manifest, scaled, so drills can add it to the detection bound they expect.
Progressive delivery (`meridian rollout`): each region's door is also served on its own port
(`frontend door-<role>` -> `backend region-<role>`, the region's server alone), so a region that
the failover pair keeps idle (dr) can still be loaded and its canary judged. A canary is a server
added at run time through the admin socket (`add server`) beside its region's stable server, in
`api` (as a backup for dr: `option allbackups` keeps dr's stable+canary split when dr serves) and in
`region-<role>`; the split is the pair's weights (stable 100-p, canary p), set live.

Detection bound (scaled) = (interval x threshold + TTL) / time scale: a 10 s x 3 + 30 s stack at
the default time scale 10 fails over in about 3 s of checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_TIME_SCALE = 10.0
MIN_INTER_MS = 50  # HAProxy accepts less, but checks faster than this only measure the checker


@dataclass(frozen=True)
class ScaledFailover:
    """The stack's failover settings and what they become in the sandbox at `time_scale`."""

    health_check_interval_s: int
    failure_threshold: int
    dns_ttl_s: int
    rto_target_s: int
    time_scale: float

    def __post_init__(self) -> None:
        if not (self.time_scale > 0 and math.isfinite(self.time_scale)):
            raise ValueError(f"time scale must be a finite number > 0 (got {self.time_scale})")

    @property
    def inter_ms(self) -> int:
        return max(MIN_INTER_MS, round(self.health_check_interval_s * 1000 / self.time_scale))

    @property
    def fall(self) -> int:
        return self.failure_threshold

    @property
    def rise(self) -> int:
        return self.failure_threshold

    @property
    def check_timeout_ms(self) -> int:
        return min(self.inter_ms, 2000)

    @property
    def detection_bound_s(self) -> float:
        """Scaled worst case from the first failed check to clients on the secondary."""
        return (self.inter_ms * self.fall) / 1000 + self.dns_ttl_s / self.time_scale

    @property
    def rto_target_scaled_s(self) -> float:
        return self.rto_target_s / self.time_scale

    def to_dict(self) -> dict:
        return {
            "health_check_interval_s": self.health_check_interval_s,
            "failure_threshold": self.failure_threshold,
            "dns_ttl_s": self.dns_ttl_s,
            "rto_target_s": self.rto_target_s,
            "time_scale": self.time_scale,
            "haproxy": {
                "inter_ms": self.inter_ms,
                "fall": self.fall,
                "rise": self.rise,
                "timeout_check_ms": self.check_timeout_ms,
            },
            "dns_ttl_scaled_s": self.dns_ttl_s / self.time_scale,
            "detection_bound_scaled_s": round(self.detection_bound_s, 3),
            "rto_target_scaled_s": round(self.rto_target_scaled_s, 3),
        }


@dataclass(frozen=True)
class Backend:
    name: str  # e.g. "primary-us-east-1"
    host: str
    port: int
    backup: bool


@dataclass(frozen=True)
class RegionDoor:
    """A region's own door: its port and its (stable) server."""

    role: str
    port: int
    server: Backend


def server_line(b: Backend) -> str:
    return f"    server {b.name} {b.host}:{b.port} check{' backup' if b.backup else ''}"


def check_params(failover: ScaledFailover) -> str:
    """The health check settings every server gets (static ones through default-server; a server
    added at run time inherits nothing, so it is given these explicitly)."""
    f = failover
    return (
        f"inter {f.inter_ms}ms fastinter {f.inter_ms}ms downinter {f.inter_ms}ms fall {f.fall} rise {f.rise} "
        "on-marked-down shutdown-sessions"
    )


def render(
    failover: ScaledFailover,
    frontend_port: int,
    backends: list[Backend],
    stats_socket: str,
    host: str = "127.0.0.1",
    maxconn: int = 4096,
    doors: tuple[RegionDoor, ...] = (),
) -> str:
    """The haproxy.cfg text. Everything binds to `host` (loopback) only."""
    if not backends or all(b.backup for b in backends):
        raise ValueError("at least one active (non-backup) server is needed")
    names = [b.name for b in backends]
    if len(set(names)) != len(names):
        raise ValueError(f"server names must be unique: {names}")
    for b in (*backends,):
        if not 0 < b.port < 65536:
            raise ValueError(f"bad port for {b.name}: {b.port}")
    for port in (frontend_port, *(d.port for d in doors)):
        if not 0 < port < 65536:
            raise ValueError(f"bad frontend port {port}")
    if any(c.isspace() for c in stats_socket):
        raise ValueError("the stats socket path must not contain whitespace")
    f = failover
    servers = "\n".join(server_line(b) for b in backends)
    return f"""\
# Rendered by meridian sandbox: the Route 53 failover stand-in. Do not edit; `meridian sandbox up` rewrites it.
# Stack failover: interval {f.health_check_interval_s} s, threshold {f.failure_threshold}, TTL {f.dns_ttl_s} s, RTO target {f.rto_target_s} s; time scale {f.time_scale:g}
global
    maxconn {maxconn}
    # one thread: the sandbox shares two cores with PostgreSQL and the services
    nbthread 1
    stats socket {stats_socket} mode 600 level admin
    log stdout format raw local0 notice

defaults
    mode http
    # notices only: server UP/DOWN transitions land in the log with a timestamp (drill timelines);
    # per-request lines would cost more than the proxying
    log global
    option dontlognull
    option redispatch
    retries 2
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 10s
    timeout check {f.check_timeout_ms}ms

frontend api
    bind {host}:{frontend_port}
    # no region passes its check (none can serve writes, or all are drained): a clear JSON 503
    # with Retry-After, as the services answer, not HAProxy's HTML page; a drained (fenced)
    # server stays out of traffic
    http-request return status 503 content-type application/json hdr Retry-After 1 string '{{"error": "no_region_available", "message": "no region passes its health check now; retry after Retry-After seconds"}}' if {{ nbsrv(api) eq 0 }}
    default_backend api

backend api
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host sandbox
    http-check expect status 200
    # every usable backup serves (by weight) when the primary is down: dr's stable + canary split
    option allbackups
    # Route 53 failover: interval -> inter (scaled), failure threshold -> fall and rise
    default-server {check_params(f)}
{servers}
""" + "".join(_door(d, host, f) for d in doors)


def _door(door: RegionDoor, host: str, failover: ScaledFailover) -> str:
    return f"""
# the {door.role} region's own door (rollout load and judging); the front door above is unchanged
frontend door-{door.role}
    bind {host}:{door.port}
    default_backend region-{door.role}

backend region-{door.role}
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host sandbox
    http-check expect status 200
    default-server {check_params(failover)}
{server_line(Backend(door.server.name, door.server.host, door.server.port, False))}
"""


def parse_show_stat(csv_text: str, backend: str = "api") -> dict[str, dict[str, str]]:
    """`show stat` CSV from the stats socket -> {server name: row} for `backend`'s servers."""
    lines = [ln for ln in csv_text.splitlines() if ln.strip()]
    if not lines or not lines[0].startswith("# "):
        return {}
    header = lines[0][2:].split(",")
    out = {}
    for ln in lines[1:]:
        row = dict(zip(header, ln.split(","), strict=False))
        if row.get("pxname") == backend and row.get("svname") not in ("FRONTEND", "BACKEND"):
            out[row["svname"]] = row
    return out
