"""DisasterRecovery: backups that survive the primary region, object replicas in the dr region,
and FIS experiment templates to rehearse the failures the pair is built for.

- AWS Backup: a vault per region under a customer KMS key with a vault lock (minimum retention =
  `dr.backup_retention_days`; compliance mode after `vault_lock_changeable_days`), a plan in the
  primary region (continuous backup for point-in-time restore plus scheduled recovery points
  copied to the dr region's vault) and one selection: the stack's database by its ARN (the
  Aurora primary cluster or the RDS writer, not their replicas, which hold the same data) and the
  stack's buckets, by type and the stack tag (AWS Backup ANDs `resources` with `conditions`; a
  selection with neither takes every supported resource of the account).
- S3: each replicated bucket (the tenant pool, every silo bucket) replicates to its counterpart in
  the dr region; delete markers and Replication Time Control follow config. The pool replicates
  under one rule for the tenant root, its replicas under the dr pool key, through a role of its
  own that reads only that source, writes only that replica and decrypts the tenants' source keys
  by tag (`TenantKeysByTag`), so neither the role's policy nor the rule count grows with pool
  tenants: listing each tenant's keys and a rule per prefix broke IAM's 10,240 characters of
  inline policy per role at 60 tenants and reaches S3's 1,000 rules per bucket at 1,000. Every
  silo bucket replicates whole under its tenant's dr key through one role for all of them
  (`SharedReplicationRole`): the stack's silo buckets by their name prefix, the tenant keys by tag.
  A role per silo bucket made IAM roles grow with tenants (1,000 silo tenants are 1,000 roles per
  stack, against an account quota of 1,000 that the stacks of an account share).
- FIS (primary region): stop the cluster's nodes, fail over the database, cut the data subnets
  off; each stops when a failover health-check alarm (components.failover) fires.

Everything is created through the two regional providers of the pair.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.keys import customer_key
from components.naming import NAMESPACE_PREFIX
from components.policydocs import assume_role_policy, managed_policy_arn
from components.tagging import TAG_STACK

BACKUP_MANAGED_POLICIES = (
    "service-role/AWSBackupServiceRolePolicyForBackup",
    "service-role/AWSBackupServiceRolePolicyForRestores",
    "AWSBackupServiceRolePolicyForS3Backup",
    "AWSBackupServiceRolePolicyForS3Restore",
)
RTC_MINUTES = 15  # the only value S3 Replication Time Control accepts
IAM_ROLE_NAME_MAX = 64
AUTONAME_SUFFIX = 8  # Pulumi appends "-" and 7 random characters to a logical name


def replication_role_name(component: str, pair_role: str) -> str:
    """The logical name of a pair's replication role; with Pulumi's suffix it must fit IAM's 64."""
    return f"{component}-{pair_role}-repl-role"


@dataclass(frozen=True, kw_only=True)
class TenantKeysByTag:
    """The source objects' keys, named by tag rather than ARN: every KMS key of `stack` in the source
    region tagged with a tenant namespace (`tag_key` like `namespace_pattern`). Decryption is further
    bound to S3 in that region and to the source bucket's encryption context."""

    stack: str
    tag_key: str
    namespace_pattern: str


@dataclass(frozen=True, kw_only=True)
class SharedReplicationRole:
    """One replication role for every pair that names it: sources are the buckets named
    `<source_bucket_prefix>*` in the primary region, replicas those named `<replica_bucket_prefix>*`
    in the dr region, and keys the tenant keys `keys` tags in either region. The same documents
    for one silo bucket or 1,000."""

    name: str
    source_bucket_prefix: pulumi.Input[str]
    replica_bucket_prefix: pulumi.Input[str]
    keys: TenantKeysByTag


@dataclass(frozen=True, kw_only=True)
class ReplicaRoute:
    """Objects under `prefix` ("" = all) replicate encrypted under `replica_key_arn`."""

    prefix: str
    replica_key_arn: pulumi.Input[str]


@dataclass(frozen=True, kw_only=True)
class BucketPair:
    """A versioned bucket in the primary region and its versioned counterpart in the dr region."""

    role: str
    """Short name of the pair, used in child names (`pool`, `t-acme`)."""
    source_bucket_arn: pulumi.Input[str]
    replica_bucket_arn: pulumi.Input[str]
    source_keys: Sequence[pulumi.Input[str]] | TenantKeysByTag
    """The keys the source objects are encrypted with: by ARN, or the tenant keys by tag."""
    routes: Sequence[ReplicaRoute]
    depends_on: Sequence[pulumi.Resource] = ()
    """What replication waits for: both buckets' versioning (S3 refuses it before) and their owners."""
    shared_role: str | None = None
    """The `SharedReplicationRole` that replicates this pair (its buckets and keys must be ones the
    shared role names); None: a role of the pair's own, for exactly its buckets and `source_keys`."""

    def __post_init__(self) -> None:
        if not self.routes:
            raise ValueError(f"bucket pair {self.role}: give at least one route (prefix and keys)")
        prefixes = [r.prefix for r in self.routes]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"bucket pair {self.role}: duplicate prefixes {prefixes}")
        if "" in prefixes and len(prefixes) > 1:
            raise ValueError(f"bucket pair {self.role}: a catch-all route ('') overlaps every other prefix")


@dataclass(frozen=True, kw_only=True)
class DrRegion:
    region: str
    provider: aws.Provider


@dataclass(frozen=True, kw_only=True)
class DisasterRecoveryArgs:
    stack: str
    primary: DrRegion
    dr: DrRegion
    database_engine: Literal["aurora-postgresql", "postgres"]
    database_arn: pulumi.Input[str]
    """The database the backup plan selects: the Aurora primary cluster or the RDS writer (its
    replicas, in-region or cross-region, hold the same data)."""
    bucket_pairs: Sequence[BucketPair]
    backup_retention_days: int
    backup_schedule: str
    vault_lock_changeable_days: int | None
    """None: governance mode (the lock can be removed by a privileged principal)."""
    replicate_delete_markers: bool
    replication_time_control: bool
    cluster_name: pulumi.Input[str]
    """EKS cluster of the primary region, whose nodes the stop-nodes experiment stops."""
    stop_alarm_arns: Mapping[str, pulumi.Input[str]]
    """"PRIMARY" / "SECONDARY": the alarms of each region's API health check (components.failover.Failover)."""
    fis_duration_minutes: int = 5
    shared_replication_roles: Sequence[SharedReplicationRole] = ()

    def __post_init__(self) -> None:
        if self.primary.region == self.dr.region:
            raise ValueError("the dr region must differ from the primary: a copy in the same region survives no regional outage")
        if not 7 <= self.backup_retention_days <= 35:
            raise ValueError(
                f"backup_retention_days must be 7..35 (continuous backups keep at most 35), got {self.backup_retention_days}"
            )
        if set(self.stop_alarm_arns) != {"PRIMARY", "SECONDARY"}:
            raise ValueError(f"stop_alarm_arns needs PRIMARY and SECONDARY, got {sorted(self.stop_alarm_arns)}")
        roles = [p.role for p in self.bucket_pairs]
        if len(set(roles)) != len(roles):
            raise ValueError(f"bucket pair roles must be unique, got {roles}")
        shared = {r.name for r in self.shared_replication_roles}
        unknown = sorted({p.shared_role for p in self.bucket_pairs if p.shared_role is not None} - shared)
        if unknown:
            raise ValueError(f"bucket pairs name shared replication roles {unknown} that are not in shared_replication_roles")


def bucket_name_of(arn: str) -> str:
    return arn.rsplit(":", 1)[-1]


def decrypt_source_statement(source_arn: str, keys: Sequence[str] | TenantKeysByTag, source_region: str, account_id: str) -> dict:
    """Decrypt through S3 in the source region: the listed keys, or the tenant keys by tag (the same
    size for 1 tenant or 1,000) and then only for objects of the source bucket (encryption context:
    the object's ARN, or the bucket's with S3 Bucket Keys)."""
    via_s3 = {"kms:ViaService": f"s3.{source_region}.amazonaws.com"}
    if not isinstance(keys, TenantKeysByTag):
        return {
            "Sid": "DecryptSource",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": sorted(set(keys)),
            "Condition": {"StringEquals": via_s3},
        }
    return {
        "Sid": "DecryptSource",
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": f"arn:aws:kms:{source_region}:{account_id}:key/*",
        "Condition": {
            "StringEquals": {**via_s3, f"aws:ResourceTag/{TAG_STACK}": keys.stack},
            "StringLike": {
                f"aws:ResourceTag/{keys.tag_key}": keys.namespace_pattern,
                "kms:EncryptionContext:aws:s3:arn": [source_arn, f"{source_arn}/*"],
            },
        },
    }


def encrypt_replicas_statement(
    replica_keys: Sequence[str] | TenantKeysByTag, replica_region: str, account_id: str, replica_arn: str
) -> dict:
    """Encrypt through S3 in the replica region: the listed keys, or the tenant keys by tag, and then
    only for objects of the replica buckets (encryption context)."""
    via_s3 = {"kms:ViaService": f"s3.{replica_region}.amazonaws.com"}
    statement: dict = {"Sid": "EncryptReplicas", "Effect": "Allow", "Action": ["kms:Encrypt", "kms:GenerateDataKey"]}
    if not isinstance(replica_keys, TenantKeysByTag):
        return {**statement, "Resource": sorted(set(replica_keys)), "Condition": {"StringEquals": via_s3}}
    return {
        **statement,
        "Resource": f"arn:aws:kms:{replica_region}:{account_id}:key/*",
        "Condition": {
            "StringEquals": {**via_s3, f"aws:ResourceTag/{TAG_STACK}": replica_keys.stack},
            "StringLike": {
                f"aws:ResourceTag/{replica_keys.tag_key}": replica_keys.namespace_pattern,
                "kms:EncryptionContext:aws:s3:arn": [replica_arn, f"{replica_arn}/*"],
            },
        },
    }


def replication_policy(
    source_arn: str,
    replica_arn: str,
    decrypt_source: dict,
    encrypt_replicas: dict,
) -> str:
    """Read the source bucket's versions, write only into its replica, use only the keys named.
    With a shared role, `source_arn` and `replica_arn` are name patterns (`arn:aws:s3:::<prefix>*`)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadReplicationConfig",
                    "Effect": "Allow",
                    "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                    "Resource": source_arn,
                },
                {
                    "Sid": "ReadSourceVersions",
                    "Effect": "Allow",
                    "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
                    "Resource": f"{source_arn}/*",
                },
                {
                    "Sid": "WriteReplicas",
                    "Effect": "Allow",
                    "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                    "Resource": f"{replica_arn}/*",
                },
                decrypt_source,
                encrypt_replicas,
            ],
        }
    )


def fis_policy(region: str, account_id: str) -> str:
    """What the three experiments do, and nothing else: stop/start instances, fail over / reboot
    databases, swap subnet network ACLs (aws:network:disrupt-connectivity) in one region."""
    ec2 = f"arn:aws:ec2:{region}:{account_id}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "StopNodes",
                    "Effect": "Allow",
                    "Action": ["ec2:StopInstances", "ec2:StartInstances"],
                    "Resource": f"{ec2}:instance/*",
                },
                {
                    "Sid": "FailoverDatabase",
                    "Effect": "Allow",
                    "Action": ["rds:FailoverDBCluster", "rds:RebootDBInstance"],
                    "Resource": [f"arn:aws:rds:{region}:{account_id}:cluster:*", f"arn:aws:rds:{region}:{account_id}:db:*"],
                },
                {
                    "Sid": "DisruptSubnets",
                    "Effect": "Allow",
                    "Action": [
                        "ec2:CreateNetworkAcl",
                        "ec2:CreateNetworkAclEntry",
                        "ec2:DeleteNetworkAcl",
                        "ec2:ReplaceNetworkAclAssociation",
                        "ec2:CreateTags",
                    ],
                    "Resource": [f"{ec2}:network-acl/*", f"{ec2}:vpc/*", f"{ec2}:subnet/*"],
                },
                {
                    "Sid": "Describe",
                    "Effect": "Allow",
                    "Action": [
                        "ec2:DescribeInstances",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeNetworkAcls",
                        "ec2:DescribeVpcs",
                        "ec2:DescribeManagedPrefixLists",
                        "ec2:GetManagedPrefixListEntries",
                        "rds:DescribeDBClusters",
                        "rds:DescribeDBInstances",
                    ],
                    "Resource": "*",
                },  # Describe* calls take no resource-level permissions
            ],
        }
    )


@dataclass(frozen=True, kw_only=True)
class ReplicationSettings:
    time_control: bool
    """S3 Replication Time Control (and its metrics) on every rule."""
    delete_markers: bool


def replication_rule(pair: BucketPair, index: int, route: ReplicaRoute, replication: ReplicationSettings) -> dict:
    destination: dict = {
        "bucket": pair.replica_bucket_arn,
        "storage_class": "STANDARD",
        "encryption_configuration": {"replica_kms_key_id": route.replica_key_arn},
    }
    if replication.time_control:
        destination["replication_time"] = {"status": "Enabled", "time": {"minutes": RTC_MINUTES}}
        destination["metrics"] = {"status": "Enabled", "event_threshold": {"minutes": RTC_MINUTES}}
    return {
        "id": f"{pair.role}-{index}",
        "priority": index,
        "status": "Enabled",
        "filter": {"prefix": route.prefix},
        "delete_marker_replication": {"status": "Enabled" if replication.delete_markers else "Disabled"},
        "source_selection_criteria": {"sse_kms_encrypted_objects": {"status": "Enabled"}},
        "destination": destination,
    }


def replicate_bucket(
    name: str, pair: BucketPair, role_arn: pulumi.Input[str], *, replication: ReplicationSettings, opts: pulumi.ResourceOptions
) -> aws.s3.BucketReplicationConfig:
    """A pair's replication to the dr region through `role_arn`: the DisasterRecovery's own roles, or
    in a cell stack its platform's shared silo role (the one composition both use). `opts` carries
    the primary region's provider and what replication waits for (`pair.depends_on`, the role's policy)."""
    return aws.s3.BucketReplicationConfig(
        name,
        bucket=pulumi.Output.from_input(pair.source_bucket_arn).apply(bucket_name_of),
        role=role_arn,
        rules=[replication_rule(pair, i, route, replication) for i, route in enumerate(pair.routes)],
        opts=opts,
    )


DISASTER_RECOVERY_TYPE = "meridian:dr:DisasterRecovery"


class DisasterRecovery(pulumi.ComponentResource):
    vault_arns: dict[str, pulumi.Output[str]]  # region -> vault ARN
    backup_plan_id: pulumi.Output[str]
    replication_role_arns: dict[str, pulumi.Output[str]]  # pair role -> replication role ARN
    shared_role_arns: dict[str, pulumi.Output[str]]  # shared replication role name -> its ARN (a cell's silos use it)
    experiment_template_ids: dict[str, pulumi.Output[str]]  # scenario -> FIS template id

    def __init__(self, name: str, args: DisasterRecoveryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(DISASTER_RECOVERY_TYPE, name, None, opts)
        self._name, self._args = name, args
        owners = [p.role for p in args.bucket_pairs if p.shared_role is None] + [r.name for r in args.shared_replication_roles]
        for owner in owners:
            role_name = replication_role_name(name, owner)
            if len(role_name) + AUTONAME_SUFFIX > IAM_ROLE_NAME_MAX:
                raise ValueError(
                    f"replication role {role_name!r} + Pulumi's suffix exceeds IAM's {IAM_ROLE_NAME_MAX} characters: shorten the pair role"
                )
        regions = {"primary": args.primary, "dr": args.dr}
        vaults = {role: self._vault(side) for role, side in regions.items()}
        self.vault_arns = {side.region: vaults[role].arn for role, side in regions.items()}
        self.backup_plan_id = self._backup_plan(vaults)
        self._shared = {shared.name: self._shared_role(shared) for shared in args.shared_replication_roles}
        self.shared_role_arns = {name: role.arn for name, (role, _) in self._shared.items()}
        self.replication_role_arns = {pair.role: self._replicate(pair) for pair in args.bucket_pairs}
        self.experiment_template_ids = self._experiments()
        self.register_outputs(
            {
                "vault_arns": self.vault_arns,
                "backup_plan_id": self.backup_plan_id,
                "replication_role_arns": self.replication_role_arns,
                "experiment_template_ids": self.experiment_template_ids,
            }
        )

    # --- AWS Backup ---------------------------------------------------------------------------

    def _vault(self, side: DrRegion) -> aws.backup.Vault:
        name, args = f"{self._name}-{side.region}", self._args
        key = customer_key(f"{name}-vault-key", f"{name}: AWS Backup recovery points", parent=self, provider=side.provider)
        vault = aws.backup.Vault(
            f"{name}-vault",
            kms_key_arn=key.arn,
            opts=pulumi.ResourceOptions(parent=self, provider=side.provider, protect=True),  # holds every recovery point
        )
        aws.backup.VaultLockConfiguration(
            f"{name}-vault-lock",
            backup_vault_name=vault.name,
            min_retention_days=args.backup_retention_days,
            changeable_for_days=args.vault_lock_changeable_days,
            opts=pulumi.ResourceOptions(parent=vault, provider=side.provider),
        )
        return vault

    def _backup_plan(self, vaults: Mapping[str, aws.backup.Vault]) -> pulumi.Output[str]:
        args = self._args
        name = f"{self._name}-{args.primary.region}"
        opts = pulumi.ResourceOptions(parent=self, provider=args.primary.provider)
        lifecycle = {"delete_after": args.backup_retention_days}
        plan = aws.backup.Plan(
            f"{name}-plan",
            rules=[
                {
                    "rule_name": "continuous-with-dr-copy",
                    "target_vault_name": vaults["primary"].name,
                    "schedule": args.backup_schedule,
                    "enable_continuous_backup": True,  # point-in-time restore for RDS / Aurora / S3 in between
                    "start_window": 60,
                    "completion_window": 180,
                    "lifecycle": lifecycle,
                    "copy_actions": [{"destination_vault_arn": vaults["dr"].arn, "lifecycle": lifecycle}],
                }
            ],
            opts=opts,
        )
        role = aws.iam.Role(
            f"{name}-backup-role",
            assume_role_policy=assume_role_policy("backup.amazonaws.com"),
            description=f"{self._name}: AWS Backup jobs and restores",
            opts=opts,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-backup-{policy.rsplit('/', 1)[-1]}",
                role=role.name,
                policy_arn=managed_policy_arn(policy),
                opts=pulumi.ResourceOptions(parent=role, provider=args.primary.provider),
            )
            for policy in BACKUP_MANAGED_POLICIES
        ]
        aws.backup.Selection(
            f"{name}-data",
            plan_id=plan.id,
            iam_role_arn=role.arn,
            # the database by ARN (a `db:*` pattern also took the RDS read replicas), every bucket of
            # the stack by the tag condition, which AWS Backup ANDs with `resources`
            resources=[args.database_arn, "arn:aws:s3:::*"],
            conditions=[{"string_equals": [{"key": f"aws:ResourceTag/{TAG_STACK}", "value": args.stack}]}],
            opts=pulumi.ResourceOptions(parent=plan, provider=args.primary.provider, depends_on=attachments),
        )
        return plan.id

    # --- S3 replication -----------------------------------------------------------------------

    def _account_id(self) -> pulumi.Output[str]:
        return aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=self._args.primary.provider)
        ).account_id

    def _role(self, logical_name: str, what: str) -> aws.iam.Role:
        return aws.iam.Role(
            logical_name,
            assume_role_policy=assume_role_policy("s3.amazonaws.com"),
            description=f"S3 replication of {what} to {self._args.dr.region}",
            opts=pulumi.ResourceOptions(parent=self, provider=self._args.primary.provider),
        )

    def _shared_role(self, shared: SharedReplicationRole) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """One role and one policy for every pair that names `shared` (see SharedReplicationRole)."""
        args = self._args
        role = self._role(replication_role_name(self._name, shared.name), f"every {shared.name} bucket")
        inputs = pulumi.Output.all(shared.source_bucket_prefix, shared.replica_bucket_prefix, self._account_id())
        policy = aws.iam.RolePolicy(
            f"{self._name}-{shared.name}-replication-access",
            role=role.id,
            policy=inputs.apply(
                lambda v: replication_policy(
                    f"arn:aws:s3:::{v[0]}*",
                    f"arn:aws:s3:::{v[1]}*",
                    decrypt_source_statement(f"arn:aws:s3:::{v[0]}*", shared.keys, args.primary.region, v[2]),
                    encrypt_replicas_statement(shared.keys, args.dr.region, v[2], f"arn:aws:s3:::{v[1]}*"),
                )
            ),
            opts=pulumi.ResourceOptions(parent=role, provider=args.primary.provider),
        )
        return role, policy

    def _own_role(self, pair: BucketPair) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """A role for exactly this pair's buckets and keys."""
        args = self._args
        role = self._role(replication_role_name(self._name, pair.role), pair.role)
        keys = pair.source_keys
        tagged = keys if isinstance(keys, TenantKeysByTag) else None
        inputs = pulumi.Output.all(
            pair.source_bucket_arn,
            pair.replica_bucket_arn,
            pulumi.Output.all(*([] if tagged else keys)),
            pulumi.Output.all(*[r.replica_key_arn for r in pair.routes]),
            self._account_id(),
        )
        policy = aws.iam.RolePolicy(
            f"{self._name}-{pair.role}-replication-access",
            role=role.id,
            policy=inputs.apply(
                lambda v: replication_policy(
                    v[0],
                    v[1],
                    decrypt_source_statement(v[0], tagged or v[2], args.primary.region, v[4]),
                    encrypt_replicas_statement(v[3], args.dr.region, v[4], v[1]),
                )
            ),
            opts=pulumi.ResourceOptions(parent=role, provider=args.primary.provider),
        )
        return role, policy

    def _replicate(self, pair: BucketPair) -> pulumi.Output[str]:
        args = self._args
        role, policy = self._shared[pair.shared_role] if pair.shared_role is not None else self._own_role(pair)
        replicate_bucket(
            f"{self._name}-{pair.role}-replication",
            pair,
            role.arn,
            replication=ReplicationSettings(
                time_control=args.replication_time_control, delete_markers=args.replicate_delete_markers
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.primary.provider,
                depends_on=[policy, *pair.depends_on],
                # a silo tenant's, moved in from a cell (`pulumi state move`), arrives a child of the stack
                aliases=[pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE)] if pair.role.startswith(NAMESPACE_PREFIX) else None,
            ),
        )
        return role.arn

    # --- FIS ----------------------------------------------------------------------------------

    def _experiments(self) -> dict[str, pulumi.Output[str]]:
        args, name = self._args, f"{self._name}-{self._args.primary.region}"
        opts = pulumi.ResourceOptions(parent=self, provider=args.primary.provider)
        account_id = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=args.primary.provider)
        ).account_id
        role = aws.iam.Role(
            f"{name}-fis-role",
            assume_role_policy=assume_role_policy("fis.amazonaws.com"),
            description=f"{self._name}: FIS experiments in {args.primary.region}",
            opts=opts,
        )
        aws.iam.RolePolicy(
            f"{name}-fis-access",
            role=role.id,
            policy=account_id.apply(lambda acct: fis_policy(args.primary.region, acct)),
            opts=pulumi.ResourceOptions(parent=role, provider=args.primary.provider),
        )
        duration = f"PT{args.fis_duration_minutes}M"
        # Stop as soon as a region fails its health checks; cutting the primary off is meant to fail
        # its checks, so only the dr side stops that one.
        both = [{"source": "aws:cloudwatch:alarm", "value": arn} for _, arn in sorted(args.stop_alarm_arns.items())]
        dr_only = [{"source": "aws:cloudwatch:alarm", "value": args.stop_alarm_arns["SECONDARY"]}]
        stack_tag = {"key": TAG_STACK, "value": args.stack}
        if args.database_engine == "aurora-postgresql":
            db_target = {
                "name": "database",
                "resource_type": "aws:rds:cluster",
                "selection_mode": "ALL",
                "resource_tags": [stack_tag],
            }
            db_action = {
                "name": "failover",
                "action_id": "aws:rds:failover-db-cluster",
                "target": {"key": "Clusters", "value": "database"},
            }
        else:
            db_target = {
                "name": "database",
                "resource_type": "aws:rds:db",
                "selection_mode": "ALL",
                "resource_tags": [stack_tag],
                "filters": [{"path": "MultiAZ", "values": ["true"]}],
            }
            db_action = {
                "name": "failover",
                "action_id": "aws:rds:reboot-db-instances",
                "parameters": [{"key": "forceFailover", "value": "true"}],
                "target": {"key": "DBInstances", "value": "database"},
            }
        scenarios = {
            "stop-nodes": dict(
                description=f"Stop a third of the EKS nodes in {args.primary.region} for {args.fis_duration_minutes} min",
                targets=[
                    {
                        "name": "nodes",
                        "resource_type": "aws:ec2:instance",
                        "selection_mode": "PERCENT(34)",
                        "resource_tags": [{"key": "eks:cluster-name", "value": args.cluster_name}],
                        "filters": [{"path": "State.Name", "values": ["running"]}],
                    }
                ],
                actions=[
                    {
                        "name": "stop-nodes",
                        "action_id": "aws:ec2:stop-instances",
                        "parameters": [{"key": "startInstancesAfterDuration", "value": duration}],
                        "target": {"key": "Instances", "value": "nodes"},
                    }
                ],
                stop_conditions=both,
            ),
            "database-failover": dict(
                description=f"Fail the platform database over to a standby in {args.primary.region}",
                targets=[db_target],
                actions=[db_action],
                stop_conditions=both,
            ),
            "disrupt-network": dict(
                description=f"Cut the data subnets in {args.primary.region} off for {args.fis_duration_minutes} min (region failover)",
                targets=[
                    {
                        "name": "data-subnets",
                        "resource_type": "aws:ec2:subnet",
                        "selection_mode": "ALL",
                        "resource_tags": [stack_tag, {"key": "meridian:tier", "value": "data"}],
                    }
                ],
                actions=[
                    {
                        "name": "disrupt",
                        "action_id": "aws:network:disrupt-connectivity",
                        "parameters": [{"key": "duration", "value": duration}, {"key": "scope", "value": "all"}],
                        "target": {"key": "Subnets", "value": "data-subnets"},
                    }
                ],
                stop_conditions=dr_only,
            ),
        }
        return {
            scenario: aws.fis.ExperimentTemplate(
                f"{name}-fis-{scenario}",
                role_arn=role.arn,
                tags={"Name": f"{self._name} {scenario}"},
                **spec,
                opts=opts,
            ).id
            for scenario, spec in scenarios.items()
        }
