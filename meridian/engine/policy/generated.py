"""The stack's policy config (`policies/config/<stack>.json`): settings that copy the stack config
are generated from it, the rest (levels, thresholds) is the security team's to edit.

The residency zone's regions, the dr region, the failover-alarm exception, the tenant prefix, the
failover budget, the account, the backup retention and vault-lock mode and the stack cap have one
source of truth: `Pulumi.<stack>.yaml` (through stackconfig), components.failover
(where Route 53 publishes health-check metrics) and components.tenant (the tenant's S3 prefix). `meridian policy --stack S --write-config` writes them into the
file the real CLI takes (`pulumi preview --policy-pack-config`), keeping every other entry; every
preview refuses a file whose generated settings have drifted, naming both files and the command.
The pack itself stays free of project imports: it only ever reads the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from meridian.errors import BadInput

# What a new stack's file starts with besides the generated settings (then edited by hand).
INITIAL: dict[str, Any] = {
    "rds-backup-retention-sufficient": {"enforcementLevel": "mandatory", "minRetentionDays": 14},
    "aws-resource-required-tags": {"enforcementLevel": "mandatory"},
    "budgets-stack-budget-exists": "mandatory",
}


def generated(cfg: Any, project_dir: Path | None = None, stack: str | None = None) -> dict[str, dict[str, Any]]:
    """policy name -> the settings that come from the stack config (a validated StackConfig; a cell's
    platform's names from the platform's file in `project_dir`, default: the working directory, and
    platform's names from the platform's file in `project_dir`, default: the working directory, and
    the clusters of the pair its platform places `stack` on;). `stack`: the stack's name, which names a cell's tenant file and its pair
    (left out without it)."""
    from components.admission import admission_policies, binding_spec  # what the admission backstops must hold
    from components.alerts import ALERTS_COMPONENT, SUBSCRIPTION_TYPE  # subscriptions follow their topic's region
    from components.failover import METRICS_REGION, METRICS_TYPES  # where Route 53 health-check metrics live
    from components.keys import DELETION_WINDOW_DAYS  # every customer key's deletion window
    from components.lbcontroller import CHART, CHART_REPO, CHART_VERSION  # the one Helm chart the program installs
    from components.region import TENANT_ADMISSION  # the args every cluster's admission backstops are built with
    from components.tenant import tenant_prefix  # where a tenant's objects live in a shared bucket
    from stackconfig.planning import PROPAGATION_MARGIN_S  # the failover budget's stated margin

    allowed = list(cfg.allowed_regions)
    exceptions = []
    if METRICS_REGION not in allowed:
        exceptions.append(
            {
                "region": METRICS_REGION,
                "component": "meridian:failover:Failover",
                "types": list(METRICS_TYPES),
                "why": "Route 53 publishes health-check metrics only in us-east-1: the failover alarms, their topic and its key live there",
            }
        )
        exceptions.append(
            {
                "region": METRICS_REGION,
                "component": "meridian:dr:DisasterRecovery",
                "types": ["aws:cloudwatch/metricAlarm:MetricAlarm"],
                "why": "the FIS experiments' stop conditions are alarms on the same Route 53 health-check metrics",
            }
        )
        exceptions.append(
            {
                "region": METRICS_REGION,
                "component": ALERTS_COMPONENT,
                "types": [SUBSCRIPTION_TYPE],
                "why": "a subscription lives in its topic's region: the failover alarms' topic is in us-east-1 "
                "(each endpoint is judged by sns-subscription-endpoint-in-zone)",
            }
        )
    out: dict[str, dict[str, Any]] = {
        "aws-resource-region-allowed": {"allowedRegions": allowed, "regionExceptions": exceptions},
        "aws-replication-destination-allowed": {"allowedRegions": allowed},
        "aws-data-path-destination-in-zone": {"allowedRegions": allowed},
        "sns-subscription-endpoint-in-zone": {"allowedRegions": allowed},
        "rds-database-dr-member": {"drRegion": cfg.regions.dr.region},
        "tenant-role-isolated": {"tenantPrefix": tenant_prefix("{tenant}")},
        "tenant-data-access": {"tenantPrefix": tenant_prefix("{tenant}")},
        "route53-failover-record-ready": {
            "drRegion": cfg.regions.dr.region,
            "rtoTargetSeconds": cfg.failover.rto_target_s,
            "propagationMarginSeconds": PROPAGATION_MARGIN_S,
        },
        "lb-target-group-health-checked": {"rtoTargetSeconds": cfg.failover.rto_target_s},
        "resource-policy-principals-in-account": {"accountIds": [cfg.aws_account_id] if cfg.aws_account_id else []},
        "backup-vault-lock-enabled": {
            "minRetentionDays": cfg.dr.backup_retention_days,
            "lockMode": "governance" if cfg.vault_lock_changeable_days is None else "compliance",
        },
        "backup-plan-coverage": {"minRetentionDays": cfg.dr.backup_retention_days, "rpoMinutes": cfg.dr.rpo_minutes},
        "provider-account-and-endpoints-in-zone": {
            "allowedRegions": allowed,
            "accountIds": [cfg.aws_account_id] if cfg.aws_account_id else [],
        },
        "kms-key-rotation-and-policy": {"minDeletionWindowDays": DELETION_WINDOW_DAYS},
        "helm-release-allowlisted": {"allowedCharts": [{"chart": CHART, "repo": CHART_REPO, "version": CHART_VERSION}]},
        "s3-lifecycle-keeps-retention": {
            "minRetentionDays": cfg.dr.backup_retention_days,
            "tenantPrefix": tenant_prefix("{tenant}"),
        },
        "production-data-not-force-deletable": {"production": cfg.production},
        "budgets-limit-and-cap-enforced": {"stackCapUsd": cfg.cost.stack_cap_usd},
        "eks-access-platform-roles-only": {
            "adminPrincipals": sorted({a for a in (cfg.cluster.deploy_role_arn, *cfg.cluster.operator_role_arns) if a}),
            "viewPrincipals": sorted(cfg.cluster.viewer_role_arns),
            "prCodePrincipals": sorted(cfg.cluster.pr_viewer_role_arns),
        },
        # the same roles' Kubernetes users and groups are held to `view` in RBAC (review 19 H14)
        "k8s-rbac-binding-scoped": {"prCodePrincipals": sorted(cfg.cluster.pr_viewer_role_arns)},
        "runtime-backstops-enforced": {
            # a cell owns no account guardrails: its platform's config says whether the platform does
            "ownsAccountGuardrails": cfg.owns_account_guardrails and not cfg.is_cell,
            # where the stack must run its own external-access analyzer: none when the account already
            # runs them (guardrails.access_analyzer: existing; preflight --online checks those)
            "regions": [cfg.regions.primary.region, cfg.regions.dr.region] if cfg.guardrails.access_analyzer == "create" else [],
            # each admission policy and its binding as the program renders them: every field is pinned to these
            "renderedSpecs": {
                name: {"policy": spec, "binding": binding_spec(name, spec)}
                for name, spec in admission_policies(TENANT_ADMISSION).items()
            },
        },
    }
    if cfg.is_cell:  # what a cell leaves to its platform is reported advisory (policies/ruleutil.InPlatform)
        for policy in IN_PLATFORM:
            out.setdefault(policy, {})["platformStack"] = cfg.platform
        out["tenant-data-access"].update(platform_names(cfg, project_dir, stack))
        if stack is not None:
            out["tenant-data-access"]["cellTenantFile"] = cell_tenant_file(stack)
    return out


PLATFORM_NAMES = (  # tenant-data-access, cells only
    "platformTenantRoles",
    "platformTenantRolePath",
    "platformNamespaces",
    "platformServiceNamespaces",
    "platformClusters",
)


def platform_names(cfg: Any, project_dir: Path | None, stack: str | None) -> dict[str, Any]:
    """What a cell judged alone must not take from its platform (policies/celllane.py): the only roles its
    tenants may get (the platform's tenant role in each region, and its path), the namespaces the
    platform uses, and the clusters its tenants run on (its tenant cluster pair's, in each region)."""
    from components.naming import cluster_name, tenant_namespace, tenant_role_name
    from components.tenantidentity import TENANT_ROLE_PATH
    from components.workload import NAMESPACE as WORKLOAD_NAMESPACE
    from stackconfig import load_stack

    if stack is None:
        raise ValueError("a cell's generated policy config needs the cell's stack name (its tenant cluster pair)")
    platform = load_stack(project_dir or Path.cwd(), cfg.platform)
    regions = dict.fromkeys([platform.regions.primary.region, platform.regions.dr.region])
    return {
        "platformTenantRoles": [tenant_role_name(cfg.platform, region) for region in regions],
        "platformTenantRolePath": TENANT_ROLE_PATH,
        "platformNamespaces": sorted(tenant_namespace(t.id) for t in platform.tenants),
        "platformServiceNamespaces": [WORKLOAD_NAMESPACE],
        "platformClusters": [cluster_name(cfg.platform, region, platform.cells.pair_of(stack)) for region in regions],
    }


def cell_tenant_file(stack: str) -> str:
    """The one object a cell may put in its platform's service namespace: its tenant file's Secret."""
    from components.workload import tenant_file_secret_name

    return tenant_file_secret_name(stack)


# The rules whose findings about a cell stack's platform parts (stack budget, cap enforcer, tenant
# role, admission policies, backup selection) are advisories in a cell.
IN_PLATFORM = (
    "budgets-stack-budget-exists",
    "budgets-limit-and-cap-enforced",
    "tenant-data-access",
    "runtime-backstops-enforced",
    "backup-plan-coverage",
)


# The IN_PLATFORM rules find what a cell leaves to its platform among the platform's resources when
# the pack sees them beside the cell's (a zone's or a cell's preview: the platform's run is at hand):
# the stack budget by its tag filter, the backup selection by the tags it picks, the tenant role by
# its ARN, the cap enforcer's topic by the ARN a tenant budget notifies (the value the cell's
# StackReference reads, which a subscription of the platform's topic carries), and the admission
# backstops by the cluster a Kubernetes provider reaches (the server and CA of its kubeconfig:
# the cell's provider and the platform's are one cluster). What the values leave open (an unknown
# ARN or kubeconfig) stays an advisory saying which value is unknown.
SETTLED_WITH_PLATFORM = IN_PLATFORM


def with_platform(config: dict[str, Any]) -> dict[str, Any]:
    """A cell's config for a run that sees its platform's resources beside its own (a zone's or a
    cell's preview): no `platformStack` for the rules that then judge the platform's real resources."""
    out = dict(config)
    for policy in SETTLED_WITH_PLATFORM:
        if isinstance(out.get(policy), dict):
            out[policy] = {k: v for k, v in out[policy].items() if k != "platformStack"}
    return out


# Where each generated setting comes from: the stack config key(s) a change of which makes the
# file stale (docs/config.md, "Settings the policy pack copies"), or the code that fixes it.
SOURCES: dict[tuple[str, str], str] = {
    ("aws-resource-region-allowed", "allowedRegions"): "zone",
    ("aws-resource-region-allowed", "regionExceptions"): "zone (us-east-1 exceptions when outside the zone)",
    ("aws-replication-destination-allowed", "allowedRegions"): "zone",
    ("aws-data-path-destination-in-zone", "allowedRegions"): "zone",
    ("sns-subscription-endpoint-in-zone", "allowedRegions"): "zone",
    ("rds-database-dr-member", "drRegion"): "regions.dr.region",
    ("tenant-role-isolated", "tenantPrefix"): "code: components.tenant",
    ("tenant-data-access", "tenantPrefix"): "code: components.tenant",
    ("route53-failover-record-ready", "drRegion"): "regions.dr.region",
    ("route53-failover-record-ready", "rtoTargetSeconds"): "failover.rto_target_s",
    ("route53-failover-record-ready", "propagationMarginSeconds"): "code: stackconfig.planning",
    ("lb-target-group-health-checked", "rtoTargetSeconds"): "failover.rto_target_s",
    ("resource-policy-principals-in-account", "accountIds"): "aws_account_id",
    ("backup-vault-lock-enabled", "minRetentionDays"): "dr.backup_retention_days",
    ("backup-vault-lock-enabled", "lockMode"): "dr.vault_lock_mode (absent: production)",
    ("backup-plan-coverage", "minRetentionDays"): "dr.backup_retention_days",
    ("s3-lifecycle-keeps-retention", "minRetentionDays"): "dr.backup_retention_days",
    ("s3-lifecycle-keeps-retention", "tenantPrefix"): "code: components.tenant",
    ("production-data-not-force-deletable", "production"): "production",
    ("budgets-limit-and-cap-enforced", "stackCapUsd"): "cost.stack_cap_usd",
    ("eks-access-platform-roles-only", "adminPrincipals"): "cluster.deploy_role_arn, cluster.operator_role_arns",
    ("eks-access-platform-roles-only", "viewPrincipals"): "cluster.viewer_role_arns",
    ("eks-access-platform-roles-only", "prCodePrincipals"): "cluster.pr_viewer_role_arns",
    ("k8s-rbac-binding-scoped", "prCodePrincipals"): "cluster.pr_viewer_role_arns",
    ("runtime-backstops-enforced", "ownsAccountGuardrails"): "owns_account_guardrails (false in a cell)",
    ("runtime-backstops-enforced", "regions"): "regions.primary.region, regions.dr.region",
    ("runtime-backstops-enforced", "renderedSpecs"): "code: components.admission",
    ("provider-account-and-endpoints-in-zone", "allowedRegions"): "zone",
    ("provider-account-and-endpoints-in-zone", "accountIds"): "aws_account_id",
    ("kms-key-rotation-and-policy", "minDeletionWindowDays"): "code: components.keys",
    ("backup-plan-coverage", "rpoMinutes"): "dr.rpo_minutes",
    ("helm-release-allowlisted", "allowedCharts"): "code: components.lbcontroller",
    **{(policy, "platformStack"): "platform (a cell stack's)" for policy in IN_PLATFORM},
    ("tenant-data-access", "platformTenantRoles"): "platform (a cell stack's: read from the platform's stack file)",
    ("tenant-data-access", "platformTenantRolePath"): "code: components.tenantidentity",
    ("tenant-data-access", "platformNamespaces"): "platform (a cell stack's: read from the platform's stack file)",
    ("tenant-data-access", "platformServiceNamespaces"): "code: components.workload",
    (
        "tenant-data-access",
        "platformClusters",
    ): "cells.cluster_pairs (a cell stack's: its platform's, naming the pair the cell is on)",
    ("tenant-data-access", "cellTenantFile"): "code: components.workload",
}
_SHOWN = 60  # a value longer than this (as JSON) is said to differ, not printed


def sources_table() -> str:
    """docs/config.md's "Settings the policy pack copies": each stack key and the settings it feeds."""
    by_source: dict[str, list[str]] = {}
    for (policy, key), source in SOURCES.items():
        by_source.setdefault(source, []).append(f"`{policy}.{key}`")
    rows = ["| from | copied into `policies/config/<stack>.json` |", "|---|---|"]
    for source in sorted(by_source, key=lambda s: (s.startswith("code:"), s)):
        shown = source if source.startswith("code:") else ", ".join(f"`{k}`" for k in source.split(" (")[0].split(", "))
        note = f" ({source.split(' (', 1)[1]}" if " (" in source else ""
        rows.append(f"| {shown}{note} | {', '.join(by_source[source])} |")
    return "\n".join(rows)


def merged(current: dict[str, Any] | None, cfg: Any, project_dir: Path | None = None, stack: str | None = None) -> dict[str, Any]:
    """The file's content with its generated settings brought up to date (levels and other settings kept)."""
    out = json.loads(json.dumps(current if current is not None else INITIAL))
    for policy, settings in generated(cfg, project_dir, stack).items():
        entry = out.get(policy, {"enforcementLevel": "mandatory"})
        entry = {"enforcementLevel": entry} if isinstance(entry, str) else dict(entry)
        out[policy] = {**entry, **settings}
    return out


def render(current: dict[str, Any] | None, cfg: Any, project_dir: Path | None = None, stack: str | None = None) -> str:
    return json.dumps(merged(current, cfg, project_dir, stack), indent=2) + "\n"


def drift(current: dict[str, Any], cfg: Any, stack: str, name: str, project_dir: Path | None = None) -> str | None:
    """Why the file's generated settings differ from what the stack config gives, or None: each
    setting with its value in the file, the value the stack key gives, and the one command to run."""
    stale = []
    for policy, settings in generated(cfg, project_dir, stack).items():
        entry = current.get(policy)
        for key, value in settings.items():
            have = entry.get(key) if isinstance(entry, dict) else None
            if not isinstance(entry, dict) or have != value:
                source = SOURCES.get((policy, key), "the stack config")
                was, now = _shown(have), _shown(value)
                values = f"{was} in {name}, {now} from" if len(was) <= _SHOWN and len(now) <= _SHOWN else "differs from"
                stale.append(f"  {policy}.{key}: {values} {source}")
    if not stale:
        return None
    return (
        f"{name} is out of date with Pulumi.{stack}.yaml. The policy pack reads its settings from {name} "
        f"(`pulumi preview --policy-pack-config`); these copy the stack config and differ:\n" + "\n".join(stale) + "\n"
        f"run `meridian policy --stack {stack} --write-config` and commit {name} with this change "
        "(docs/config.md, Settings the policy pack copies)"
    )


def _shown(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 60000.0 in the JSON is the 60000 of the stack file
    return json.dumps(value)


def require_current(project_dir: Path, path: Path, current: dict[str, Any], cfg: Any, stack: str) -> None:
    where = path.relative_to(project_dir) if path.is_relative_to(project_dir) else path
    problem = drift(current, cfg, stack, str(where), project_dir)
    if problem:
        raise BadInput(problem)
