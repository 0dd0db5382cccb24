"""Preflight `readiness`: every region's service can reach the database endpoints its settings name,
and its write path is one the database gives it, so each region can become Ready (issue 24, finding 4).

For each rendered service container (both regions' Deployments) and the migration Job, every
host its settings' DSNs name must be a database endpoint of this plan that the container's nodes
can reach:
- the same region as the pod, or a region the plan connects to it (a VPC peering connection or a
  Transit Gateway peering attachment between the two regions); AWS routes nothing between VPCs
  of different regions otherwise, and an RDS endpoint's private address is only in its own VPC;
- a security group on the database admitting the DSN's port from the security group of the pod
  region's EKS nodes (the cluster security group), or from a CIDR holding that region's VPC.
And the write path must be one the database provides: `forwarded` only through a cluster with
global write forwarding on that does not demand a read-write session (a forwarding secondary
answers read-only to it), and an Aurora global cluster member written to directly would refuse
writes once a switchover or failover demotes it.

A host no database of the plan answers at is a finding (nothing proves it reachable); a settings
file the engine cannot know yet (a first preview) is a note, never a pass.
"""

from __future__ import annotations

import ipaddress
import json
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qs, urlsplit

from meridian.preflight.context import CheckResult, Context, Finding
from meridian.preflight.workload import DEPLOYMENT, JOB, RenderedContainer, Unknown
from service.settings import MigrationSettings, ServiceSettings

if TYPE_CHECKING:
    from meridian.engine.recorder import Registration

ENCODES = (
    "a pod reaches a database endpoint only inside its own VPC or over a peering / Transit Gateway "
    "route, and only through a security group admitting its nodes on the port "
    "(https://docs.aws.amazon.com/vpc/latest/peering/what-is-vpc-peering.html, "
    "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_VPC.Scenarios.html, "
    "https://docs.aws.amazon.com/eks/latest/userguide/sec-group-reqs.html); a secondary of an Aurora "
    "global database takes writes only with global write forwarding, answers read-only to session "
    "checks, and applies a demoted primary's forwarding setting at switchover or failover "
    "(https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-write-forwarding-apg.html, "
    "RDS API CreateDBCluster EnableGlobalWriteForwarding)"
)
DATABASES = ("aws:rds/cluster:Cluster", "aws:rds/instance:Instance", "aws:rds/clusterInstance:ClusterInstance")
ROUTES = ("aws:ec2/vpcPeeringConnection:VpcPeeringConnection", "aws:ec2transitgateway/peeringAttachment:PeeringAttachment")
EKS_CLUSTER = "aws:eks/cluster:Cluster"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_PORT = 5432


class Problem(NamedTuple):
    urn: str
    problem: str
    fix: str


def _dsns(text: str) -> tuple[dict[str, str], str | None] | None:
    """The DSNs a settings file names (attribute -> DSN) and its write path; None: not a settings file."""
    doc = json.loads(text)
    if "admin_dsn" in doc:
        return {"admin_dsn": MigrationSettings.from_dict(doc).admin_dsn}, None
    settings = ServiceSettings.from_dict(doc)
    return {"write_dsn": settings.write_dsn, "read_dsn": settings.read_dsn}, settings.writes


def _hosts(dsn: str) -> list[tuple[str, int]]:
    netloc = urlsplit(dsn).netloc.rpartition("@")[2]
    out = []
    for part in netloc.split(","):
        host, sep, port = part.rpartition(":")
        out.append((host, int(port)) if sep and port.isdigit() else (part, DEFAULT_PORT))
    return out


def _demands_read_write(dsn: str) -> bool:
    return parse_qs(urlsplit(dsn).query).get("target_session_attrs") == ["read-write"]


class Topology:
    """What the plan says about where databases live, what admits whom, and which regions connect."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.by_urn = {r.urn: r for r in ctx.plan.custom}
        # RDS endpoints start with the resource's identifier (`<id>.<hash>.<region>.rds.amazonaws.com`)
        self.databases = {r.id: r for r in ctx.plan.custom if r.type in DATABASES and r.id}
        self.node_clusters = {ctx.plan.region_of(r): r.urn for r in ctx.plan.custom if r.type == EKS_CLUSTER}
        self.cidrs = {spec.region: spec.cidr for _, spec in ctx.cfg.regions.both}
        self.routes = set()
        for r in ctx.plan.custom:
            peer = ctx.inputs[r.urn].get("peerRegion") if r.type in ROUTES else None
            if isinstance(peer, str):
                self.routes.add(frozenset((ctx.plan.region_of(r), peer)))

    def database(self, host: str) -> Registration | None:
        return self.databases.get(host.split(".", 1)[0])

    def cluster_of(self, db: Registration) -> Registration:
        """An instance of an Aurora cluster takes its security groups and settings from the cluster."""
        for urn in db.property_dependencies.get("clusterIdentifier", []):
            if urn in self.by_urn:
                return self.by_urn[urn]
        return db

    def admits(self, db: Registration, port: int, region: str) -> bool:
        """A security group of `db` admits `port` from `region`'s EKS nodes (or its VPC's CIDR)."""
        holder = self.cluster_of(db)
        nodes = self.node_clusters.get(region)
        cidr = self.cidrs.get(region)
        for sg_urn in holder.property_dependencies.get("vpcSecurityGroupIds", []):
            sg = self.by_urn.get(sg_urn)
            if sg is None or sg.type != SECURITY_GROUP:
                continue
            from_nodes = nodes is not None and nodes in sg.property_dependencies.get("ingress", [])
            for rule in self.ctx.inputs[sg.urn].get("ingress") or []:
                if not _covers(rule, port):
                    continue
                if rule.get("securityGroups") and from_nodes:
                    return True
                if cidr and any(_within(cidr, block) for block in rule.get("cidrBlocks") or []):
                    return True
        return False

    def connected(self, a: str, b: str) -> bool:
        return a == b or frozenset((a, b)) in self.routes


def _covers(rule: dict, port: int) -> bool:
    if str(rule.get("protocol")) not in ("tcp", "6", "-1", "all"):
        return False
    if str(rule.get("protocol")) in ("-1", "all"):
        return True
    return int(rule.get("fromPort", -1)) <= port <= int(rule.get("toPort", -1))


def _within(inner: str, outer: str) -> bool:
    try:
        return ipaddress.ip_network(inner).subnet_of(ipaddress.ip_network(outer))
    except (TypeError, ValueError):
        return False


def _settings_files(container: RenderedContainer):
    for f in container.files.values():
        if isinstance(f.content, str) and f.path.endswith(".json"):
            yield f


def check_readiness(ctx: Context) -> CheckResult:
    result = CheckResult("readiness", ENCODES)
    topo = Topology(ctx)
    for c in ctx.containers():
        if c.owner_type not in (DEPLOYMENT, JOB):
            continue
        unknown = [f.path for f in c.files.values() if isinstance(f.content, Unknown)]
        if unknown:
            result.notes.append(
                f"{c.owner_urn}: {', '.join(unknown)} known only after `up`: its database reachability is not judged"
            )
        for f in _settings_files(c):
            try:
                parsed = _dsns(f.content)
            except (ValueError, KeyError, TypeError):
                continue  # `service-settings` reports a file its reader cannot load
            dsns, writes = parsed
            for attr, dsn in dsns.items():
                for host, port in _hosts(dsn):
                    result.checked += 1
                    result.findings += [Finding(*p) for p in _judge_endpoint(topo, c, attr, host, port)]
            if writes is not None:
                result.findings += [Finding(*p) for p in _judge_write_path(topo, c, dsns["write_dsn"], writes)]
    return result


def _judge_endpoint(topo: Topology, c: RenderedContainer, attr: str, host: str, port: int) -> list[Problem]:
    db = topo.database(host)
    where = f"{c.owner_urn} ({c.region}): {attr} names {host}:{port}"
    if db is None:
        return [
            Problem(
                c.owner_urn, f"{where}, which no database of this plan answers at", "name an endpoint of the stack's own database"
            )
        ]
    db_region = topo.ctx.plan.region_of(db)
    out = []
    if not topo.connected(c.region, db_region):
        out.append(
            Problem(
                c.owner_urn,
                f"{where}, a database in {db_region}: no VPC peering or Transit Gateway route joins {c.region} to it, "
                "so the pods' connections never arrive",
                "connect to the region's own endpoint (a dr region reads its own replica and, without write "
                "forwarding, is passive until promoted), or add a route and a security group rule for it",
            )
        )
    if not topo.admits(db, port, c.region):
        out.append(
            Problem(
                c.owner_urn,
                f"{where}: no security group of {db.urn} admits port {port} from the {c.region} nodes",
                f"admit the {c.region} cluster's node security group on {port} (or connect to the region's own endpoint)",
            )
        )
    return out


def _judge_write_path(topo: Topology, c: RenderedContainer, write_dsn: str, writes: str) -> list[Problem]:
    where = f"{c.owner_urn} ({c.region}): writes {writes}"
    out = []
    hosts = [host for host, _ in _hosts(write_dsn)]
    for i, host in enumerate(hosts):
        db = topo.database(host)
        if db is None:
            continue
        holder = topo.cluster_of(db)
        inputs = topo.ctx.inputs[holder.urn]
        is_global = bool(inputs.get("globalClusterIdentifier"))
        if writes == "forwarded":
            secondary = c.region != topo.ctx.cfg.regions.primary.region
            demoted_path = [
                h for h in hosts[i + 1 :] if ".cluster-ro-" in h and (d := topo.database(h)) and topo.cluster_of(d) == holder
            ]
            if not secondary and is_global and ".cluster-" in host and ".cluster-ro-" not in host and not demoted_path:
                out.append(
                    Problem(
                        c.owner_urn,
                        f"{where} through {host} alone, the cluster (writer) endpoint of the global writer: a switchover "
                        "or failover demotes the cluster and AWS makes that endpoint inactive, so the region's writes "
                        "fail until the stack is updated",
                        "name the same cluster's reader endpoint after it in the write DSN (a multi-host DSN: once "
                        "demoted, the reader endpoint forwards writes; "
                        "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-connecting.html)",
                    )
                )
            if secondary and ".cluster-" in host and ".cluster-ro-" not in host:
                out.append(
                    Problem(
                        c.owner_urn,
                        f"{where} through {host}, the cluster (writer) endpoint of an Aurora global secondary: AWS keeps "
                        "it inactive, so no write connects and the region never gets Ready",
                        "write through the secondary's reader endpoint, which forwards writes "
                        "(https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-global-database-connecting.html)",
                    )
                )
            if _demands_read_write(write_dsn):
                out.append(
                    Problem(
                        c.owner_urn,
                        f"{where}, but its write DSN demands target_session_attrs=read-write: a forwarding "
                        "secondary answers read-only to that check, so no write ever connects",
                        "drop target_session_attrs from a forwarded write DSN",
                    )
                )
            if inputs.get("enableGlobalWriteForwarding") is not True:
                out.append(
                    Problem(
                        c.owner_urn,
                        f"{where} through {holder.urn}, which has no global write forwarding: as a secondary "
                        "(before a failover, or after a switchover demoted it) it refuses every write",
                        "set enable_global_write_forwarding=True on every cluster of the global database",
                    )
                )
        elif is_global:
            out.append(
                Problem(
                    c.owner_urn,
                    f"{where} through the Aurora global member {holder.urn}: once a switchover or failover "
                    "demotes it, a write path that is not `forwarded` takes no write",
                    "render writes: forwarded with global write forwarding on the cluster",
                )
            )
    return out
