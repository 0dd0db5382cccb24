"""Preflight: workload identity as EKS, STS and the pods' network will run it.

Three classes of failure that preview and the policy pack pass and `pulumi up` (or the first pod)
would not:

1. **Pod Identity association arguments.** pulumi-aws 7 (and EKS's CreatePodIdentityAssociation)
   accept a session `policy` only with `disable_session_tags = true`; and with session tags off,
   every policy that reads a Pod Identity tag (`aws:PrincipalTag/kubernetes-namespace`, ...) of the
   association's role sees none: the role's attribute-based access is gone.
2. **STS session-tag rules, per role chain.** A role held through Pod Identity with session tags on
   carries its six tags into every role it assumes (they are transitive); STS refuses a request tag
   whose key an inherited transitive tag has, so a trust that requires such a request tag can never
   be met. Chained sessions also stay within STS's limits: at most 50 session tags, keys of 128 and
   values of 256 characters, a session policy of 2,048 characters, one hour for a chained session.
3. **The egress every pod needs,** against its namespace's NetworkPolicies: cluster DNS, the EKS Pod
   Identity agent (its credentials) and AWS APIs on 443, the VPC's interface endpoints (private
   addresses) and the public endpoints. A namespace is judged when the plan runs pods in it (a
   Deployment, Job, StatefulSet, DaemonSet) or binds a Pod Identity association there (its pods are
   coming). NetworkPolicies are evaluated as Kubernetes does: a pod is isolated for egress once any
   policy selecting it has the Egress type, and then may reach only what some policy selecting it allows.
"""

from __future__ import annotations

import functools
import ipaddress
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from components.workload import SETTINGS_PATH, TENANT_FILE_KEY, TENANT_FILE_SECRET_PREFIX
from meridian.engine.recorder import UNKNOWN
from meridian.preflight.context import CheckResult, Context, Finding

POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
MANAGED_POLICY = "aws:iam/policy:Policy"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
SUBNET = "aws:ec2/subnet:Subnet"
VPC_ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
WORKLOADS = (
    "kubernetes:apps/v1:Deployment",
    "kubernetes:batch/v1:Job",
    "kubernetes:apps/v1:StatefulSet",
    "kubernetes:apps/v1:DaemonSet",
)

# The session tags EKS Pod Identity sets on every session, all transitive (EKS user guide, pod-id-abac).
POD_IDENTITY_TAGS = (
    "eks-cluster-arn",
    "eks-cluster-name",
    "kubernetes-namespace",
    "kubernetes-service-account",
    "kubernetes-pod-name",
    "kubernetes-pod-uid",
)
MAX_SESSION_TAGS, MAX_TAG_KEY, MAX_TAG_VALUE = 50, 128, 256  # IAM user guide, session tags
MAX_SESSION_POLICY = 2048  # STS AssumeRole `Policy`, plaintext characters
MAX_CHAINED_SECONDS = 3600  # role chaining caps a session at one hour

AGENT = {"ipv4": ipaddress.ip_address("169.254.170.23"), "ipv6": ipaddress.ip_address("fd00:ec2::23")}
KUBE_DNS = ({"kubernetes.io/metadata.name": "kube-system"}, {"k8s-app": "kube-dns"})
PUBLIC_V4 = ipaddress.ip_network("0.0.0.0/0")
NOT_PUBLIC_V4 = [
    ipaddress.ip_network(c)
    for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16")
]

ENCODES = (
    "EKS Pod Identity association: `policy` only with `disable_session_tags` (pulumi-aws 7 "
    "PodIdentityAssociation; EKS API CreatePodIdentityAssociation), and no session tags means no "
    "`aws:PrincipalTag/kubernetes-namespace` for the role's policies "
    "(https://docs.aws.amazon.com/eks/latest/userguide/pod-id-abac.html); STS session tags per role chain: "
    "Pod Identity's tags are transitive and a request tag may not reuse an inherited key, at most 50 tags, "
    "keys <= 128 and values <= 256 characters, session policy <= 2,048 characters, chained sessions <= 1 h "
    "(https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html, "
    "https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html); every namespace with pods "
    "reaches DNS, the Pod Identity agent 169.254.170.23 / fd00:ec2::23 TCP 80 "
    "(https://docs.aws.amazon.com/eks/latest/userguide/pod-id-agent-setup.html) and AWS APIs on 443 through "
    "its NetworkPolicies (https://kubernetes.io/docs/concepts/services-networking/network-policies/)"
)


def check_identity(ctx: Context) -> CheckResult:
    result = CheckResult("identity", ENCODES)
    _associations(ctx, result)
    _role_chains(ctx, result)
    _pod_egress(ctx, result)
    return result


# --- shared reading ----------------------------------------------------------------------------------


def _known(value: Any) -> bool:
    return value is not None and value != UNKNOWN


def _document(value: Any) -> dict | None:
    """A policy document from an input (JSON text or a mapping); None when unknown or unreadable."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or value == UNKNOWN:
        return None
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _statements(doc: dict) -> list[dict]:
    st = doc.get("Statement", [])
    return [s for s in (st if isinstance(st, list) else [st]) if isinstance(s, dict)]


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _role_documents(ctx: Context, role_urn: str) -> list[tuple[str, Any]]:
    """(what, document input) of every policy the plan gives the role: its trust, inline policies,
    RolePolicy resources and the managed policies of the stack attached to it."""
    inputs = ctx.inputs.get(role_urn, {})
    out: list[tuple[str, Any]] = [("trust policy", inputs.get("assumeRolePolicy"))]
    out += [(f"inline policy {p.get('name', '?')}", p.get("policy")) for p in inputs.get("inlinePolicies") or []]
    for reg in ctx.of_type(ROLE_POLICY):
        if role_urn in reg.property_dependencies.get("role", []):
            out.append((f"policy {reg.name}", ctx.inputs[reg.urn].get("policy")))
    for reg in ctx.of_type(ATTACHMENT):
        if role_urn in reg.property_dependencies.get("role", []):
            for policy in reg.property_dependencies.get("policyArn", []):
                if policy in ctx.inputs:
                    out.append((f"managed policy {policy.rsplit('::', 1)[-1]}", ctx.inputs[policy].get("policy")))
    return out


def _reads_pod_identity_tags(document: Any) -> list[str]:
    """The Pod Identity tag keys a document reads as principal tags (conditions or policy variables)."""
    text = document if isinstance(document, str) else json.dumps(document or {})
    lowered = text.lower()
    return [k for k in POD_IDENTITY_TAGS if f"aws:principaltag/{k}" in lowered]


def _tags_on(ctx: Context, association_urn: str) -> bool | None:
    """Whether the association's sessions carry Pod Identity's tags (None: unknown until up)."""
    off = ctx.inputs[association_urn].get("disableSessionTags", False)
    return None if off == UNKNOWN else off is not True


# --- 1. association arguments ------------------------------------------------------------------------


def _associations(ctx: Context, result: CheckResult) -> None:
    for assoc in ctx.of_type(POD_IDENTITY):
        result.checked += 1
        inputs = ctx.inputs[assoc.urn]
        tags_on = _tags_on(ctx, assoc.urn)
        if tags_on is None:
            result.notes.append(f"{assoc.name}: disableSessionTags known only after up")
            continue
        if inputs.get("policy") is not None and tags_on:
            result.findings.append(
                Finding(
                    assoc.urn,
                    f"{assoc.name} sets a session `policy` without `disableSessionTags = true`: "
                    "pulumi-aws 7 and EKS refuse the association",
                    "drop the session policy and guard the data on the resources (bucket and key policies), "
                    "or turn session tags off only where no policy reads them",
                )
            )
        if tags_on:
            continue
        for role_urn in assoc.property_dependencies.get("roleArn", []):
            for what, document in _role_documents(ctx, role_urn):
                keys = _reads_pod_identity_tags(document)
                if keys:
                    result.findings.append(
                        Finding(
                            assoc.urn,
                            f"{assoc.name} turns Pod Identity's session tags off, but role {role_urn.rsplit('::', 1)[-1]}'s "
                            f"{what} reads {', '.join(f'aws:PrincipalTag/{k}' for k in keys)}: its sessions match none of it",
                            "keep session tags on (no `policy`, no `disableSessionTags`) for a role that tells callers apart by them",
                        )
                    )


# --- 2. STS session tags per role chain --------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    """A role assumable by a role held through Pod Identity: what the caller's sessions inherit."""

    caller_urn: str
    role_urn: str
    statement: dict
    inherited: tuple[str, ...]  # transitive tag keys the caller's sessions carry


def _pod_identity_holders(ctx: Context) -> dict[str, bool | None]:
    """Role URN -> whether some association hands it out with session tags on (None: unknown)."""
    out: dict[str, bool | None] = {}
    for assoc in ctx.of_type(POD_IDENTITY):
        on = _tags_on(ctx, assoc.urn)
        for role in assoc.property_dependencies.get("roleArn", []):
            previous = out.get(role, False)
            out[role] = None if on is None or previous is None else (previous or on)
    return out


def _chains(ctx: Context, result: CheckResult) -> list[Chain]:
    holders = _pod_identity_holders(ctx)
    chains = []
    for role in ctx.of_type(ROLE):
        callers = [u for u in role.property_dependencies.get("assumeRolePolicy", []) if u in holders and u != role.urn]
        if not callers:
            continue
        trust = _document(ctx.inputs[role.urn].get("assumeRolePolicy"))
        if trust is None:
            result.notes.append(f"{role.name}: trust policy known only after up; its session-tag chain is unjudged")
            continue
        for caller in callers:
            if holders[caller] is None:
                result.notes.append(f"{role.name}: whether its caller's sessions carry Pod Identity tags is known only after up")
                continue
            inherited = POD_IDENTITY_TAGS if holders[caller] else ()
            # the trust names the caller by the ARN it was built from (its dependency): judge every AWS-principal statement
            for st in _statements(trust):
                principal = st.get("Principal")
                if st.get("Effect") == "Allow" and isinstance(principal, dict) and principal.get("AWS"):
                    chains.append(Chain(caller, role.urn, st, inherited))
    return chains


def _required_request_tags(statement: dict) -> dict[str, list[str]]:
    """Request tag key -> the values a positive condition of the statement demands."""
    out: dict[str, list[str]] = {}
    for op, block in (statement.get("Condition") or {}).items():
        if "Not" in op or not isinstance(block, dict):
            continue
        for key, values in block.items():
            if str(key).lower().startswith("aws:requesttag/"):
                out[str(key).split("/", 1)[1]] = [str(v) for v in _as_list(values)]
    return out


def _role_chains(ctx: Context, result: CheckResult) -> None:
    chains = _chains(ctx, result)
    tenant_namespaces = _namespaces_by_label(ctx, "meridian.io/tenant")
    for chain in chains:
        result.checked += 1
        role = chain.role_urn.rsplit("::", 1)[-1]
        caller = chain.caller_urn.rsplit("::", 1)[-1]
        required = _required_request_tags(chain.statement)
        clashing = sorted(k for k in required if k.lower() in chain.inherited)
        if clashing:
            result.findings.append(
                Finding(
                    chain.role_urn,
                    f"{role} trusts {caller} only with request tag(s) {', '.join(clashing)}, which {caller}'s Pod Identity "
                    "sessions already carry as transitive tags: STS refuses every such AssumeRole",
                    "name what the caller chooses in a tag key of its own (e.g. meridian-tenant) and read the inherited "
                    "Pod Identity tags as aws:PrincipalTag in the role's policy",
                )
            )
        count = len(chain.inherited) + len(required)
        if count > MAX_SESSION_TAGS:
            result.findings.append(
                Finding(
                    chain.role_urn,
                    f"{role}'s sessions from {caller} would carry {count} tags, over STS's {MAX_SESSION_TAGS}",
                    "pass fewer tags",
                )
            )
        for key in required:
            if len(key) > MAX_TAG_KEY:
                result.findings.append(
                    Finding(
                        chain.role_urn, f"request tag key {key[:40]}... is over {MAX_TAG_KEY} characters", "use a shorter key"
                    )
                )
        # the values the service passes are tenant namespaces
        for ns in sorted(tenant_namespaces):
            if len(ns) > MAX_TAG_VALUE:
                result.findings.append(
                    Finding(
                        chain.role_urn,
                        f"tenant namespace {ns[:40]}... is over {MAX_TAG_VALUE} characters as a tag value",
                        "shorten tenant ids",
                    )
                )
        max_session = ctx.inputs[chain.role_urn].get("maxSessionDuration")
        if chain.inherited and _known(max_session) and float(max_session) < MAX_CHAINED_SECONDS:
            result.notes.append(f"{role}: max session {max_session} s; chained sessions are asked for {MAX_CHAINED_SECONDS} s")
    _service_sessions(ctx, result)
    if chains:
        result.notes.append(
            "STS's packed size of session policy + tags (PackedPolicyTooLarge) is computed by AWS only; the first AssumeRole tells"
        )


def _service_sessions(ctx: Context, result: CheckResult) -> None:
    """What the service asks STS for, per tenant: the session policy's size and the chained duration.
    The tenants are the settings file's (a platform's inline tenants) and every tenant file in the
    plan (a cell's Secret `meridian-tenants-<cell>`, which its platform's service mounts)."""
    from service.objects import SESSION_SECONDS
    from service.settings import ServiceSettings

    if SESSION_SECONDS > MAX_CHAINED_SECONDS:
        result.findings.append(
            Finding(
                "",
                f"the service asks for {SESSION_SECONDS} s sessions; a chained session lasts {MAX_CHAINED_SECONDS} s at most",
                "ask for 3600 s",
            )
        )
    for c in ctx.containers():
        mounted = c.file(SETTINGS_PATH)
        if mounted is None or not isinstance(mounted.content, str):
            continue
        try:
            settings = ServiceSettings.from_dict(json.loads(mounted.content))
        except (ValueError, KeyError, TypeError):
            continue  # the service-settings check reports it
        region = settings.objects.region if settings.objects else None
        _session_policies(result, mounted.secret_urn or c.owner_urn, settings.tenants, region)
    _tenant_file_sessions(ctx, result)


def _tenant_file_sessions(ctx: Context, result: CheckResult) -> None:
    """A cell's tenants: its tenant file Secrets, one per region, served by the platform's service
    of that region (which asks STS in its own region)."""
    from google.protobuf import json_format

    from meridian.preflight.workload import SECRET, reveal
    from service.settings import load_tenant_file

    for secret in ctx.of_type(SECRET):
        name = (ctx.inputs[secret.urn].get("metadata") or {}).get("name")
        if not (isinstance(name, str) and name.startswith(TENANT_FILE_SECRET_PREFIX)):
            continue
        inputs = reveal(json_format.MessageToDict(secret.inputs))  # unknown as a whole at a first preview
        data = inputs.get("stringData") if isinstance(inputs, dict) else None
        content = data.get(TENANT_FILE_KEY) if isinstance(data, dict) else None
        if not isinstance(content, str):
            result.notes.append(
                f"{name} in {ctx.plan.region_of(secret)}: tenant file unknown at preview; its tenants' session policies unjudged"
            )
            continue
        try:
            tenants = load_tenant_file(content)
        except ValueError as exc:
            result.findings.append(
                Finding(
                    secret.urn,
                    f"{name}: the service refuses this tenant file ({exc})",
                    "render it with service.settings.dump_tenant_file",
                )
            )
            continue
        _session_policies(result, secret.urn, tenants, ctx.plan.region_of(secret))


def _session_policies(result: CheckResult, urn: str, tenants: Any, region: str | None) -> None:
    from service.objects import session_policy

    for tenant in tenants:
        if tenant.data is None:
            continue
        result.checked += 1
        d = tenant.data
        size = len(
            session_policy(f"arn:aws:s3:::{d.bucket}", d.prefix, d.kms_key_arn, replica_key_arn=d.replica_key_arn, region=region)
        )
        if size > MAX_SESSION_POLICY:
            result.findings.append(
                Finding(
                    urn,
                    f"tenant {tenant.id}'s session policy is {size} characters, over STS's {MAX_SESSION_POLICY}",
                    "shorten the bucket name or prefix",
                )
            )


# --- 3. the egress every pod needs -------------------------------------------------------------------


def _namespaces_by_label(ctx: Context, label: str) -> set[str]:
    out = set()
    for ns in ctx.of_type("kubernetes:core/v1:Namespace"):
        meta = ctx.inputs[ns.urn].get("metadata") or {}
        if (meta.get("labels") or {}).get(label) and isinstance(meta.get("name"), str):
            out.add(meta["name"])
    return out


def _matches(selector: Any, labels: dict[str, str] | None) -> bool | None:
    """Label selector semantics; None when the labels are not known (a pod the plan does not show)."""
    selector = selector or {}
    if not selector.get("matchLabels") and not selector.get("matchExpressions"):
        return True
    if labels is None:
        return None
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }.get(op, False)
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class Need:
    what: str
    protocol: str
    port: int
    addresses: tuple = ()  # networks every address of which must be allowed
    pod: tuple[dict, dict] | None = None  # (namespace labels, pod labels) of a destination pod
    excluding: tuple = ()  # addresses within `address` that need not be allowed


def _port_allows(ports: list, protocol: str, port: int) -> bool:
    if not ports:
        return True
    for p in ports:
        if str(p.get("protocol", "TCP")).upper() != protocol:
            continue
        number = p.get("port")
        if number is None:
            return True
        if isinstance(number, int | float) and int(number) <= port <= int(p.get("endPort", number)):
            return True
    return False


def _uncovered(need: Need, blocks: list[tuple]) -> tuple:
    """The parts of the needed networks that no allowed ipBlock covers."""
    return _uncovered_networks(need.addresses, need.excluding, tuple((cidr, tuple(excepts)) for cidr, excepts in blocks))


# Every tenant namespace carries the same NetworkPolicies: the same needs against the same ipBlocks,
# judged once (address arithmetic was over half of preflight at a cell of 250 tenants).
@functools.lru_cache(maxsize=1024)
def _uncovered_networks(addresses: tuple, excluding: tuple, blocks: tuple) -> tuple:
    remaining = list(addresses)
    for cidr, excepts in blocks:
        nxt = []
        for net in remaining:
            if net.version != cidr.version or not net.overlaps(cidr):
                nxt.append(net)
                continue
            inside = net if net.subnet_of(cidr) else cidr
            outside = [] if net.subnet_of(cidr) else list(net.address_exclude(cidr))
            nxt += outside
            for e in excepts:  # what the block excepts stays needed
                if e.version == inside.version and e.overlaps(inside):
                    nxt.append(e if e.subnet_of(inside) else inside)
        remaining = nxt
    return tuple(n for n in remaining if not any(n.version == x.version and n.subnet_of(x) for x in excluding))


@functools.lru_cache(maxsize=4096)
def _network(text: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def _allowed(need: Need, rules: list[dict], namespace: str) -> bool:
    blocks = []
    for rule in rules:
        if not _port_allows(rule.get("ports") or [], need.protocol, need.port):
            continue
        peers = rule.get("to") or []
        if not peers:
            return True  # every destination
        for peer in peers:
            block = peer.get("ipBlock")
            if block and need.addresses:
                try:
                    blocks.append((_network(block["cidr"]), [_network(e) for e in block.get("except") or []]))
                except (KeyError, ValueError, TypeError):
                    continue
            if need.pod is not None and not block:
                ns_labels, pod_labels = need.pod
                ns_sel, pod_sel = peer.get("namespaceSelector"), peer.get("podSelector")
                same_ns = ns_sel is None and ns_labels.get("kubernetes.io/metadata.name") == namespace
                if (same_ns or (ns_sel is not None and _matches(ns_sel, ns_labels))) and _matches(pod_sel, pod_labels):
                    return True
    return bool(need.addresses) and not _uncovered(need, blocks)


def _needs(ctx: Context, region: str, ipv6: bool, result: CheckResult) -> list[Need]:
    needs = [
        Need("cluster DNS (kube-dns, UDP 53)", "UDP", 53, pod=KUBE_DNS),
        Need("cluster DNS (kube-dns, TCP 53)", "TCP", 53, pod=KUBE_DNS),
        Need(
            "the EKS Pod Identity agent (credentials)",
            "TCP",
            80,
            addresses=(ipaddress.ip_network(AGENT["ipv6" if ipv6 else "ipv4"]),),
        ),
        Need(
            "AWS public endpoints on 443 (S3 through its gateway endpoint, ...)",
            "TCP",
            443,
            addresses=(PUBLIC_V4,),
            excluding=tuple(NOT_PUBLIC_V4),
        ),
    ]
    subnets = {reg.id: ctx.inputs[reg.urn].get("cidrBlock") for reg in ctx.of_type(SUBNET) if ctx.plan.region_of(reg) == region}
    for endpoint in ctx.of_type(VPC_ENDPOINT):
        i = ctx.inputs[endpoint.urn]
        if ctx.plan.region_of(endpoint) != region or i.get("vpcEndpointType") != "Interface" or not i.get("privateDnsEnabled"):
            continue
        service = str(i.get("serviceName", "?")).split(".", 3)[-1]
        cidrs = [subnets.get(subnet_id) for subnet_id in i.get("subnetIds") or []]
        if not cidrs or not all(_known(c) for c in cidrs):
            result.notes.append(f"{endpoint.name}: its subnets are known only after up; egress to it is unjudged")
            continue
        needs.append(
            Need(
                f"the {service} interface endpoint (443, in {', '.join(cidrs)})",
                "TCP",
                443,
                addresses=tuple(ipaddress.ip_network(c) for c in cidrs),
            )
        )
    return needs


def _pod_egress(ctx: Context, result: CheckResult) -> None:
    pods: dict[tuple[str, str], list[tuple[str, dict | None]]] = defaultdict(list)  # (region, ns) -> (owner urn, pod labels)
    for token in WORKLOADS:
        for reg in ctx.of_type(token):
            i = ctx.inputs[reg.urn]
            ns = (i.get("metadata") or {}).get("namespace", "default")
            labels = ((((i.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels")) or {}
            pods[(ctx.plan.region_of(reg), ns)].append((reg.urn, labels))
    for assoc in ctx.of_type(POD_IDENTITY):
        ns = ctx.inputs[assoc.urn].get("namespace")
        if isinstance(ns, str) and ns != UNKNOWN:
            pods[(ctx.plan.region_of(assoc), ns)].append((assoc.urn, None))  # its pods' labels are not in the plan
    policies: dict[tuple[str, str], list] = defaultdict(list)
    for reg in ctx.of_type(NETWORK_POLICY):
        i = ctx.inputs[reg.urn]
        policies[(ctx.plan.region_of(reg), (i.get("metadata") or {}).get("namespace", "default"))].append(
            (reg.urn, i.get("spec") or {})
        )
    ipv6 = {
        ctx.plan.region_of(c): str((ctx.inputs[c.urn].get("kubernetesNetworkConfig") or {}).get("ipFamily") or "ipv4") == "ipv6"
        for c in ctx.of_type(EKS_CLUSTER)
    }
    needs_of = {region: _needs(ctx, region, ipv6.get(region, False), result) for region in sorted({r for r, _ in pods})}
    for (region, namespace), owners in sorted(pods.items()):
        for owner, labels in owners:
            result.checked += 1
            selecting, unsure = [], False
            for _, spec in policies[(region, namespace)]:
                hit = _matches(spec.get("podSelector"), labels)
                if hit is None:
                    unsure = True
                elif hit:
                    selecting.append(spec)
            isolated = [s for s in selecting if "Egress" in (s.get("policyTypes") or (["Egress"] if s.get("egress") else []))]
            if not isolated:
                if unsure:
                    result.notes.append(f"{namespace} in {region}: policies select pods by labels the plan does not show")
                continue  # no policy isolates its egress: everything is allowed
            rules = [r for s in selecting for r in s.get("egress") or []]
            missing = [n.what for n in needs_of[region] if not _allowed(n, rules, namespace)]
            if missing:
                result.findings.append(
                    Finding(
                        owner,
                        f"pods in namespace {namespace} ({region}) cannot reach {'; '.join(missing)}: "
                        "its NetworkPolicies isolate their egress and none allows it",
                        "allow it in the namespace's NetworkPolicy (components.podnetwork.essential_egress)",
                    )
                )
