"""Logs, alert topics with their subscriptions, and a scratch disk."""

from __future__ import annotations

from .base import DELETE, DR, PRIMARY, Builder, Mutations, arn, set_input
from .keys import KEY_ARN, PLATFORM_KEY


def build(b: Builder) -> None:
    b.add("aws:cloudwatch/logGroup:LogGroup", "flowlogs", {"retentionInDays": 365, "kmsKeyId": KEY_ARN})
    alerts = b.add("aws:sns/topic:Topic", "alerts", {"kmsMasterKeyId": KEY_ARN}, deps={"kmsMasterKeyId": [PLATFORM_KEY]})
    alerts_arn = arn("sns", PRIMARY, "alerts")
    b.add(
        "aws:sns/topicSubscription:TopicSubscription",
        "alerts-oncall",
        {"topic": alerts_arn, "protocol": "email", "endpoint": "oncall@example.com"},
        deps={"topic": [alerts]},
        tags=False,
    )
    b.add(
        "aws:sns/topicSubscription:TopicSubscription",
        "alerts-queue",
        {"topic": alerts_arn, "protocol": "sqs", "endpoint": arn("sqs", DR, "alerts-intake")},
        deps={"topic": [alerts]},
        tags=False,
    )
    b.add(
        "aws:ebs/volume:Volume",
        "scratch",
        {"availabilityZone": f"{PRIMARY}a", "size": 100, "encrypted": True, "kmsKeyId": KEY_ARN},
    )


MUTATIONS: Mutations = {
    "cloudwatch-log-group-encrypted": [
        ("a log group without a KMS key", set_input("flowlogs", "kmsKeyId", DELETE)),
    ],
    "cloudwatch-log-group-retention": [
        ("logs kept 7 days", set_input("flowlogs", "retentionInDays", 7)),
        ("no retention set (kept forever, unbudgeted)", set_input("flowlogs", "retentionInDays", DELETE)),
    ],
    "sns-topic-encrypted": [
        ("a topic without a KMS key", set_input("alerts", "kmsMasterKeyId", DELETE)),
        ("a topic on the AWS-managed key", set_input("alerts", "kmsMasterKeyId", "alias/aws/sns")),
    ],
    "ebs-volume-encrypted": [
        ("a volume with encryption off", set_input("scratch", "encrypted", False)),
    ],
}
