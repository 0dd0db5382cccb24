"""Whether a budget notification can pass along the path to a function that enforces the cap:
AWS Budgets publishes to an SNS topic (if the topic's policy lets it), SNS delivers to each `lambda`
subscription (if its filter policy lets the message through), and Lambda runs the function (if a
permission lets SNS invoke it from that topic and its concurrency is not reserved at 0). Judged
resource by resource, by value; what only apply decides is named as unknown."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from typing import Any

from access import simulator
from ruleutil import UNKNOWN, Stack, is_map, peek

TOPIC = "aws:sns/topic:Topic"
TOPIC_SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
FUNCTION = "aws:lambda/function:Function"


PERMISSION = "aws:lambda/permission:Permission"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
BUDGETS_SERVICE = "budgets.amazonaws.com"
INVOKE_ACTIONS = ("lambda:InvokeFunction", "lambda:*", "*")


@dataclass
class EnforcerPath:
    """A topic of the plan, a subscription (protocol `lambda`) of it and the function it runs: what
    would stop a budget notification on the way (`blocked`), and the properties that decide it which
    are only known after apply (`unknown`)."""

    topic: Any
    subscription: Any
    function: Any
    blocked: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @property
    def arn(self) -> Any:
        """The topic's ARN as the subscription's `topic` gives it (`UNKNOWN` before the topic exists)."""
        return peek(self.subscription.props, "topic")


def enforcer_paths(stack: Stack) -> list[EnforcerPath]:
    """Every SNS subscription (protocol `lambda`) of a topic of the plan to a function of the plan, each
    judged on what SNS and Lambda read when they deliver a message: the subscription's filter policy,
    the function's reserved concurrency, and a Lambda permission for SNS from that topic."""
    out = []
    for sub in stack.of(TOPIC_SUBSCRIPTION):
        functions, topics = stack.linked(sub, "endpoint", FUNCTION), stack.linked(sub, "topic", TOPIC)
        if str(peek(sub.props, "protocol")) != "lambda" or not functions or not topics:
            continue
        path = EnforcerPath(topics[0], sub, functions[0])
        endpoint = peek(sub.props, "endpoint")
        if isinstance(endpoint, str) and endpoint.count(":") > 6:  # arn:aws:lambda:<region>:<acct>:function:<name>:<qualifier>
            path.blocked.append(
                f"subscription {sub.name} invokes a version or alias of the function ({endpoint}): the enforcer's permission is "
                "for the unqualified function, and a qualified one is another resource with its own policy (security review 21, C01)"
            )
        for prop in ("filterPolicy", "filterPolicyScope"):
            value = peek(sub.props, prop)
            if value is UNKNOWN:
                path.unknown.append(f"{sub.name}.{prop}")
            elif value not in (None, ""):
                path.blocked.append(
                    f"subscription {sub.name} has a `{prop}`: SNS delivers only the messages a filter policy matches, and a "
                    "budget notification carries no attributes to match (the enforcer's subscription must take every message)"
                )
        reserved = peek(path.function.props, "reservedConcurrentExecutions")
        if reserved is UNKNOWN:
            path.unknown.append(f"{path.function.name}.reservedConcurrentExecutions")
        elif reserved is not None and float(reserved) == 0:
            path.blocked.append(
                f"function {path.function.name} has `reservedConcurrentExecutions: 0`: Lambda throttles every invocation"
            )
        _judge_permission(stack, path)
        out.append(path)
    return out


def _names_function(value: str, path: EnforcerPath) -> bool:
    """A permission's `function` names the subscription's function: by its name, its ARN (the
    subscription's endpoint) or a partial ARN, never a qualified one (a version or alias is another resource)."""
    name, endpoint = peek(path.function.props, "name"), peek(path.subscription.props, "endpoint")
    if not isinstance(name, str):  # auto-named: the ARN the endpoint carries names it
        name = str(endpoint).rsplit(":function:", 1)[-1] if isinstance(endpoint, str) and ":function:" in endpoint else None
    return value == endpoint or (name is not None and (value == name or value.endswith(f":function:{name}")))


def _permission_fails(stack: Stack, perm: Any, path: EnforcerPath, prop: str, value: Any) -> bool:
    """Whether the known `value` of the permission's `prop` keeps it from letting SNS invoke the path's function."""
    if prop == "function":
        return not _names_function(str(value), path)
    if prop == "principal":
        return value != "sns.amazonaws.com"
    if prop == "action":
        return value not in INVOKE_ACTIONS
    if prop == "sourceArn":  # the topic's ARN by value; before the topic exists, the permission built from that topic alone
        return value != path.arn if path.arn is not UNKNOWN else stack.linked(perm, "sourceArn") != [path.topic]
    if prop == "qualifier":  # a version's or alias's permission: the subscription invokes the unqualified function
        return value not in (None, "")
    if prop in ("principalOrgId", "eventSourceToken"):  # conditions SNS's invocation never meets (review 21, C02/C03)
        return value not in (None, "")
    return value is not None and not (isinstance(path.arn, str) and path.arn.split(":")[4:5] == [value])  # sourceAccount


def _judge_permission(stack: Stack, path: EnforcerPath) -> None:
    """A Lambda permission (a statement of the function's resource policy) must let `sns.amazonaws.com`
    invoke it from this topic: `sourceArn` the topic's ARN by value, the unqualified function by name or ARN."""
    undecided = []
    for perm in stack.of(PERMISSION):
        values = {
            p: peek(perm.props, p)
            for p in (
                "function",
                "principal",
                "action",
                "sourceArn",
                "qualifier",
                "sourceAccount",
                "principalOrgId",
                "eventSourceToken",
            )
        }
        unknown = [p for p, v in values.items() if v is UNKNOWN and not (p == "sourceArn" and path.arn is UNKNOWN)]
        if any(_permission_fails(stack, perm, path, p, v) for p, v in values.items() if p not in unknown):
            continue
        if not unknown:
            return
        undecided += [f"{perm.name}.{p}" for p in unknown]
    if undecided:
        path.unknown += undecided
    else:
        path.blocked.append(
            f"no aws:lambda/permission lets sns.amazonaws.com invoke function {path.function.name} (lambda:InvokeFunction, "
            f"unqualified) with `sourceArn` {path.arn if path.arn is not UNKNOWN else 'its topic'}: Lambda refuses every delivery"
        )


def topic_policies(stack: Stack, path: EnforcerPath) -> list[tuple[str, Any]]:
    """The policy documents that govern the topic: its own `policy` and each aws:sns/topicPolicy of
    it (by ARN value, or built from the topic before its ARN is known); AWS keeps the last one set, so
    each must admit Budgets."""
    out = (
        [(f"{path.topic.name}.policy", peek(path.topic.props, "policy"))] if peek(path.topic.props, "policy") is not None else []
    )
    for tp in stack.of(TOPIC_POLICY):
        arn = peek(tp.props, "arn")
        if (arn == path.arn and arn is not UNKNOWN) or (path.arn is UNKNOWN and stack.linked(tp, "arn") == [path.topic]):
            out.append((f"{tp.name}.policy", peek(tp.props, "policy")))
    return out


def _undecided_denies(doc: dict, context: dict[str, str]) -> tuple[dict, list[str]]:
    """The document with each Deny's conditions on keys Budgets' request does not carry dropped (such
    a Deny is taken as applying: the pack cannot say it does not), and those keys."""
    given, dropped, out = {k.lower() for k in context}, [], []
    raw = doc.get("Statement", [])
    for st in raw if isinstance(raw, list) else [raw]:
        cond = st.get("Condition") if isinstance(st, dict) else None
        if isinstance(cond, dict) and str(st.get("Effect", "")).lower() == "deny":
            kept = {}
            for op, body in cond.items():
                body = body if isinstance(body, dict) else {}
                dropped += [str(k) for k in body if str(k).lower() not in given]
                if any(str(k).lower() in given for k in body):
                    kept[op] = {k: v for k, v in body.items() if str(k).lower() in given}
            st = {**{k: v for k, v in st.items() if k != "Condition"}, **({"Condition": kept} if kept else {})}
        out.append(st)
    return {**doc, "Statement": out}, dropped


@functools.lru_cache(maxsize=4096)
def publish_refusal(text: str, topic_arn: str, budget_arn: str) -> str | None:
    """Why this topic policy (JSON text) would not let AWS Budgets publish a notification of the
    budget `budget_arn` to the topic (None: it would), by the IAM evaluator (access.simulator)."""
    account = topic_arn.split(":")[4]
    context = {
        "aws:SourceAccount": account,  # what Budgets sends for the account's budgets
        "aws:SourceArn": budget_arn,
        "aws:PrincipalServiceName": BUDGETS_SERVICE,
        "aws:PrincipalIsAWSService": "true",
        "aws:SecureTransport": "true",  # AWS services call SNS over TLS
        "aws:ResourceAccount": account,
    }
    try:
        doc = json.loads(text)
    except ValueError:
        return "its policy is not a JSON document"
    if not is_map(doc):
        return "its policy is not a JSON document"
    widened, undecided = _undecided_denies(doc, context)
    result = simulator.resource_policy_authorization(
        BUDGETS_SERVICE, account, simulator.bind(widened, context), "SNS:Publish", topic_arn, dict(context)
    )
    if result == simulator.ResourcePolicyEvalResult.SERVICE_MATCH:
        return None
    if result == simulator.ResourcePolicyEvalResult.DENY_MATCH:
        on = f" (conditioned on {', '.join(sorted(set(undecided)))}, which Budgets' request does not decide)" if undecided else ""
        return f"a Deny statement refuses it{on}"
    return "no statement allows it"
