"""Residency rules: mutations only (they move what the other areas build)."""

from __future__ import annotations

from .base import ACCOUNT, PRIMARY, UNKNOWN, Mutations, add, find, move_region, resource, set_input, stack_tags, together

MUTATIONS: Mutations = {
    "aws-resource-region-allowed": [
        ("a database cluster moved to eu-west-1 with a per-resource region", move_region("db-primary-cluster", "eu-west-1")),
        ("the dr provider moved to ap-south-1", set_input("us-west-2", "region", "ap-south-1")),
        ("a bucket whose region is computed (unknown at preview)", set_input("pool-bucket", "region", UNKNOWN)),
    ],
    "aws-replication-destination-allowed": [
        (
            "replication to a bucket outside the stack (literal ARN, region unknowable)",
            together(
                set_input("pool-replication", "rules.0.destination.bucket", "arn:aws:s3:::somewhere-else"),
                lambda rs: find(rs, "pool-replication")["propertyDependencies"].update(rules=[]),
            ),
        ),
        ("the replica bucket moved to eu-central-1", move_region("pool-replica-bucket", "eu-central-1")),
        (
            "a backup copy to a vault ARN in eu-west-1",
            together(
                set_input(
                    "backups", "rules.0.copyActions.0.destinationVaultArn", f"arn:aws:backup:eu-west-1:{ACCOUNT}:backup-vault:x"
                ),
                lambda rs: find(rs, "backups")["propertyDependencies"].update(rules=[]),
            ),
        ),
        (
            "a second copy action outside the zone while the rule's local vault and first copy are in it",
            lambda rs: find(rs, "backups")["inputs"]["rules"][0]["copyActions"].append(
                {"destinationVaultArn": f"arn:aws:backup:eu-west-1:{ACCOUNT}:backup-vault:x"}
            ),
        ),
        (
            "a second S3 destination outside the stack beside an in-zone linked replica",
            lambda rs: find(rs, "pool-replication")["inputs"]["rules"].append(
                {"id": "out", "status": "Enabled", "destination": {"bucket": "arn:aws:s3:::elsewhere"}}
            ),
        ),
        (
            "a DynamoDB table replica in eu-west-1",
            add(
                resource(
                    "aws:dynamodb/table:Table",
                    "sessions",
                    {
                        "hashKey": "id",
                        "attributes": [{"name": "id", "type": "S"}],
                        "replicas": [{"regionName": "eu-west-1"}],
                        "tags": stack_tags(PRIMARY),
                    },
                )
            ),
        ),
        (
            "a Secrets Manager replica in eu-west-1",
            add(
                resource(
                    "aws:secretsmanager/secret:Secret",
                    "db-secret",
                    {"replicas": [{"region": "eu-west-1"}], "tags": stack_tags(PRIMARY)},
                )
            ),
        ),
        (
            "ECR replication to eu-west-1",
            add(
                resource(
                    "aws:ecr/replicationConfiguration:ReplicationConfiguration",
                    "ecr-repl",
                    {"replicationConfiguration": {"rules": [{"destinations": [{"region": "eu-west-1", "registryId": ACCOUNT}]}]}},
                )
            ),
        ),
        (
            "an RDS snapshot copy to eu-west-1",
            add(
                resource(
                    "aws:rds/snapshotCopy:SnapshotCopy",
                    "snap-copy",
                    {
                        "sourceDbSnapshotIdentifier": f"arn:aws:rds:{PRIMARY}:{ACCOUNT}:snapshot:s",
                        "targetDbSnapshotIdentifier": "s2",
                        "destinationRegion": "eu-west-1",
                    },
                )
            ),
        ),
        (
            "an Aurora replica of a cluster in eu-west-1",
            set_input("db-dr-cluster", "replicationSourceIdentifier", f"arn:aws:rds:eu-west-1:{ACCOUNT}:cluster:x"),
        ),
    ],
    "sns-subscription-endpoint-in-zone": [
        (
            "a queue subscribed in another zone",
            set_input("alerts-queue", "endpoint", f"arn:aws:sqs:eu-west-1:{ACCOUNT}:alerts-intake"),
        ),
        (
            "a cleartext HTTP subscriber",
            together(
                set_input("alerts-oncall", "protocol", "http"),
                set_input("alerts-oncall", "endpoint", "http://hooks.example.com/alerts"),
            ),
        ),
        ("an SQS endpoint given by name, not ARN", set_input("alerts-queue", "endpoint", "alerts-intake")),
    ],
}
