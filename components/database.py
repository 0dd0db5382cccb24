"""ReplicatedDatabase: the platform database with in-region readers and a member in the dr region.

`aurora-postgresql`: an Aurora global database; the primary cluster (writer + N readers) in the
primary region, a secondary cluster in the dr region (storage-level replication, typically
< 1 s lag, managed switchover with RPO 0). Both clusters have global write forwarding on, so each
region's pods write through their own cluster whichever one is the writer (it is idle on the
writer and applies when a switchover or failover demotes it). `postgres`: an RDS Multi-AZ primary
with N in-region read replicas and a cross-region read replica in the dr region, whose region is
passive: it reads its replica and writes only after the replica is promoted (`endpoints`).

Both: subnet groups on the data subnets, security groups that admit PostgreSQL only from the
cluster nodes' security group, storage encrypted with a per-region KMS key, TLS forced by the
parameter group (`rds.force_ssl`), backups, deletion protection, Performance Insights and
enhanced monitoring.

Credentials: the master user is for the schema migration only (the workload's migration Job); its
password comes from `pulumi_random`, is secret in state and is never a stack output (RDS-managed
master passwords are not supported in an Aurora global database). The service connects as its own
user `meridian_app`, which that migration creates with DML rights on the schema and nothing else;
that user's password lives in Secrets Manager and is rotated (components.dbcredential). Identifiers that must stay unique in the account after the resource is gone
(final snapshots, the global cluster) carry a random suffix that is stable across updates and new
for a new stack: a destroyed and re-created stack does not collide with its own final snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.dbcredential import CredentialReplica, DatabaseCredential, DatabaseCredentialArgs, rds_password
from components.keys import customer_key
from components.policydocs import assume_role_policy, managed_policy_arn

PORT = 5432
MASTER_USER = "meridian_admin"
APP_USER = "meridian_app"  # what the service connects as: created by the migration, no DDL, never the master
DATABASE_NAME = "meridian"  # created with the writer; the service's DSNs name it


@dataclass(frozen=True, kw_only=True)
class DatabaseRegion:
    """One side of the pair: where its members live and who may connect."""

    region: str
    provider: aws.Provider
    vpc_id: pulumi.Input[str]
    data_subnet_ids: Sequence[pulumi.Input[str]]
    client_security_group_id: pulumi.Input[str]
    """Security group of the cluster nodes: admitted on the database port (with the rotation function's)."""
    tenant_client_security_group_ids: Sequence[pulumi.Input[str]] = ()
    """The nodes' security groups of the region's tenant cluster pairs (pair k at index k - 1): admitted
    too, as tenant namespaces' network policies admit the data tier on every cluster."""
    cidr: str
    """The VPC's range: where the rotation function may connect (the database, the Secrets Manager endpoint)."""


@dataclass(frozen=True, kw_only=True)
class ReplicatedDatabaseArgs:
    engine: Literal["aurora-postgresql", "postgres"]
    engine_version: str
    """The major version only ("16"): every member upgrades its minor version itself
    (`auto_minor_version_upgrade`), and the provider keeps a major-only value in step with the
    running minor (`engine_version_actual`; pulumi-aws `rds.Instance`: "If auto_minor_version_upgrade
    is enabled, you can provide a prefix of the version"). A pinned minor would be a difference the
    next `up` after an AWS upgrade tries to undo (a downgrade RDS refuses)."""
    instance_class: str
    readers: int
    """In-region read replicas in the primary region."""
    backup_retention_days: int
    """Automated backups (point-in-time restore): AWS Backup's continuous backup manages them with its
    own rule's retention (https://docs.aws.amazon.com/aws-backup/latest/devguide/point-in-time-recovery.html),
    so pass that rule's value here, never a second one."""
    primary: DatabaseRegion
    dr: DatabaseRegion
    allocated_storage_gb: int = 100
    """RDS postgres only (Aurora storage grows on its own)."""

    def __post_init__(self) -> None:
        if self.primary.region == self.dr.region:
            raise ValueError("the dr member must live in another region than the primary")
        if self.readers < 0:
            raise ValueError(f"readers must be >= 0, got {self.readers}")
        if not self.engine_version.isdigit():
            raise ValueError(
                f"engine_version must be the major version only (e.g. '16'), got {self.engine_version!r}: minor "
                "versions are AWS's to apply (auto_minor_version_upgrade), and a pinned one drifts"
            )


WritePath = Literal["direct", "forwarded", "passive"]


@dataclass
class RegionEndpoints:
    """What a region's pods connect to, all inside the region's own VPC: no connection crosses regions."""

    writer: pulumi.Output[str]
    reader: pulumi.Output[str]
    write_path: WritePath
    demoted_writer: pulumi.Output[str] | None = None
    """Where this region writes once a switchover or failover has demoted its Aurora cluster to a
    secondary: its own reader endpoint, which forwards writes (its cluster endpoint goes inactive).
    The write DSN names it after `writer` (libpq and asyncpg try the hosts in order), so writes
    keep working after a switchover with no stack update; None where the region has no such change."""

    @property
    def write_hosts(self) -> pulumi.Output[str]:
        """The hosts the region's write DSN names, in order, comma-separated (a multi-host DSN)."""
        if self.demoted_writer is None:
            return self.writer
        return pulumi.Output.all(self.writer, self.demoted_writer).apply(",".join)

    """How writes reach the writer (`service.settings.WRITE_PATHS`): `direct` (the writer itself),
    `forwarded` (the region's own Aurora cluster: the global writer, or a secondary forwarding writes
    to it, which answers read-only to `target_session_attrs=read-write`, so clients must not ask
    for that), `passive` (the region's own RDS replica, which takes writes only once promoted)."""


class ReplicatedDatabase(pulumi.ComponentResource):
    endpoints: dict[str, RegionEndpoints]  # "primary" / "dr"
    primary_arn: pulumi.Output[str]
    """What holds the data: the Aurora primary cluster or the RDS writer (what backups select)."""
    master_password: pulumi.Output[str]
    master_username: str
    app_username: str
    app_credential: DatabaseCredential
    database_name: str
    port: int

    def __init__(self, name: str, args: ReplicatedDatabaseArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("meridian:database:ReplicatedDatabase", name, None, opts)
        self._name = name
        self._args = args
        self.master_password = rds_password(f"{name}-master-password", self)
        self.master_username = MASTER_USER
        self.app_username = APP_USER
        # Stable across updates (no keepers), new for a new stack: see the module docstring.
        self._suffix = random.RandomId(f"{name}-id-suffix", byte_length=3, opts=pulumi.ResourceOptions(parent=self)).hex
        self.database_name = DATABASE_NAME
        self.port = PORT

        sides = {role: self._region_base(role, side) for role, side in (("primary", args.primary), ("dr", args.dr))}
        if args.engine == "aurora-postgresql":
            self.endpoints = self._aurora(sides)
        else:
            self.endpoints = self._rds(sides)
        primary = sides["primary"]
        self.app_credential = DatabaseCredential(
            f"{name}-app-credential",
            DatabaseCredentialArgs(
                username=APP_USER,
                host=self.endpoints["primary"].writer,
                port=PORT,
                dbname=DATABASE_NAME,
                primary=CredentialReplica(
                    region=args.primary.region, provider=args.primary.provider, kms_key_arn=primary["key"].arn
                ),
                dr=CredentialReplica(region=args.dr.region, provider=args.dr.provider, kms_key_arn=sides["dr"]["key"].arn),
                rotation_subnet_ids=args.primary.data_subnet_ids,
                rotation_security_group_id=primary["rotation_sg"].id,
                rotation_function_name=f"{name}-rotate-app-password",
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "endpoints": {role: {"writer": e.writer, "reader": e.reader} for role, e in self.endpoints.items()},
                "master_username": self.master_username,
                "app_username": self.app_username,
                "primary_arn": self.primary_arn,
            }
        )

    def _unique(self, base: str) -> pulumi.Output[str]:
        """`base-<6 hex>`: an identifier AWS keeps after the resource (a final snapshot) must not collide on re-create."""
        return self._suffix.apply(lambda h: f"{base}-{h}")

    # --- per region: key, network, parameters, monitoring role -------------------------------

    def _region_base(self, role: str, side: DatabaseRegion) -> dict:
        name, args = f"{self._name}-{side.region}", self._args
        opts = pulumi.ResourceOptions(parent=self, provider=side.provider)
        key = customer_key(
            f"{name}-key", f"{name} storage, snapshots and Performance Insights", parent=self, provider=side.provider
        )
        subnet_group = aws.rds.SubnetGroup(f"{name}-subnets", subnet_ids=list(side.data_subnet_ids), opts=opts)
        # The credential's rotation function (primary region only): the database and the Secrets
        # Manager endpoint inside the VPC, nothing else.
        rotation_sg = (
            aws.ec2.SecurityGroup(
                f"{name}-rotation-sg",
                description=f"{name}: the database password's rotation function",
                vpc_id=side.vpc_id,
                ingress=[],
                egress=[
                    {"description": what, "protocol": "tcp", "from_port": port, "to_port": port, "cidr_blocks": [side.cidr]}
                    for what, port in (("PostgreSQL", PORT), ("Secrets Manager endpoint", 443))
                ],
                opts=opts,
            )
            if role == "primary"
            else None
        )
        sources = {"EKS nodes": side.client_security_group_id}
        sources |= {f"EKS nodes of tenant cluster pair {k}": sg for k, sg in enumerate(side.tenant_client_security_group_ids, 1)}
        if rotation_sg is not None:
            sources["the password rotation function"] = rotation_sg.id
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            description=f"{name}: PostgreSQL from the cluster nodes only",  # a new description replaces the group
            vpc_id=side.vpc_id,
            ingress=[
                {
                    "description": f"PostgreSQL from {who}",
                    "protocol": "tcp",
                    "from_port": PORT,
                    "to_port": PORT,
                    "security_groups": [sg],
                }
                for who, sg in sources.items()
            ],
            egress=[],
            opts=opts,
        )
        params = [{"name": "rds.force_ssl", "value": "1"}, {"name": "log_min_duration_statement", "value": "1000"}]
        if args.engine == "aurora-postgresql":
            param_group = aws.rds.ClusterParameterGroup(
                f"{name}-params", family=f"aurora-postgresql{args.engine_version}", parameters=params, opts=opts
            )
        else:
            param_group = aws.rds.ParameterGroup(
                f"{name}-params", family=f"postgres{args.engine_version}", parameters=params, opts=opts
            )
        monitoring_role = aws.iam.Role(
            f"{name}-monitoring-role", assume_role_policy=assume_role_policy("monitoring.rds.amazonaws.com"), opts=opts
        )
        aws.iam.RolePolicyAttachment(
            f"{name}-monitoring",
            role=monitoring_role.name,
            policy_arn=managed_policy_arn("service-role/AmazonRDSEnhancedMonitoringRole"),
            opts=pulumi.ResourceOptions(parent=monitoring_role, provider=side.provider),
        )
        return {
            "name": name,
            "side": side,
            "key": key,
            "subnet_group": subnet_group,
            "sg": security_group,
            "params": param_group,
            "monitoring_role": monitoring_role,
            "rotation_sg": rotation_sg,
        }

    def _instance_common(self, base: dict) -> dict:
        return {
            "instance_class": self._args.instance_class,
            "db_subnet_group_name": base["subnet_group"].name,
            "publicly_accessible": False,
            "performance_insights_enabled": True,
            "performance_insights_kms_key_id": base["key"].arn,
            "performance_insights_retention_period": 7,
            "monitoring_interval": 15,
            "monitoring_role_arn": base["monitoring_role"].arn,
            "auto_minor_version_upgrade": True,
        }

    # --- Aurora global ------------------------------------------------------------------------

    def _aurora(self, sides: dict[str, dict]) -> dict[str, RegionEndpoints]:
        args, name = self._args, self._name
        primary, dr = sides["primary"], sides["dr"]
        global_cluster = aws.rds.GlobalCluster(
            f"{name}-global",
            global_cluster_identifier=self._unique(name),
            engine=args.engine,
            engine_version=args.engine_version,
            storage_encrypted=True,
            deletion_protection=True,
            # The provider reads a global cluster's version back as the running one (16.6), unlike a cluster's,
            # which keeps a major-only value in step (engine_version_actual): without this every `up` after an
            # automatic minor upgrade would modify the global cluster and the drift job would never be clean.
            # A major upgrade of a global database is a runbook step (docs/operations.md), then this config.
            opts=pulumi.ResourceOptions(
                parent=self, provider=args.primary.provider, protect=True, ignore_changes=["engineVersion"]
            ),
        )
        common_cluster = {
            "engine": args.engine,
            "engine_version": args.engine_version,
            "global_cluster_identifier": global_cluster.id,
            "storage_encrypted": True,
            "backup_retention_period": args.backup_retention_days,
            "preferred_backup_window": "03:00-04:00",
            "deletion_protection": True,
            "copy_tags_to_snapshot": True,
            "enabled_cloudwatch_logs_exports": ["postgresql"],
            "iam_database_authentication_enabled": True,
            "skip_final_snapshot": False,
        }
        writer_cluster = aws.rds.Cluster(
            f"{primary['name']}-cluster",
            **common_cluster,
            master_username=MASTER_USER,
            master_password=self.master_password,
            database_name=DATABASE_NAME,
            kms_key_id=primary["key"].arn,
            db_subnet_group_name=primary["subnet_group"].name,
            vpc_security_group_ids=[primary["sg"].id],
            db_cluster_parameter_group_name=primary["params"].name,
            final_snapshot_identifier=self._unique(f"{primary['name']}-final"),
            # Idle while this cluster writes; AWS applies it the moment a switchover or failover
            # demotes it to a secondary, so the primary region's pods keep writing through their own
            # cluster (finding 12: without it the demoted cluster refuses every write).
            enable_global_write_forwarding=True,
            opts=pulumi.ResourceOptions(parent=self, provider=args.primary.provider, protect=True),
        )
        self.primary_arn = writer_cluster.arn
        writer_members = [
            aws.rds.ClusterInstance(
                f"{primary['name']}-{i}",
                cluster_identifier=writer_cluster.id,
                engine=args.engine,
                engine_version=args.engine_version,
                promotion_tier=0 if i == 0 else 1,
                **self._instance_common(primary),
                opts=pulumi.ResourceOptions(parent=writer_cluster, provider=args.primary.provider),
            )
            for i in range(1 + args.readers)  # member 0 is the writer, the rest readers
        ]
        secondary = aws.rds.Cluster(
            f"{dr['name']}-cluster",
            **common_cluster,
            kms_key_id=dr["key"].arn,
            db_subnet_group_name=dr["subnet_group"].name,
            vpc_security_group_ids=[dr["sg"].id],
            db_cluster_parameter_group_name=dr["params"].name,
            final_snapshot_identifier=self._unique(f"{dr['name']}-final"),
            # The dr region writes through its own secondary (forwarded to the global writer inside
            # AWS): no cross-region connection from the dr region's pods, no peering needed.
            enable_global_write_forwarding=True,
            # A secondary joins the global cluster only once the primary has a writer instance;
            # after a managed switchover AWS fills replication_source_identifier on it.
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.dr.provider,
                protect=True,
                depends_on=writer_members,
                ignore_changes=["replicationSourceIdentifier"],
            ),
        )
        aws.rds.ClusterInstance(
            f"{dr['name']}-0",
            cluster_identifier=secondary.id,
            engine=args.engine,
            engine_version=args.engine_version,
            **self._instance_common(dr),
            opts=pulumi.ResourceOptions(parent=secondary, provider=args.dr.provider),
        )
        # Each region writes through its own cluster: the global writer's, or a secondary's, which
        # forwards them (global write forwarding); a switchover or failover swaps which is which.
        return {
            # the global writer's endpoint, and its reader endpoint once a switchover demotes it (the
            # global writer endpoint would follow the writer into the other region: no route there)
            "primary": RegionEndpoints(
                writer_cluster.endpoint,
                writer_cluster.reader_endpoint,
                "forwarded",
                demoted_writer=writer_cluster.reader_endpoint,
            ),
            # a secondary's cluster (writer) endpoint is inactive: forwarded writes go through its reader
            # endpoint (AWS, "Connecting to Amazon Aurora Global Database"; write forwarding)
            "dr": RegionEndpoints(secondary.reader_endpoint, secondary.reader_endpoint, "forwarded"),
        }

    # --- RDS postgres with replicas -----------------------------------------------------------

    def _rds(self, sides: dict[str, dict]) -> dict[str, RegionEndpoints]:
        args = self._args
        primary, dr = sides["primary"], sides["dr"]
        common = {
            "engine": args.engine,
            "engine_version": args.engine_version,
            "storage_type": "gp3",
            "storage_encrypted": True,
            "deletion_protection": True,
            "copy_tags_to_snapshot": True,
            "enabled_cloudwatch_logs_exports": ["postgresql"],
            "iam_database_authentication_enabled": True,
        }
        writer = aws.rds.Instance(
            f"{primary['name']}-writer",
            **common,
            **self._instance_common(primary),
            allocated_storage=args.allocated_storage_gb,
            max_allocated_storage=args.allocated_storage_gb * 4,
            multi_az=True,
            username=MASTER_USER,
            password=self.master_password,
            db_name=DATABASE_NAME,
            kms_key_id=primary["key"].arn,
            vpc_security_group_ids=[primary["sg"].id],
            parameter_group_name=primary["params"].name,
            backup_retention_period=args.backup_retention_days,
            backup_window="03:00-04:00",
            skip_final_snapshot=False,
            final_snapshot_identifier=self._unique(f"{primary['name']}-final"),
            opts=pulumi.ResourceOptions(parent=self, provider=args.primary.provider, protect=True),
        )
        self.primary_arn = writer.arn
        readers = [
            aws.rds.Instance(
                f"{primary['name']}-reader-{i}",
                **common,
                **self._instance_common(primary),
                replicate_source_db=writer.identifier,
                max_allocated_storage=args.allocated_storage_gb * 4,  # a replica must grow with its source
                kms_key_id=primary["key"].arn,
                vpc_security_group_ids=[primary["sg"].id],
                parameter_group_name=primary["params"].name,
                skip_final_snapshot=True,  # a replica's data lives on in its source
                opts=pulumi.ResourceOptions(parent=writer, provider=args.primary.provider),
            )
            for i in range(args.readers)
        ]
        dr_replica = aws.rds.Instance(
            f"{dr['name']}-replica",
            **common,
            **self._instance_common(dr),
            replicate_source_db=writer.arn,  # cross-region replicas name their source by ARN
            max_allocated_storage=args.allocated_storage_gb * 4,
            kms_key_id=dr["key"].arn,
            vpc_security_group_ids=[dr["sg"].id],
            parameter_group_name=dr["params"].name,
            backup_retention_period=args.backup_retention_days,  # ready to be promoted with backups on
            multi_az=True,
            skip_final_snapshot=False,
            final_snapshot_identifier=self._unique(f"{dr['name']}-final"),
            opts=pulumi.ResourceOptions(parent=self, provider=args.dr.provider, protect=True),
        )
        # Readers spread over the in-region replicas through the workload's own pool; expose the first.
        reader_endpoint = readers[0].address if readers else writer.address
        # The dr region's pods reach only their own replica: the primary's private address lives in
        # another VPC with no peering or Transit Gateway, behind a group admitting the primary's nodes.
        # So dr is passive: it reads its replica and writes there only once the replica is promoted.
        return {
            "primary": RegionEndpoints(writer.address, reader_endpoint, "direct"),
            "dr": RegionEndpoints(dr_replica.address, dr_replica.address, "passive"),
        }
