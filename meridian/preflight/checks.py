"""The preflight checks: each judges the plan against what only `pulumi up` (or the first request
after it) would otherwise reveal, and says how to fix what would fail.

A check reads registrations (secrets available: settings files are parsed, never printed) and
the typed config; it never calls AWS. What cannot be known offline is reported as a note.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from meridian.engine.plan import Plan
from meridian.preflight import constraints, limits, quotas
from meridian.preflight import names as namerules
from meridian.preflight.context import CheckResult, Context, Finding
from meridian.preflight.identity import check_identity
from meridian.preflight.image import check_image
from meridian.preflight.placeholders import check_placeholders
from meridian.preflight.readiness import check_readiness
from meridian.preflight.refresh import check_refresh
from meridian.preflight.teardown import check_teardown
from meridian.preflight.workload import RenderedContainer, Unknown
from stackconfig import StackConfig

__all__ = ["CHECKS", "CheckResult", "Context", "Finding", "run_checks"]


# --- names -----------------------------------------------------------------------------------------


def check_names(ctx: Context) -> CheckResult:
    result = CheckResult(
        "names",
        "every physical name within its AWS length and character rules (CloudFormation schemas; "
        "Kubernetes DNS-1123 names and label values)",
    )
    for reg in ctx.plan.custom:
        inputs = ctx.inputs[reg.urn]
        rule = namerules.RULES.get(reg.type)
        problems = []
        if rule is not None:
            problems = namerules.check_name(rule, reg.urn, reg.name, inputs)
        elif reg.type.startswith("kubernetes:"):
            problems = namerules.check_k8s_name(reg.urn, reg.type, reg.name, inputs)
        else:
            continue
        result.checked += 1
        result.findings += [
            Finding(
                p.urn,
                p.message,
                "shorten the logical name or give a physical name built with "
                "components.naming (stable hash + bounded readable part)",
            )
            for p in problems
        ]
    return result


# --- Kubernetes API reachability ---------------------------------------------------------------------


def check_k8s_reachability(ctx: Context) -> CheckResult:
    result = CheckResult(
        "k8s-reachability",
        "the kubernetes provider reaches each EKS API from the runner (public endpoint "
        "limited to runner CIDRs, or private endpoint admitting the runner's network) and "
        "is authorised by an access entry, not by having created the cluster",
    )
    cl = ctx.cfg.cluster
    grants = [
        r
        for r in ctx.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
        if str(ctx.inputs[r.urn].get("policyArn", "")).endswith("/AmazonEKSClusterAdminPolicy")
    ]
    for eks in ctx.of_type("aws:eks/cluster:Cluster"):
        result.checked += 1
        i = ctx.inputs[eks.urn]
        vpc = i.get("vpcConfig") or {}
        public, cidrs = vpc.get("endpointPublicAccess", True), vpc.get("publicAccessCidrs") or ["0.0.0.0/0"]
        if public and any(ipaddress.ip_network(c).prefixlen == 0 for c in cidrs):
            result.findings.append(
                Finding(
                    eks.urn,
                    "public endpoint open to the internet",
                    "set meridian:cluster.public_access_cidrs to the runner's egress CIDRs",
                )
            )
        if not public:
            sgs = set(vpc.get("securityGroupIds") or [])
            runner = {str(c) for c in cl.runner_cidrs}
            admitted = [
                r
                for r in ctx.of_type("aws:ec2/securityGroup:SecurityGroup")
                if r.id in sgs
                and any(
                    rule.get("fromPort", 0) <= 443 <= rule.get("toPort", 0) and runner <= set(rule.get("cidrBlocks") or [])
                    for rule in ctx.inputs[r.urn].get("ingress") or []
                )
            ]
            if not runner or not admitted:
                result.findings.append(
                    Finding(
                        eks.urn,
                        "private endpoint only, and no security group admits the runner on 443",
                        "set meridian:cluster.api_access: private-runner with runner_cidrs, or public-restricted with public_access_cidrs",
                    )
                )
            else:
                result.notes.append(
                    f"{eks.name}: the runner in {', '.join(map(str, cl.runner_cidrs))} routed into the VPC (peering/TGW)"
                )
        cluster_name = i.get("name")
        mine = [g for g in grants if ctx.inputs[g.urn].get("clusterName") == cluster_name]
        deploy = [g for g in mine if ctx.inputs[g.urn].get("principalArn") == cl.deploy_role_arn]
        bootstrap = (i.get("accessConfig") or {}).get("bootstrapClusterCreatorAdminPermissions", True)
        if not deploy and not bootstrap:
            result.findings.append(
                Finding(
                    eks.urn,
                    "no access entry gives the deploy role cluster admin, and the creator gets none",
                    "set meridian:cluster.deploy_role_arn (components.cluster grants it by access entry)",
                )
            )
        providers = [r for r in ctx.plan.registrations if r.type == "pulumi:providers:kubernetes" and r.parent == eks.parent]
        for provider in providers:
            if deploy and not set(g.urn for g in deploy) & set(provider.dependencies):
                result.findings.append(
                    Finding(
                        provider.urn,
                        "the kubernetes provider may call the API before the deploy role's access exists",
                        "make the provider depend on the deploy role's AccessPolicyAssociation",
                    )
                )
    return result


# --- DNS: delegation and certificates ------------------------------------------------------------------


def check_zone_delegation(ctx: Context) -> CheckResult:
    result = CheckResult(
        "zone-delegation",
        "records and DNS validation land in a zone resolvers reach: an existing zone "
        "delegated from its parent (a zone created by the stack is not delegated yet)",
    )
    fo = ctx.cfg.failover
    zones = ctx.of_type("aws:route53/zone:Zone")
    result.checked = len(ctx.of_type("aws:route53/record:Record"))
    for zone in zones:
        result.findings.append(
            Finding(
                zone.urn,
                f"the stack creates zone {fo.api_zone}: nothing delegates to it yet, so certificate "
                "validation would wait forever",
                "two-phase bring-up: `pulumi up --target` the zone, delegate the parent to the exported "
                "zone_name_servers, then set meridian:failover.hosted_zone_id (docs/operations.md)",
            )
        )
    for record in ctx.of_type("aws:route53/record:Record"):
        zone_id = ctx.inputs[record.urn].get("zoneId")
        if fo.hosted_zone_id and zone_id != fo.hosted_zone_id:
            result.findings.append(
                Finding(
                    record.urn,
                    f"record in zone {zone_id}, not the configured zone {fo.hosted_zone_id}",
                    "create records in the configured meridian:failover.hosted_zone_id",
                )
            )
    if fo.hosted_zone_id:
        result.notes.append(
            f"zone {fo.hosted_zone_id} delegated from its parent: `dig NS {fo.api_zone}` must list its name servers"
        )
    return result


def check_certificates(ctx: Context) -> CheckResult:
    result = CheckResult(
        "certificates",
        "each DNS-validated ACM certificate has a validation waiting on a record in the zone "
        "for its name (one record per name, shared by the regions)",
    )
    validations = ctx.of_type("aws:acm/certificateValidation:CertificateValidation")
    records = {r.urn: r for r in ctx.of_type("aws:route53/record:Record")}
    names = Counter(
        (ctx.inputs[r.urn].get("name"), ctx.inputs[r.urn].get("type"), ctx.inputs[r.urn].get("setIdentifier"))
        for r in records.values()
    )
    for (name, type_, _), n in names.items():
        if n > 1:
            result.findings.append(
                Finding(
                    "",
                    f"{n} resources manage the {type_} record {name}: they overwrite each other and one delete removes it for all",
                    "manage the validation record once (components.apidomain)",
                )
            )
    zone = ctx.cfg.failover.api_zone.rstrip(".")
    for cert in ctx.of_type("aws:acm/certificate:Certificate"):
        result.checked += 1
        i = ctx.inputs[cert.urn]
        if i.get("validationMethod") != "DNS":
            continue
        for domain in [str(i.get("domainName", "")), *[str(n) for n in i.get("subjectAlternativeNames") or []]]:
            if not (domain == zone or domain.endswith("." + zone)):
                result.findings.append(
                    Finding(
                        cert.urn,
                        f"{domain} is outside the zone {zone}: its validation record cannot be created there",
                        "use a name inside meridian:failover.api_zone",
                    )
                )
        mine = [v for v in validations if cert.urn in v.dependencies]
        if not mine:
            result.findings.append(
                Finding(
                    cert.urn,
                    "no CertificateValidation: listeners would use a certificate that may never be issued",
                    "add an aws.acm.CertificateValidation on the validation record",
                )
            )
        for v in mine:
            if not any(d in records for d in v.dependencies):
                result.findings.append(
                    Finding(v.urn, "waits on no Route 53 record of this stack", "pass the validation record's fqdn")
                )
    return result


# --- the service's settings --------------------------------------------------------------------------------


SETTINGS_FLAG = "--config"


def _service_routes() -> set[str]:
    from service.paths import SERVED  # the app's routes, without its packages (a preview has none of them)

    return set(SERVED)


def _settings_path(container: RenderedContainer) -> str | None:
    args = [str(a) for a in container.spec.get("args") or []]
    if SETTINGS_FLAG in args[:-1]:
        return args[args.index(SETTINGS_FLAG) + 1]
    env = {e.get("name"): e.get("value") for e in container.spec.get("env") or []}
    return env.get("MERIDIAN_SERVICE_CONFIG")


def _is_migration(c: RenderedContainer) -> bool:
    command = [str(x) for x in c.spec.get("command") or []]
    return command[1:3] == ["-m", "service"] and command[3:4] == ["migrate"]


def _migration_app_users(containers: Iterable[RenderedContainer]) -> set[str]:
    """The application users the stack's migration Jobs create (as far as their settings are known)."""
    from service.settings import MigrationSettings

    out = set()
    for c in containers:
        path = _settings_path(c) if _is_migration(c) else None
        mounted = c.file(path) if path else None
        if mounted is None or not isinstance(mounted.content, str):
            continue
        try:
            out.add(MigrationSettings.from_dict(json.loads(mounted.content)).app_user)
        except (ValueError, KeyError, TypeError):
            continue  # reported by _migration_findings
    return out


def _migration_findings(mounted, db_names: set[str], masters: set[str]) -> list[Finding]:
    """The migration's settings load, and its admin DSN is the master user on a database the stack creates."""
    from service.settings import MigrationSettings

    try:
        m = MigrationSettings.from_dict(json.loads(mounted.content))
    except (ValueError, KeyError, TypeError) as exc:
        return [
            Finding(
                mounted.secret_urn,
                f"{mounted.path} does not load as the migration's settings: {type(exc).__name__}: {exc}",
                "render it with service.settings.MigrationSettings(...).to_dict()",
            )
        ]
    url = urlsplit(m.admin_dsn)
    user = unquote(url.netloc.rpartition("@")[0].partition(":")[0])
    out = []
    if db_names and url.path.lstrip("/") not in db_names:
        out.append(
            Finding(
                mounted.secret_urn,
                f"admin_dsn names database {url.path.lstrip('/')!r}; the stack creates {sorted(db_names)}",
                "use the database resource's name",
            )
        )
    if masters and user not in masters:
        out.append(
            Finding(
                mounted.secret_urn,
                f"admin_dsn logs in as {user!r}, not the master user {sorted(masters)}",
                "use the master credentials",
            )
        )
    if m.app_user in masters:
        out.append(
            Finding(mounted.secret_urn, f"app_user {m.app_user!r} is the master user", "give the service a user of its own")
        )
    return out


def _password_source_findings(urn: str, region: str, settings) -> list[Finding]:
    """The service must get its password from somewhere: a DSN's own, or its region's copy of the secret."""
    missing = [a for a in ("write_dsn", "read_dsn") if urlsplit(getattr(settings, a)).password is None]
    if settings.db_secret is None:
        if missing:
            return [
                Finding(
                    urn,
                    f"{', '.join(missing)} carry no password and no db_secret names where to read it: "
                    "every connection is refused",
                    "render db_secret with the region's copy of the application user's secret (components.workload)",
                )
            ]
        return []
    arn_region = settings.db_secret.arn.split(":")[3] if settings.db_secret.arn.count(":") >= 6 else None
    if settings.db_secret.region != region or arn_region not in (None, region):
        return [
            Finding(
                urn,
                f"the service in {region} reads its database password from {arn_region or settings.db_secret.region}: "
                "a pod reads its own region's copy (the other region may be the one that failed)",
                "name the secret's replica in the pod's region (components.dbcredential.replica_arn)",
            )
        ]
    return []


def check_service_settings(ctx: Context) -> CheckResult:
    from service.settings import ServiceSettings

    result = CheckResult(
        "service-settings",
        "each service container gets the settings file it reads (mounted Secret, loadable "
        "by the service's own model, readable by its user), binds an address the probes "
        "reach, and its probes hit routes it serves; its DSNs name the database that exists, "
        "and its password comes from its own region's copy of the secret",
    )
    routes = _service_routes()
    databases = [ctx.inputs[r.urn] for r in ctx.plan.custom if r.type in ("aws:rds/cluster:Cluster", "aws:rds/instance:Instance")]
    db_names = {d.get("databaseName") or d.get("dbName") for d in databases} - {None}
    users = {d.get("masterUsername") or d.get("username") for d in databases} - {None}
    app_users = _migration_app_users(ctx.containers())
    for c in ctx.containers():
        command = [str(x) for x in c.spec.get("command") or []]
        if command[1:3] != ["-m", "service"]:
            continue
        result.checked += 1
        where = f"{c.owner_urn} container {c.name}"
        path = _settings_path(c)
        if path is None:
            result.findings.append(
                Finding(
                    c.owner_urn,
                    f"{c.name}: no --config or MERIDIAN_SERVICE_CONFIG: the service exits at start",
                    "pass --config /etc/meridian/service.json (components.workload)",
                )
            )
            continue
        mounted = c.file(path)
        if mounted is None or mounted.secret_urn is None or mounted.content is None:
            result.findings.append(
                Finding(
                    c.owner_urn,
                    f"{c.name}: {path} is not mounted from a Secret of this stack",
                    "mount the settings Secret at its directory (components.workload)",
                )
            )
            continue
        if isinstance(mounted.content, Unknown):
            result.notes.append(f"{where}: settings known only after up")
            continue
        if command[3:4] == ["migrate"]:
            result.findings += _migration_findings(mounted, db_names, users)
            continue  # the migration job serves nothing: no bind, port or probes
        try:
            settings = ServiceSettings.from_dict(json.loads(mounted.content))
        except (ValueError, KeyError, TypeError) as exc:
            result.findings.append(
                Finding(
                    mounted.secret_urn,
                    f"{path} does not load as the service's settings: {type(exc).__name__}: {exc}",
                    "render it with service.settings.ServiceSettings(...).to_dict()",
                )
            )
            continue
        security = c.pod_security
        readable = (
            mounted.mode & 0o004
            or (mounted.mode & 0o040 and security.get("fsGroup") is not None)
            or (mounted.mode & 0o400 and security.get("runAsUser") == 0)
        )
        if not readable:
            result.findings.append(
                Finding(
                    c.owner_urn,
                    f"{path} mode {oct(mounted.mode)} is unreadable by the container's user",
                    "defaultMode 0440 with the pod's fsGroup",
                )
            )
        for attr in ("write_dsn", "read_dsn"):
            url = urlsplit(getattr(settings, attr))
            if db_names and url.path.lstrip("/") not in db_names:
                result.findings.append(
                    Finding(
                        mounted.secret_urn,
                        f"{attr} names database {url.path.lstrip('/')!r}; the stack creates {sorted(db_names)}",
                        "use the database resource's name",
                    )
                )
            user = unquote(url.netloc.rpartition("@")[0].partition(":")[0])
            if user in users:
                result.findings.append(
                    Finding(
                        mounted.secret_urn,
                        f"{attr} logs in as the master user {user!r}: the service must have its own, least-privileged user",
                        "log in as the application user the migration creates (components.workload.DatabaseAccess.user)",
                    )
                )
            elif user not in app_users:
                result.findings.append(
                    Finding(
                        mounted.secret_urn,
                        f"{attr} logs in as {user!r}, a user the stack does not create (its migration creates {sorted(app_users)})",
                        "use the application user of the migration's settings",
                    )
                )
        result.findings += _password_source_findings(mounted.secret_urn, c.region, settings)
        if settings.host in ("127.0.0.1", "localhost", "::1"):
            result.findings.append(
                Finding(
                    mounted.secret_urn,
                    f"binds {settings.host}: probes and the load balancer reach the pod IP",
                    "bind 0.0.0.0 in the cluster",
                )
            )
        ports = {p.get("containerPort") for p in c.spec.get("ports") or []}
        if settings.port not in ports:
            result.findings.append(
                Finding(
                    c.owner_urn,
                    f"the service listens on {settings.port}, the container exposes {sorted(ports)}",
                    "render the settings' port from the container port",
                )
            )
        for probe in ("readinessProbe", "livenessProbe"):
            get = (c.spec.get(probe) or {}).get("httpGet")
            if not get:
                result.findings.append(
                    Finding(c.owner_urn, f"{c.name}: no {probe}", "probe /healthz (readiness) and /livez (liveness)")
                )
                continue
            if get.get("port") != settings.port and get.get("port") not in {p.get("name") for p in c.spec.get("ports") or []}:
                result.findings.append(
                    Finding(
                        c.owner_urn,
                        f"{probe} probes port {get.get('port')}, the service listens on {settings.port}",
                        "probe the service's port",
                    )
                )
            if get.get("path") not in routes:
                result.findings.append(
                    Finding(
                        c.owner_urn,
                        f"{probe} path {get.get('path')} is not a route of the service ({sorted(routes)})",
                        "probe /healthz (readiness) and /livez (liveness)",
                    )
                )
    if not result.checked and ctx.cfg.is_cell:  # the platform's workload serves a cell's tenants, from its tenant file
        result.notes.append(f"a cell stack runs no service: its platform {ctx.cfg.platform}'s does (checked in its plan)")
    elif not result.checked:
        result.findings.append(Finding("", "no container runs the service", "the stack must deploy components.workload"))
    return result


# --- images ---------------------------------------------------------------------------------------------------

ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repo>[^:@]+)(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)


def check_images(ctx: Context) -> CheckResult:
    result = CheckResult(
        "images",
        "each container image is pinned (immutable tag or digest) in an ECR repository this stack "
        "manages in the container's own region (replicated inside the zone)",
    )
    repos: dict[tuple[str, str], dict] = {}
    for r in ctx.of_type("aws:ecr/repository:Repository"):
        repos[(ctx.plan.region_of(r), str(ctx.inputs[r.urn].get("name")))] = ctx.inputs[r.urn]
    for c in ctx.containers():
        result.checked += 1
        image = str(c.spec.get("image", ""))
        m = ECR_IMAGE.match(image)
        if not m:
            result.findings.append(
                Finding(
                    c.owner_urn,
                    f"{c.name}: image {image!r} is not in an ECR repository of this stack",
                    "use the ImageRegistry's repository URL of the region (components.registry)",
                )
            )
            continue
        if m["region"] != c.region:
            result.findings.append(
                Finding(
                    c.owner_urn,
                    f"{c.name}: pulls from {m['region']} while running in {c.region}",
                    "pull from the region's own replica",
                )
            )
        repo = repos.get((c.region, m["repo"]))
        if repo is None:
            result.findings.append(
                Finding(
                    c.owner_urn,
                    f"{c.name}: repository {m['repo']} does not exist in {c.region}",
                    "create it in every region (components.registry)",
                )
            )
        elif repo.get("imageTagMutability") != "IMMUTABLE" and not m["digest"]:
            result.findings.append(
                Finding(
                    c.owner_urn,
                    f"{c.name}: tag {m['tag']} of a mutable repository can change under a running deploy",
                    "IMMUTABLE tags or a digest",
                )
            )
        if not m["digest"] and (not m["tag"] or m["tag"] == "latest"):
            result.findings.append(
                Finding(c.owner_urn, f"{c.name}: image {image} is not pinned", "set meridian:workload.image_tag to a release")
            )
    result.notes.append(
        f"tag {ctx.cfg.workload.image_tag} pushed to the primary region's repository (replication copies it) "
        "before the workload rolls out (docs/operations.md)"
    )
    return result


# --- the account ------------------------------------------------------------------------------------


def _as_list(value: Any) -> list:
    """Provider inputs may arrive JSON-encoded (the engine passes provider config as strings)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    return list(value) if isinstance(value, list | tuple) else []


def check_account(ctx: Context) -> CheckResult:
    result = CheckResult(
        "account",
        "every AWS provider is pinned to the stack's account (allowed_account_ids: credentials of another "
        "account stop `up` before it creates anything); account-wide billing settings owned once",
    )
    account = ctx.cfg.aws_account_id
    for r in (reg for reg in ctx.plan.registrations if reg.type == "pulumi:providers:aws"):
        result.checked += 1
        allowed = [str(a) for a in _as_list(ctx.inputs[r.urn].get("allowedAccountIds"))]
        if account is None:
            continue
        if allowed != [account]:
            result.findings.append(
                Finding(
                    r.urn,
                    f"provider allows accounts {allowed or 'any'}, not only the stack's {account}",
                    "create providers with components.tagging.regional_provider (it sets allowed_account_ids)",
                )
            )
    if account is None:
        result.notes.append(
            "warning: meridian:aws_account_id is not set, so the providers act in whatever account the runner's "
            "credentials belong to; set it (required for production stacks)"
        )
    if ctx.cfg.cost.activates_tags:
        result.notes.append(
            "cost-allocation tags activate only once AWS billing has seen them: `aws ce list-cost-allocation-tags` "
            "must list meridian:stack, meridian:tenant and meridian:cost-center (else set "
            "meridian:cost.cost_allocation_tags_in_billing: false; docs/operations.md, step 7)"
        )
    return result


CHECKS: dict[str, Callable[[Context], CheckResult]] = {
    "names": check_names,
    "quotas": quotas.check_quotas,
    "limits": limits.check_limits,
    "constraints": constraints.check_constraints,
    "k8s-reachability": check_k8s_reachability,
    "zone-delegation": check_zone_delegation,
    "certificates": check_certificates,
    "service-settings": check_service_settings,
    "images": check_images,
    "account": check_account,
    "placeholders": check_placeholders,
    "readiness": check_readiness,
    "teardown": check_teardown,
    "identity": check_identity,
    "image": check_image,
    "refresh": check_refresh,
}


def run_checks(plan: Plan, cfg: StackConfig, project_dir: Path | None = None) -> list[CheckResult]:
    ctx = Context.of(plan, cfg, project_dir)
    return [check(ctx) for check in CHECKS.values()]
