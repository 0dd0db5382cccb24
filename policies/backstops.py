"""The runtime backstops the program deploys are present and armed: what holds when something
bypasses the pack (a bucket made by hand, a chart applied with kubectl) holds only while these
exist with their settings.

- Each cluster (each Kubernetes provider with tenant namespaces) has a ValidatingAdmissionPolicy of
  every required name, failing closed (`failurePolicy: Fail`), and a binding of each that denies
  (`validationActions` holds `Deny`) for every tenant namespace (no `matchResources` narrower than
  "the tenant label exists").
- The stack that owns the account's guardrails (`ownsAccountGuardrails`) has the account-level S3
  public access block with all four settings on, and an external-access Access Analyzer
  (`ACCOUNT`) in each of its regions. Whichever stack declares an account public access block, it
  may not turn a setting off.
- Every internet-facing application load balancer delivers access logs (`accessLogs.enabled` true,
  `accessLogs.bucket` set): the record of who called the public edge.
"""

from __future__ import annotations

from typing import Any

from ruleutil import (
    CRITICAL,
    InPlatform,
    Stack,
    UnknownValueError,
    Unverifiable,
    as_list,
    dig,
    peek,
    platform_stack_setting,
    resource_region,
    stack_policy,
    string_list,
)

POLICY = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
ACCOUNT_PAB = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
ANALYZER = "aws:accessanalyzer/analyzer:Analyzer"
NAMESPACE = "kubernetes:core/v1:Namespace"
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PAB_SETTINGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _provider(resource: Any) -> str:
    return resource.provider.urn if resource.provider is not None else ""


def _selects_every_tenant(selector: Any, label: str) -> bool:
    """A namespace selector that admits every namespace carrying the tenant label (or every namespace)."""
    if selector is None or selector == {}:
        return True
    labels, exprs = dig(selector, "matchLabels", default={}) or {}, as_list(dig(selector, "matchExpressions"))
    return not labels and all(dig(e, "key") == label and dig(e, "operator") == "Exists" for e in exprs)


def check_backstops(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    label = config.get("tenantLabel", "meridian.io/tenant")
    required = config.get("requiredAdmissionPolicies", [])
    out: list[tuple[str | None, str]] = []
    try:
        clusters = sorted(
            {_provider(ns) for ns in stack.of(NAMESPACE) if label in (dig(ns.props, "metadata", "labels", default={}) or {})}
        )
        policies = {(_provider(p), dig(p.props, "metadata", "name")): p for p in stack.of(POLICY)}
        bindings: dict[tuple[str, str], list[Any]] = {}
        for b in stack.of(BINDING):
            bindings.setdefault((_provider(b), dig(b.props, "spec", "policyName")), []).append(b)
        for cluster in clusters:
            where = cluster.rsplit("::", 1)[-1] or "the default cluster"
            for name in required:
                policy = policies.get((cluster, name))
                if policy is None:  # a cell's cluster is its platform's, which installs them
                    finding = (
                        f"Cluster {where} must have the ValidatingAdmissionPolicy {name} (tenant namespaces' runtime backstop)"
                    )
                    out.append((None, InPlatform.note(config, finding)))
                    continue
                if dig(policy.props, "spec", "failurePolicy", default="Fail") != "Fail":
                    out.append((policy.urn, f"ValidatingAdmissionPolicy {name} must fail closed (`failurePolicy: Fail`)"))
                armed = [
                    b
                    for b in bindings.get((cluster, name), [])
                    if "Deny" in as_list(dig(b.props, "spec", "validationActions"))
                    and _selects_every_tenant(dig(b.props, "spec", "matchResources", "namespaceSelector"), label)
                    and not dig(b.props, "spec", "matchResources", "objectSelector")
                ]
                if not armed:
                    out.append(
                        (
                            policy.urn,
                            f"ValidatingAdmissionPolicy {name} must have a binding that denies (`validationActions: [Deny]`) "
                            f"in every namespace labelled {label} (no narrower matchResources)",
                        )
                    )
        for pab in stack.of(ACCOUNT_PAB):
            off = [s for s in PAB_SETTINGS if peek(pab.props, s) is not True]
            if off:
                out.append((pab.urn, f"The account-level S3 public access block must set {', '.join(off)} to true"))
        if config.get("ownsAccountGuardrails"):
            if not stack.of(ACCOUNT_PAB):
                out.append(
                    (None, "The stack owns the account's guardrails: it must declare the account-level S3 public access block")
                )
            analyzed = {resource_region(a) for a in stack.of(ANALYZER) if peek(a.props, "type") in ("ACCOUNT", "ORGANIZATION")}
            for region in config.get("regions", []):
                if region not in analyzed:
                    out.append(
                        (
                            None,
                            f"The stack owns the account's guardrails: it must run an external-access Access Analyzer in {region}",
                        )
                    )
    except UnknownValueError as exc:
        out.append((None, Unverifiable.of(exc)))
    for lb in stack.of(*LOAD_BALANCERS):
        try:
            out += [(lb.urn, p) for p in _alb_logging_problems(stack, lb)]
        except UnknownValueError as exc:
            out.append((lb.urn, Unverifiable.of(exc, "are its access logs delivered?")))
    return out


def _alb_logging_problems(stack: Stack, lb: Any) -> list[str]:
    """Why an internet-facing ALB does not deliver access logs (ELB access logs:
    https://docs.aws.amazon.com/elasticloadbalancing/latest/application/enable-access-logging.html)."""
    if (
        dig(lb.props, "loadBalancerType", default="application") != "application"
        or dig(lb.props, "internal", default=False) is True
    ):
        return []
    if str(dig(lb.props, "accessLogs", "enabled", default=False)).lower() != "true":
        return [
            "Internet-facing load balancer must deliver access logs (`accessLogs.enabled: true` with a bucket): they are the record of who called the public edge"
        ]
    if stack.linked(lb, "accessLogs", *S3_BUCKETS):
        return []
    bucket = dig(lb.props, "accessLogs", "bucket")
    if not isinstance(bucket, str) or not bucket:
        return ["Internet-facing load balancer must name the bucket its access logs go to (`accessLogs.bucket`)"]
    return []


backstops = stack_policy(
    "runtime-backstops-enforced",
    what="Checks that every cluster with tenant namespaces has each required ValidatingAdmissionPolicy failing closed with a binding that denies in every tenant namespace, that an account-level S3 public access block never turns a setting off, and that the stack owning the account's guardrails (`ownsAccountGuardrails`) declares that block and an external-access Access Analyzer in each of its `regions`, and that every internet-facing application load balancer has access logging on (`accessLogs.enabled` with a bucket)",
    why="The pack judges only what `pulumi up` creates; the admission policies, the account public access block and Access Analyzer are what still hold against what bypasses it, and each is worthless once removed, set to Audit or narrowed to no namespace.",
    reads=[POLICY, BINDING, ACCOUNT_PAB, ANALYZER, NAMESPACE, *LOAD_BALANCERS, *S3_BUCKETS],
    check=check_backstops,
    severity=CRITICAL,
    config={
        **platform_stack_setting(),
        "requiredAdmissionPolicies": string_list(
            ["meridian-tenant-workloads", "meridian-tenant-role-bindings", "meridian-tenant-cluster-bindings"],
            "ValidatingAdmissionPolicy names every tenant cluster must have (components.admission)",
        ),
        "tenantLabel": {"type": "string", "default": "meridian.io/tenant", "description": "label of tenant namespaces"},
        "ownsAccountGuardrails": {
            "type": "boolean",
            "default": True,
            "description": "this stack declares the account's guardrails (generated: owns_account_guardrails)",
        },
        "regions": string_list(
            [],
            "the stack's regions, where it must run an Access Analyzer (generated; none when the account runs its own: "
            "guardrails.access_analyzer existing)",
        ),
    },
    remediation="Keep components.admission.TenantAdmission and components.guardrails.AccountGuardrails in the stack "
    "(compose_guardrails), with their bindings on Deny and every flag of the account public access block on.",
    limits="What the policies' CEL expressions allow is tested by evaluating them (tests/test_admission.py), not by this rule; an analyzer or block another stack of the account owns is trusted to exist there; that the access-log bucket's policy lets ELB log delivery write is AWS's to check at `up` (creating the load balancer fails otherwise).",
    tags=["backstops"],
)

POLICIES = [backstops]
