"""The runtime backstops the program deploys are present and armed: what holds when something
bypasses the pack (a bucket made by hand, a chart applied with kubectl) holds only while these
exist with their settings.

- Each cluster (each Kubernetes provider with tenant namespaces) has a ValidatingAdmissionPolicy of
  every required name, failing closed (`failurePolicy: Fail`), whose scope is the one the pack's
  rules need at runtime (`REQUIRED_SCOPE`: CREATE and UPDATE of every resource the matching rule
  judges, in every tenant namespace, no `matchConditions` but `true`, no object selector, nothing
  excluded), and a binding of each that denies (`validationActions: [Deny]`) for every tenant
  namespace (no `matchResources` narrower than "the tenant label exists"), neither taking parameters
  (`paramKind`, `paramRef`: the program renders none). A binding of a required
  policy that does not deny (only warns or audits) is a finding of its own: it reads as a backstop
  and holds nothing. Each policy holds every validation the program renders for it, and the
  variables they read, expression for expression (`requiredValidations`, generated from
  components.admission): an emptied or loosened `validations` list admits everything it matches.
- The stack that owns the account's guardrails (`ownsAccountGuardrails`) has the account-level S3
  public access block with all four settings on, and an external-access Access Analyzer
  (`ACCOUNT`) in each of its regions. Whichever stack declares an account public access block, it
  may not turn a setting off.
- Every internet-facing application load balancer delivers access logs (`accessLogs.enabled` true,
  `accessLogs.bucket` set): the record of who called the public edge.
"""

from __future__ import annotations

import json
from typing import Any

from ruleutil import (
    CRITICAL,
    UNKNOWN,
    InPlatform,
    Stack,
    UnknownValueError,
    Unverifiable,
    as_list,
    dig,
    known,
    peek,
    platform_stack_setting,
    resource_region,
    stack_policy,
    string_list,
    truthy,
)
from workloads import POD_SPEC_PATHS

POLICY = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"
ACCOUNT_PAB = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
ANALYZER = "aws:accessanalyzer/analyzer:Analyzer"
NAMESPACE = "kubernetes:core/v1:Namespace"
K8S_PROVIDER = "pulumi:providers:kubernetes"
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
S3_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PAB_SETTINGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


# kind -> (API group, resource) of the workload kinds k8s-workload-pod-security-restricted judges
_WORKLOAD_RESOURCES = {
    "Pod": ("", "pods"),
    "PodTemplate": ("", "podtemplates"),
    "ReplicationController": ("", "replicationcontrollers"),
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
    "DaemonSet": ("apps", "daemonsets"),
    "ReplicaSet": ("apps", "replicasets"),
    "Job": ("batch", "jobs"),
    "CronJob": ("batch", "cronjobs"),
}
assert set(_WORKLOAD_RESOURCES) == set(POD_SPEC_PATHS), "every workload kind the pack judges has its admission scope"
RBAC = "rbac.authorization.k8s.io"
# policy name -> (the (API group, resource)s it must admit on CREATE and UPDATE, namespaced?): the
# runtime half of the rules that judge the same objects in the plan (workloads:
# k8s-workload-pod-security-restricted; bindings: tenant-data-access's Kubernetes RBAC)
REQUIRED_SCOPE: dict[str, tuple[tuple[tuple[str, str], ...], bool]] = {
    "meridian-tenant-workloads": (tuple(_WORKLOAD_RESOURCES.values()), True),
    "meridian-tenant-role-bindings": (((RBAC, "rolebindings"),), True),
    "meridian-tenant-cluster-bindings": (((RBAC, "clusterrolebindings"),), False),
}
REQUIRED_OPERATIONS = ("CREATE", "UPDATE")


def _rule_matches(rule: Any, group: str, resource: str, operation: str, namespaced: bool) -> bool:
    """A NamedRuleWithOperations admits `operation` on every object of group/resource (v1)
    (https://kubernetes.io/docs/reference/kubernetes-api/extend-resources/validating-admission-policy-v1/)."""
    scope = dig(rule, "scope", default="*")
    return (
        bool({group, "*"} & set(as_list(dig(rule, "apiGroups"))))
        and bool({"v1", "*"} & set(as_list(dig(rule, "apiVersions"))))
        and bool({resource, "*", "*/*"} & set(as_list(dig(rule, "resources"))))
        and bool({operation, "*"} & set(as_list(dig(rule, "operations"))))
        and scope in ("*", "Namespaced" if namespaced else "Cluster")
    )


def _rule_touches(rule: Any, group: str, resource: str, operation: str) -> bool:
    """An exclude rule reaches some object of group/resource on `operation` (any scope, any names)."""
    return (
        bool({group, "*"} & set(as_list(dig(rule, "apiGroups"))))
        and bool({"v1", "*"} & set(as_list(dig(rule, "apiVersions"))))
        and any(r in (resource, "*", "*/*") for r in as_list(dig(rule, "resources")))
        and bool({operation, "*"} & set(as_list(dig(rule, "operations"))))
    )


def _scope_problems(match: Any, name: str, label: str, *, binding: bool) -> list[str]:
    """Why `match` (a policy's matchConstraints or a binding's matchResources) leaves out some
    object of policy `name`'s required scope."""
    required, namespaced = REQUIRED_SCOPE[name]
    rules = dig(match, "resourceRules")
    out = []
    if not binding or rules is not None:  # a binding without resourceRules keeps the policy's
        missed = [
            f"{op} {g or 'core'}/{r}"
            for g, r in required
            for op in REQUIRED_OPERATIONS
            if not any(
                _rule_matches(rule, g, r, op, namespaced) and not as_list(dig(rule, "resourceNames")) for rule in as_list(rules)
            )
        ]
        if missed:
            out.append(f"must admit {', '.join(missed)} (its resourceRules leave them out)")
    excluded = [
        f"{op} {g or 'core'}/{r}"
        for g, r in required
        for op in REQUIRED_OPERATIONS
        if any(_rule_touches(rule, g, r, op) for rule in as_list(dig(match, "excludeResourceRules")))
    ]
    if excluded:
        out.append(f"must not exclude {', '.join(excluded)} (`excludeResourceRules`)")
    if namespaced and not _selects_every_tenant(dig(match, "namespaceSelector"), label):
        out.append(f"must select every namespace labelled {label} (its namespaceSelector is narrower)")
    if dig(match, "objectSelector"):
        out.append("must not narrow the objects it admits by an `objectSelector`")
    return out


def _policy_scope_problems(policy: Any, name: str, label: str) -> list[str]:
    spec = dig(policy.props, "spec", default={})
    out = [
        f"ValidatingAdmissionPolicy {name} {p}"
        for p in _scope_problems(dig(spec, "matchConstraints", default={}), name, label, binding=False)
    ]
    conditions = [c for c in as_list(dig(spec, "matchConditions")) if str(dig(c, "expression", default="")).strip() != "true"]
    if conditions:
        names = ", ".join(str(dig(c, "name", default="?")) for c in conditions)
        out.append(
            f"ValidatingAdmissionPolicy {name} must not skip objects by `matchConditions` ({names}): "
            "the pack cannot prove a condition true for every tenant object, and a false one turns the policy off for it"
        )
    return out


def _cel(expression: Any) -> str:
    """A CEL expression with its layout ignored (the pack compares expressions, it does not evaluate them)."""
    return " ".join(str(expression).split())


def _content_problems(policy: Any, name: str, required: Any) -> list[str]:
    """What policy `name` no longer holds of what the program renders for it (`required`: its
    `variables` and `validations`): a validation absent or changed, or a variable one reads redefined.
    Validations beyond those only deny more."""
    if not isinstance(required, dict) or not required.get("validations"):
        return [
            f"ValidatingAdmissionPolicy {name}: the pack config gives no validations it must hold "
            "(`requiredValidations`, generated by `meridian policy --write-config`), so what it checks cannot be judged"
        ]
    spec = dig(policy.props, "spec", default={})
    have = {_cel(dig(v, "expression", default="")) for v in as_list(dig(spec, "validations"))}
    defined = {str(dig(v, "name", default="")): _cel(dig(v, "expression", default="")) for v in as_list(dig(spec, "variables"))}
    out = []
    changed = [str(v["name"]) for v in required.get("variables", []) if defined.get(str(v["name"])) != _cel(v["expression"])]
    if changed:
        out.append(
            f"ValidatingAdmissionPolicy {name} must define the variables its validations read as the program renders them: "
            f"{', '.join(changed)} {'is' if len(changed) == 1 else 'are'} absent or changed"
        )
    missing = [str(v.get("message") or v["expression"]) for v in required["validations"] if _cel(v["expression"]) not in have]
    if missing:
        out.append(
            f"ValidatingAdmissionPolicy {name} must hold every validation the program renders for it; absent or changed: "
            + "; ".join(missing)
        )
    return out


def _provider(resource: Any) -> str:
    return resource.provider.urn if resource.provider is not None else ""


def _named(entries: Any, name: Any) -> Any:
    """The entry called `name` of a kubeconfig list (`clusters`, `contexts`), or None."""
    return next((e for e in as_list(entries) if isinstance(e, dict) and e.get("name") == name), None)


def cluster_identity(provider: Any) -> tuple[str, str] | Any:
    """The API server a Kubernetes provider deploys to, by value: its kubeconfig's cluster (the
    provider's `cluster`, else its `context`'s or the current context's) as the server URL and the
    CA it trusts there. Two providers with the same pair reach the same cluster, whatever stack
    built them (a cell's provider is built from its platform's exported endpoint and CA). `UNKNOWN`
    when a value deciding it is only known after apply; None when the kubeconfig names no server
    and CA the pack can read (ambient, YAML or a file path, TLS unverified)."""
    if provider is None:
        return None
    props = known(provider.props)
    config = props.get("kubeconfig") if isinstance(props, dict) else None
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            return None
    if config is UNKNOWN or not isinstance(config, dict):
        return UNKNOWN if config is UNKNOWN else None
    context_name = props.get("context") or config.get("current-context")
    context = _named(config.get("contexts"), context_name)
    context = context.get("context") if isinstance(context, dict) else None
    cluster_name = props.get("cluster") or (context.get("cluster") if isinstance(context, dict) else None)
    entry = _named(config.get("clusters"), cluster_name)
    cluster = entry.get("cluster") if isinstance(entry, dict) else None
    if not isinstance(cluster, dict):
        deciding = (context_name, context, cluster_name, entry, cluster, config.get("contexts"), config.get("clusters"))
        return UNKNOWN if UNKNOWN in deciding else None
    server, ca = cluster.get("server"), cluster.get("certificate-authority-data")
    if UNKNOWN in (server, ca, cluster.get("insecure-skip-tls-verify")):
        return UNKNOWN
    if not (isinstance(server, str) and isinstance(ca, str) and server and ca) or truthy(cluster.get("insecure-skip-tls-verify")):
        return None
    return server.rstrip("/").lower(), ca


def _selects_every_tenant(selector: Any, label: str) -> bool:
    """A namespace selector that admits every namespace carrying the tenant label (or every namespace)."""
    if selector is None or selector == {}:
        return True
    labels, exprs = dig(selector, "matchLabels", default={}) or {}, as_list(dig(selector, "matchExpressions"))
    return not labels and all(dig(e, "key") == label and dig(e, "operator") == "Exists" for e in exprs)


# A policy with `paramKind` is judged against a parameter object each binding names (`paramRef`); one that is
# absent denies or, with `parameterNotFoundAction: Allow`, admits everything: the binding holds nothing
# (https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/#parameter-resources).
_NO_PARAMS = (
    "the program renders none, and a parameter the pack cannot see decides what it admits "
    "(an absent one with `parameterNotFoundAction: Allow` admits everything)"
)


def _judge_policy(policy: Any, name: str, bindings: list[Any], label: str, validations: Any) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    if dig(policy.props, "spec", "failurePolicy", default="Fail") != "Fail":
        out.append((policy.urn, f"ValidatingAdmissionPolicy {name} must fail closed (`failurePolicy: Fail`)"))
    if name in REQUIRED_SCOPE:
        out += [(policy.urn, p) for p in _policy_scope_problems(policy, name, label)]
    out += [(policy.urn, p) for p in _content_problems(policy, name, validations.get(name))]
    if dig(policy.props, "spec", "paramKind") is not None:
        out.append((policy.urn, f"ValidatingAdmissionPolicy {name} must take no parameters (`paramKind`): {_NO_PARAMS}"))
    armed = []
    for b in bindings:
        if dig(b.props, "spec", "paramRef") is not None:
            out.append((b.urn, f"Binding of ValidatingAdmissionPolicy {name} must name no parameters (`paramRef`): {_NO_PARAMS}"))
            continue
        actions = {str(a) for a in as_list(dig(b.props, "spec", "validationActions"))}
        if "Deny" not in actions:  # Audit or Warn beside Deny only add a record
            out.append(
                (
                    b.urn,
                    f"Binding of ValidatingAdmissionPolicy {name} must deny (`validationActions: [Deny]`), "
                    f"not {sorted(actions) or 'nothing'}: a binding that only warns or audits admits what the policy forbids",
                )
            )
            continue
        match = dig(b.props, "spec", "matchResources", default={})
        if name in REQUIRED_SCOPE:
            if not _scope_problems(match, name, label, binding=True):
                armed.append(b)
        elif _selects_every_tenant(dig(match, "namespaceSelector"), label) and not dig(match, "objectSelector"):
            armed.append(b)
    if not armed:
        out.append(
            (
                policy.urn,
                f"ValidatingAdmissionPolicy {name} must have a binding that denies (`validationActions: [Deny]`) "
                f"in every namespace labelled {label} (no narrower matchResources)",
            )
        )
    return out


def check_backstops(resources: list[Any], config: dict) -> list[tuple[str | None, str]]:
    stack = Stack(resources)
    label = config.get("tenantLabel", "meridian.io/tenant")
    required = config.get("requiredAdmissionPolicies", [])
    out: list[tuple[str | None, str]] = []
    try:
        clusters = _Clusters(stack)
        tenant_providers = {
            _provider(ns): ns.provider
            for ns in stack.of(NAMESPACE)
            if label in (dig(ns.props, "metadata", "labels", default={}) or {})
        }
        tenant_clusters: dict[Any, list[str]] = {}  # a cluster -> the providers of tenant namespaces that reach it
        for urn, provider in sorted(tenant_providers.items()):
            tenant_clusters.setdefault(clusters.key(urn, provider), []).append(urn)
        policies: dict[tuple[Any, Any], list[Any]] = {}
        for p in stack.of(POLICY):
            policies.setdefault((clusters.key(_provider(p), p.provider), dig(p.props, "metadata", "name")), []).append(p)
        bindings: dict[tuple[Any, Any], list[Any]] = {}
        for b in stack.of(BINDING):
            bindings.setdefault((clusters.key(_provider(b), b.provider), dig(b.props, "spec", "policyName")), []).append(b)
        for cluster, urns in tenant_clusters.items():
            where = ", ".join(urn.rsplit("::", 1)[-1] or "the default cluster" for urn in urns)
            for name in required:
                found = policies.get((cluster, name), [])
                if not found:
                    out.append((None, _missing(config, where, name, cluster, clusters)))
                for policy in found:  # the same name installed twice on one cluster: the last write wins, so each must hold
                    try:
                        out += _judge_policy(
                            policy, name, bindings.get((cluster, name), []), label, config.get("requiredValidations", {})
                        )
                    except UnknownValueError as exc:
                        out.append((policy.urn, Unverifiable.of(exc, "what does the admission policy hold?")))
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


class _Clusters:
    """Kubernetes providers grouped by the cluster they reach: by `cluster_identity` where it is
    known, else each provider its own cluster. What one provider installs cluster-wide (an admission
    policy, its bindings) holds for every namespace another provider of the same cluster creates."""

    def __init__(self, stack: Stack):
        self.unknown: set[str] = set()  # providers whose cluster is only known after apply
        self.providers = {r.urn: r for r in stack.of(K8S_PROVIDER)}

    def key(self, urn: str, provider: Any) -> Any:
        identity = cluster_identity(provider if provider is not None else self.providers.get(urn))
        if identity is UNKNOWN:
            self.unknown.add(urn)
        return ("cluster", *identity) if isinstance(identity, tuple) else ("provider", urn)


def _missing(config: dict, where: str, name: str, cluster: Any, clusters: _Clusters) -> str:
    """The finding on tenant namespaces whose cluster has no policy `name` among the resources judged."""
    finding = f"Cluster {where} must have the ValidatingAdmissionPolicy {name} (tenant namespaces' runtime backstop)"
    if cluster[0] == "provider" and cluster[1] in clusters.unknown:  # its cluster may be one that has it
        return Unverifiable(
            f"unverifiable at preview: which cluster provider {where} deploys tenant namespaces to (its `kubeconfig` server "
            f"and CA are only known after apply), so whether that cluster has the ValidatingAdmissionPolicy {name}"
        )
    if cluster[0] == "cluster":
        finding += f" (it reaches {cluster[1]}, where no provider judged here installs it)"
    # a cell judged alone: its cluster is its platform's, whose plan is not beside it
    return InPlatform.note(config, finding)


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
    what="Checks that every cluster with tenant namespaces has each required ValidatingAdmissionPolicy failing closed, scoped to what the pack's Kubernetes rules judge (CREATE and UPDATE of every workload kind k8s-workload-pod-security-restricted judges, of RoleBindings and of ClusterRoleBindings, in every namespace labelled as a tenant's: no `matchConditions` other than `true`, no `objectSelector`, no `excludeResourceRules` reaching them) and holding every validation the program renders for it with the variables they read (`requiredValidations`), with a binding that denies in every tenant namespace and no binding of it that does not deny; that an account-level S3 public access block never turns a setting off, and that the stack owning the account's guardrails (`ownsAccountGuardrails`) declares that block and an external-access Access Analyzer in each of its `regions`, and that every internet-facing application load balancer has access logging on (`accessLogs.enabled` with a bucket)",
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
        "requiredValidations": {
            "type": "object",
            "default": {},
            "description": "policy name -> the `variables` and `validations` the program renders for it (generated from "
            "components.admission): each must be there, with the same expression",
        },
    },
    remediation="Keep components.admission.TenantAdmission and components.guardrails.AccountGuardrails in the stack "
    "(compose_guardrails), with their bindings on Deny and every flag of the account public access block on.",
    limits="The rule compares each policy's validations and variables with the program's rendering (layout ignored; "
    "an expression written differently that means the same is refused): it does not evaluate CEL; what the rendered "
    "expressions allow is tested by evaluating them (tests/test_admission.py); a `matchConditions` entry is accepted only when its expression is literally `true` (the pack does not evaluate CEL); an analyzer or block another stack of the account owns is trusted to exist there; that the access-log bucket's policy lets ELB log delivery write is AWS's to check at `up` (creating the load balancer fails otherwise).",
    tags=["backstops"],
)

POLICIES = [backstops]
