"""Every session the stack lets someone obtain, modelled from how it is obtained, not from the
shape of one design:
- a Pod Identity association gives the pods of its namespace and service account a session of its
  role with the EKS session tags (`kubernetes-namespace`, `eks-cluster-arn`, ...; transitive)
  unless `disableSessionTags`, narrowed by its session policy; `targetRoleArn` chains on;
- an IRSA trust (`sts:AssumeRoleWithWebIdentity`) gives a session to every service account its
  `:sub` condition admits, in every namespace of the plan (and one it does not name);
- a trust naming an AWS principal gives that principal's sessions a chained session with the
  request tags the trust admits (tried over every tenant's namespace and id where the trust leaves
  the value open), keeping the caller's transitive tags, which STS refuses to overwrite;
- a principal that may create pods in a namespace, or exec or attach into them (EKS access policies,
  Kubernetes RBAC), obtains every workload session of that namespace (`pod_creation`);
- foreign accounts named anywhere, anyone (`*`), and the stack's own account outside the stack
  (any holder of `sts:AssumeRole`) are principals too, with whatever identity policies they like.

Each session belongs to an origin: a tenant (workloads in its namespace), the platform (workloads
in other namespaces), an AWS service, or an outsider.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from typing import Any

from access import simulator
from access.arns import account_of
from access.world import ADMIN, EKS_TAG_KEYS, NOT_POD_CREATING_ACCESS, Doc, Principal, Workload, World

ANYONE_ACCOUNT = "999999999999"
_VAR = re.compile(r"\$\{([^}]*)\}")

# AWS services that act for the platform on their own (replicate, back up, monitor, deliver logs,
# run budget actions and experiments, manage the cluster) and run no code of ours or anyone's: a
# role only they assume may reach tenant data, within the bound access.bounds holds it to (each
# service's documented actions, on resources of this stack). Any other service principal (EC2
# instances, Lambda, CodeBuild, ECS tasks, Glue, ...) runs code, so its role is judged like any
# other workload's.
PLATFORM_SERVICES = frozenset(
    {
        "backup.amazonaws.com",
        "s3.amazonaws.com",
        "batchoperations.s3.amazonaws.com",
        "monitoring.rds.amazonaws.com",
        "rds.amazonaws.com",
        "vpc-flow-logs.amazonaws.com",
        "delivery.logs.amazonaws.com",
        "logs.amazonaws.com",
        "budgets.amazonaws.com",
        "fis.amazonaws.com",
        "eks.amazonaws.com",
        "replication.ecr.amazonaws.com",
    }
)


@dataclass(frozen=True)
class Origin:
    kind: str  # "tenant", "platform", "service", "operator", "outsider"
    who: str
    tenant: str | None = None


@dataclass
class Session:
    principal: Principal
    origin: Origin
    path: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict)
    transitive: frozenset[str] = frozenset()
    session_policy: Doc | None = None
    chained: bool = False  # obtained by AssumeRole with tags the caller chose
    workload: Workload | None = None
    hops: int = 0
    assumed: tuple[str, ...] = ()  # managed policies of unknown text this session was obtained through

    def key(self) -> tuple:
        return (
            self.principal.arn,
            tuple(sorted(self.tags.items())),
            self.session_policy.urn if self.session_policy else None,
            self.origin,
            self.chained,
            bool(self.assumed),
        )


class Sessions:
    """The sessions of a world, and the evaluator's principal and request context for each."""

    def __init__(self, world: World):
        self.world = world
        self._nodes: dict[tuple, Any] = {}
        self._narrowed: dict[tuple[int, frozenset[str]], tuple[dict, dict]] = {}
        self._trust_index: dict[frozenset[str], tuple[list[Principal], dict[Any, set[int]], set[int]]] = {}
        self.tenant_values = sorted(set(world.namespaces) | set(world.namespaces.values()))
        self.outsiders = self._outsiders()
        self.referenced = self._referenced_keys()

    def _outsiders(self) -> list[Session]:
        """Foreign accounts named anywhere, anyone, and the stack's own account outside the stack."""
        own = self.world.account
        accounts, named = set(), set()
        for docs in [*self.world.resource_policies.values(), *[[p.trust] for p in self.world.principals.values() if p.trust]]:
            for d in docs:
                for st in simulator.for_any_request(d.document)["Statement"]:
                    for block in (st.get("Principal"), st.get("NotPrincipal")):
                        aws = block.get("AWS", []) if isinstance(block, dict) else []
                        for p in aws if isinstance(aws, list) else [aws]:
                            acct = account_of(str(p))
                            if acct and acct != own:
                                accounts.add(acct)
                            if acct and str(p).startswith("arn:") and not str(p).endswith(":root"):
                                named.add(str(p))
        out = []
        assume_only = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession"], "Resource": "*"}],
        }
        for arn in sorted(named - set(self.world.principals)):
            service = linked_service(arn, own)
            if service in PLATFORM_SERVICES:  # only its service assumes it: a service acting for the platform (bounds.py)
                who = f"AWS service {service} (its service-linked role {arn})"
                out.append(Session(Principal(arn, who, None), Origin("service", who), (who,)))
                continue
            foreign = account_of(arn) != own
            who = f"{arn} ({'another account' if foreign else 'not defined by this stack'})"
            docs = [
                Doc(
                    f"{arn}'s IAM policies (" + ("any)" if foreign else "taken as sts:AssumeRole on *)"),
                    None,
                    ADMIN if foreign else assume_only,
                )
            ]
            out.append(Session(Principal(arn, who, None, docs, outsider=True), Origin("outsider", who), (who,)))
        for acct in sorted(accounts) + [ANYONE_ACCOUNT]:
            who = (
                "anyone (any AWS account)"
                if acct == ANYONE_ACCOUNT
                else self.world.aliases.get(acct, f"account {acct} (not this stack's)")
            )
            p = Principal(
                f"arn:aws:iam::{acct}:role/any-principal",
                who,
                None,
                [Doc(f"{who}'s own IAM policies (any)", None, ADMIN)],
                outsider=True,
            )
            out.append(Session(p, Origin("outsider", who), (who,)))
        who = f"principals of account {own} outside this stack"
        p = Principal(
            f"arn:aws:iam::{own}:role/principal-outside-this-stack",
            who,
            None,
            [Doc("their IAM policies (any sts:AssumeRole)", None, assume_only)],
            outsider=True,
        )
        out.append(Session(p, Origin("outsider", who), (who,)))
        for p in self.world.principals.values():
            if p.label.startswith("IAM user"):
                out.append(Session(p, Origin("outsider", p.label), (p.label,)))
            elif p.unplaced:  # a role the stack grants to but does not define: its holders are unknown
                who = f"whoever holds {p.label}"
                out.append(Session(p, Origin("outsider", who), (who,)))
        return out

    def narrowed(self, doc: dict, free: frozenset[str] = frozenset()) -> dict:
        """`simulator.for_any_request(doc, free)`, once per document and `free`: every session asks
        again of the same trust and identity documents, which nothing changes while a world is
        judged (the result is shared: read it, never change it). Keyed by the document's identity
        and held with it, so an identity is never reused while cached."""
        key = (id(doc), free)
        hit = self._narrowed.get(key)
        if hit is None or hit[0] is not doc:
            hit = self._narrowed[key] = (doc, simulator.for_any_request(doc, free))
        return hit[1]

    def node(self, s: Session, admin: bool = False, known_only: bool = False) -> Any:
        """The evaluator's principal for session `s` (its documents bound to the session's tags);
        `known_only`: without the managed policies of unknown text (what is proven, not assumed)."""
        p = s.principal
        key = (p.arn, tuple(sorted(s.tags.items())), admin, known_only)
        if key not in self._nodes:
            docs = [(d.label, d.document) for d in p.documents if not (known_only and d.stand_in)]
            docs += [("its own permissions, rewritten", ADMIN)] if admin else []
            groups = [(g, [(d.label, d.document) for d in ds if not (known_only and d.stand_in)]) for g, ds in p.groups]
            boundary = p.boundary.document if p.boundary else None
            self._nodes[key] = simulator.node(p.arn, docs, values=self.context(s), groups=groups, boundary=boundary)
        return self._nodes[key]

    # --- sessions ---------------------------------------------------------------------------

    def origin_of(self, workload: Workload) -> Origin:
        tenant = self.world.namespaces.get(workload.namespace)
        where = f"pods in {workload.namespace} as {workload.service_account}"
        return Origin("tenant", where, tenant) if tenant else Origin("platform", where)

    def initial(self) -> list[Session]:
        w = self.world
        out: list[Session] = []
        for a in w.associations:
            role = w.principals.get(a.role_arn or "")
            tags = {}
            if a.tags_on:
                values = (
                    a.cluster_arn,
                    a.workload.cluster,
                    a.workload.namespace,
                    a.workload.service_account,
                    "any-pod",
                    "any-uid",
                )
                tags = dict(zip(EKS_TAG_KEYS, values, strict=True))
            if role is None or not self._pods_may_assume(role, a.cluster_arn, tags):
                continue
            s = Session(
                role,
                self.origin_of(a.workload),
                (f"{self.origin_of(a.workload).who} ({a.label})", role.label),
                tags,
                frozenset(tags),
                a.session_policy,
                workload=a.workload,
            )
            out.append(s)
            target = w.principals.get(a.target_role_arn or "")
            if target is not None:
                out.append(replace(s, principal=target, path=(*s.path, f"targetRoleArn -> {target.label}"), session_policy=None))
        for role in w.principals.values():
            if role.trust is None:
                continue
            for st in (
                role.trust.document.get("Statement", [])
                if isinstance(role.trust.document.get("Statement"), list)
                else [role.trust.document.get("Statement")]
            ):
                if not isinstance(st, dict) or str(st.get("Effect", "")).lower() != "allow":
                    continue
                principal = st.get("Principal") if isinstance(st.get("Principal"), dict) else {}
                if principal.get("Federated"):
                    out += self._irsa(role, st)
                services = principal.get("Service", [])
                for svc in services if isinstance(services, list) else [services]:
                    if svc == "pods.eks.amazonaws.com":
                        continue
                    if svc in PLATFORM_SERVICES:
                        out.append(Session(role, Origin("service", f"AWS service {svc}"), (f"AWS service {svc}", role.label)))
                    else:  # a service that runs code (EC2, Lambda, CodeBuild, ECS tasks, ...): whoever wrote it
                        who = f"code run by AWS service {svc}"
                        out.append(Session(role, Origin("compute", who), (who, role.label)))
        return out + list(self.outsiders)

    def _pods_may_assume(self, role: Principal, cluster_arn: str, tags: dict[str, str]) -> bool:
        """Whether EKS Pod Identity's AssumeRole for a pod of `cluster_arn` passes the role's trust: its request
        carries the session tags (`aws:RequestTag/eks-cluster-arn`, ...: the EKS user guide's documented trust
        conditions, pod-id-role.html) unless the association turns them off. No AWS page says it carries
        `aws:SourceArn`: the trust is tried with it (= the cluster) and without, and pods get the role if either holds."""
        if role.trust is None:
            return False
        request = {"aws:SourceAccount": self.world.account} | {f"aws:RequestTag/{k}": v for k, v in tags.items()}
        if tags:
            request["aws:TagKeys"] = sorted(tags)
        contexts = (request | {"aws:SourceArn": cluster_arn}, request)
        for st in simulator.for_any_request(role.trust.document)["Statement"]:
            principal = st.get("Principal") if isinstance(st.get("Principal"), dict) else {}
            svcs = principal.get("Service", [])
            if str(st.get("Effect")).lower() == "allow" and "pods.eks.amazonaws.com" in (
                svcs if isinstance(svcs, list) else [svcs]
            ):
                if any(simulator.conditions_hold(st.get("Condition") or {}, ctx) for ctx in contexts):
                    return True
        return False

    def _irsa(self, role: Principal, st: dict) -> list[Session]:
        cond = st.get("Condition") or {}
        subs = [
            str(v)
            for body in cond.values()
            if isinstance(body, dict)
            for k, vs in body.items()
            if str(k).endswith(":sub")
            for v in (vs if isinstance(vs, list) else [vs])
        ]
        namespaces = (
            set(self.world.namespaces) | set(self.world.service_accounts) | {"default", "kube-system", "an-unlisted-namespace"}
        )
        if subs and not any(re.search(r"[*?$]", s) for s in subs):
            namespaces = {s.split(":")[2] for s in subs if s.count(":") >= 3}
        out = []
        for ns in sorted(namespaces):
            for sa in sorted(
                self.world.service_accounts.get(ns, set())
                | {"default"}
                | {s.split(":")[3] for s in subs if s.count(":") >= 3 and not re.search(r"[*?]", s.split(":")[3])}
            ):
                ctx = {
                    k: f"system:serviceaccount:{ns}:{sa}"
                    for body in cond.values()
                    if isinstance(body, dict)
                    for k in body
                    if str(k).endswith(":sub")
                }
                ctx |= {
                    k: "sts.amazonaws.com"
                    for body in cond.values()
                    if isinstance(body, dict)
                    for k in body
                    if str(k).endswith(":aud")
                }
                if simulator.conditions_hold(cond, ctx):
                    workload = Workload("", ns, sa)
                    origin = self.origin_of(workload)
                    out.append(
                        Session(
                            role,
                            origin,
                            (f"{origin.who} (web identity, trust {st.get('Sid') or 'statement'})", role.label),
                            workload=workload,
                        )
                    )
        return out

    def chains(self, s: Session) -> list[Session]:
        """Sessions `s` obtains by AssumeRole into the stack's roles, with the request tags trusts admit."""
        out = []
        free = frozenset() if s.principal.outsider else simulator.ORGANIZATION_KEYS
        for role in self._trusting(s.principal.arn, free):
            if role.arn == s.principal.arn and not s.chained:
                continue
            trust = self.narrowed(role.trust.document, free)
            for request in self._tag_choices(trust, s, role):
                ctx = self.context(s) | {f"aws:RequestTag/{k}": v for k, v in request.items()}
                if request:
                    ctx["aws:TagKeys"] = sorted(request)
                node = self.node(s)
                sp = s.session_policy.document if s.session_policy else None
                acct = account_of(role.arn)
                ok = simulator.authorized(
                    node, "sts:AssumeRole", role.arn, ctx, resource_policy=trust, owner=acct, session_policy=sp
                )
                if ok and request:
                    ok = simulator.authorized(
                        node, "sts:TagSession", role.arn, ctx, resource_policy=trust, owner=acct, session_policy=sp
                    )
                if not ok:
                    continue
                assumed = s.assumed
                if stand_ins(s.principal) and not simulator.authorized(
                    self.node(s, known_only=True),
                    "sts:AssumeRole",
                    role.arn,
                    ctx,
                    resource_policy=trust,
                    owner=acct,
                    session_policy=sp,
                ):
                    assumed = (*assumed, *stand_ins(s.principal))
                tags = {k: v for k, v in s.tags.items() if k in s.transitive} | request
                shown = ", ".join(f"{k}={v}" for k, v in sorted(request.items()))
                out.append(
                    Session(
                        role,
                        s.origin,
                        (*s.path, f"sts:AssumeRole {role.label}" + (f" tagged {shown}" if shown else "")),
                        tags,
                        s.transitive | set(request),
                        None,
                        True,
                        s.workload,
                        s.hops + 1,
                        tuple(dict.fromkeys(assumed)),
                    )
                )
        return out

    def _trusting(self, arn: str, free: frozenset[str]) -> list[Principal]:
        """The roles whose trust (narrowed with `free`) lets `arn` ask to assume them: an Allow that
        names it, its account or the account's root, or admits anyone (`*`, `NotPrincipal`); in the
        world's order. Looked up in an index of what each trust names, not asked of every role by
        every session (the roles grow with the tenants, and so do the sessions)."""
        index = self._trust_index.get(free)
        if index is None:
            index = self._trust_index[free] = self._index_trusts(free)
        roles, named, open_ = index
        acct = account_of(arn)
        hits = open_ | named.get(arn, set()) | named.get(acct, set()) | named.get(f"arn:aws:iam::{acct}:root", set())
        return [roles[i] for i in sorted(hits)]

    def _index_trusts(self, free: frozenset[str]) -> tuple[list[Principal], dict[Any, set[int]], set[int]]:
        """(roles with a trust, principal -> positions of the roles whose trust names it, positions
        of the roles whose trust admits anyone)."""
        roles = [role for role in self.world.principals.values() if role.trust is not None]
        named: dict[Any, set[int]] = {}
        open_: set[int] = set()
        for i, role in enumerate(roles):
            for st in self.narrowed(role.trust.document, free)["Statement"]:
                if str(st.get("Effect", "")).lower() != "allow":
                    continue
                if st.get("Principal") == "*" or "NotPrincipal" in st:
                    open_.add(i)
                    continue
                aws = st.get("Principal", {}).get("AWS", []) if isinstance(st.get("Principal"), dict) else []
                for p in aws if isinstance(aws, list) else [aws]:
                    if p == "*":
                        open_.add(i)
                    elif isinstance(p, Hashable):  # anything else is never equal to an ARN or account
                        named.setdefault(p, set()).add(i)
        return roles, named, open_

    def _tag_choices(self, trust: dict, s: Session, role: Principal) -> list[dict[str, str]]:
        """Request tags worth trying: the keys the trust conditions on, then those plus the principal
        tags the role's own documents read; each with the literal values conditions admit, or every
        tenant's namespace and id where they leave it open. Keys the caller's session already carries
        as transitive tags cannot be passed (STS refuses them)."""
        literal: dict[str, set[str]] = {}
        open_: set[str] = set()
        self._condition_keys(trust, "aws:requesttag/", literal, open_)
        role_literal: dict[str, set[str]] = {}
        role_open: set[str] = set()
        for d in role.documents:
            self._condition_keys(d.document, "aws:principaltag/", role_literal, role_open)
            for st in self.narrowed(d.document)["Statement"]:
                for r in _as_list(st.get("Resource")) + _as_list(st.get("NotResource")):
                    role_open |= {m.split("/", 1)[1] for m in _VAR.findall(str(r)) if m.lower().startswith("aws:principaltag/")}
        out: list[dict[str, str]] = [{}]
        for keys_literal, keys_open in ((literal, open_), (_merge(literal, role_literal), open_ | role_open)):
            keys = (set(keys_literal) | keys_open) - s.transitive
            if not keys:
                continue
            varied = sorted(k for k in keys if k not in keys_literal)
            fixed = {k: sorted(keys_literal[k]) for k in sorted(keys) if k in keys_literal}
            base = [dict(zip(fixed, combo, strict=True)) for combo in itertools.product(*fixed.values())] or [{}]
            values = self.tenant_values or ["no-tenant"]
            if len(varied) <= 1:
                spread = [{varied[0]: v} for v in values] if varied else [{}]
            else:
                spread = [dict.fromkeys(varied, v) for v in values]
                spread += [
                    dict(zip(varied, (a, b) + (b,) * (len(varied) - 2), strict=True))
                    for a, b in itertools.permutations(values[:2], 2)
                ]
            out += [{**b, **v} for b in base for v in spread]
        unique = {tuple(sorted(c.items())): c for c in out}
        return list(unique.values())

    def _condition_keys(self, doc: dict, prefix: str, literal: dict[str, set[str]], open_: set[str]) -> None:
        for st in self.narrowed(doc)["Statement"]:
            for op, body in (st.get("Condition") or {}).items():
                if not isinstance(body, dict):
                    continue
                for k, vs in body.items():
                    values = [str(v) for v in _as_list(vs)]
                    if prefix == "aws:requesttag/" and str(k).lower() == "aws:tagkeys":
                        open_ |= {v for v in values if v not in literal}
                    elif str(k).lower().startswith(prefix):
                        tag = str(k).split("/", 1)[1]
                        fixed = [v for v in values if not re.search(r"[*?$]", v)]
                        if fixed and "Not" not in op:
                            literal.setdefault(tag, set()).update(fixed)
                        else:
                            open_.add(tag)

    def operators(self) -> list[Session]:
        """Cluster operators outside the plan: principals the stack's EKS access entries name but
        does not define (and the creator of a cluster that makes its creator admin), and the
        Kubernetes users and groups its bindings name (who they are, the plan does not say). What their own IAM policies reach is the account's business (the account
        row of the matrix); what they reach by running code in pods is a session of those pods."""
        out = []
        for arn in sorted((set(self.world.access) | set(self.world.k8s_groups)) - set(self.world.principals)):
            who = f"{arn} (a cluster operator outside the plan)"
            out.append(Session(Principal(arn, who, None, outsider=True), Origin("operator", who), (who,)))
        mapped = {g for entries in self.world.k8s_groups.values() for _, groups in entries for g in groups}
        for kind, name in sorted({(k, n) for k, n, _, _ in self.world.rbac if k in ("User", "Group")}):
            if name in mapped or name.startswith("system:serviceaccount"):  # sessions of their own above / workloads
                continue
            who = f"Kubernetes {kind} {name} (bound in the plan; who it is, the plan does not say)"
            out.append(Session(Principal(_subject(kind, name), who, None, outsider=True), Origin("operator", who), (who,)))
        return out

    def bound_service_accounts(self, workloads: list[Session]) -> list[Session]:
        """Service accounts a binding lets run code in pods (`World.rbac`) that run no workload of the plan
        (`kube-system/default`, a controller's account, every account of a namespace through its
        `system:serviceaccounts:<ns>` group): no AWS session of their own, but whatever the pods they may
        create or enter obtain is theirs, and theirs is not the tenant's; and anyone, where a binding
        names `system:anonymous` or `system:unauthenticated`."""
        running = {(w.workload.namespace, w.workload.service_account) for w in workloads if w.workload is not None}
        busy = {ns for ns, _ in running}
        out = []
        for kind, name, namespace, _ in self.world.rbac:
            if kind == "Group" and name.startswith(_SA_GROUP) and name[len(_SA_GROUP) :] not in busy:
                namespace, name = name[len(_SA_GROUP) :], "*"  # every service account of a namespace with no workload of the plan
            elif kind in ("User", "Group") and name in _ANONYMOUS:  # anyone who reaches the API server
                who = f"anyone (Kubernetes {kind} {name}, bound in the plan)"
                out.append(Session(Principal(_subject(kind, name), who, None), Origin("outsider", who), (who,)))
                continue
            elif kind != "ServiceAccount" or not namespace or (namespace, name) in running:
                continue
            workload = Workload("", namespace, name)
            who = f"Kubernetes ServiceAccount {namespace}/{name} (bound in the plan; runs no workload of it)"
            principal = Principal(_subject("ServiceAccount", f"{namespace}:{name}"), who, None)
            out.append(Session(principal, self.origin_of(workload), (who,), workload=workload))
        return out

    def pod_creation(self, s: Session) -> list[tuple[str, str, Any]]:
        """(cluster, how, namespaces or "*") where `s` may run code in pods (create, exec, attach)."""
        out = []
        for cluster, policy, namespaces in self.world.access.get(s.principal.arn, []):
            if policy not in NOT_POD_CREATING_ACCESS:
                where = f" on {cluster}" if cluster else ""
                out.append((cluster, f"EKS access entry{where} with access policy {policy}", namespaces))
        groups = {g for _, gs in self.world.k8s_groups.get(s.principal.arn, []) for g in gs}
        if s.workload is not None:
            ns = s.workload.namespace
            groups |= {"system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"}
        for kind, name, namespace, reach in self.world.rbac:
            hit = (
                (kind == "Group" and name in groups)
                or s.principal.arn == _subject(kind, name)
                or (
                    kind == "ServiceAccount"
                    and s.workload is not None
                    and namespace == s.workload.namespace
                    and name in (s.workload.service_account, "*")
                )
            )
            if hit:
                out.append(("", f"Kubernetes binding of {kind} {name}", reach))
        return out

    # --- the request context -----------------------------------------------------------------

    def _referenced_keys(self) -> set[str]:
        """Every condition key and policy variable the stack's documents read (lower case): the
        evaluator's context carries only these (its cost grows with the context's size)."""
        docs = [d for p in self.world.principals.values() for d in (*p.documents, *(x for _, ds in p.groups for x in ds))]
        docs += [p.trust for p in self.world.principals.values() if p.trust] + [
            d for ds in self.world.resource_policies.values() for d in ds
        ]
        docs += [a.session_policy for a in self.world.associations if a.session_policy]
        keys: set[str] = set()
        for d in docs:
            for st in simulator.for_any_request(d.document)["Statement"]:
                for body in (st.get("Condition") or {}).values():
                    keys |= {str(k).lower() for k in body} if isinstance(body, dict) else set()
                    for vs in body.values() if isinstance(body, dict) else []:
                        keys |= {m.lower() for v in _as_list(vs) for m in _VAR.findall(str(v))}
                for field_ in ("Resource", "NotResource"):
                    keys |= {m.lower() for v in _as_list(st.get(field_)) for m in _VAR.findall(str(v))}
        return keys

    def context(self, s: Session) -> dict[str, Any]:
        acct = account_of(s.principal.arn) or ""
        ctx: dict[str, Any] = {
            "aws:PrincipalArn": s.principal.arn,
            "aws:PrincipalAccount": acct,
            "kms:CallerAccount": acct,
            "aws:PrincipalType": "AssumedRole" if ":role/" in s.principal.arn else "User",
            "aws:PrincipalIsAWSService": "false",
        }
        if s.principal.outsider:  # the stack's own principals are in the organization (left free); others are not
            ctx["aws:PrincipalOrgID"] = "o-not-this-organization"
        for k, v in {**s.principal.tags, **s.tags}.items():
            ctx[f"aws:PrincipalTag/{k}"] = v
        keep = {"aws:principalarn", "aws:principalaccount"}
        return {k: v for k, v in ctx.items() if k.lower() in self.referenced or k.lower() in keep}


_SA_GROUP = "system:serviceaccounts:"  # every service account of one namespace
_ANONYMOUS = ("system:anonymous", "system:unauthenticated")  # requests without credentials, when the API server admits them
_SERVICE_LINKED = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/aws-service-role/([a-z0-9.-]+\.amazonaws\.com)/[^/*?]+$")


def linked_service(arn: str, account: str | None) -> str | None:
    """The AWS service whose service-linked role of `account` `arn` is: AWS writes its trust policy, which
    admits that service alone and cannot be edited (https://docs.aws.amazon.com/IAM/latest/UserGuide/using-service-linked-roles.html)."""
    m = _SERVICE_LINKED.match(arn)
    return m.group(2) if m and m.group(1) == account else None


def _subject(kind: str, name: str) -> str:
    """What stands for a Kubernetes user or group as a principal (never an IAM ARN)."""
    return f"kubernetes-{kind.lower()}:{name}"


def stand_ins(p: Principal) -> tuple[str, ...]:
    """The labels of `p`'s managed policies whose text neither the stack nor the pack holds."""
    return tuple(d.label for d in [*p.documents, *(d for _, ds in p.groups for d in ds)] if d.stand_in)


def _merge(a: dict[str, set[str]], b: dict[str, set[str]]) -> dict[str, set[str]]:
    return {k: a.get(k, set()) | b.get(k, set()) for k in {*a, *b}}


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else ([] if value is None else [value])
