"""AWS Backup: a locked vault per region, a daily plan copying to the dr vault and a selection
covering the data; the mutations of the backup rules."""

from __future__ import annotations

import json

from .base import ACCOUNT, DELETE, DR, PRIMARY, Builder, Mutations, arn, drop, find, set_input, together, urn
from .database import SECONDARY, WRITER
from .keys import DR_KEY_ARN, KEY_ARN
from .storage import LOGS, POOL, REPLICA

_EC2_TRUST = {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}


def build(b: Builder) -> None:
    vault = b.add("aws:backup/vault:Vault", "vault", {"name": "test-vault", "kmsKeyArn": KEY_ARN})
    dr_vault = b.add(
        "aws:backup/vault:Vault",
        "dr-vault",
        {"name": "test-dr-vault", "kmsKeyArn": DR_KEY_ARN},
        region=DR,
        provider=b.providers[DR],
    )
    for v, name, region in ((vault, "test-vault", PRIMARY), (dr_vault, "test-dr-vault", DR)):
        b.add(
            "aws:backup/vaultLockConfiguration:VaultLockConfiguration",
            f"{name}-lock",
            {"backupVaultName": name, "minRetentionDays": 14, "changeableForDays": 3},
            region=region,
            provider=b.providers[region],
            deps={"backupVaultName": [v]},
            tags=False,
        )
    plan = b.add(
        "aws:backup/plan:Plan",
        "backups",
        {
            "name": "daily",
            "rules": [
                {
                    "ruleName": "daily",
                    "targetVaultName": "test-vault",
                    "schedule": "cron(0 5 * * ? *)",
                    "enableContinuousBackup": True,
                    "lifecycle": {"deleteAfter": 35},
                    "copyActions": [
                        {"destinationVaultArn": arn("backup", DR, "backup-vault:test-dr-vault"), "lifecycle": {"deleteAfter": 35}}
                    ],
                }
            ],
        },
        deps={"rules": [vault, dr_vault]},
    )
    trust = {"Effect": "Allow", "Principal": {"Service": "backup.amazonaws.com"}, "Action": "sts:AssumeRole"}
    role = b.add(
        "aws:iam/role:Role",
        "backup-role",
        {"name": "backup", "assumeRolePolicy": json.dumps({"Version": "2012-10-17", "Statement": [trust]})},
    )
    for policy in ("service-role/AWSBackupServiceRolePolicyForBackup", "AWSBackupServiceRolePolicyForS3Backup"):
        b.add(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            f"backup-{policy.rsplit('/', 1)[-1]}",
            {"role": "backup", "policyArn": f"arn:aws:iam::aws:policy/{policy}"},
            parent=role,
            deps={"role": [role]},
            tags=False,
        )
    alb_logs = urn("aws:s3/bucket:Bucket", "api-lb-logs-bucket")  # the load balancer's own log bucket (network.py)
    covered = [WRITER, SECONDARY, POOL, REPLICA, LOGS, alb_logs]
    b.add(
        "aws:backup/selection:Selection",
        "backup-everything",
        {
            "planId": "plan-1",
            "name": "everything",
            "iamRoleArn": f"arn:aws:iam::{ACCOUNT}:role/backup",
            "resources": [
                f"arn:aws:rds:{PRIMARY}:{ACCOUNT}:cluster:db-primary",
                f"arn:aws:rds:{DR}:{ACCOUNT}:cluster:db-dr",
                "arn:aws:s3:::pool-bucket-1234567",
                "arn:aws:s3:::pool-replica-bucket-1234567",
                "arn:aws:s3:::api-lb-logs-bucket-1234567",
                "arn:aws:s3:::access-logs-bucket-1234567",
            ],
        },
        deps={"planId": [plan], "resources": covered, "iamRoleArn": [role]},
        tags=False,
    )


MUTATIONS: Mutations = {
    "production-data-not-force-deletable": [
        ("the backup vault force-destroyable", set_input("vault", "forceDestroy", True)),
        ("the pool bucket force-destroyable", set_input("pool-bucket", "forceDestroy", True)),
        ("the image repository force-deletable", set_input("images", "forceDelete", True)),
    ],
    "backup-vault-encrypted": [
        ("a vault on the default key", set_input("vault", "kmsKeyArn", DELETE)),
    ],
    "backup-vault-lock-enabled": [
        ("a vault without a lock", drop("test-vault-lock")),
        ("a lock of 1 day", set_input("test-dr-vault-lock", "minRetentionDays", 1)),
    ],
    "backup-plan-coverage": [
        ("a bucket no backup selection covers", drop("backup-everything")),
        ("a selection whose role cannot back up S3", drop("backup-AWSBackupServiceRolePolicyForS3Backup")),
        (
            "a tag-based selection whose tags the data does not carry, instead of the ARN list",
            together(
                set_input("backup-everything", "resources", ["arn:aws:s3:::*"]),
                lambda rs: find(rs, "backup-everything")["propertyDependencies"].pop("resources"),
                set_input(
                    "backup-everything", "conditions", [{"stringEquals": [{"key": "aws:ResourceTag/backup", "value": "daily"}]}]
                ),
            ),
        ),
        ("recovery points kept 7 days", set_input("backups", "rules.0.lifecycle.deleteAfter", 7)),
        (
            "the selection running as a role AWS Backup cannot assume",
            set_input("backup-role", "assumeRolePolicy", json.dumps({"Version": "2012-10-17", "Statement": [_EC2_TRUST]})),
        ),
    ],
}
