"""RDS: an Aurora global database with a secondary (and an instance) in the dr region."""

from __future__ import annotations

from .base import ACCOUNT, DELETE, DR, PRIMARY, Builder, Mutations, add, drop, resource, set_input, stack_tags, urn
from .keys import DR_KEY, DR_KEY_ARN, KEY_ARN, PLATFORM_KEY

CLUSTER = "aws:rds/cluster:Cluster"
WRITER, SECONDARY = urn(CLUSTER, "db-primary-cluster"), urn(CLUSTER, "db-dr-cluster")


def build(b: Builder) -> None:
    tls = {"family": "aurora-postgresql16", "parameters": [{"name": "rds.force_ssl", "value": "1"}]}
    params = b.add("aws:rds/clusterParameterGroup:ClusterParameterGroup", "db-params", tls)
    dr_params = b.add(
        "aws:rds/clusterParameterGroup:ClusterParameterGroup", "db-dr-params", tls, region=DR, provider=b.providers[DR]
    )
    glob = b.add(
        "aws:rds/globalCluster:GlobalCluster",
        "db-global",
        {
            "globalClusterIdentifier": "test-db",
            "engine": "aurora-postgresql",
            "engineVersion": "16.4",
            "storageEncrypted": True,
            "deletionProtection": True,
        },
    )
    common = {
        "engine": "aurora-postgresql",
        "engineVersion": "16.4",
        "storageEncrypted": True,
        "deletionProtection": True,
        "backupRetentionPeriod": 14,
        "globalClusterIdentifier": "test-db",
        "skipFinalSnapshot": False,
        "enabledCloudwatchLogsExports": ["postgresql"],
        "iamDatabaseAuthenticationEnabled": True,
    }
    writer = b.add(
        "aws:rds/cluster:Cluster",
        "db-primary-cluster",
        {
            **common,
            "kmsKeyId": KEY_ARN,
            "dbClusterParameterGroupName": "db-params-1234567",
            "masterUsername": "admin",
            "masterPassword": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "s3cret"},
        },
        deps={"globalClusterIdentifier": [glob], "kmsKeyId": [PLATFORM_KEY], "dbClusterParameterGroupName": [params]},
    )
    b.add(
        "aws:rds/clusterInstance:ClusterInstance",
        "db-primary-0",
        {
            "clusterIdentifier": "db-primary-cluster-1234567",
            "instanceClass": "db.r6g.large",
            "engine": "aurora-postgresql",
            "publiclyAccessible": False,
        },
        parent=writer,
        deps={"clusterIdentifier": [writer]},
        tags=stack_tags(PRIMARY),
    )
    secondary = b.add(
        "aws:rds/cluster:Cluster",
        "db-dr-cluster",
        {**common, "kmsKeyId": DR_KEY_ARN, "dbClusterParameterGroupName": "db-dr-params-1234567"},
        region=DR,
        provider=b.providers[DR],
        deps={"globalClusterIdentifier": [glob], "kmsKeyId": [DR_KEY], "dbClusterParameterGroupName": [dr_params]},
    )
    b.add(
        "aws:rds/clusterInstance:ClusterInstance",
        "db-dr-0",
        {"clusterIdentifier": "db-dr-cluster-1234567", "instanceClass": "db.r6g.large", "engine": "aurora-postgresql"},
        region=DR,
        provider=b.providers[DR],
        parent=secondary,
        deps={"clusterIdentifier": [secondary]},
    )


MUTATIONS: Mutations = {
    "rds-storage-encrypted": [
        ("the primary cluster with storage encryption off", set_input("db-primary-cluster", "storageEncrypted", False)),
        ("the dr cluster without a KMS key", set_input("db-dr-cluster", "kmsKeyId", DELETE)),
        ("the global cluster relying on the (unencrypted) default", set_input("db-global", "storageEncrypted", DELETE)),
        ("the primary cluster on the AWS-managed key", set_input("db-primary-cluster", "kmsKeyId", "alias/aws/rds")),
        ("a key setting that names no key", set_input("db-primary-cluster", "kmsKeyId", "x")),
        (
            "the dr cluster on a key in another region",
            set_input("db-dr-cluster", "kmsKeyId", f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/1111-platform"),
        ),
        ("Performance Insights without a customer key", set_input("db-primary-cluster", "performanceInsightsEnabled", True)),
    ],
    "rds-parameter-group-tls-required": [
        ("rds.force_ssl set to 0", set_input("db-params", "parameters.0.value", "0")),
        ("rds.force_ssl not set (default off)", set_input("db-params", "parameters", [])),
        (
            "the primary cluster on the default group of aurora-postgresql16",
            set_input("db-primary-cluster", "dbClusterParameterGroupName", "default.aurora-postgresql16"),
        ),
    ],
    "rds-deletion-protection-enabled": [
        ("the primary cluster without deletion protection", set_input("db-primary-cluster", "deletionProtection", DELETE)),
    ],
    "rds-backup-retention-sufficient": [
        ("backups kept 3 days", set_input("db-primary-cluster", "backupRetentionPeriod", 3)),
        ("backup retention left at the default (1 day)", set_input("db-dr-cluster", "backupRetentionPeriod", DELETE)),
    ],
    "rds-database-dr-member": [
        ("the dr cluster removed from the global database", drop("db-dr-cluster", "db-dr-0")),
        ("a dr cluster with no instance", drop("db-dr-0")),
        (
            "a standalone RDS instance with no cross-region replica",
            add(
                {
                    "urn": urn("aws:rds/instance:Instance", "reports-db"),
                    "type": "aws:rds/instance:Instance",
                    "name": "reports-db",
                    "parent": None,
                    "provider": urn("pulumi:providers:aws", PRIMARY),
                    "dependencies": [],
                    "propertyDependencies": {},
                    "inputs": {
                        "engine": "postgres",
                        "instanceClass": "db.t4g.medium",
                        "allocatedStorage": 50,
                        "storageEncrypted": True,
                        "kmsKeyId": f"arn:aws:kms:{PRIMARY}:{ACCOUNT}:key/1111-platform",
                        "deletionProtection": True,
                        "backupRetentionPeriod": 14,
                        "tags": stack_tags(PRIMARY),
                    },
                }
            ),
        ),
    ],
    "rds-database-operable": [
        ("the primary cluster without its log export", set_input("db-primary-cluster", "enabledCloudwatchLogsExports", [])),
        ("IAM database authentication off", set_input("db-dr-cluster", "iamDatabaseAuthenticationEnabled", False)),
        ("an outdated CA on an instance", set_input("db-primary-0", "caCertIdentifier", "rds-ca-2019")),
        (
            "a single-AZ RDS writer",
            add(
                resource(
                    "aws:rds/instance:Instance",
                    "single-az",
                    {
                        "engine": "postgres",
                        "instanceClass": "db.t4g.medium",
                        "enabledCloudwatchLogsExports": ["postgresql"],
                        "iamDatabaseAuthenticationEnabled": True,
                        "tags": stack_tags(PRIMARY),
                    },
                )
            ),
        ),
    ],
}
