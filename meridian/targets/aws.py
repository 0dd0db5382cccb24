"""AWS as a Target, through boto3: Route 53 (health checks, failover by inverting the PRIMARY's
check), Aurora global database switchover / failover or RDS cross-region replica promotion, FIS
experiments (the DR component's templates) for the faults, CloudWatch for replication lag.

What it needs, without the Pulumi CLI: the stack's outputs (`pulumi stack output --json >
.meridian/outputs/<stack>.json`, or `--outputs FILE`), credentials in the usual boto3 places, and
for the probe the API keys of the tenants (`MERIDIAN_TENANT_KEYS='{"acme": "..."}'`).

How each operation maps (`explain()` lists exactly these calls; tests hold execution to it):

    kill_region(primary)        fis.start_experiment(<disrupt-network template>): the data subnets cut off
    restore_region(primary)     fis.stop_experiment(<that experiment>)
    stop_database(primary, planned=True)    nothing: Aurora's switchover fences the writer itself;
                                the next promote() is then a switchover (RPO 0)
    stop_database(primary)      the same FIS experiment (the database becomes unreachable)
    promote(role)               Aurora: rds.switchover_global_cluster (planned) or
                                rds.failover_global_cluster(AllowDataLoss=True), then poll
                                rds.describe_global_clusters until the member writes; after a
                                switchover, the demoted member must forward writes (below);
                                RDS: rds.promote_read_replica, then poll rds.describe_db_instances
    restore_database(role)      Aurora: stop the experiment; AWS rebuilds the old primary as a secondary;
                                once it is a member again it must forward writes (below)
    (write forwarding)          rds.describe_db_clusters(<member>) in its region: GlobalWriteForwardingStatus;
                                not enabled: rds.modify_db_cluster(EnableGlobalWriteForwarding=True).
                                Each region's pods write through their own cluster (components.database),
                                so a secondary that forwards nothing refuses its whole region's writes
    flip_traffic(dr|primary)    route53.update_health_check(PRIMARY check, Inverted=True|False)
    set_canary_weight(role, p)  elbv2.describe_target_health(canary group) when p > 0 (a canary with no
                                healthy target gets no traffic), then elbv2.modify_listener: the
                                region's HTTPS listener forwards 100 - p to stable, p to canary
    canary_weights()            elbv2.describe_listeners per region, read back as percent
    inject(blackhole database)  fis.start_experiment(<disrupt-network template>)
    clear_faults()              fis.stop_experiment for every experiment this target started

Region names in outputs and config decide every client's region; Route 53 (global) is called in
us-east-1.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx

from meridian.errors import BadInput
from meridian.stackconfig import load_validated
from meridian.targets.lock import LockHeld, LockOwner, takeover_reason
from meridian.targets.protocol import (
    ROLES,
    ActionFailed,
    ActionResult,
    Fault,
    Health,
    RegionHealth,
    Role,
    TargetUnavailable,
    TenantCredential,
    Unsupported,
    check_role,
    timed,
)
from stackconfig import StackConfig

ROUTE53_REGION = "us-east-1"
WAIT_S = 900.0  # how long a promotion or a rejoin is polled before it counts as failed
KEYS_ENV = "MERIDIAN_TENANT_KEYS"
NETWORK_TEMPLATE = "disrupt-network"
# The drill lock is an SSM parameter in the stack's primary region, created with Overwrite=False:
# SSM refuses a second create atomically (ParameterAlreadyExists), it needs no resource the Pulumi
# program would have to own (a DynamoDB table would change every stack's plan), every operator and
# CI job with the stack's credentials sees it, and it stays in the stack's residency zone. An RDS
# tag would need no new resource either, but AddTagsToResource has no condition: two drills could
# both write theirs. The owner and the expiry are the parameter's value (LockOwner).
LOCK_PARAMETER = "/meridian/{stack}/drill-lock"
CREDENTIALS_HINT = (
    "set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, with AWS_SESSION_TOKEN for a role), "
    "or run where an instance or task role provides them"
)
FIS_ENDED = ("completed", "stopping", "stopped", "failed", "cancelled")  # nothing left to stop
TRACKS = ("stable", "canary")  # the listener's target groups (components.ingress)


def from_stack(
    stack: str,
    project_dir: Path,
    *,
    outputs: Path | None = None,
    client_factory: Callable[[str, str], Any] | None = None,
    poll_s: float = 5.0,
    wait_s: float = WAIT_S,
) -> AwsTarget:
    path = outputs or project_dir / ".meridian" / "outputs" / f"{stack}.json"
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise TargetUnavailable(
            f"no stack outputs at {path}: run `pulumi stack output --stack {stack} --json > {path}` (or pass --outputs FILE)"
        ) from None
    except ValueError as exc:
        raise BadInput(f"{path}: not JSON ({exc})") from None
    cfg = load_validated(project_dir, stack)
    cells = [load_validated(project_dir, cell) for cell in cfg.cells.names]
    return AwsTarget(
        stack,
        cfg,
        doc,
        cells=cells,
        state_file=project_dir / ".meridian" / "drills" / stack / "aws-experiments.json",
        client_factory=client_factory,
        poll_s=poll_s,
        wait_s=wait_s,
    )


def _boto3_client(service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region)


def _first_label(host: Any) -> str:
    return str(host).split(".", 1)[0]


class AwsTarget:
    kind = "aws"

    def __init__(
        self,
        stack: str,
        cfg: StackConfig,
        outputs: dict,
        *,
        state_file: Path,
        cells: Sequence[StackConfig] = (),
        client_factory: Callable[[str, str], Any] | None = None,
        poll_s: float = 5.0,
        wait_s: float = WAIT_S,
    ):
        """`cfg`: the zone's platform stack's config; `cells`: its cells' (whose tenants the
        platform's front door serves too)."""
        self.stack, self.cfg, self.outputs = stack, cfg, outputs
        self.zone_tenants = [(t, one.quota_of(t)) for one in (cfg, *cells) for t in one.tenants]
        missing = [k for k in ("api_url", "regions", "dr") if k not in outputs]
        dr = outputs.get("dr") or {}
        missing += [f"dr.{k}" for k in ("health_check_ids", "experiment_templates") if k not in dr]
        if missing:
            raise BadInput(f"stack outputs lack {', '.join(missing)}: run `pulumi up` with this version first")
        self.regions = {role: outputs["regions"][role]["region"] for role in ROLES}
        self.checks = dr["health_check_ids"]  # PRIMARY / SECONDARY
        self.templates = dr["experiment_templates"]
        self.aurora = cfg.database.engine == "aurora-postgresql"
        self._factory = client_factory or _boto3_client
        self._clients: dict[tuple[str, str], Any] = {}
        self._state_file = state_file
        self._planned = False  # a planned stop_database turns the next promote into a switchover
        self._explain_planned = False  # the same, for explain() walking a drill's plan
        self._account_checked = False
        self.poll_s, self.wait_s = poll_s, wait_s

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self._factory(service, region)
        return self._clients[key]

    def _call(self, service: str, region: str, operation: str, **params: Any) -> dict:
        try:
            return getattr(self.client(service, region), operation)(**params)
        except Exception as exc:  # botocore ClientError / EndpointConnectionError / ...
            raise ActionFailed(f"{service}.{operation} in {region} failed: {exc}") from None

    # --- guards: the account, the engine ------------------------------------------------------

    def check_account(self) -> str:
        """The account the credentials act in, which must be the stack's `meridian:aws_account_id`
        (exit 2 otherwise, and with no credentials at all): the first call a run makes."""
        expected = self.cfg.aws_account_id
        if not expected:
            raise BadInput(
                f"stack {self.stack} sets no meridian:aws_account_id: a drill checks the account it acts on against it; set it"
            )
        if self._account_checked:
            return expected
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        region = self.regions["primary"]
        try:
            account = str(self.client("sts", region).get_caller_identity()["Account"])
        except NoCredentialsError:
            raise TargetUnavailable(
                f"no AWS credentials for stack {self.stack} (account {expected}): {CREDENTIALS_HINT}"
            ) from None
        except (ClientError, BotoCoreError) as exc:
            raise TargetUnavailable(
                f"the AWS credentials were refused (sts.get_caller_identity in {region}: {exc}): {CREDENTIALS_HINT}"
            ) from None
        if account != expected:
            raise BadInput(
                f"the AWS credentials act in account {account}, but stack {self.stack} lives in account {expected} "
                f"(meridian:aws_account_id): use credentials for {expected}"
            )
        self._account_checked = True
        return account

    def refuse_unsafe(self, scenario: str, *, promotes: bool) -> None:
        if promotes and not self.aurora:
            raise Unsupported(
                f"drill {scenario} would promote the {self.cfg.database.engine} cross-region read replica of stack "
                f"{self.stack}, which RDS cannot fail back: the old primary is not rebuilt as a replica nor fenced. "
                'Run it as the runbook\'s manual procedure instead (docs/runbooks/dr-drill.md, "RDS engine": stop '
                "writes, promote by hand, swap the regions in config and `pulumi up` a new replica), or drill on a "
                "stack with database.engine aurora-postgresql"
            )
        self.check_account()

    # --- the drill lock (SSM parameter, see LOCK_PARAMETER) -----------------------------------

    def _lock_name(self) -> str:
        return LOCK_PARAMETER.format(stack=self.stack)

    def _held_lock(self) -> tuple[str | None, LockOwner | None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            value = self.client("ssm", self.regions["primary"]).get_parameter(Name=self._lock_name())["Parameter"]["Value"]
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None, None
            raise ActionFailed(f"ssm.get_parameter({self._lock_name()}) in {self.regions['primary']} failed: {exc}") from None
        return value, LockOwner.parse(value)

    def _create_lock(self, claimant: LockOwner) -> bool:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client("ssm", self.regions["primary"]).put_parameter(
                Name=self._lock_name(),
                Value=claimant.dumps(),
                Type="String",
                Overwrite=False,  # the condition: SSM refuses when the parameter exists
                Description=f"meridian drill lock of stack {self.stack}",
            )
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == "ParameterAlreadyExists":
                return False
            raise ActionFailed(f"ssm.put_parameter({self._lock_name()}) in {self.regions['primary']} failed: {exc}") from None
        return True

    def _delete_lock_if(self, value: str) -> None:
        """Delete the parameter only while it still holds `value` (read, compare, delete: the window
        is one round trip, and a drill that loses it is refused by the create that follows)."""
        if self._held_lock()[0] == value:
            self._call("ssm", self.regions["primary"], "delete_parameter", Name=self._lock_name())

    def acquire_drill_lock(self, claimant: LockOwner, *, resume: bool = False, break_lock: bool = False) -> str:
        self.check_account()
        if self._create_lock(claimant):
            return ""
        value, held = self._held_lock()
        where = f"SSM parameter {self._lock_name()} in {self.regions['primary']}"
        note = ""
        if value is not None:
            note = takeover_reason(held, claimant, resume=resume, break_lock=break_lock, where=where)
            self._delete_lock_if(value)
        if self._create_lock(claimant):
            return note
        winner = self._held_lock()[1]
        raise LockHeld(
            f"another drill took the stack's lock just now ({winner.describe() if winner else where}); rerun when it is done"
        )

    def release_drill_lock(self, claimant: LockOwner) -> None:
        value, held = self._held_lock()
        if value is not None and held is not None and held.token == claimant.token:
            self._delete_lock_if(value)

    # --- identity of the database ------------------------------------------------------------

    def _cluster_id(self, role: str) -> str:
        return _first_label(self.outputs["regions"][role]["db_writer_endpoint" if role == "primary" else "db_reader_endpoint"])

    def _global(self) -> dict:
        """The Aurora global cluster the primary's writer cluster belongs to."""
        writer = _first_label(self.outputs["regions"]["primary"]["db_writer_endpoint"])
        found = self._call("rds", self.regions["primary"], "describe_global_clusters").get("GlobalClusters", [])
        for g in found:
            if any(m["DBClusterArn"].endswith(f":cluster:{writer}") for m in g.get("GlobalClusterMembers", [])):
                return g
        raise ActionFailed(f"no Aurora global cluster has the writer cluster {writer} as a member")

    def _member(self, glob: dict, role: str) -> dict:
        region = self.regions[role]
        for m in glob.get("GlobalClusterMembers", []):
            if _member_region(m) == region:
                return m
        raise ActionFailed(f"global cluster {glob.get('GlobalClusterIdentifier')} has no member in {region} ({role})")

    # --- looking ---------------------------------------------------------------------------------

    def region_endpoint(self, role: Role) -> str:
        """The region's own name (`api-<region>.<zone>`, on its certificate): load that reaches the
        region whatever failover routing answers, so the idle one can be judged too."""
        check_role(role)
        url = self.outputs["regions"][role].get("api_url")
        if not url:
            raise ActionFailed(f"the stack's outputs name no api_url for {role}: `pulumi up` a version that exports it")
        return url

    def endpoint(self) -> str:
        return str(self.outputs["api_url"])

    def plan_sha256(self) -> str | None:
        """Not recorded on AWS: `pulumi up` renders its own plan; the stack's state is the record."""
        return None

    def tenants(self) -> list[TenantCredential]:
        raw = os.environ.get(KEYS_ENV)
        if not raw:
            raise TargetUnavailable(
                f"set {KEYS_ENV} to a JSON object of tenant id -> API key, so the drill can write "
                f"and read through the front door as a tenant"
            )
        try:
            keys = json.loads(raw)
        except ValueError:
            raise BadInput(f"{KEYS_ENV} is not JSON") from None
        out = []
        for tenant, quota in self.zone_tenants:  # the zone's: the platform's and every cell's
            if tenant.id in keys:
                out.append(TenantCredential(tenant.id, tenant.plan, str(keys[tenant.id]), quota.gql_qps, quota.ingest_eps))
        if not out:
            ids = ", ".join(t.id for t, _ in self.zone_tenants)
            raise BadInput(f"{KEYS_ENV} names none of the zone's tenants ({ids})")
        return out

    def detection_bound_s(self) -> float:
        return float(self.cfg.failover.detection_bound_s)

    def time_scale(self) -> float:
        return 1.0  # AWS runs the stack's own timings

    def health(self) -> Health:
        routable = {}
        for role, check in (("primary", "PRIMARY"), ("dr", "SECONDARY")):
            status = self._call("route53", ROUTE53_REGION, "get_health_check_status", HealthCheckId=self.checks[check])
            observations = status.get("HealthCheckObservations", [])
            ok = [o for o in observations if str(o.get("StatusReport", {}).get("Status", "")).startswith("Success")]
            routable[role] = bool(observations) and len(ok) * 2 > len(observations)
        databases = self._database_roles()
        serving = self._serving()
        regions = {
            role: RegionHealth(role, self.regions[role], routable[role], databases[role], routable[role]) for role in ROLES
        }
        problems = [f"{r}: health check failing" for r in ROLES if not routable[r]]
        if sorted(databases.values()) != ["primary", "replica"]:
            problems.append(f"databases are {databases['primary']}/{databases['dr']}, not one primary and one replica")
        if serving is None:
            problems.insert(0, "the front door does not answer")
        return Health(not problems, serving, regions, self._lag_ms(), "; ".join(problems) or "ok")

    def _database_roles(self) -> dict[str, str]:
        if self.aurora:
            glob = self._global()
            out = {}
            for role in ROLES:
                try:
                    m = self._member(glob, role)
                except ActionFailed:
                    out[role] = "down"
                    continue
                out[role] = "primary" if m.get("IsWriter") else "replica"
            return out
        out = {}
        for role in ROLES:
            ident = _first_label(
                self.outputs["regions"][role]["db_writer_endpoint" if role == "primary" else "db_reader_endpoint"]
            )
            found = self._call("rds", self.regions[role], "describe_db_instances", DBInstanceIdentifier=ident).get(
                "DBInstances", []
            )
            if not found or found[0].get("DBInstanceStatus") != "available":
                out[role] = "down"
            else:
                out[role] = "replica" if found[0].get("ReadReplicaSourceDBInstanceIdentifier") else "primary"
        return out

    def _serving(self) -> Role | None:
        try:
            r = httpx.get(f"{self.endpoint().rstrip('/')}/healthz", timeout=5.0)
            region = r.json().get("region") if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None
        return next((role for role in ROLES if self.regions[role] == region), None)

    def _lag_ms(self) -> float | None:
        """Replication lag into the dr region, the last 5 minutes' maximum (CloudWatch)."""
        from datetime import datetime, timedelta

        now = datetime.now(UTC)
        if self.aurora:
            metric, dims, scale = (
                "AuroraGlobalDBReplicationLag",
                [{"Name": "DBClusterIdentifier", "Value": self._cluster_id("dr")}],
                1.0,
            )
        else:
            metric, dims, scale = "ReplicaLag", [{"Name": "DBInstanceIdentifier", "Value": self._cluster_id("dr")}], 1000.0
        stats = self._call(
            "cloudwatch",
            self.regions["dr"],
            "get_metric_statistics",
            Namespace="AWS/RDS",
            MetricName=metric,
            Dimensions=dims,
            StartTime=now - timedelta(minutes=5),
            EndTime=now,
            Period=60,
            Statistics=["Maximum"],
        )
        points = stats.get("Datapoints", [])
        return max(p["Maximum"] for p in points) * scale if points else None

    # --- faults (FIS) ------------------------------------------------------------------------

    def _experiments(self) -> dict[str, str]:
        try:
            return json.loads(self._state_file.read_text())
        except (FileNotFoundError, ValueError):
            return {}

    def _remember(self, experiments: dict[str, str]) -> None:
        self._state_file.parent.mkdir(parents=True, exist_ok=True)
        self._state_file.write_text(json.dumps(experiments, indent=1))

    def _start(self, template: str) -> tuple[bool, str]:
        running = self._experiments()
        if template in running:
            return False, f"experiment {running[template]} ({template}) already started"
        started = self._call(
            "fis",
            self.regions["primary"],
            "start_experiment",
            clientToken=uuid.uuid4().hex,
            experimentTemplateId=self.templates[template],
            tags={"meridian:drill": self.stack},
        )
        ident = started["experiment"]["id"]
        self._remember({**running, template: ident})
        return True, f"FIS experiment {ident} ({template}) started"

    def _stop(self, templates: list[str]) -> tuple[bool, str]:
        """Stop the experiments this target started from `templates`. One that FIS refuses to stop
        because it already ended (its duration ran out, or someone stopped it) is forgotten too;
        one that still runs keeps the error, and stays remembered for the next attempt."""
        running = self._experiments()
        stopped, ended = [], []
        try:
            for template in templates:
                if template not in running:
                    continue
                ident = running[template]
                try:
                    self._call("fis", self.regions["primary"], "stop_experiment", id=ident)
                    stopped.append(ident)
                except ActionFailed:
                    status = self._experiment_status(ident)
                    if status not in FIS_ENDED:
                        raise
                    ended.append(f"{ident} (already {status})")
                running.pop(template)
        finally:
            self._remember(running)
        said = [f"stopped FIS experiments {', '.join(stopped)}"] if stopped else []
        said += [f"FIS experiments ended by themselves: {', '.join(ended)}"] if ended else []
        return bool(stopped), "; ".join(said) or "no experiment running"

    def _experiment_status(self, ident: str) -> str | None:
        try:
            found = self._call("fis", self.regions["primary"], "get_experiment", id=ident)
        except ActionFailed:
            return None
        return str((found.get("experiment") or {}).get("state", {}).get("status") or "") or None

    def _primary_only(self, role: str, what: str) -> None:
        if check_role(role) != "primary":
            raise Unsupported(f"{what} on AWS acts on the primary region (the FIS templates live there), not {role}")

    def kill_region(self, role: Role) -> ActionResult:
        self._primary_only(role, "kill_region")
        return timed("kill_region", role, lambda: self._start(NETWORK_TEMPLATE))

    def restore_region(self, role: Role) -> ActionResult:
        self._primary_only(role, "restore_region")
        return timed("restore_region", role, lambda: self._stop([NETWORK_TEMPLATE]))

    def inject(self, fault: Fault) -> ActionResult:
        if not (fault.kind == "blackhole" and fault.layer == "database" and fault.role == "primary"):
            raise Unsupported(
                "on AWS only a partition of the primary database (kind blackhole, layer database) is "
                f"injected (FIS {NETWORK_TEMPLATE}); got {fault.kind}/{fault.layer}/{fault.role}"
            )
        return timed("inject", fault.role, lambda: self._start(NETWORK_TEMPLATE))

    def clear_faults(self) -> ActionResult:
        return timed("clear_faults", None, lambda: self._stop(sorted(self._experiments())))

    # --- databases ---------------------------------------------------------------------------

    def stop_database(self, role: Role, *, planned: bool = False) -> ActionResult:
        check_role(role)
        if not planned:
            self._primary_only(role, "an unplanned stop_database")

        def act() -> tuple[bool, str]:
            if planned:
                self._planned = True
                return False, "planned: the switchover in promote() fences the writer (no call now)"
            return self._start(NETWORK_TEMPLATE)

        return timed("stop_database", role, act)

    def restore_database(self, role: Role) -> ActionResult:
        check_role(role)
        if not self.aurora:
            raise Unsupported(
                "a promoted RDS replica leaves no replica behind: recreate the cross-region replica with "
                "`pulumi up` after swapping the regions in config (docs/runbooks/dr-drill.md)"
            )

        def act() -> tuple[bool, str]:
            changed, detail = self._stop([NETWORK_TEMPLATE])
            self._wait(lambda: self._is_member(role), f"{role} rejoins the global cluster")
            enabled, forwarding = self._ensure_forwarding(self._global(), role)
            return changed or enabled, f"{detail}; {role} is a member of the global cluster again; {forwarding}"

        return timed("restore_database", role, act)

    def _ensure_forwarding(self, glob: dict, role: str) -> tuple[bool, str]:
        """The `role` member (a secondary now, or soon) forwards its region's writes; turn it on if not.
        The program sets it on both clusters; a cluster made before that, or changed by hand, would
        otherwise refuse every write of its region's pods after a switchover demoted it."""
        arn = self._member(glob, role)["DBClusterArn"]
        ident, region = arn.rsplit(":", 1)[-1], self.regions[role]
        found = self._call("rds", region, "describe_db_clusters", DBClusterIdentifier=ident).get("DBClusters", [])
        status = found[0].get("GlobalWriteForwardingStatus") if found else None
        if status in ("enabled", "enabling"):
            return False, f"{role} forwards writes ({status})"
        self._call("rds", region, "modify_db_cluster", DBClusterIdentifier=ident, EnableGlobalWriteForwarding=True)
        return True, f"{role}: global write forwarding turned on (it was {status or 'off'})"

    def _is_member(self, role: str) -> bool:
        try:
            self._member(self._global(), role)
        except ActionFailed:
            return False
        return True

    def promote(self, role: Role) -> ActionResult:
        check_role(role)

        def aurora() -> tuple[bool, str]:
            glob = self._global()
            member = self._member(glob, role)
            if member.get("IsWriter"):
                return False, f"{role} already writes"
            ident, arn = glob["GlobalClusterIdentifier"], member["DBClusterArn"]
            planned = self._planned
            if planned:
                self._call(
                    "rds",
                    self.regions["primary"],
                    "switchover_global_cluster",
                    GlobalClusterIdentifier=ident,
                    TargetDbClusterIdentifier=arn,
                )
                how = "switchover (RPO 0)"
            else:
                self._call(
                    "rds",
                    self.regions[role],
                    "failover_global_cluster",
                    GlobalClusterIdentifier=ident,
                    TargetDbClusterIdentifier=arn,
                    AllowDataLoss=True,
                )
                how = "failover with data loss allowed"
            self._planned = False
            self._wait(lambda: bool(self._member(self._global(), role).get("IsWriter")), f"{role} becomes the writer")
            other = "primary" if role == "dr" else "dr"
            if planned:
                _, forwarding = self._ensure_forwarding(glob, other)
            else:  # the old writer left the global cluster: checked when it rejoins (restore_database)
                forwarding = f"{other} is checked for write forwarding when it rejoins (restore_database)"
            return True, f"{arn}: {how}; {forwarding}"

        def rds() -> tuple[bool, str]:
            if role != "dr":
                raise Unsupported(
                    "RDS has a replica to promote only in the dr region; failback is `pulumi up` with swapped regions"
                )
            ident = self._cluster_id("dr")
            self._call(
                "rds",
                self.regions["dr"],
                "promote_read_replica",
                DBInstanceIdentifier=ident,
                BackupRetentionPeriod=self.cfg.dr.backup_retention_days,
            )
            self._planned = False

            def promoted() -> bool:
                found = self._call("rds", self.regions["dr"], "describe_db_instances", DBInstanceIdentifier=ident)["DBInstances"]
                return (
                    bool(found)
                    and found[0].get("DBInstanceStatus") == "available"
                    and not found[0].get("ReadReplicaSourceDBInstanceIdentifier")
                )

            self._wait(promoted, f"{ident} is a standalone primary")
            return True, f"{ident} promoted"

        return timed("promote", role, aurora if self.aurora else rds)

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.wait_s
        while not done():
            if time.monotonic() > deadline:
                raise ActionFailed(f"timed out after {self.wait_s:.0f} s waiting until {what}")
            time.sleep(self.poll_s)

    # --- traffic -----------------------------------------------------------------------------

    def flip_traffic(self, to_role: Role) -> ActionResult:
        check_role(to_role)
        inverted = to_role == "dr"  # an inverted PRIMARY check reads unhealthy: Route 53 answers with SECONDARY

        def act() -> tuple[bool, str]:
            self._call("route53", ROUTE53_REGION, "update_health_check", HealthCheckId=self.checks["PRIMARY"], Inverted=inverted)
            return True, f"PRIMARY health check {self.checks['PRIMARY']} Inverted={inverted}"

        return timed("flip_traffic", to_role, act)

    def set_weights(self, weights: dict[str, int]) -> ActionResult:
        if not weights or set(weights) - set(ROLES):
            raise BadInput(f"weights must name roles {', '.join(ROLES)} (got {', '.join(map(str, weights)) or 'none'})")
        full = {r: int(weights.get(r, 0)) for r in ROLES}
        if all(full.values()) or not any(full.values()):
            raise Unsupported(
                "the API record is a Route 53 failover pair: traffic goes to one region; give one role weight 0, or use flip_traffic"
            )
        return self.flip_traffic("primary" if full["primary"] else "dr")

    # --- canary (the ALB's weighted forward; components.ingress) ------------------------------

    def _ingress(self, role: str) -> tuple[str, dict[str, str]]:
        """The region's listener ARN and its target groups by track, from the stack outputs."""
        region = self.outputs["regions"][role]
        listener, groups = region.get("listener_arn"), region.get("target_group_arns") or {}
        if not listener or set(groups) != set(TRACKS):
            raise BadInput(
                f"stack outputs lack regions.{role}.listener_arn / target_group_arns ({', '.join(TRACKS)}): "
                "run `pulumi up` with this version first, then export the outputs again"
            )
        return str(listener), {t: str(groups[t]) for t in TRACKS}

    def _track_weights(self, role: str) -> dict[str, int]:
        """The listener's forward weights per track, as ELB holds them (any scale)."""
        listener, groups = self._ingress(role)
        found = self._call("elbv2", self.regions[role], "describe_listeners", ListenerArns=[listener]).get("Listeners", [])
        forwards = [a for a in (found[0].get("DefaultActions", []) if found else []) if a.get("Type") == "forward"]
        if not forwards:
            raise ActionFailed(
                f"listener {listener} in {self.regions[role]} has no forward action: not the split this stack built"
            )
        action = forwards[0]
        weighted = (action.get("ForwardConfig") or {}).get("TargetGroups") or [
            {"TargetGroupArn": action.get("TargetGroupArn"), "Weight": 1}
        ]
        by_arn = {str(t.get("TargetGroupArn")): int(t.get("Weight", 1)) for t in weighted}
        strangers = sorted(set(by_arn) - set(groups.values()))
        if strangers:
            raise ActionFailed(f"listener {listener} forwards to target groups this stack does not own: {', '.join(strangers)}")
        return {track: by_arn.get(arn, 0) for track, arn in groups.items()}

    def _canary_percent(self, role: str) -> int:
        weights = self._track_weights(role)
        total = sum(weights.values())
        if total == 0:
            raise ActionFailed(f"{role}: both target groups have weight 0, the listener forwards nowhere")
        return round(100 * weights["canary"] / total)

    def canary_weights(self) -> dict[str, int]:
        return {role: self._canary_percent(role) for role in ROLES}

    def set_canary_weight(self, role: Role, percent: int) -> ActionResult:
        check_role(role)
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise BadInput(f"a canary weight is a whole percent 0..100 (got {percent!r})")
        listener, groups = self._ingress(role)
        region = self.regions[role]

        def act() -> tuple[bool, str]:
            if self._track_weights(role) == {"stable": 100 - percent, "canary": percent}:
                return False, f"{region}: canary already at {percent} %"
            if percent > 0:
                health = self._call("elbv2", region, "describe_target_health", TargetGroupArn=groups["canary"])
                states = [d.get("TargetHealth", {}).get("State") for d in health.get("TargetHealthDescriptions", [])]
                if "healthy" not in states:
                    raise ActionFailed(
                        f"{region}: the canary target group has no healthy target ({', '.join(map(str, states)) or 'none registered'}); "
                        "traffic not shifted"
                    )
            self._call(
                "elbv2",
                region,
                "modify_listener",
                ListenerArn=listener,
                DefaultActions=[
                    {
                        "Type": "forward",
                        "ForwardConfig": {
                            "TargetGroups": [
                                {"TargetGroupArn": groups["stable"], "Weight": 100 - percent},
                                {"TargetGroupArn": groups["canary"], "Weight": percent},
                            ]
                        },
                    }
                ],
            )
            return True, f"{region}: listener forwards {100 - percent} % stable, {percent} % canary"

        return timed("set_canary_weight", role, act)

    # --- dry runs ----------------------------------------------------------------------------

    def explain(self, action: str, *args: Any, **kwargs: Any) -> list[str]:
        """The AWS API calls `action` would make, in order, without making any."""
        role = args[0] if args else None
        fis = f"fis.start_experiment(experimentTemplateId={self.templates.get(NETWORK_TEMPLATE)!r}) in {self.regions['primary']}"
        stop = f"fis.stop_experiment(id=<the {NETWORK_TEMPLATE} experiment this target started>) in {self.regions['primary']}"
        find = f"rds.describe_global_clusters() in {self.regions['primary']} [read: find the members]"
        if action in ("kill_region", "inject"):
            return [fis]
        if action in ("restore_region", "clear_faults"):
            return [stop]
        if action == "stop_database":
            # explained in drill order: a planned stop makes the next promote a switchover, as it does when run
            self._explain_planned = bool(kwargs.get("planned"))
            return ["(no call: the switchover in promote() fences the writer)"] if kwargs.get("planned") else [fis]
        if action == "restore_database":
            return (
                [stop, f"{find}, polled until {role} is a member again", *self._explain_forwarding(role)]
                if self.aurora
                else ["unsupported on RDS: recreate the replica with `pulumi up`"]
            )
        if action == "promote":
            if not self.aurora:
                ident = self._cluster_id("dr")
                return [
                    f"rds.promote_read_replica(DBInstanceIdentifier={ident!r}) in {self.regions['dr']}",
                    f"rds.describe_db_instances(DBInstanceIdentifier={ident!r}) in {self.regions['dr']}, polled until available",
                ]
            planned, self._explain_planned = self._explain_planned, False
            call = (
                f"rds.switchover_global_cluster(GlobalClusterIdentifier=<global>, TargetDbClusterIdentifier=<{role} member ARN>) in {self.regions['primary']}"
                if planned
                else f"rds.failover_global_cluster(GlobalClusterIdentifier=<global>, TargetDbClusterIdentifier=<{role} member ARN>, AllowDataLoss=True) in {self.regions[role]}"
            )
            other = "primary" if role == "dr" else "dr"
            after = (
                self._explain_forwarding(other) if planned else ["(the old writer's write forwarding is checked when it rejoins)"]
            )
            return [find, call, f"{find}, polled until {role} writes", *after]
        if action == "flip_traffic":
            return [f"route53.update_health_check(HealthCheckId={self.checks['PRIMARY']!r}, Inverted={role == 'dr'})"]
        if action == "set_weights":
            return ["route53.update_health_check(...) as flip_traffic"]
        if action == "set_canary_weight":
            percent = int(args[1]) if len(args) > 1 else kwargs.get("percent", 0)
            listener, groups = self._ingress(role)
            where = f"in {self.regions[role]}"
            calls = [f"elbv2.describe_listeners(ListenerArns=[{listener!r}]) {where} [read: the weights now]"]
            if percent:
                calls.append(
                    f"elbv2.describe_target_health(TargetGroupArn={groups['canary']!r}) {where} [read: a healthy canary]"
                )
            return [
                *calls,
                f"elbv2.modify_listener(ListenerArn={listener!r}, forward stable {100 - percent} / canary {percent}) {where}",
            ]
        return [f"(no AWS call mapped for {action})"]

    def _explain_forwarding(self, role: str) -> list[str]:
        where = f"in {self.regions[role]}"
        return [
            f"rds.describe_db_clusters(DBClusterIdentifier=<{role} member>) {where} [read: GlobalWriteForwardingStatus]",
            f"rds.modify_db_cluster(DBClusterIdentifier=<{role} member>, EnableGlobalWriteForwarding=True) {where}, only if not enabled",
        ]


def _member_region(member: dict) -> str | None:
    parts = str(member.get("DBClusterArn", "")).split(":")
    return parts[3] if len(parts) > 3 else None
