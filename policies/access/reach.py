"""Who can reach each tenant's data: every session (access.sessions) evaluated by principalmapper
against every tenant resource its documents could touch; a principal that may write its own
permissions (`iam:PutRolePolicy` / `AttachRolePolicy` on itself) holds every permission.

Candidate resources come from an index over resource ARNs (the literal prefix of each Allow
statement's resource, after substituting the session's tags; the `s3:prefix` a listing is limited
to; the `aws:ResourceTag` a statement requires) and over the principals resource policies name, so
the work grows with what each session can touch, not with principals x resources.
"""

from __future__ import annotations

import bisect
import re
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

from access import simulator
from access.arns import account_of
from access.sessions import _VAR, Origin, Principal, Session, Sessions, _as_list, stand_ins
from access.world import ADMIN, DataResource, Doc, World
from principals import SERVICE_SOURCE_KEYS, service_source_keys

ACTIONS = {
    "object": ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
    "listing": ("s3:ListBucket",),
    "key": ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:CreateGrant", "kms:PutKeyPolicy"),
    "secret": ("secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:PutResourcePolicy"),
}
SENSITIVE = tuple(a for acts in ACTIONS.values() for a in acts)
ESCALATE = {"role": ("iam:PutRolePolicy", "iam:AttachRolePolicy"), "user": ("iam:PutUserPolicy", "iam:AttachUserPolicy")}
PROBE = "meridian-probe-object"
_MAX_HOPS = 4
ONLY_BY = " (only by "  # how an escalation that only a managed policy of unknown text grants is told
DEPUTY_ACCOUNT = "999999999999"  # the account a confused deputy acts for: any but this one


@dataclass(frozen=True)
class Deputy:
    """An AWS service principal that a resource policy lets act on tenant data for any account:
    nothing in the statement (`aws:SourceAccount`, `aws:SourceArn`, ...) pins the request to a
    resource of this account, so another account's resource can make the service do it."""

    service: str
    resource: DataResource
    actions: tuple[str, ...]
    why: tuple[str, ...]  # the statements that allow it
    urn: str | None  # the document that opened it


_TAGGED = ("key", "secret")  # the kinds a statement's `aws:ResourceTag` condition limits


@dataclass(frozen=True)
class TagFilter:
    """Which keys and secrets a statement conditioned on `aws:ResourceTag/<k>` reaches: those that
    carry every (tag, value) of `wanted`; none at all when `none` (the condition compares with a
    tag the session lacks). Objects and listings are not limited by it."""

    wanted: tuple[tuple[str, str], ...] = ()
    none: bool = False

    def admits(self, r: DataResource) -> bool:
        if r.kind not in _TAGGED:
            return True
        return not self.none and all(pair in r.tags for pair in self.wanted)


@dataclass(frozen=True)
class Access:
    session: Session
    resource: DataResource
    actions: tuple[str, ...]
    target: str  # the ARN evaluated (an object key under the prefix)
    context: dict[str, Any]
    escalated: str = ""


class Reach(Sessions):
    def __init__(self, world: World, tenant: str | None = None):
        """`tenant`: only that tenant's resources, and AWS services' sessions too (the matrix);
        without it every tenant's, and no AWS service's (they act for the platform: the rule)."""
        super().__init__(world)
        self.tenant = tenant
        self._memo: dict[tuple, list[tuple[DataResource, tuple[str, ...], str, dict, str]]] = {}
        self._deputies: list[Deputy] | None = None
        self._index()

    # --- indexes ---------------------------------------------------------------------------

    def _index(self) -> None:
        # sorted by ARN for prefix ranges: objects and listings apart from keys and secrets, which
        # a statement may limit by resource tag (found through `by_tag` instead of a scan)
        self.by_arn = sorted((r for r in self.world.resources if r.kind not in _TAGGED), key=lambda r: r.arn)
        self.arns = [r.arn for r in self.by_arn]
        self.tagged_by_arn = sorted((r for r in self.world.resources if r.kind in _TAGGED), key=lambda r: r.arn)
        self.tagged_arns = [r.arn for r in self.tagged_by_arn]
        self.by_tag: dict[tuple[str, str], list[DataResource]] = {}
        for r in self.tagged_by_arn:
            for pair in set(r.tags):
                self.by_tag.setdefault(pair, []).append(r)
        self.tenant_of = {(r.arn, r.kind): r.tenant for r in self.world.resources}
        self.by_key = {(r.arn, r.kind): r for r in self.world.resources}  # as tenant_of: the last of a key wins
        self.objects: dict[str, list[DataResource]] = {}
        # bucket ARN -> its listings' prefixes, sorted, and prefix -> listings: a session limited to
        # `s3:prefix` values finds its listings by lookup, not by scanning every tenant's
        self.listing_prefixes: dict[str, list[str]] = {}
        self.listings: dict[tuple[str, str], list[DataResource]] = {}
        self.listings_of: dict[str, list[DataResource]] = {}
        self.unlisted: dict[str, list[DataResource]] = {}  # ARN -> its resources that are not listings
        for r in self.world.resources:
            if r.kind == "object":
                self.objects.setdefault(r.arn, []).append(r)
            if r.kind == "listing":
                self.listings.setdefault((r.arn, r.prefix), []).append(r)
                self.listings_of.setdefault(r.arn, []).append(r)
            else:
                self.unlisted.setdefault(r.arn, []).append(r)
        for arn, prefix in self.listings:
            self.listing_prefixes.setdefault(arn, []).append(prefix)
        for prefixes in self.listing_prefixes.values():
            prefixes.sort()
        self.policy_of: dict[str, str] = {}  # data resource ARN -> the ARN its resource policy hangs on
        self.governed: dict[str, list[DataResource]] = {}
        for r in self.world.resources:
            key = r.arn.split("/", 1)[0] if r.kind in ("object",) else r.arn
            self.policy_of[r.arn] = key
            self.governed.setdefault(key, []).append(r)
        self.named: dict[str, set[str]] = {}  # principal ARN or account -> resource-policy ARNs whose Allow names it
        self.open_to_all: set[str] = set()
        self.rp_actions: dict[str, tuple] = {}
        self.rp: dict[str, dict] = {}  # as outsiders meet them
        self.rp_own: dict[str, dict] = {}  # as the stack's own principals (in the organization) meet them
        self.services: dict[str, set[str]] = {}  # resource-policy ARN -> service principals its Allow statements name
        self.source_accounts: dict[str, set[str]] = {}  # resource-policy ARN -> accounts its service grants name as source
        self.source_examples: dict[str, set[str]] = {}  # resource-policy ARN -> a resource each service-set key may name
        for arn, docs in self.world.resource_policies.items():
            merged = {
                "Version": "2012-10-17",
                "Statement": [s for d in docs for s in simulator.for_any_request(d.document)["Statement"]],
            }
            self.rp[arn] = merged
            self.rp_actions[arn] = _action_patterns([merged])
            self.rp_own[arn] = {
                "Version": "2012-10-17",
                "Statement": [
                    s for d in docs for s in simulator.for_any_request(d.document, simulator.ORGANIZATION_KEYS)["Statement"]
                ],
            }
            for st in merged["Statement"]:
                if str(st.get("Effect", "")).lower() != "allow":
                    continue
                block = st.get("Principal")
                if isinstance(block, dict) and block.get("Service"):
                    self.services.setdefault(arn, set()).update(str(v) for v in _as_list(block["Service"]))
                    self.source_accounts.setdefault(arn, set()).update(_source_accounts(st))
                    self.source_examples.setdefault(arn, set()).update(_service_set_sources(st))
                if "NotPrincipal" in st or st.get("Principal") == "*":
                    self.open_to_all.add(arn)
                    continue
                aws = st.get("Principal", {}).get("AWS", []) if isinstance(st.get("Principal"), dict) else []
                for p in aws if isinstance(aws, list) else [aws]:
                    p = str(p)
                    self.named.setdefault(p, set()).add(arn)
                    acct = account_of(p)
                    if acct and p.endswith(":root"):
                        self.named.setdefault(acct, set()).add(arn)

    # --- what a session reaches ---------------------------------------------------------------

    def _escalation(self, s: Session) -> str:
        kind = "role" if ":role/" in s.principal.arn else "user"
        node = self.node(s)
        sp = s.session_policy.document if s.session_policy else None
        for action in ESCALATE[kind]:
            if simulator.authorized(node, action, s.principal.arn, self.context(s), session_policy=sp):
                unknown = stand_ins(s.principal)
                if unknown and not self._escalates_without_stand_ins(s, action, sp):
                    return f"{action} on itself{ONLY_BY}{'; '.join(unknown)})"
                return f"{action} on itself"
        return ""

    def _escalates_without_stand_ins(self, s: Session, action: str, sp: dict | None) -> bool:
        node = self.node(s, known_only=True)
        return simulator.authorized(node, action, s.principal.arn, self.context(s), session_policy=sp)

    def split(self, a: Access) -> tuple[Access | None, Access | None, tuple[str, ...]]:
        """`a` as what the documents the stack and the pack hold prove (its escalation kept only if
        they grant it too), the rest of it, and the labels of the managed policies of unknown text
        the rest is assumed from. A session obtained through such a policy proves nothing."""
        s = a.session
        unknown = stand_ins(s.principal)
        if s.assumed:
            return None, a, tuple(dict.fromkeys((*s.assumed, *unknown)))
        if not unknown:
            return a, None, ()
        escalated = a.escalated if ONLY_BY not in a.escalated else ""
        node = self.node(s, admin=bool(escalated), known_only=True)
        rp = (self.rp if s.principal.outsider else self.rp_own).get(self.policy_of[a.resource.arn])
        sp = s.session_policy.document if s.session_policy else None
        owner = self.world.account if rp else None
        granted = tuple(
            x
            for x in a.actions
            if simulator.authorized(node, x, a.target, a.context, resource_policy=rp, owner=owner, session_policy=sp)
        )
        rest = tuple(x for x in a.actions if x not in granted)
        return (
            replace(a, actions=granted, escalated=escalated) if granted else None,
            replace(a, actions=rest) if rest else None,
            unknown if rest else (),
        )

    def reach(self, s: Session) -> list[tuple[DataResource, tuple[str, ...], str, dict, str]]:
        key = (
            s.principal.arn,
            tuple(sorted(s.tags.items())),
            s.session_policy.urn if s.session_policy else None,
            s.principal.outsider,
        )
        if key not in self._memo:
            self._memo[key] = self._reach(s)
        return self._memo[key]

    def _reach(self, s: Session):
        escalated = "" if s.principal.outsider else self._escalation(s)
        node = self.node(s, admin=bool(escalated))
        ctx = self.context(s)
        candidates = self._candidates(s, admin=bool(escalated))
        sp = s.session_policy.document if s.session_policy else None
        # an action no Allow names (identity, resource policy) or the session policy drops is not asked
        docs = [d.document for d in s.principal.documents] + [d.document for _, ds in s.principal.groups for d in ds]
        identity = _action_patterns(docs + ([ADMIN] if escalated else []))
        session = _action_patterns([sp]) if sp is not None else None

        def granting(action: str) -> bool:
            return _grants(identity, action)

        def gate(action: str) -> bool:
            return session is None or _grants(session, action)

        out = []
        for (arn, kind), probes in sorted(candidates.items()):
            r = self.by_key[(arn, kind)]
            rctx = dict(ctx)
            extra = {"aws:ResourceAccount": self.world.account, "s3:ResourceAccount": self.world.account}
            extra |= {f"aws:ResourceTag/{k}": v for k, v in r.tags}
            if r.kind == "listing":
                extra["s3:prefix"] = r.prefix
            rctx |= {k: v for k, v in extra.items() if k.lower() in self.referenced}
            rp_arn = self.policy_of[r.arn]
            rp = (self.rp if s.principal.outsider else self.rp_own).get(rp_arn)
            if rp is None and account_of(s.principal.arn) != self.world.account:
                continue  # another account needs the resource's own policy to let it in
            actions = [a for a in ACTIONS[r.kind] if gate(a) and (granting(a) or _grants(self.rp_actions.get(rp_arn, ()), a))]
            if not actions:
                continue
            allowed: tuple[str, ...] = ()
            resource = r.arn
            for probe in sorted(probes) if r.kind == "object" else [""]:
                target = f"{r.arn}{probe}" if r.kind == "object" else r.arn
                granted = tuple(
                    a
                    for a in actions
                    if simulator.authorized(
                        node, a, target, rctx, resource_policy=rp, owner=self.world.account if rp else None, session_policy=sp
                    )
                )
                if len(granted) > len(allowed):
                    allowed, resource = granted, target
            if allowed:
                out.append((r, allowed, resource, rctx, escalated))
        return out

    def _candidates(self, s: Session, admin: bool) -> dict[tuple[str, str], set[str]]:
        """(resource ARN, kind) -> the object keys to probe, for what `s`'s documents or the
        resource policies naming it could grant; indexed by ARN prefix, listing prefix and
        resource tag, so a session costs what it can touch."""
        found: dict[tuple[str, str], set[str]] = {}
        docs = [d.document for d in s.principal.documents] + [d.document for _, ds in s.principal.groups for d in ds]
        if admin:
            docs.append(ADMIN)
        if account_of(s.principal.arn) != self.world.account:
            docs = []  # another account's own policies open nothing here: only resource policies naming it can
        for doc in docs:
            for st in self.narrowed(doc)["Statement"]:
                if str(st.get("Effect", "")).lower() != "allow" or not _may_grant(st):
                    continue
                patterns = ["*"] if "NotResource" in st else st.get("Resource", [])
                tag_filter = self._tag_filter(st, s)
                prefixes = self._listing_prefixes(st, s)
                for pattern in patterns if isinstance(patterns, list) else [patterns]:
                    bound = _substitute(str(pattern), s)
                    if bound is None:
                        continue
                    for r, probe in self._matching(bound, prefixes, tag_filter):
                        found.setdefault((r.arn, r.kind), set()).add(probe)
        acct = account_of(s.principal.arn) or ""
        rp_arns = set(self.open_to_all) | self.named.get(s.principal.arn, set())
        if acct != self.world.account:
            rp_arns |= self.named.get(acct, set()) | self.named.get(f"arn:aws:iam::{acct}:root", set())
        if self.tenant is not None:
            found = {k: v for k, v in found.items() if self.tenant_of.get(k) == self.tenant}
        for arn in rp_arns:
            patterns = [p for st in self.rp[arn]["Statement"] for p in _as_list(st.get("Resource"))]
            for r in self.governed.get(arn, []):
                if self.tenant is not None and r.tenant != self.tenant:
                    continue
                probes = found.setdefault((r.arn, r.kind), set())
                probes.add(PROBE)
                probes.update(_probe(p, r) for p in patterns if r.kind == "object" and _literal_prefix(p).startswith(r.arn))
        return found

    def _matching(
        self, pattern: str, listing_prefixes: list[str] | None, tags: TagFilter | None = None
    ) -> list[tuple[DataResource, str]]:
        """The resources `pattern` names (listings limited to `listing_prefixes`, keys and secrets
        to what `tags` admits), each with the object key to probe."""
        prefix = _literal_prefix(pattern)
        if prefix == pattern:  # an exact ARN: that bucket's listings, key or secret (objects are never named whole)
            named = [r for r in self.unlisted.get(pattern, []) if tags is None or tags.admits(r)]
            if listing_prefixes is None:
                named += self.listings_of.get(pattern, [])
            else:
                named += self._listings_within(pattern, listing_prefixes)
            return [(r, PROBE) for r in named]
        out: list[tuple[DataResource, str]] = []
        lo, hi = bisect.bisect_left(self.arns, prefix), bisect.bisect_left(self.arns, prefix + "\uffff")
        for r in self.by_arn[lo:hi]:
            if (
                r.kind != "listing"
                or listing_prefixes is None
                or any(p.startswith(r.prefix) or r.prefix.startswith(p) for p in listing_prefixes)
            ):
                out.append((r, PROBE))
        out += [(r, PROBE) for r in self._tagged_within(prefix, tags)]
        # a pattern under one tenant's prefix (".../tenants/t-acme/reports/*"): probe inside it
        cut = prefix
        while "/" in cut:
            cut = cut[: cut.rindex("/")]
            if cut + "/" == prefix:
                continue  # the pattern is the whole prefix: found above, the usual probe serves
            for r in self.objects.get(cut + "/", []):
                out.append((r, _probe(pattern, r)))
        return out

    def _tagged_within(self, prefix: str, tags: TagFilter | None) -> list[DataResource]:
        """The keys and secrets whose ARN starts with `prefix` that `tags` admits: by tag when it
        names one (a tenant's tag is on a tenant's few), by ARN range otherwise."""
        if tags is not None and tags.none:
            return []
        if tags is None or not tags.wanted:
            lo, hi = bisect.bisect_left(self.tagged_arns, prefix), bisect.bisect_left(self.tagged_arns, prefix + "\uffff")
            return self.tagged_by_arn[lo:hi]
        end = prefix + "\uffff"  # the same range as the bisection above
        return [r for r in self.by_tag.get(tags.wanted[0], []) if prefix <= r.arn < end and tags.admits(r)]

    def _listings_within(self, arn: str, listing_prefixes: list[str]) -> list[DataResource]:
        """The listings of bucket `arn` whose prefix and one of `listing_prefixes` overlap (one
        starts with the other), each once."""
        known = self.listing_prefixes.get(arn, [])
        hits: set[str] = set()
        for p in listing_prefixes:
            hits.update(p[:i] for i in range(len(p) + 1) if (arn, p[:i]) in self.listings)  # theirs is a prefix of p
            lo, hi = bisect.bisect_left(known, p), bisect.bisect_left(known, p + "\uffff")
            hits.update(known[lo:hi])  # p is a prefix of theirs
        return [r for h in sorted(hits) for r in self.listings[(arn, h)]]

    @staticmethod
    def _listing_prefixes(st: dict, s: Session) -> list[str] | None:
        """The `s3:prefix` values a statement is limited to (None: any prefix)."""
        values = []
        for op, body in (st.get("Condition") or {}).items():
            if (
                isinstance(body, dict)
                and "Not" not in op
                and op.split(":")[-1].replace("IfExists", "") in ("StringLike", "StringEquals")
            ):
                for k, vs in body.items():
                    if str(k).lower() == "s3:prefix":
                        values += [_literal_prefix(b) for v in _as_list(vs) if (b := _substitute(str(v), s)) is not None]
        return values or None

    @staticmethod
    def _tag_filter(st: dict, s: Session) -> TagFilter | None:
        """A statement conditioned on `aws:ResourceTag/k` equal to a value reaches only resources so tagged."""
        wanted: list[tuple[str, str]] = []
        for op, body in (st.get("Condition") or {}).items():
            if isinstance(body, dict) and op in ("StringEquals", "StringEqualsIgnoreCase"):
                for k, vs in body.items():
                    if str(k).lower().startswith("aws:resourcetag/"):
                        values = [_substitute(str(v), s) for v in _as_list(vs)]
                        if values == [None]:
                            return TagFilter(none=True)  # an absent tag equals nothing
                        if len(values) == 1 and values[0] is not None and not re.search(r"[*?]", values[0]):
                            wanted.append((str(k).split("/", 1)[1], values[0]))
        return TagFilter(tuple(wanted)) if wanted else None

    def why(self, a: Access, known_only: bool = False) -> tuple[tuple[str, ...], str | None]:
        """The statements that allow `a` (resource policy first), and the URN of the document that
        opened it; `known_only`: only those of documents whose text is known (for `split`'s first part)."""
        s, action, resource, ctx = a.session, a.actions[0], a.target, a.context
        node, rp_arn = self.node(s, admin=bool(a.escalated), known_only=known_only), self.policy_of[a.resource.arn]
        why, decided = [], None
        for d in self.world.resource_policies.get(rp_arn, []):
            for st in simulator.matching_statements(d.document, node, action, resource, ctx):
                principal = st.get("Principal")
                if (
                    principal == "*"
                    or "NotPrincipal" in st
                    or account_of(s.principal.arn) != self.world.account
                    or _names_exactly(principal, s.principal.arn)
                ):
                    why.append(f"{d.label}: statement {st.get('Sid') or '(no Sid)'} allows {action}")
                    decided = decided or d.urn
        for d in [*s.principal.documents, *[d for _, ds in s.principal.groups for d in ds]]:
            if d.stand_in:  # no statement to cite: the label says what it is taken to be
                if not known_only:
                    why.append(d.label)
                decided = decided or d.urn
                continue
            for st in simulator.matching_statements(d.document, node, action, resource, ctx):
                why.append(f"{d.label}: statement {st.get('Sid') or '(no Sid)'} allows {action}")
                decided = decided or d.urn
        if a.escalated:
            why.append(f"{s.principal.label} may rewrite its own permissions")
        return tuple(why), decided

    # --- the account's own principals outside the plan -------------------------------------------

    def account_principals(self) -> list[tuple[Access, tuple[str, ...]]]:
        """What a principal of the stack's account that the plan does not define (an administrator,
        an SSO or CI role) reaches of the tenant's data given identity policies that allow it: in its
        own account an identity policy suffices for objects, listings and secrets unless a resource
        policy denies it; a key only if its key policy lets the account's IAM decide (a statement
        naming the account's root). Each with the statements that let it (or what stands for them)."""
        acct = self.world.account
        who = f"principals of account {acct} outside the plan"
        p = Principal(
            f"arn:aws:iam::{acct}:role/a-principal-outside-this-stack",
            who,
            None,
            [Doc("their own IAM policies (any: the account's IAM decides)", None, ADMIN)],
        )
        s = Session(p, Origin("account", who), (who,))
        node, ctx = self.node(s), self.context(s)
        out = []
        for r in self.world.resources:
            if self.tenant is not None and r.tenant != self.tenant:
                continue
            rp_arn = self.policy_of[r.arn]
            rp = self.rp_own.get(rp_arn)
            target = f"{r.arn}{PROBE}" if r.kind == "object" else r.arn
            rctx = dict(ctx) | {"aws:ResourceAccount": acct, "s3:ResourceAccount": acct}
            rctx |= {f"aws:ResourceTag/{k}": v for k, v in r.tags} | ({"s3:prefix": r.prefix} if r.kind == "listing" else {})
            allowed = tuple(
                a
                for a in ACTIONS[r.kind]
                if simulator.authorized(node, a, target, rctx, resource_policy=rp, owner=acct if rp else None)
            )
            if not allowed:
                continue
            why = [
                f"{d.label}: statement {st.get('Sid') or '(no Sid)'} lets {_principals_of(st)} {allowed[0]}"
                for d in self.world.resource_policies.get(rp_arn, [])
                for st in simulator.matching_statements(d.document, node, allowed[0], target, rctx)
            ]
            if not why and r.kind != "key":  # a key's policy must allow even its own account: a statement is found above
                why = [f"their own IAM policies: in the account that owns it no {_resource_policy_of(r)} grant is needed"]
            out.append((Access(s, r, allowed, target, rctx), tuple(why)))
        return out

    # --- AWS services acting for another account -----------------------------------------------

    def deputies(self) -> list[Deputy]:
        if self._deputies is None:
            self._deputies = self._find_deputies()
        return self._deputies

    def _find_deputies(self) -> list[Deputy]:
        """Every service principal a tenant resource's policy lets act on the data for an account
        other than this one, asked of the evaluator twice: with the request's source (account,
        ARN, owner, organization) set to another account's, and with no source at all (services
        that send none, `...IfExists` and `Null` conditions)."""
        out = []
        for arn, services in sorted(self.services.items()):
            for r in self.governed.get(arn, []):
                if self.tenant is not None and r.tenant != self.tenant:
                    continue
                target = f"{r.arn}{PROBE}" if r.kind == "object" else r.arn
                for service in sorted(services):
                    contexts = self._deputy_contexts(service, r, self.source_accounts.get(arn, set()), arn)
                    actions = tuple(
                        a
                        for a in ACTIONS[r.kind]
                        if any(
                            simulator.service_allowed(service, a, target, ctx, self.rp[arn], self.world.account)
                            for ctx in contexts
                        )
                    )
                    if actions:
                        why, urn = self._deputy_why(arn, service, actions[0], target, contexts)
                        out.append(Deputy(service, r, actions, why, urn))
        return out

    def _deputy_contexts(self, service: str, r: DataResource, named: set[str], arn: str) -> list[dict[str, Any]]:
        """The request as another account's resource makes the service send it: from any account,
        from each foreign account the policy names as a source, and with no source at all."""
        prefix = service.split(".", 1)[0]
        base: dict[str, Any] = {
            "aws:PrincipalIsAWSService": "true",
            "aws:PrincipalServiceName": service,
            "aws:ResourceAccount": self.world.account,
            "s3:ResourceAccount": self.world.account,
            **{f"aws:ResourceTag/{k}": v for k, v in r.tags},
        }
        if r.kind == "listing":
            base["s3:prefix"] = r.prefix
        out = []
        set_keys = service_source_keys(service)
        for account in [DEPUTY_ACCOUNT, *sorted(named - {self.world.account})]:
            region = r.region or "us-east-1"
            source = (
                f"arn:aws:s3:::a-bucket-of-account-{account}"
                if prefix in ("s3", "logging")
                else f"arn:aws:logs:{region}:{account}:log-group:another-accounts-log-group"
                if prefix == "logs"
                else f"arn:aws:{prefix}:{region}:{account}:another-accounts-resource"
            )
            request = {
                **base,
                "aws:SourceAccount": account,
                "aws:SourceOwner": account,
                "aws:SourceArn": source,
                "aws:SourceOrgID": "o-not-this-organization",
            }
            # a key the service sets to the resource it acts for: each resource of that account the policy names, or any
            named_here = [a for a in sorted(self.source_examples.get(arn, set())) if account_of(a) == account]
            for value in named_here or ([source] if set_keys else []):
                out.append({**request, **dict.fromkeys(set_keys, value)})
            if not set_keys:
                out.append(request)
        return [*out, base]

    def _deputy_why(
        self, arn: str, service: str, action: str, target: str, contexts: list[dict[str, Any]]
    ) -> tuple[tuple[str, ...], str | None]:
        why, decided = [], None
        for d in self.world.resource_policies.get(arn, []):
            for ctx in contexts:
                found = simulator.service_statements(d.document, service, action, target, ctx)
                if found:
                    why += [f"{d.label}: statement {st.get('Sid') or '(no Sid)'} allows {action}" for st in found]
                    decided = decided or d.urn
                    break
        return tuple(dict.fromkeys(why)), decided

    # --- all of it ----------------------------------------------------------------------------

    def accesses(self) -> list[Access]:
        queue = deque(self.initial())
        workloads = [s for s in queue if s.workload is not None and not s.chained]
        queue.extend(self.bound_service_accounts(workloads))
        if self.tenant is not None:  # the matrix lists the cluster operators the rule takes as the platform's
            queue.extend(self.operators())
        seen: set[tuple] = set()
        out: list[Access] = []
        while queue:
            s = queue.popleft()
            if s.key() in seen:
                continue
            seen.add(s.key())
            if s.origin.kind == "service" and self.tenant is None:
                continue
            # an operator's own IAM policies are the account's row; a bound service account without a workload has none
            operator = (s.origin.kind == "operator" and s.workload is None) or s.principal.arn.startswith("kubernetes-")
            if not operator:  # (`account_principals`)
                for r, actions, target, ctx, escalated in self.reach(s):
                    out.append(Access(s, r, actions, target, ctx, escalated))
            if s.hops >= _MAX_HOPS:
                continue
            if not operator:
                queue.extend(self.chains(s))
            for cluster, how, namespaces in self.pod_creation(s):
                for w in workloads:
                    if (namespaces == "*" or w.workload.namespace in namespaces) and (
                        not cluster or not w.workload.cluster or cluster == w.workload.cluster
                    ):
                        if w.origin == s.origin:
                            continue
                        queue.append(
                            replace(
                                w,
                                origin=s.origin,
                                path=(*s.path, f"runs code in pods in {w.workload.namespace} ({how})", *w.path),
                                hops=s.hops + 1,
                            )
                        )
        return out


def _principals_of(st: dict) -> str:
    aws = st.get("Principal", {}).get("AWS") if isinstance(st.get("Principal"), dict) else st.get("Principal")
    return ", ".join(str(x) for x in _as_list(aws)) or "anyone"


def _resource_policy_of(r: DataResource) -> str:
    return "secret policy" if r.kind == "secret" else "bucket policy"


def _source_accounts(st: dict) -> set[str]:
    """Accounts a statement's conditions name as the request's source (account, owner, in a source
    ARN, or in a key the service sets to the resource it acts for)."""
    out = set()
    for body in (st.get("Condition") or {}).values():
        for k, vs in body.items() if isinstance(body, dict) else ():
            if str(k).lower() in ("aws:sourceaccount", "aws:sourceowner", "aws:sourcearn", *_SERVICE_SET):
                out |= {a for v in _as_list(vs) if (a := account_of(str(v)))}
    return out


_SERVICE_SET = {k for keys in SERVICE_SOURCE_KEYS.values() for k in keys}


def _service_set_sources(st: dict) -> set[str]:
    """A resource each value of a service-set key names (its wildcards filled in), to ask the evaluator with."""
    return {
        re.sub(r"[*?]", "x", str(v))
        for body in (st.get("Condition") or {}).values()
        if isinstance(body, dict)
        for k, vs in body.items()
        if str(k).lower() in _SERVICE_SET
        for v in _as_list(vs)
    }


def _action_patterns(docs: list[dict]) -> tuple:
    """The action patterns of the Allow statements of `docs`, compiled ("*" for a NotAction)."""
    out = set()
    for doc in docs:
        for st in _as_list(doc.get("Statement")):
            if isinstance(st, dict) and str(st.get("Effect", "")).lower() == "allow":
                out |= {"*"} if "NotAction" in st else {str(a).lower() for a in _as_list(st.get("Action"))}
    return tuple(re.compile("^" + re.escape(a).replace(r"\*", ".*").replace(r"\?", ".") + "$") for a in sorted(out))


def _grants(patterns: tuple, action: str) -> bool:
    action = action.lower()
    return any(p.match(action) for p in patterns)


def _may_grant(st: dict) -> bool:
    if "NotAction" in st:
        return True
    actions = st.get("Action", [])
    for a in actions if isinstance(actions, list) else [actions]:
        pattern = re.compile("^" + re.escape(str(a).lower()).replace(r"\*", ".*").replace(r"\?", ".") + "$")
        if any(pattern.match(x.lower()) for x in SENSITIVE):
            return True
    return False


def _substitute(pattern: str, s: Session) -> str | None:
    """The pattern with the session's tags filled in; None when it reads a principal tag the session
    lacks (IAM then matches nothing); any other variable is left open ("*")."""
    tags = {f"aws:principaltag/{k}".lower(): v for k, v in {**s.principal.tags, **s.tags}.items()}
    if any(m.lower().startswith("aws:principaltag/") and m.lower() not in tags for m in _VAR.findall(pattern)):
        return None
    return _VAR.sub(lambda m: tags.get(m.group(1).lower(), "*"), pattern)


def _probe(pattern: str, r: DataResource) -> str:
    """An object key under `r` that `pattern` matches (its wildcards filled in)."""
    return re.sub(r"[*?]", "x", pattern)[len(r.arn) :] or PROBE


def _literal_prefix(pattern: str) -> str:
    m = re.search(r"[*?]", pattern)
    return pattern[: m.start()] if m else pattern


def _names_exactly(principal: Any, arn: str) -> bool:
    aws = principal.get("AWS", []) if isinstance(principal, dict) else []
    return arn in (aws if isinstance(aws, list) else [aws])
