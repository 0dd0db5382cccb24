"""Workload: the reference service in one region's cluster, stable and canary side by side behind the region's ALB.

What a pod gets is exactly what the service reads: its settings file `/etc/meridian/service.json`
(a Secret rendered from the service's own settings model, `service.settings.ServiceSettings`:
DSNs, tenants with key digests and quotas, each tenant's bucket, prefix, key and role, the region
and cluster for its sessions, bind address), passed as `--config`. Nothing else configures it,
but for a platform serving cell stacks (`WorkloadArgs.cells`): their tenants arrive as tenant
files, each cell's Secret `meridian-tenants-<cell>` (`tenant_file`, the same entries the settings
carry inline) mounted at `/etc/meridian/tenants/<cell>.json`, which the service follows while it
runs (service.tenants).
The pods run as the service account `meridian-api`, whose Pod Identity role (the broker,
components.tenantidentity) may assume the tenant role naming one tenant and read the application
user's secret, nothing else; no pod (nor the migration Job) is created before that association
exists, so none starts without its identity (and the nodes' hop limit of 1 keeps pods off the node
role, components.cluster). The `platform` namespace is fenced like a tenant's: a default deny, then
ingress from the VPC (the ALB and the kubelet's probes) on the container port, and egress to DNS,
the Pod Identity agent, the database subnets on 5432 and AWS APIs on 443 (components.podnetwork). The service logs in as the application user, never the
master, with the password it reads from that secret when it opens a connection (rotation changes
it; the DSNs carry none): the primary region runs the schema migration as a Job before the
Deployment rolls out, with its own Secret (`migrate.json`, `service.settings.MigrationSettings`:
the master DSN, the application user it creates and the secret that user's password is read
from); the dr region's schema and roles arrive by replication. Pods are non-root with a read-only root
filesystem; readiness is the deep `/healthz`, by role: the primary region's pods are ready while
they serve reads and writes, the dr region's while the region could take over (its own replica
answers; its write path is Aurora write forwarding, or on RDS none until promotion, declared
`passive`, writes refused with 503 + Retry-After); liveness is the shallow `/livez` (a database
outage must not restart every pod).

Two tracks run side by side: `stable` (the Deployment `<name>-api`, `replicas` pods) and `canary`
(`<name>-canary`, `canary_replicas` pods of the version being rolled out, or of the stable image
when none is). Each track has its own ClusterIP Service, and a `TargetGroupBinding` hands that
Service's pod IPs to the track's ALB target group (components.ingress), where the listener's
weights split traffic and `meridian rollout` moves them.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import pulumi
import pulumi_kubernetes as k8s

from components.podnetwork import essential_egress
from service.quotas import TenantQuota
from service.settings import (
    WRITE_PATHS,
    DbSecret,
    MigrationSettings,
    ObjectStorage,
    ServiceSettings,
    TenantData,
    TenantEntry,
    dump_tenant_file,
)

NAMESPACE = "platform"
APP = "meridian-api"
SERVICE_ACCOUNT = APP  # bound to the broker role by an EKS Pod Identity association (components.tenantidentity)
SETTINGS_DIR = "/etc/meridian"
SETTINGS_FILE = "service.json"
SETTINGS_PATH = f"{SETTINGS_DIR}/{SETTINGS_FILE}"
MIGRATION_FILE = "migrate.json"
# Cell stacks' tenants (a Secret of at most 1 MiB each, created by the cell stack): one projected
# volume of all of them, each Secret optional so the platform can be up before its cells. Mounted
# inside the settings volume's directory: the kubelet creates the mount point there (Kubernetes >= 1.10,
# kubernetes/kubernetes#60342).
TENANTS_DIR = f"{SETTINGS_DIR}/tenants"
TENANT_FILE_KEY = "tenants.json"
TENANT_FILE_SECRET_PREFIX = "meridian-tenants-"
CELL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a DNS label: the Secret's name and the file's
MIGRATION_PATH = f"{SETTINGS_DIR}/{MIGRATION_FILE}"
BIND_HOST = "0.0.0.0"  # in a pod the kubelet probes and the ALB reach the pod IP, never loopback
RUN_AS = 10001  # the image's non-root user (service/Dockerfile); also the settings file's group (fsGroup)
READINESS_PATH = "/healthz"
# /healthz waits up to the settings' db_timeout_s (2 s) to get a connection and as long again for its
# query; the kubelet's default probe timeout (1 s) would mark a slow but serving region unready
READINESS_TIMEOUT_S = 5
LIVENESS_PATH = "/livez"
TRACKS = ("stable", "canary")
TRACK_LABEL = "meridian.io/track"
CANARY_SUFFIX = "-canary"  # the canary Deployment is `<workload>-canary`, beside the stable `<workload>-api`
SERVICE_PORT = 80  # the ClusterIP Services' port; TLS ends at the ALB, which reaches pods on container_port
SERVICE_COMMAND = ("python", "-m", "service")  # the image's ENTRYPOINT, stated so the plan shows what runs
# TLS to the database: `rds.force_ssl` refuses anything else. `verify-full` needs the RDS CA bundle
# inside the image (docs/operations.md); `require` encrypts without pinning the CA.
DB_SSLMODE = "require"


@dataclass(frozen=True, kw_only=True)
class TenantDataAccess:
    """Where the tenant's objects live in this region and the role whose sessions reach them."""

    bucket: pulumi.Input[str]
    prefix: str
    namespace: str
    kms_key_arn: pulumi.Input[str]
    role_arn: pulumi.Input[str]
    replica_key_arn: pulumi.Input[str] | None = None
    """Pool tenants: the region's pool key, under which the other region's replicas of their objects arrive."""


@dataclass(frozen=True, kw_only=True)
class WorkloadTenant:
    """What the service needs of a tenant: its plan, quotas, the digest of its API key, its data."""

    id: str
    plan: str
    gql_qps: int
    ingest_eps: int
    storage_gb: int
    key_digest: pulumi.Input[str]
    data: TenantDataAccess | None = None


@dataclass(frozen=True, kw_only=True)
class DatabaseAccess:
    writer_host: pulumi.Input[str]
    """Where writes go: one host, or comma-separated hosts tried in order (the region's Aurora
    cluster endpoint, then its reader endpoint, which forwards writes once the cluster is demoted)."""
    reader_host: pulumi.Input[str]
    port: int
    name: str
    user: str
    """The application user the service logs in as (created by the migration)."""
    secret_arn: pulumi.Input[str]
    """The region's copy of the application user's Secrets Manager secret: its password, rotated."""
    admin_user: str
    """The master user: the migration Job's only, never the service's."""
    admin_password: pulumi.Input[str]
    write_path: str = "direct"
    """How writes reach the writer (`service.settings.WRITE_PATHS`): `direct` and `passive` demand a
    read-write session (`passive`: the region's own replica, which takes writes once promoted);
    `forwarded` (an Aurora cluster that may be a secondary forwarding writes, which answers
    read-only to session checks) demands nothing."""


@dataclass(frozen=True, kw_only=True)
class WorkloadArgs:
    region: str
    role: str
    """`primary` or `dr`: the service reads locally and writes to `database.writer_host` as
    `database.write_path` says; its readiness means what the role needs (service.store.readiness_problems)."""
    image: pulumi.Input[str]
    replicas: int
    container_port: int
    database: DatabaseAccess
    tenants: Sequence[WorkloadTenant]
    canary_image: pulumi.Input[str]
    """What the canary track runs: the version being rolled out, or `image` when none is (weight 0)."""
    canary_replicas: int
    version: str = "stable"
    """The stable track's version (its image tag): the service answers it in `X-Meridian-Version`."""
    canary_version: str = "stable"
    """The canary track's: what the rollout gate tells the canary's requests apart by."""
    target_group_arns: Mapping[str, pulumi.Input[str]]
    """Track (`stable`, `canary`) -> the ALB target group its pods are registered in."""
    binding_depends_on: Sequence[pulumi.Resource] = ()
    """What must exist before a TargetGroupBinding (the load balancer controller's chart: its CRD)."""
    cost_labels: Mapping[str, str] = field(default_factory=dict)
    """Pod labels EKS split cost allocation imports as cost-allocation tags (once enabled in billing)."""
    vpc_cidr: str
    """The region's VPC: the ALB and the kubelet reach pods from it; its interface endpoints answer in it."""
    database_cidrs: Sequence[str]
    """Where the service's database answers (PostgreSQL, 5432): the only other egress its pods get."""
    identity: Sequence[pulumi.Resource] = ()
    """The service account's Pod Identity association: every pod waits for it."""
    cells: Sequence[str] = ()
    """The cell stacks whose tenants this region's service serves besides `tenants`: each cell's Secret
    (`tenant_file_secret_name(cell)`, key `TENANT_FILE_KEY`) is mounted at `TENANTS_DIR/<cell>.json`
    and followed while the pods run (service.tenants); empty: no mount, the settings as before."""

    def __post_init__(self) -> None:
        if self.database.user == self.database.admin_user:
            raise ValueError("the service must not log in as the database's master user")
        if self.role not in ("primary", "dr"):
            raise ValueError(f"role must be 'primary' or 'dr', got {self.role!r}")
        if self.database.write_path not in WRITE_PATHS:
            raise ValueError(f"database.write_path must be one of {', '.join(WRITE_PATHS)}, got {self.database.write_path!r}")
        if self.database.write_path == "passive" and self.role != "dr":
            raise ValueError("only the dr region may be passive: the primary region needs a write path")
        if self.replicas < 1 or self.canary_replicas < 1:
            raise ValueError(f"replicas and canary_replicas must be >= 1, got {self.replicas}, {self.canary_replicas}")
        bad = [c for c in self.cells if not CELL_NAME.match(c)]
        if bad or len(set(self.cells)) != len(self.cells):
            raise ValueError(f"cells must be distinct DNS labels ({CELL_NAME.pattern}), got {', '.join(self.cells)}")
        if set(self.target_group_arns) != set(TRACKS):
            raise ValueError(
                f"target_group_arns must name the tracks {', '.join(TRACKS)}, got {', '.join(self.target_group_arns)}"
            )


def dsn(host: str, port: int, db: str, user: str, password: str | None, *, writer: bool) -> str:
    """A libpq/asyncpg URL; credentials percent-encoded (RDS passwords carry URL metacharacters).
    No password: the reader takes it from elsewhere (the application user's, from Secrets Manager).
    `host`: one host, or several comma-separated, tried in order (a multi-host URL)."""
    query = f"sslmode={DB_SSLMODE}" + ("&target_session_attrs=read-write" if writer else "")
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
    hosts = ",".join(f"{h}:{port}" for h in host.split(","))
    return f"postgresql://{auth}@{hosts}/{quote(db, safe='')}?{query}"


def tenant_file_secret_name(cell: str) -> str:
    """The Secret (namespace `NAMESPACE`) holding a cell's tenant file, under `TENANT_FILE_KEY`."""
    return f"{TENANT_FILE_SECRET_PREFIX}{cell}"


ResolvedData = tuple[str, str, str, str | None]
"""A tenant's data access, resolved: (bucket, KMS key ARN, role ARN, replica key ARN or None)."""


def tenant_entries(
    *, tenants: Sequence[WorkloadTenant], digests: Sequence[str], data: Sequence[ResolvedData | None] = ()
) -> tuple[TenantEntry, ...]:
    """The service's entries for these tenants (`service.settings.TenantEntry`), in tenant order: the
    one rendering the settings file's `tenants` and a cell's tenant file share.
    `data`: per tenant, its resolved data access, or None without tenant data (empty: none has any)."""
    data = list(data) or [None] * len(tenants)
    return tuple(
        TenantEntry(
            t.id,
            t.plan,
            (digest,),
            TenantQuota(t.gql_qps, t.ingest_eps, t.storage_gb),
            TenantData(d[0], t.data.prefix, d[1], d[2], t.data.namespace, d[3]) if d and t.data else None,
        )
        for t, digest, d in zip(tenants, digests, data, strict=True)
    )


def render_tenant_entries(
    *, tenants: Sequence[WorkloadTenant], digests: Sequence[str], data: Sequence[ResolvedData | None] = ()
) -> str:
    """A cell's tenant file: `tenant_entries` as the JSON list the service loads (`service.settings.dump_tenant_file`)."""
    return dump_tenant_file(tenant_entries(tenants=tenants, digests=digests, data=data))


def _data_inputs(tenants: Sequence[WorkloadTenant]) -> list[pulumi.Input[str] | None]:
    """The unresolved data access of the tenants that have it, four values each, in tenant order."""
    return [
        x
        for t in tenants
        if t.data is not None
        for x in (t.data.bucket, t.data.kms_key_arn, t.data.role_arn, t.data.replica_key_arn)
    ]


def _resolved_data(tenants: Sequence[WorkloadTenant], values: Sequence) -> list[ResolvedData | None]:
    """`_data_inputs` resolved -> per tenant, its (bucket, key, role, replica key), in tenant order."""
    resolved = iter([tuple(values[i : i + 4]) for i in range(0, len(values), 4)])
    return [next(resolved) if t.data is not None else None for t in tenants]


def tenant_file(tenants: Sequence[WorkloadTenant]) -> pulumi.Output[str]:
    """The content of a cell's tenant file (`render_tenant_entries` once the digests and data
    resolve), secret: what a cell stack puts in its Secret `tenant_file_secret_name(cell)`."""
    n = len(tenants)
    return pulumi.Output.secret(
        pulumi.Output.all(*[t.key_digest for t in tenants], *_data_inputs(tenants)).apply(
            lambda v: render_tenant_entries(tenants=tenants, digests=v[:n], data=_resolved_data(tenants, v[n:]))
        )
    )


def render_settings(
    *,
    region: str,
    role: str,
    port: int,
    db: DatabaseAccess,
    writer_host: str,
    reader_host: str,
    secret_arn: str,
    tenants: Sequence[WorkloadTenant],
    digests: Sequence[str],
    data: Sequence[ResolvedData | None] = (),
    version: str = "stable",
    tenant_files_dir: str | None = None,
) -> str:
    """The settings file, through the service's own model: what it cannot load, it is never given.
    `data`: per tenant, its resolved data access, or None without tenant data. `tenant_files_dir`:
    where the cells' tenant files are mounted (None: no cells, the inline tenants only)."""
    settings = ServiceSettings(
        region=region,
        role=role,
        write_dsn=dsn(writer_host, db.port, db.name, db.user, None, writer=db.write_path != "forwarded"),
        read_dsn=dsn(reader_host, db.port, db.name, db.user, None, writer=False),
        tenants=tenant_entries(tenants=tenants, digests=digests, data=data),
        host=BIND_HOST,
        port=port,
        # cell tenants have data too: a platform whose inline tenants have none still reaches storage
        objects=ObjectStorage(region=region) if any(data) or tenant_files_dir is not None else None,
        db_secret=DbSecret(arn=secret_arn, region=region),
        version=version,
        writes=db.write_path,
        tenant_files_dir=tenant_files_dir,
    )
    return json.dumps(settings.to_dict(), indent=1, sort_keys=True)


def render_migration(*, db: DatabaseAccess, region: str, writer_host: str, admin_password: str, secret_arn: str) -> str:
    """The migration Job's settings: the master DSN on the writer, the application user to create and
    the secret its password is read from."""
    settings = MigrationSettings(
        admin_dsn=dsn(writer_host, db.port, db.name, db.admin_user, admin_password, writer=True),
        app_user=db.user,
        app_secret=DbSecret(arn=secret_arn, region=region),
    )
    return json.dumps(settings.to_dict(), indent=1, sort_keys=True)


def pod_spec(
    *,
    image: pulumi.Input[str],
    secret_name: pulumi.Input[str],
    settings_file: str,
    port: int,
    command: Sequence[str],
    probes: bool,
    service_account: pulumi.Input[str] | None = None,
    cells: Sequence[str] = (),
) -> dict:
    """The pod both the Deployment and the migration Job run: same image, each its own settings Secret.
    `cells`: the cells whose tenant files the service follows (`TENANTS_DIR`)."""
    container: dict = {
        "name": "api" if probes else "migrate",
        "image": image,
        "command": list(command),
        "args": ["--config", f"{SETTINGS_DIR}/{settings_file}"],
        "volumeMounts": [{"name": "settings", "mountPath": SETTINGS_DIR, "readOnly": True}, {"name": "tmp", "mountPath": "/tmp"}],
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if probes:
        container["ports"] = [{"containerPort": port, "name": "http"}]
        container["readinessProbe"] = {
            "httpGet": {"path": READINESS_PATH, "port": port},
            "periodSeconds": 5,
            "timeoutSeconds": READINESS_TIMEOUT_S,
            "failureThreshold": 3,
        }
        container["livenessProbe"] = {
            "httpGet": {"path": LIVENESS_PATH, "port": port},
            "periodSeconds": 10,
            "failureThreshold": 3,
            "initialDelaySeconds": 5,
        }
    identity = {"serviceAccountName": service_account} if service_account is not None else {}
    tenant_files = []
    if cells:
        container["volumeMounts"].append({"name": "tenants", "mountPath": TENANTS_DIR, "readOnly": True})
        tenant_files.append(
            {
                "name": "tenants",
                "projected": {
                    "defaultMode": 0o440,
                    "sources": [
                        {
                            "secret": {
                                "name": tenant_file_secret_name(cell),
                                "optional": True,  # a cell not yet up: its file is absent, the others are served
                                "items": [{"key": TENANT_FILE_KEY, "path": f"{cell}.json"}],
                            }
                        }
                        for cell in cells
                    ],
                },
            }
        )
    return {
        **identity,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            # 0440 + fsGroup: the service's group reads the file, nobody else.
            {
                "name": "settings",
                "secret": {
                    "secretName": secret_name,
                    "defaultMode": 0o440,
                    "items": [{"key": settings_file, "path": settings_file}],
                },
            },
            {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
            *tenant_files,
        ],
    }


class Workload(pulumi.ComponentResource):
    service_names: dict[str, pulumi.Output[str]]  # track -> its ClusterIP Service
    namespace: pulumi.Output[str]
    migration: pulumi.Resource | None  # the primary region's migration Job (it creates the service's user)

    def __init__(self, name: str, args: WorkloadArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:workload:Workload", name, None, opts)
        labels = {"app.kubernetes.io/name": APP, "app.kubernetes.io/part-of": "meridian", "meridian.io/region": args.region}
        ns = k8s.core.v1.Namespace(
            f"{name}-ns",
            metadata={
                "name": NAMESPACE,
                "labels": {"meridian.io/platform": "true", "pod-security.kubernetes.io/enforce": "restricted"},
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        in_ns = pulumi.ResourceOptions(parent=ns)
        net_meta = {"namespace": NAMESPACE, "labels": labels}
        k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata={**net_meta, "name": "default-deny"},
            spec={"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
            opts=in_ns,
        )
        k8s.networking.v1.NetworkPolicy(
            f"{name}-allow-needed",
            metadata={**net_meta, "name": "allow-needed"},
            spec={
                "podSelector": {},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [
                    {"from": [{"ipBlock": {"cidr": args.vpc_cidr}}], "ports": [{"protocol": "TCP", "port": args.container_port}]}
                ],
                "egress": [
                    *essential_egress(args.vpc_cidr),
                    {"to": [{"ipBlock": {"cidr": c}} for c in args.database_cidrs], "ports": [{"protocol": "TCP", "port": 5432}]},
                ],
            },
            opts=in_ns,
        )
        with_identity = list(args.identity)
        db = args.database
        n = len(args.tenants)
        data_inputs = _data_inputs(args.tenants)

        def settings_of(version: str) -> pulumi.Output[str]:
            return pulumi.Output.secret(
                pulumi.Output.all(
                    db.writer_host,
                    db.reader_host,
                    db.secret_arn,
                    *[t.key_digest for t in args.tenants],
                    *data_inputs,
                ).apply(
                    lambda v: render_settings(
                        region=args.region,
                        role=args.role,
                        port=args.container_port,
                        db=db,
                        writer_host=v[0],
                        reader_host=v[1],
                        secret_arn=v[2],
                        tenants=args.tenants,
                        digests=v[3 : 3 + n],
                        data=_resolved_data(args.tenants, v[3 + n :]),
                        version=version,
                        tenant_files_dir=TENANTS_DIR if args.cells else None,
                    )
                )
            )

        service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata={"namespace": ns.metadata.name, "name": SERVICE_ACCOUNT, "labels": labels},
            opts=in_ns,
        )
        # One settings file per track: the same but for the version each answers in `X-Meridian-Version`.
        settings_json = {"stable": settings_of(args.version), "canary": settings_of(args.canary_version)}
        secrets = {
            track: k8s.core.v1.Secret(
                f"{name}-settings" if track == "stable" else f"{name}-canary-settings",  # the stable name predates the split
                metadata={"namespace": ns.metadata.name, "labels": {**labels, TRACK_LABEL: track}},
                type="Opaque",
                string_data={SETTINGS_FILE: settings_json[track]},
                opts=in_ns,
            )
            for track in TRACKS
        }
        # A settings change must roll the pods: the file is read once at start.
        settings_digest = {
            track: pulumi.Output.unsecret(settings_json[track].apply(lambda s: hashlib.sha256(s.encode()).hexdigest()))
            for track in TRACKS
        }
        pod_labels = {"app.kubernetes.io/name": APP}

        rollout_after: list[pulumi.Resource] = []
        self.migration = None
        if args.role == "primary":
            migration_json = pulumi.Output.secret(
                pulumi.Output.all(db.writer_host, db.admin_password, db.secret_arn).apply(
                    # the writer alone: DDL is never forwarded, and the master DSN demands a read-write session
                    lambda v: render_migration(
                        db=db, region=args.region, writer_host=v[0].split(",")[0], admin_password=v[1], secret_arn=v[2]
                    )
                )
            )
            migration_secret = k8s.core.v1.Secret(
                f"{name}-migrate-settings",
                metadata={"namespace": ns.metadata.name, "labels": {**labels, "app.kubernetes.io/component": "migrate"}},
                type="Opaque",
                string_data={MIGRATION_FILE: migration_json},
                opts=in_ns,
            )
            migrate = k8s.batch.v1.Job(
                f"{name}-migrate",
                metadata={"namespace": ns.metadata.name, "labels": {**labels, "app.kubernetes.io/component": "migrate"}},
                spec={
                    "backoffLimit": 6,
                    "activeDeadlineSeconds": 600,
                    "template": {
                        "metadata": {"labels": {**labels, "app.kubernetes.io/component": "migrate"}},
                        "spec": {
                            **pod_spec(
                                image=args.image,
                                secret_name=migration_secret.metadata.name,
                                settings_file=MIGRATION_FILE,
                                port=args.container_port,
                                command=(*SERVICE_COMMAND, "migrate"),
                                probes=False,
                                # the service's identity: it reads the application user's secret
                                service_account=service_account.metadata.name,
                            ),
                            "restartPolicy": "Never",
                        },
                    },
                },
                opts=pulumi.ResourceOptions(parent=ns, depends_on=with_identity),
            )
            rollout_after.append(migrate)  # new code never starts against an old schema
            self.migration = migrate

        track_names = {"stable": f"{name}-api", "canary": f"{name}{CANARY_SUFFIX}"}  # the stable name predates the split
        track_images = {"stable": args.image, "canary": args.canary_image}
        track_replicas = {"stable": args.replicas, "canary": args.canary_replicas}
        self.service_names = {}
        for track in TRACKS:
            selector = {**pod_labels, TRACK_LABEL: track}
            k8s.apps.v1.Deployment(
                track_names[track],
                metadata={"namespace": ns.metadata.name, "labels": {**labels, TRACK_LABEL: track}},
                spec={
                    "replicas": track_replicas[track],
                    "selector": {"matchLabels": selector},
                    "template": {
                        "metadata": {
                            "labels": {**labels, **args.cost_labels, **selector},
                            "annotations": {"meridian.io/settings-sha256": settings_digest[track]},
                        },
                        "spec": {
                            **pod_spec(
                                image=track_images[track],
                                secret_name=secrets[track].metadata.name,
                                settings_file=SETTINGS_FILE,
                                port=args.container_port,
                                command=SERVICE_COMMAND,
                                probes=True,
                                service_account=service_account.metadata.name,
                                cells=args.cells,
                            ),
                            "topologySpreadConstraints": [
                                {
                                    "maxSkew": 1,
                                    "topologyKey": "topology.kubernetes.io/zone",
                                    "whenUnsatisfiable": "ScheduleAnyway",
                                    "labelSelector": {"matchLabels": selector},
                                }
                            ],
                        },
                    },
                },
                opts=pulumi.ResourceOptions(parent=ns, depends_on=[*with_identity, *rollout_after]),
            )
            service = k8s.core.v1.Service(
                f"{name}-{track}",
                metadata={"namespace": ns.metadata.name, "labels": {**labels, TRACK_LABEL: track}},
                spec={
                    "type": "ClusterIP",
                    "selector": selector,
                    "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": args.container_port}],
                },
                opts=in_ns,
            )
            # The controller registers the Service's ready pod IPs in the Pulumi-owned target group.
            k8s.apiextensions.CustomResource(
                f"{name}-{track}-binding",
                api_version="elbv2.k8s.aws/v1beta1",
                kind="TargetGroupBinding",
                metadata={"namespace": ns.metadata.name, "labels": {**labels, TRACK_LABEL: track}},
                spec={
                    "serviceRef": {"name": service.metadata.name, "port": SERVICE_PORT},
                    "targetGroupARN": args.target_group_arns[track],
                    "targetType": "ip",
                },
                opts=pulumi.ResourceOptions(parent=service, depends_on=list(args.binding_depends_on)),
            )
            self.service_names[track] = service.metadata.name
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata={"namespace": ns.metadata.name, "labels": labels},
            spec={"minAvailable": max(1, args.replicas - 1), "selector": {"matchLabels": {**pod_labels, TRACK_LABEL: "stable"}}},
            opts=in_ns,
        )
        self.namespace = ns.metadata.name
        self.register_outputs({"service_names": self.service_names, "namespace": self.namespace})
