"""What the pack covers: unreviewed types, legacy and renamed types, and every copy path judged by
its destination. Mutations only (they add to or reshape what the other areas build); each miss of
issue 23 in these areas is one case here, named after it.
"""

from __future__ import annotations

import json

from .base import ACCOUNT, DR, PRIMARY, Mutation, Mutations, Resources, add, arn, drop, find, resource, set_input, urn
from .keys import DR_KEY_ARN, KEY_ARN
from .storage import POOL, REPLICA

FOREIGN = "999999999999"
OUT = "eu-west-1"  # outside the test stack's zone
BUCKET_V2 = "aws:s3/bucketV2:BucketV2"
POOL_V2 = urn(BUCKET_V2, "pool-bucket")
NATIVE_PROVIDER = "pulumi:providers:aws-native"


def pool_as_bucket_v2(*, destinations: list[dict] | None = None) -> Mutation:
    """The pool bucket as a legacy BucketV2 with its encryption, versioning and replication inline
    (pulumi-aws 7's BucketV2 shapes), the separate resources that configured them dropped."""

    def mutate(resources: Resources) -> None:
        drop("pool-sse", "pool-versioning", "pool-replication")(resources)
        text = json.dumps(resources).replace(POOL, POOL_V2)
        resources[:] = json.loads(text)
        bucket = find(resources, "pool-bucket")
        bucket["type"] = BUCKET_V2
        bucket["inputs"].update(
            {
                "serverSideEncryptionConfigurations": [
                    {
                        "rules": [
                            {
                                "applyServerSideEncryptionByDefaults": [{"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN}],
                                "bucketKeyEnabled": True,
                            }
                        ]
                    }
                ],
                "versionings": [{"enabled": True}],
                "replicationConfigurations": [
                    {
                        "role": f"arn:aws:iam::{ACCOUNT}:role/replication",
                        "rules": [
                            {
                                "id": "all",
                                "status": "Enabled",
                                "destinations": destinations
                                or [
                                    {
                                        "bucket": "arn:aws:s3:::pool-replica-bucket-1234567",
                                        "storageClass": "STANDARD",
                                        "replicaKmsKeyId": DR_KEY_ARN,
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        )
        bucket["propertyDependencies"] = {
            "serverSideEncryptionConfigurations": [],
            "replicationConfigurations": [REPLICA],
        }
        bucket["dependencies"] = [REPLICA]

    return mutate


def native(region: str, *resources_: tuple[str, str, dict]) -> Mutation:
    """An aws-native provider in `region` and resources created through it."""
    provider = urn(NATIVE_PROVIDER, f"native-{region}")

    def mutate(resources: Resources) -> None:
        resources.append(
            {
                "urn": provider,
                "type": NATIVE_PROVIDER,
                "name": f"native-{region}",
                "parent": None,
                "provider": "",
                "inputs": {"region": region},
                "dependencies": [],
                "propertyDependencies": {},
            }
        )
        for type_, name, inputs in resources_:
            resources.append({**resource(type_, name, inputs), "provider": provider})

    return mutate


def _target(name: str, target_arn: str) -> Mutation:
    return add(
        resource(
            "aws:cloudwatch/eventTarget:EventTarget",
            name,
            {"rule": "tenant-events", "arn": target_arn, "eventBusName": "default"},
        )
    )


MUTATIONS: Mutations = {
    "pack-resource-type-reviewed": [
        (
            "a SageMaker notebook instance: a type no rule judges and nobody reviewed",
            add(
                resource(
                    "aws:sagemaker/notebookInstance:NotebookInstance",
                    "notebook",
                    {"instanceType": "ml.t3.medium", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/notebook"},
                )
            ),
        ),
        (
            "an aws-native S3 bucket through an in-zone aws-native provider",
            native(PRIMARY, ("aws-native:s3:Bucket", "native-bucket", {})),
        ),
        (
            "a component of another package (awsx) is not one of this program's",
            add({**resource("awsx:ec2:Vpc", "awsx-vpc", {}), "provider": None}),
        ),
    ],
    "aws-data-path-destination-in-zone": [
        ("an EventBridge target on an event bus in eu-west-1", _target("events-out", arn("events", OUT, "event-bus/default"))),
        (
            "an EventBridge target on a queue of a foreign account in the zone",
            _target("events-foreign", f"arn:aws:sqs:{PRIMARY}:{FOREIGN}:intake"),
        ),
        (
            "a log subscription filter streaming to Kinesis in eu-west-1",
            add(
                resource(
                    "aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter",
                    "logs-out",
                    {
                        "logGroup": "flowlogs",
                        "filterPattern": "",
                        "destinationArn": arn("kinesis", OUT, "stream/archive"),
                    },
                )
            ),
        ),
        (
            "a CloudWatch Logs destination targeting a stream in eu-west-1",
            add(
                resource(
                    "aws:cloudwatch/logDestination:LogDestination",
                    "log-destination-out",
                    {"name": "out", "roleArn": f"arn:aws:iam::{ACCOUNT}:role/cwl", "targetArn": arn("kinesis", OUT, "stream/x")},
                )
            ),
        ),
        (
            "the VPC flow log delivered to a log group in eu-west-1",
            set_input("vpc-flow-log", "logDestination", arn("logs", OUT, "log-group:flowlogs")),
        ),
        (
            "a Firehose stream delivering to an HTTP endpoint outside AWS",
            add(
                resource(
                    "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
                    "firehose-http",
                    {
                        "destination": "http_endpoint",
                        "httpEndpointConfiguration": {"url": "https://collector.example.com", "roleArn": "r"},
                    },
                )
            ),
        ),
        (
            "a Firehose stream delivering to a bucket the stack does not manage",
            add(
                resource(
                    "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
                    "firehose-s3",
                    {
                        "destination": "extended_s3",
                        "extendedS3Configuration": {"bucketArn": "arn:aws:s3:::someone-elses-bucket", "roleArn": "r"},
                    },
                )
            ),
        ),
        (
            "a legacy DynamoDB global table with a replica in eu-west-1",
            add(
                resource(
                    "aws:dynamodb/globalTable:GlobalTable",
                    "sessions-global",
                    {"name": "sessions", "replicas": [{"regionName": PRIMARY}, {"regionName": OUT}]},
                )
            ),
        ),
        (
            "a DLM policy copying snapshots to eu-west-1",
            add(
                resource(
                    "aws:dlm/lifecyclePolicy:LifecyclePolicy",
                    "snapshots",
                    {
                        "description": "daily",
                        "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/dlm",
                        "state": "ENABLED",
                        "policyDetails": {
                            "resourceTypes": ["VOLUME"],
                            "targetTags": {"backup": "true"},
                            "schedules": [
                                {
                                    "name": "daily",
                                    "createRule": {"interval": 24},
                                    "retainRule": {"count": 7},
                                    "crossRegionCopyRules": [{"target": OUT, "encrypted": True}],
                                }
                            ],
                        },
                    },
                )
            ),
        ),
        (
            "CloudFront in front of the pool bucket (edges serve it from every region)",
            add(
                resource(
                    "aws:cloudfront/distribution:Distribution",
                    "cdn",
                    {
                        "enabled": True,
                        "origins": [{"originId": "pool", "domainName": "pool-bucket-1234567.s3.us-east-1.amazonaws.com"}],
                        "defaultCacheBehavior": {"targetOriginId": "pool", "viewerProtocolPolicy": "https-only"},
                    },
                    deps={"origins": [POOL]},
                )
            ),
        ),
        (
            "a backup copy to a vault of a foreign account in the zone",
            lambda rs: find(rs, "backups")["inputs"]["rules"][0]["copyActions"].append(
                {"destinationVaultArn": f"arn:aws:backup:{DR}:{FOREIGN}:backup-vault:x"}
            ),
        ),
        (
            "S3 replication to a bucket of a foreign account, replicas owned by it (`account`, review R09)",
            lambda rs: find(rs, "pool-replication")["inputs"]["rules"][0]["destination"].update(
                account=FOREIGN, accessControlTranslation={"owner": "Destination"}
            ),
        ),
        (
            "legacy BucketV2 replication to a foreign account",
            pool_as_bucket_v2(destinations=[{"bucket": "arn:aws:s3:::pool-replica-bucket-1234567", "accountId": FOREIGN}]),
        ),
        (
            "an SNS subscription delivering to a queue of a foreign account",
            set_input("alerts-queue", "endpoint", f"arn:aws:sqs:{PRIMARY}:{FOREIGN}:alerts"),
        ),
    ],
}

# Cases for rules other areas own (merged into their lists by stack.py): each a miss of issue 23.
EXTRA: Mutations = {
    "aws-replication-destination-allowed": [
        (
            "legacy BucketV2 inline replication to a bucket outside the stack",
            pool_as_bucket_v2(destinations=[{"bucket": "arn:aws:s3:::attacker-bucket"}]),
        ),
        (
            "replication to `<dr-bucket>-archive` with the link to the dr bucket kept",
            set_input("pool-replication", "rules.0.destination.bucket", "arn:aws:s3:::pool-replica-bucket-1234567-archive"),
        ),
        (
            "a DynamoDB table replica in eu-west-1 with its table in the zone (TableReplica)",
            add(
                resource(
                    "aws:dynamodb/tableReplica:TableReplica",
                    "sessions-replica",
                    {"globalTableArn": arn("dynamodb", PRIMARY, "table/sessions"), "region": OUT},
                )
            ),
        ),
    ],
    "aws-resource-region-allowed": [
        (
            "an aws-native provider in eu-west-1 and a bucket through it",
            native(OUT, ("aws-native:s3:Bucket", "native-bucket", {})),
        ),
    ],
}
