"""AlertSubscriptions: every alert topic of the stack delivers to the subscribers of the config.

The topics are the failover alarms' (in us-east-1, where Route 53 publishes health-check metrics,
whatever the zone) and the budget notifications' (the primary region). A subscription lives in
its topic's region, so it takes the topic's provider. Endpoints: `email` and `https` are outside
AWS (they receive alert text: health-check ids, budget names, never tenant data); `sqs` and
`lambda` are ARNs that the config parser already holds to the residency zone's regions. A Lambda
subscriber gets the permission for SNS to invoke it from this topic (created in the function's
region); an SQS subscriber's queue policy (and its key policy, for an encrypted queue) belongs to
the queue's owner (docs/operations.md). Email and https subscriptions stay "pending confirmation"
until the recipient confirms them: AWS sends the confirmation message on `up`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

ALERTS_COMPONENT = "meridian:alerts:AlertSubscriptions"
SUBSCRIPTION_TYPE = "aws:sns/topicSubscription:TopicSubscription"


@dataclass(frozen=True, kw_only=True)
class AlertTopic:
    role: str
    """Short name of what the topic carries (`failover`, `budgets`): part of the children's names."""
    topic_arn: pulumi.Input[str]
    provider: aws.Provider
    """The topic's regional provider: a subscription is created in its topic's region."""


@dataclass(frozen=True, kw_only=True)
class Subscriber:
    protocol: str
    endpoint: str
    region: str | None = None
    """The endpoint's AWS region (sqs, lambda); None outside AWS."""


@dataclass(frozen=True, kw_only=True)
class AlertSubscriptionsArgs:
    topics: Sequence[AlertTopic]
    subscribers: Sequence[Subscriber]
    provider_of: Callable[[str], aws.Provider]
    """The regional provider of a region inside the zone (where a Lambda subscriber's permission goes)."""

    def __post_init__(self) -> None:
        for s in self.subscribers:
            if s.protocol not in ("email", "https", "sqs", "lambda"):
                raise ValueError(f"unsupported subscription protocol {s.protocol!r} (email, https, sqs, lambda)")
            if s.protocol in ("sqs", "lambda") and not s.region:
                raise ValueError(f"a {s.protocol} subscriber needs its region, got {s.endpoint!r}")
        keys = [subscriber_key(s) for s in self.subscribers]
        if len(set(keys)) != len(keys):
            raise ValueError("the same subscriber is listed twice")


def subscriber_key(s: Subscriber) -> str:
    """A short, stable name part per subscriber: reordering the config renames nothing."""
    return hashlib.sha256(f"{s.protocol}:{s.endpoint}".encode()).hexdigest()[:8]


class AlertSubscriptions(pulumi.ComponentResource):
    subscription_arns: dict[str, pulumi.Output[str]]  # "<role>-<key>"

    def __init__(self, name: str, args: AlertSubscriptionsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(ALERTS_COMPONENT, name, None, opts)
        self.subscription_arns = {}
        for topic in args.topics:
            for sub in args.subscribers:
                child = f"{name}-{topic.role}-{subscriber_key(sub)}"
                depends: list[pulumi.Resource] = []
                if sub.protocol == "lambda":
                    assert sub.region is not None
                    depends.append(
                        aws.lambda_.Permission(
                            f"{child}-invoke",
                            action="lambda:InvokeFunction",
                            function=sub.endpoint,
                            principal="sns.amazonaws.com",
                            source_arn=topic.topic_arn,
                            opts=pulumi.ResourceOptions(parent=self, provider=args.provider_of(sub.region)),
                        )
                    )
                subscription = aws.sns.TopicSubscription(
                    child,
                    topic=topic.topic_arn,
                    protocol=sub.protocol,
                    endpoint=sub.endpoint,
                    opts=pulumi.ResourceOptions(parent=self, provider=topic.provider, depends_on=depends),
                )
                self.subscription_arns[f"{topic.role}-{subscriber_key(sub)}"] = subscription.arn
        self.register_outputs({"subscription_arns": self.subscription_arns})
