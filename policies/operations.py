"""Logging and operations: flow logs on every VPC, EKS control-plane logs, bounded log retention,
database logs exported, IAM database authentication, Multi-AZ, a current RDS CA, S3 access logs
where configured, and AWS Backup plans that keep long enough and cover every database and bucket."""

from __future__ import annotations

import fnmatch
import re
from datetime import timedelta
from typing import Any

from access import simulator
from destinations import arn_account, stack_accounts
from iamdoc import Grant, allows, grant_statements, grants_by_role, parse, principals
from ruleutil import (
    BACKUP_PLAN,
    HIGH,
    MEDIUM,
    RDS_CLUSTER,
    RDS_CLUSTER_INSTANCE,
    RDS_INSTANCE,
    ROLE,
    S3_BUCKETS,
    UNKNOWN,
    VPC,
    InPlatform,
    Stack,
    UnknownValueError,
    Unverifiable,
    as_list,
    dig,
    effective_tags,
    judge_buckets,
    judge_each,
    known,
    peek,
    platform_stack_setting,
    resource_policy,
    resource_region,
    stack_policy,
    stack_role,
    string_list,
    truthy,
    unknown,
)
from schedules import NEVER, ScheduleError, longest_gap

FLOW_LOG = "aws:ec2/flowLog:FlowLog"


# what a record must keep to say who talked to what (the default format has them all):
# https://docs.aws.amazon.com/vpc/latest/userguide/flow-log-records.html
FLOW_LOG_FIELDS = ("srcaddr", "dstaddr", "srcport", "dstport", "protocol", "action", "start")


def _flow_log_gap(flow_log: Any) -> str | None:
    """Why a flow log is not a full record of its VPC's traffic, or None; raises on an unknown."""
    traffic = peek(flow_log.props, "trafficType")
    if traffic is UNKNOWN:
        raise unknown("trafficType")
    if traffic != "ALL":
        return (
            f"VPC flow log must record `trafficType: ALL`, not {traffic or 'unset'}: a log of accepted or rejected "
            "traffic alone misses half of who talked to what"
        )
    fmt = peek(flow_log.props, "logFormat")
    if fmt is UNKNOWN:
        raise unknown("logFormat")
    missing = [f for f in FLOW_LOG_FIELDS if fmt and f"${{{f}}}" not in str(fmt)]
    if missing:
        return (
            f"VPC flow log's `logFormat` must keep {', '.join(f'${{{f}}}' for f in missing)} (or be left at the default): "
            "without them a record does not say who talked to what"
        )
    return None


def check_flow_logs(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    logs_of: dict[str, list[Any]] = {}
    for flow_log in stack.of(FLOW_LOG):
        for vpc in stack.linked(flow_log, "vpcId", VPC):
            logs_of.setdefault(vpc.urn, []).append(flow_log)

    def judge(vpc: Any) -> list[tuple[str | None, str]]:
        logs = logs_of.get(vpc.urn, [])
        if not logs:
            return [(vpc.urn, "VPC must have a flow log (aws.ec2.FlowLog with `vpc_id` = the VPC's id)")]
        gaps: list[tuple[str | None, str]] = []
        unsure: list[tuple[str | None, str]] = []
        for f in logs:
            try:
                gap = _flow_log_gap(f)
            except UnknownValueError as exc:
                unsure.append((f.urn, Unverifiable.of(exc, "does the VPC's flow log record all its traffic?")))
                continue
            if gap is None:
                return []  # one full record is enough; others beside it (rejects only, to a SIEM) take nothing away
            gaps.append((f.urn, gap))
        return unsure or gaps

    return judge_each(stack.of(VPC), judge)


vpc_flow_logs = stack_policy(
    "vpc-flow-logs-enabled",
    what="Checks that every VPC of the stack has a flow log built from its id that records all traffic (`trafficType: ALL`) in the default format or a `logFormat` keeping ${srcaddr}, ${dstaddr}, ${srcport}, ${dstport}, ${protocol}, ${action} and ${start}; further logs of part of the traffic may sit beside it",
    why="Flow logs are the record of who talked to what: without them, or with only the accepted or only the rejected half, an incident on a tenant's data path cannot be investigated.",
    reads=[VPC, FLOW_LOG],
    check=check_flow_logs,
    severity=MEDIUM,
    remediation='Create an aws.ec2.FlowLog with `vpc_id=vpc.id`, `traffic_type="ALL"` to an encrypted log group (components.network does).',
    limits="That the flow log's destination keeps the records (retention, encryption) is judged by the log-group rules when it is a log group in the stack; its destination's region by aws-data-path-destination-in-zone. Fields beyond those seven (interface, account, packet addresses behind NAT) are not required. A `trafficType` or `logFormat` unknown at preview, where no other log of the VPC is a full record, gives an advisory.",
    tags=["logging"],
)

_LOG_TYPES = ["api", "audit", "authenticator"]


EKS_CLUSTER = "aws:eks/cluster:Cluster"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
_EKS_LOG_GROUP = re.compile(r"^/aws/eks/(.+)/cluster$")


def check_eks_logs(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    """Each cluster enables the required log types, into the group EKS writes to: `/aws/eks/<name>/cluster`
    in the cluster's region, which must be the stack's (EKS otherwise creates it, without retention or
    CMK); and a log group under `/aws/eks/` is that group of one of the stack's clusters."""
    stack = Stack(resources)
    clusters = stack.of(EKS_CLUSTER)
    names = {peek(c.props, "name") for c in clusters}

    def judge_cluster(cluster: Any) -> list[tuple[str | None, Any]]:
        enabled = {str(t) for t in as_list(dig(cluster.props, "enabledClusterLogTypes"))}
        missing = [t for t in config.get("requiredLogTypes", _LOG_TYPES) if t not in enabled]
        if missing:
            return [
                (cluster.urn, f"EKS cluster must enable the control-plane logs {', '.join(missing)} (`enabledClusterLogTypes`)")
            ]
        if not enabled:
            return []
        region = resource_region(cluster)
        here = [g for g in stack.of(LOG_GROUP) if resource_region(g) == region]
        name = peek(cluster.props, "name")
        wanted = f"/aws/eks/{name}/cluster" if isinstance(name, str) else None
        if any(peek(g.props, "name") == wanted for g in here):
            return []
        if wanted is None or any(peek(g.props, "name") is UNKNOWN for g in here):
            built = [g for g in here if cluster in stack.linked(g, "name", EKS_CLUSTER)]
            return [
                (
                    cluster.urn,
                    Unverifiable.of(
                        unknown("name"),
                        f"is {'the group built from its name' if built else 'a log group of the stack'} "
                        "`/aws/eks/<cluster name>/cluster`, the one EKS writes its control-plane logs to?",
                    ),
                )
            ]
        return [
            (
                cluster.urn,
                f"EKS cluster {name} must have its control-plane log group in the stack, named `{wanted}` in {region}: EKS "
                "writes there whatever the stack's groups are named, and creates it itself, without retention or KMS key",
            )
        ]

    def judge_group(group: Any) -> list[tuple[str | None, str]]:
        name = peek(group.props, "name")
        if not isinstance(name, str) or not name.startswith("/aws/eks/"):
            return []
        m = _EKS_LOG_GROUP.match(name)
        if m and m.group(1) in names:
            return []
        return [
            (
                group.urn,
                f"Log group {name} must be named `/aws/eks/<cluster name>/cluster` of a cluster of the stack: EKS writes "
                "a cluster's control-plane logs only there, so this group stays empty",
            )
        ]

    return judge_each(clusters, judge_cluster) + judge_each(stack.of(LOG_GROUP), judge_group)


eks_logs = stack_policy(
    "eks-control-plane-logging",
    what="Checks that every EKS cluster enables the required control-plane log types (api, audit, authenticator by "
    "default) and that the stack holds the log group EKS writes them to, `/aws/eks/<cluster name>/cluster` in the "
    "cluster's region (so its retention and encryption are judged by the log-group rules); and that a log group "
    "named under `/aws/eks/` is that group of a cluster of the stack",
    why="The audit log is the only record of who changed what in the cluster that runs every tenant's workloads; a "
    "group named otherwise stays empty while EKS creates its own, kept forever and without the stack's KMS key.",
    check=check_eks_logs,
    reads=[EKS_CLUSTER, LOG_GROUP],
    severity=MEDIUM,
    config={"requiredLogTypes": string_list(_LOG_TYPES, "control-plane log types that must be on")},
    remediation='Set `enabled_cluster_log_types=["api", "audit", "authenticator", ...]` and create the log group '
    "`/aws/eks/<cluster name>/cluster` with retention and a KMS key before the cluster (components.cluster does).",
    limits="A cluster or log group name unknown at preview gives an advisory. A log group EKS created before the stack's "
    "(the stack's then fails to create) is AWS's to report.",
    tags=["logging", "kubernetes"],
)


def check_log_retention(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    minimum = int(config.get("minRetentionDays", 90))
    days = dig(props, "retentionInDays")
    if days is None:
        return [
            f"CloudWatch log group must set `retentionInDays` (at least {minimum}); the default keeps logs forever, unbudgeted"
        ]
    if float(days) != 0 and float(days) < minimum:
        return [f"CloudWatch log group must keep logs at least {minimum} days, not {int(float(days))}"]
    return []


log_retention = resource_policy(
    "cloudwatch-log-group-retention",
    what="Checks that every CloudWatch log group sets `retentionInDays` explicitly, to at least `minRetentionDays` (0, keep forever, allowed)",
    why="Logs kept too briefly are gone before an incident is noticed; logs with no retention set grow without a budget.",
    types=["aws:cloudwatch/logGroup:LogGroup"],
    check=check_log_retention,
    severity=MEDIUM,
    config={"minRetentionDays": {"type": "integer", "minimum": 1, "default": 90, "description": "minimum log retention, days"}},
    remediation="Set `retention_in_days` (config `meridian:network.flow_log_retention_days` for flow logs).",
    limits="Log groups created at runtime by services are not in the plan.",
    tags=["logging"],
)

_CURRENT_CAS = ["rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1"]


def check_rds_operations(type_: str, props: Any, config: dict, _provider: Any) -> list[str]:
    kind = type_.rsplit(":", 1)[-1]
    out = []
    engine = str(dig(props, "engine", default=""))
    if type_ in (RDS_CLUSTER, RDS_INSTANCE):
        if "postgres" in engine and "postgresql" not in {str(e) for e in as_list(dig(props, "enabledCloudwatchLogsExports"))}:
            out.append(f"RDS {kind} must export its `postgresql` log to CloudWatch (`enabledCloudwatchLogsExports`)")
        if not truthy(dig(props, "iamDatabaseAuthenticationEnabled", default=False)):
            out.append(f"RDS {kind} must enable IAM database authentication (`iamDatabaseAuthenticationEnabled`)")
    source = peek(props, "replicateSourceDb")
    if type_ == RDS_INSTANCE and not truthy(dig(props, "multiAz", default=False)):
        if source is UNKNOWN:
            out.append(Unverifiable.at("replicateSourceDb", "an in-region read replica need not be Multi-AZ"))
        elif source is None or str(source).startswith("arn:"):  # a writer, or a cross-region replica (the dr writer-to-be)
            out.append(
                "RDS instance must be Multi-AZ (`multiAz: true`): a single-AZ writer is down for the length of an AZ outage"
            )
    ca = dig(props, "caCertIdentifier")
    if (
        type_ in (RDS_INSTANCE, RDS_CLUSTER_INSTANCE)
        and ca is not None
        and ca not in config.get("allowedCaCertificates", _CURRENT_CAS)
    ):
        out.append(f"RDS {kind} must use a current CA ({', '.join(_CURRENT_CAS)}), not {ca}")
    return out


rds_operations = resource_policy(
    "rds-database-operable",
    what="Checks that every RDS instance and Aurora / RDS cluster exports its PostgreSQL log and enables IAM database authentication, that RDS instances (writers and cross-region replicas; in-region read replicas exempt) are Multi-AZ, and that instances name no outdated CA certificate",
    why="Database logs are the audit trail of tenant data access; IAM auth replaces long-lived passwords; a single-AZ instance is an outage waiting for an AZ; an expired CA breaks every TLS client at once.",
    types=[RDS_CLUSTER, RDS_INSTANCE, RDS_CLUSTER_INSTANCE],
    check=check_rds_operations,
    severity=MEDIUM,
    config={"allowedCaCertificates": string_list(_CURRENT_CAS, "RDS CA identifiers instances may use")},
    remediation='Set `enabled_cloudwatch_logs_exports=["postgresql"]`, `iam_database_authentication_enabled=True`, `multi_az=True` '
    "(RDS instances) and leave `ca_cert_identifier` unset or current (components.database does).",
    limits="That clients use IAM auth rather than the password, and that logs are reviewed, are operations', not the plan's.",
    tags=["operations", "data"],
)

S3_LOGGING = ("aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2")


def check_access_logging(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    if not config.get("requireAccessLogs", False):
        return []
    exempt = set(config.get("exemptBuckets", []))
    return judge_buckets(
        Stack(resources),
        S3_LOGGING,
        lambda b, logging: (
            []
            if logging or b.name in exempt
            else [(b.urn, "S3 bucket must send server access logs to a log bucket (a BucketLogging)")]
        ),
    )


access_logging = stack_policy(
    "s3-bucket-access-logging",
    what="Checks that every S3 bucket except the exempt log buckets has server access logging, where the policy config turns it on (`requireAccessLogs`)",
    why="Access logs record every request to tenant objects, including denied ones: evidence a data-access review needs (CloudTrail data events are the alternative).",
    reads=[*S3_BUCKETS, *S3_LOGGING],
    check=check_access_logging,
    severity=MEDIUM,
    config={
        "requireAccessLogs": {"type": "boolean", "default": False, "description": "require server access logs on every bucket"},
        "exemptBuckets": string_list([], "logical names of the log buckets themselves"),
    },
    remediation="Add a BucketLogging with `target_bucket` = the region's log bucket and `target_prefix` = the bucket's name.",
    limits="That the log bucket keeps and protects the logs is judged by the bucket rules on that bucket; where a tenant-data "
    "bucket's logs go (a bucket of the stack in its region holding no tenant data) is tenant-data-access's.",
    tags=["logging", "data"],
)

BACKUP_SELECTION = "aws:backup/selection:Selection"


def selects_by_tags(selection: Any, resource: Any) -> bool:
    """Whether a Selection's tag criteria pick `resource`: one of its `selectionTags` (ORed) and
    every `conditions` test (ANDed) on the resource's effective tags (its provider's default tags
    under its own, as AWS holds them), as AWS Backup matches them.
    Raises `UnknownValueError` where a deciding tag or criterion is only known after apply."""
    tags = effective_tags(resource.props, resource.provider.props if resource.provider is not None else None)

    def tag(key: Any) -> Any:
        key = str(key)
        value = tags.get(key.removeprefix("aws:ResourceTag/"))
        if value is UNKNOWN:
            raise unknown("tags", key)
        return value

    tag_rules = as_list(dig(selection.props, "selectionTags"))
    if tag_rules and not any(
        str(dig(t, "type", default="STRINGEQUALS")).upper() == "STRINGEQUALS" and tag(dig(t, "key")) == dig(t, "value")
        for t in tag_rules
    ):
        return False
    for condition in as_list(dig(selection.props, "conditions")):
        tests = {
            "stringEquals": lambda have, want: have == want,
            "stringNotEquals": lambda have, want: have != want,
            "stringLikes": lambda have, want: have is not None and fnmatch.fnmatchcase(str(have), str(want)),
            "stringNotLikes": lambda have, want: have is None or not fnmatch.fnmatchcase(str(have), str(want)),
        }
        for kind, holds in tests.items():
            if not all(holds(tag(dig(c, "key")), dig(c, "value")) for c in as_list(dig(condition, kind))):
                return False
    return True


def _arn_parts(resource: Any) -> tuple:
    """The resource's ARN as (service, region, account, resource[, resource type]) with None where
    only `up` knows a part (for a database or bucket, the types this rule judges)."""
    region = resource_region(resource)
    if resource.resource_type in S3_BUCKETS:
        name = peek(resource.props, "bucket")
        return ("s3", "", "", name if isinstance(name, str) else None)
    ident = peek(resource.props, "clusterIdentifier" if resource.resource_type == RDS_CLUSTER else "identifier")
    kind = "cluster" if resource.resource_type == RDS_CLUSTER else "db"
    return ("rds", region, None, f"{kind}:{ident}" if isinstance(ident, str) else None, kind)


def _pattern_matches(pattern: Any, parts: tuple, *, sure: bool) -> bool:
    """Whether an ARN pattern matches the resource: `sure` asks "certainly" (an unknown part needs
    `*` there), otherwise "possibly" (an unknown part may match). The region is not compared (the
    rule's stated limit)."""
    if pattern is UNKNOWN:
        raise unknown("resources")
    if str(pattern) == "*":
        return True
    p = str(pattern).split(":", 5)
    if len(p) < 6 or p[0] != "arn":
        return False
    service, _region, account, name = parts[:4]
    if not fnmatch.fnmatchcase(service, p[2]):
        return False
    if account is not None and not fnmatch.fnmatchcase(account, p[4]):
        return False
    if name is None:
        prefix = f"{parts[4]}:" if len(parts) > 4 else ""
        return p[5] in ("*", f"{prefix}*") or (not sure and fnmatch.fnmatchcase(prefix, p[5][: len(prefix)]))
    return fnmatch.fnmatchcase(name, p[5])


def selection_picks(selection: Any, resource: Any, stack: Stack) -> bool:
    """Whether a Selection backs `resource` up: named in `resources` (by link, or by an ARN pattern
    that certainly matches), its tag criteria hold, and nothing in `notResources` (by link, or by a
    pattern that possibly matches) excludes it."""
    if resource.urn in {r.urn for r in stack.linked(selection, "notResources")}:
        return False
    parts = _arn_parts(resource)
    if any(_pattern_matches(p, parts, sure=False) for p in as_list(dig(selection.props, "notResources"))):
        return False
    named = resource.urn in {r.urn for r in stack.linked(selection, "resources")} or any(
        _pattern_matches(p, parts, sure=True) for p in as_list(dig(selection.props, "resources"))
    )
    has_tags = as_list(dig(selection.props, "selectionTags")) or as_list(dig(selection.props, "conditions"))
    if not named and not (has_tags and not as_list(dig(selection.props, "resources"))):
        return False
    return selects_by_tags(selection, resource) if has_tags else named


BACKUP_SERVICE = "backup.amazonaws.com"


# Keys of a service's AssumeRole request the pack cannot place for AWS Backup (which vault or plan, which
# organization): taken as satisfied, so a trust is credited with them (a pin to another vault is not caught).
_BACKUP_FREE_KEYS = frozenset({"aws:sourcearn", "aws:sourceowner", "aws:sourceorgid", "aws:sourceorgpaths"})


def _as_backup_asks(statements: list[dict]) -> dict:
    """The trust as it acts on AWS Backup's AssumeRole: keys the pack cannot place (`_BACKUP_FREE_KEYS`) taken as
    satisfied in an Allow and a Deny that depends on one taken as avoidable; every other key is evaluated against
    what Backup sends (`aws:SourceAccount`), so a key Backup never sends, a misspelt `aws:SourceAcount` included,
    fails the Allow as it does in AWS (security review 21, BK4). Not `for_any_request`, which takes any key it does
    not know as chosen by the caller: right for who may reach data, wrong for whether a service may assume a role."""
    out = []
    for st in statements:
        cond = st.get("Condition")
        if not isinstance(cond, dict) or not cond:
            out.append(st)
            continue
        free = any(str(k).lower() in _BACKUP_FREE_KEYS for body in cond.values() if isinstance(body, dict) for k in body)
        if str(st.get("Effect", "")).lower() == "deny":
            if not free:
                out.append(st)
            continue
        kept = {
            op: {k: v for k, v in body.items() if str(k).lower() not in _BACKUP_FREE_KEYS}
            for op, body in cond.items()
            if isinstance(body, dict)
        }
        kept = {op: body for op, body in kept.items() if body}
        out.append({**{k: v for k, v in st.items() if k != "Condition"}, **({"Condition": kept} if kept else {})})
    return {"Version": "2012-10-17", "Statement": out}


def trusts_backup(role: Any, accounts: set[str]) -> bool:
    """Whether a role's trust policy lets AWS Backup, working for the stack's account (one of `accounts`),
    assume it: an Allow of sts:AssumeRole to `backup.amazonaws.com` whose conditions hold for a request
    from that account (`aws:SourceAccount`), as the IAM evaluator decides, with no Deny removing it (security
    review 20, K03: a trust pinned to another account's `aws:SourceAccount` passed). Raises
    `UnknownValueError` on an unknown trust, or on conditions with no account to evaluate them for."""
    statements = parse(dig(role.props, "assumeRolePolicy"))
    if not any(BACKUP_SERVICE in principals(st, "Service") and allows(st, "sts:AssumeRole") for st in statements):
        return False
    if not any(st.conditions for st in statements) and all(st.allow for st in statements):
        return True
    if not accounts:
        raise unknown("assumeRolePolicy", "Condition")  # whose account the conditions must admit is not known here
    narrowed = _as_backup_asks([st.raw for st in statements])
    return any(
        simulator.service_allowed(
            BACKUP_SERVICE,
            "sts:AssumeRole",
            f"arn:aws:iam::{account}:role/{role.name}",
            {"aws:SourceAccount": account},
            narrowed,
            account,
        )
        for account in sorted(accounts)
    )


# What AWS Backup's role needs to back up each type of selected resource: the AWS-managed policy AWS
# documents for it, or statements allowing the calls a backup job of that type makes (from that
# policy's document, policies/access/aws_managed.json). Sources: "Default service role for AWS
# Backup" (https://docs.aws.amazon.com/aws-backup/latest/devguide/iam-service-roles.html) and "Amazon
# S3 backups" (https://docs.aws.amazon.com/aws-backup/latest/devguide/s3-backups.html: S3 needs
# AWSBackupServiceRolePolicyForS3Backup besides the default role's policy).
_BACKUP_NEEDS: dict[str, tuple[str, tuple[str, ...]]] = {
    **{
        t: (
            "AWSBackupServiceRolePolicyForS3Backup",
            ("s3:GetObject", "s3:ListBucket", "s3:GetBucketVersioning", "s3:PutInventoryConfiguration"),
        )
        for t in S3_BUCKETS
    },
    RDS_CLUSTER: ("service-role/AWSBackupServiceRolePolicyForBackup", ("rds:CreateDBClusterSnapshot", "rds:AddTagsToResource")),
    RDS_INSTANCE: ("service-role/AWSBackupServiceRolePolicyForBackup", ("rds:CreateDBSnapshot", "rds:AddTagsToResource")),
}
_AWS_MANAGED = "arn:aws:iam::aws:policy/"


def _backup_gaps(grants: list[Grant], types: set[str]) -> list[str]:
    """For each selected resource type the role cannot back up, what it lacks (raises
    `UnknownValueError` where a statement it would rest on is unknown)."""
    managed = {g.managed_arn for g in grants if g.managed_arn}
    statements = [st for g in grants if g.managed_arn is None for st in grant_statements(g)]
    gaps = []
    for policy, actions in sorted({_BACKUP_NEEDS[t] for t in types if t in _BACKUP_NEEDS}):
        if _AWS_MANAGED + policy in managed:
            continue
        missing = [a for a in actions if not any(allows(st, a) for st in statements)]
        if missing:
            kinds = sorted({t.rsplit(":", 1)[-1] for t in types if _BACKUP_NEEDS.get(t, ("",))[0] == policy})
            gaps.append(f"{' and '.join(kinds)} ({_AWS_MANAGED}{policy}, or {', '.join(missing)})")
    return gaps


def selection_role_problems(
    selection: Any, stack: Stack, picked: set[str], grants: dict[str, list[Grant]]
) -> list[tuple[str | None, str]]:
    """A Selection's `iamRoleArn` must be a role of the plan that AWS Backup may assume: matched by
    ARN (`stack_role`), by its one link where the ARN is unknown at preview; a role the plan does not
    hold, or an unknown ARN or trust, is an advisory naming it. The role must hold what a backup job
    of each type the selection picks (`picked`) needs."""
    arn = known(peek(selection.props, "iamRoleArn"))
    linked = stack.linked(selection, "iamRoleArn", ROLE)
    role = stack_role(stack, arn) if isinstance(arn, str) else (linked[0] if arn is UNKNOWN and len(linked) == 1 else None)
    if role is None:
        if isinstance(arn, str):
            return [
                (
                    selection.urn,
                    Unverifiable(
                        f"backup Selection {selection.name}'s `iamRoleArn` {arn} is no role of this stack: whether AWS Backup "
                        "may assume it and back the selected data up is not judged"
                    ),
                )
            ]
        raise unknown("iamRoleArn")
    if not trusts_backup(role, {a} if (a := arn_account(arn)) else stack_accounts(stack)):
        return [
            (
                selection.urn,
                f"Backup Selection must run as a role AWS Backup may assume (trust `{BACKUP_SERVICE}`), not role {role.name}, "
                "which does not trust it: every backup job of the selection fails, and its data has no recovery point",
            )
        ]
    gaps = _backup_gaps(grants.get(role.urn, []), picked)
    if gaps:
        return [
            (
                selection.urn,
                f"Backup Selection must run as a role that can back up what it selects: role {role.name} lacks what a backup "
                f"job of {'; '.join(gaps)} needs: those jobs fail, and the data has no recovery point",
            )
        ]
    return []


# AWS Backup's schedule when a rule names none (BackupRuleInput.ScheduleExpression, AWS Backup API reference)
DEFAULT_SCHEDULE = "cron(0 5 ? * * *)"


def _span(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes / 1440:g} days" if minutes >= 2880 else f"{minutes / 60:g} h" if minutes >= 120 else f"{minutes:g} min"


def check_backup_coverage(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    minimum = int(config.get("minRetentionDays", 35))
    selections = stack.of(BACKUP_SELECTION)

    rpo = float(config.get("rpoMinutes", 15))
    copy_hours = float(config.get("continuousScheduleMaxHours", 24))

    def judge_schedules(plan: Any, rules: list[Any]) -> list[tuple[str | None, str]]:
        """Each rule must run; the plan must hold one rule running within its bound (more rules,
        such as a monthly archive, only add recovery points)."""
        out, best = [], []
        for rule in rules:
            expression = str(dig(rule, "schedule", default=DEFAULT_SCHEDULE))
            name = dig(rule, "ruleName")
            try:
                gap = longest_gap(expression)
            except ScheduleError as exc:
                out.append((plan.urn, f"Backup rule {name} must have a schedule AWS Backup runs: {exc}"))
                continue
            if gap == NEVER:
                out.append(
                    (
                        plan.urn,
                        f"Backup rule {name} must run: its schedule {expression} never fires (no such date, or past years only)",
                    )
                )
                continue
            if truthy(dig(rule, "enableContinuousBackup", default=False)):
                limit = timedelta(hours=copy_hours)
                why = f"continuousScheduleMaxHours, {copy_hours:g} h: the age of the newest copy in the dr vault"
            else:
                limit, why = timedelta(minutes=rpo), f"the RPO, {rpo:g} min: a recovery point is all a restore has"
            best.append((gap <= limit, f"rule {name}: {expression} leaves up to {_span(gap)} between runs ({why})"))
        if rules and best and not any(ok for ok, _ in best):
            out.append((plan.urn, f"Backup plan must have a rule that runs within its bound: {'; '.join(w for _, w in best)}"))
        return out

    def judge_plan(plan: Any) -> list[tuple[str | None, str]]:
        out = judge_schedules(plan, as_list(dig(plan.props, "rules")))
        for rule in as_list(dig(plan.props, "rules")):
            kept = [("recovery points", dig(rule, "lifecycle", "deleteAfter"))]
            kept += [
                (f"copies to {dig(c, 'destinationVaultArn', default='?')}", dig(c, "lifecycle", "deleteAfter"))
                for c in as_list(dig(rule, "copyActions"))
            ]
            for what, days in kept:
                if days is not None and float(days) < minimum:
                    out.append(
                        (
                            plan.urn,
                            f"Backup rule {dig(rule, 'ruleName')} must keep {what} at least {minimum} days, not {int(float(days))}",
                        )
                    )
        return out

    def judge_data(r: Any) -> list[tuple[str | None, str]]:
        if any(selection_picks(s, r, stack) for s in selections):
            return []
        finding = (
            f"{r.resource_type.rsplit(':', 1)[-1]} must be selected by an AWS Backup plan (a backup Selection whose `resources` "
            "name it, whose tag criteria it meets, and whose `notResources` do not exclude it)"
        )
        # a cell's buckets carry its platform's stack tag, which the platform's selection picks
        return [(r.urn, InPlatform.note(config, finding) if not selections else finding)]

    def replica_cluster(c: Any) -> bool:
        """A copy of another cluster's data: a replica, or an Aurora global secondary (it joins a
        global cluster without master credentials; its data comes from the global primary)."""
        if peek(c.props, "replicationSourceIdentifier") is not None:
            return True
        return peek(c.props, "globalClusterIdentifier") is not None and peek(c.props, "masterUsername") is None

    data = (
        [c for c in stack.of(RDS_CLUSTER) if not replica_cluster(c)]
        + [i for i in stack.of(RDS_INSTANCE) if peek(i.props, "replicateSourceDb") is None]
        + stack.of(*S3_BUCKETS)
    )
    grants = grants_by_role(stack)

    def judge_selection(selection: Any) -> list[tuple[str | None, str]]:
        picked, unsure = set(), set()  # the types it selects; those of data whose selection is known only after apply
        for r in data:
            try:
                if selection_picks(selection, r, stack):
                    picked.add(r.resource_type)
            except UnknownValueError:
                unsure.add(r.resource_type)
        out = selection_role_problems(selection, stack, picked, grants)
        if not out and unsure - picked:
            out = selection_role_problems(selection, stack, picked | unsure, grants)
            if out:  # whether it selects that data at all is unknown (the data gets its own advisory too)
                raise unknown("the types of data it selects")
        return out

    return judge_each(stack.of(BACKUP_PLAN), judge_plan) + judge_each(selections, judge_selection) + judge_each(data, judge_data)


backup_coverage = stack_policy(
    "backup-plan-coverage",
    what="Checks that AWS Backup plans keep recovery points and their cross-region copies at least `minRetentionDays`; that "
    "every rule's schedule (AWS cron, 6 fields, UTC, or rate; absent: AWS's default `cron(0 5 ? * * *)`) fires, with at most "
    "`rpoMinutes` between runs, or `continuousScheduleMaxHours` for a rule with continuous backup (evaluated with cronsim over "
    "a leap year and the next); and that every database (not a replica nor an Aurora global secondary) and bucket is selected by a backup Selection as AWS Backup evaluates one: named in `resources` (by link or an ARN pattern that certainly matches it) or picked by its tag criteria (`selectionTags` ORed, `conditions` ANDed), and not excluded by `notResources` (by link or any pattern that may match it); and that every Selection runs as a role of the plan (matched by ARN) whose trust policy lets `backup.amazonaws.com` assume it and that can back up each type it selects (S3: AWSBackupServiceRolePolicyForS3Backup; RDS: AWSBackupServiceRolePolicyForBackup; or statements allowing the calls those jobs make)",
    why="Automated RDS backups and S3 versioning live inside the same account and region as the data; an AWS Backup plan with a locked vault is the copy that survives an account compromise.",
    reads=[BACKUP_PLAN, BACKUP_SELECTION],
    check=check_backup_coverage,
    severity=HIGH,
    config={
        **platform_stack_setting(),
        "minRetentionDays": {
            "type": "integer",
            "minimum": 1,
            "default": 35,
            "description": "minimum recovery-point retention, days",
        },
        "rpoMinutes": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 15,
            "description": "the recovery point objective (generated from dr.rpo_minutes): a rule without continuous backup must run at least this often",
        },
        "continuousScheduleMaxHours": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 24,
            "description": "a rule with continuous backup (point-in-time restore covers the RPO in-region) must still run at least "
            "this often: its scheduled recovery points are the ones copied to the dr vault",
        },
    },
    remediation="Add an AWS Backup plan with a rule whose `lifecycle.delete_after` meets the minimum, a locked vault, and a Selection "
    "listing every database and bucket ARN (or selecting them by tag).",
    limits="ARN patterns are matched on service, account and name where the plan knows them (an auto-named resource's name is "
    "known only after `up`: a pattern must then be `*` there to count as naming it, and any pattern may exclude it); the Selection's "
    "region is not compared with the resource's. A schedule is judged by its longest gap over a leap year and the next (a "
    "rule firing only on 29 February shows as 400 days); AWS's `nW` (nearest weekday) is refused, since cronsim cannot "
    "evaluate it; schedules are evaluated in UTC (a `scheduleExpressionTimezone` with daylight saving moves one gap a year by an "
    "hour), and a run may start up to the rule's `startWindow` late; whether a job finishes within its window is AWS's to tell. "
    "A Selection's role's trust is evaluated for AWS Backup working for the stack's account (`aws:SourceAccount`; a pin "
    "through `aws:SourceArn` or the organization keys is taken as satisfied, not checked; a condition on any other key "
    "is evaluated as absent from Backup's request). "
    "A Selection's role is judged by its trust only: that its permissions cover each selected resource type (AWS's "
    "AWSBackupServiceRolePolicyForBackup and the S3 backup policy) is not; a role outside the plan is an advisory naming it.",
    tags=["operations", "data-protection"],
)

POLICIES = [vpc_flow_logs, eks_logs, log_retention, rds_operations, access_logging, backup_coverage]
