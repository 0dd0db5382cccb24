"""The tenants' shared role on the resource side: a tenant's key, silo bucket or secret that names the
role every tenant's pods hold opens itself to every tenant, unless the statement itself proves which
tenant's sessions it admits.

The shared (ABAC) role tells tenants apart only by the session tag EKS Pod Identity sets
(`kubernetes-namespace`) or a broker of the stack sets (`meridian-tenant`). Its own policies answer to
the tenant allowlist (tenancy.py); a resource policy or a KMS grant that names it directly reaches the
role's every session, whatever its own policies say. So each such Allow statement must carry the proof
itself: `aws:PrincipalTag/kubernetes-namespace` (or `aws:PrincipalTag/meridian-tenant`) equal to the
owner's namespace, under `StringEquals` or `StringLike` with that literal value (never negated, never
`...IfExists`, never a `ForAllValues:`/`ForAnyValue:` set operator, which hold vacuously when the key is
absent). A KMS grant carries no condition on the caller's tags (its constraints are on the encryption
context, which the caller chooses), so a grant to the shared role on a tenant's key is refused. A Deny
elsewhere in the resource's policy is not credited: the statement is proved on its own, as the
allowlist proves each statement of the role's own policies.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from access.arns import arns_of
from iamdoc import Statement, _Path, principals, read_statements
from ruleutil import (
    KMS_KEYS,
    ROLE,
    S3_BUCKETS,
    UNKNOWN,
    Stack,
    UnknownValueError,
    Unverifiable,
    dig,
    judge_each,
    judged_bucket,
    key_tenant,
    known,
    peek,
    session_role,
    stack_role,
    tags_of,
    truthy,
)

KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
GRANT = "aws:kms/grant:Grant"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"
POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
PROOF_KEYS = ("aws:principaltag/kubernetes-namespace", "aws:principaltag/meridian-tenant")
_SOUND_OPERATORS = ("stringequals", "stringlike")  # with the literal namespace: no wildcard, no variable
READS = (KEY_POLICY, GRANT, BUCKET_POLICY, *S3_BUCKETS, SECRET, SECRET_POLICY)


def association_session_problems(assoc: Any, role: str) -> list[str]:
    """What in a Pod Identity association of the shared role (`role`: its name or ARN) takes the session tags
    the role tells tenants apart by away from the tenant's sessions: `disableSessionTags`, a session policy (EKS
    takes one only with the tags off), or chaining on to another role (`targetRoleArn`). The platform's
    associations (tenant-role-isolated) and a cell's on its platform's role (the cell lane) are judged by it.
    Raises UnknownValueError for a setting unknown at preview."""
    out = []
    if truthy(dig(assoc.props, "disableSessionTags", default=False)):
        out.append(f"Pod identity association must keep session tags on: role {role} tells tenants apart by them")
    elif dig(assoc.props, "policy") is not None:
        out.append(
            f"Pod identity association must not carry a session policy: EKS accepts one only with "
            f"`disableSessionTags`, which removes the tags role {role} tells tenants apart by "
            "(guard each tenant's data in its bucket and key policies instead)"
        )
    if dig(assoc.props, "targetRoleArn") is not None:
        out.append(f"Pod identity association must not chain from role {role} to another role (`targetRoleArn`)")
    return out


class SharedRoles:
    """The roles every tenant's pods hold: the stack's own shared roles (by URN) and, in a stack that
    uses a role it does not define (a cell on its platform's tenant role), the role ARNs that tenant
    associations of more than one tenant name."""

    def __init__(self, stack: Stack, urns: set[str], tag: str):
        self.stack, self.urns = stack, urns
        holders: dict[str, set[str]] = {}
        for assoc in stack.of(POD_IDENTITY):
            arn, tenant = known(peek(assoc.props, "roleArn")), tags_of(assoc.props).get(tag)
            if isinstance(arn, str) and isinstance(tenant, str) and tenant:
                holders.setdefault(arn.lower(), set()).add(tenant)
        self.arns = {arn for arn, tenants in holders.items() if len(tenants) > 1}
        # the stack's own shared roles by the ARN the plan shows (IAM role names are case-insensitive)
        self.arns |= {a.lower() for r in stack.of(ROLE) if r.urn in urns for a in [arns_of(stack).of(r)] if a}
        self._tokens = self.arns | {r.name.lower() for r in stack.of(ROLE) if r.urn in urns}

    def may_name(self, text: Any) -> bool:
        """Whether a document's text could name a shared role: its ARN, its logical name (an auto-name holds it),
        or an `aws:PrincipalArn` condition (case-insensitive, as the matching below); False skips the parse."""
        if not isinstance(text, str):
            return True
        low = text.lower()
        return "principalarn" in low or any(t in low for t in self._tokens)

    def named(self, arn: Any) -> str | None:
        """`arn` itself if it names a shared role (exact ARN), else None."""
        if not isinstance(arn, str) or arn is UNKNOWN:
            return None
        if arn.lower() in self.arns:
            return arn
        session = session_role(arn.lower())  # a session of a shared role (a grant or policy may name one)
        if session and any(a.split(":")[4] == session[1] and a.rsplit("/", 1)[-1] == session[2] for a in self.arns):
            return arn
        role = stack_role(self.stack, arn)
        return arn if role is not None and role.urn in self.urns else None

    def in_statement(self, st: Statement) -> list[str]:
        """The shared roles an Allow statement grants to: named as principals, or admitted by `*` through
        an `aws:PrincipalArn` condition that matches one."""
        if not st.allow:
            return []
        named = [a for a in principals(st, "AWS") if self.named(a)]
        if st.principal == "*" or "*" in principals(st, "AWS"):
            for op, key, vals in st.conditions:
                if str(key).lower() == "aws:principalarn" and not op.lower().startswith(("arnnot", "stringnot")):
                    named += [v for v in vals if isinstance(v, str) and self._matches(v)]
        return named

    def _matches(self, pattern: str) -> bool:
        return bool(self.named(pattern)) or any(fnmatchcase(a, pattern.lower()) for a in self.arns)


def proves_tenant(st: Statement, namespace: str) -> bool:
    """The statement admits only sessions tagged with `namespace` (see the module's docstring)."""
    return any(
        str(key).lower() in PROOF_KEYS and op.lower() in _SOUND_OPERATORS and vals and all(v == namespace for v in vals)
        for op, key, vals in st.conditions
    )


def check_shared_role_on_tenant_data(
    stack: Stack, shared: SharedRoles, namespace_of: Any, tag: str
) -> list[tuple[str | None, Any]]:
    """`namespace_of(tenant)`: the tenant's namespace (raising `UnknownValueError` where unknown)."""
    if not shared.urns and not shared.arns:
        return []
    arns = arns_of(stack)
    keys = {arns.of(k): k for k in stack.of(*KMS_KEYS) if arns.of(k)}
    secrets = {arns.of(s): s for s in stack.of(SECRET) if arns.of(s)}

    def documents(holder: Any, owner: Any, what: str) -> list[tuple[str | None, Any]]:
        text = peek(holder.props, "policy")
        if text is None or not shared.may_name(text):
            return []
        try:
            document = read_statements(_Path(holder.props, "policy"))
            statements = [(st, roles) for st in document if (roles := shared.in_statement(st))]
        except UnknownValueError:
            return []  # tenant-data-access reports a resource policy unknown at preview
        if statements and owner is UNKNOWN:
            return [(holder.urn, Unverifiable.at(f"tags.{tag}", f"{what} grants the tenants' shared role: whose is it?"))]
        if not isinstance(owner, str) or not owner:
            return []
        out = []
        for st, roles in statements:
            namespace = namespace_of(owner)
            if namespace and proves_tenant(st, namespace):
                continue
            out.append(
                (
                    holder.urn,
                    f"{holder.resource_type.rsplit(':', 1)[-1]} {holder.name} ({what} of tenant {owner}) must not grant the "
                    f"tenants' shared role {roles[0]} ({st.label}) unless the statement pins "
                    f"`aws:PrincipalTag/kubernetes-namespace` to {namespace or 'the tenant namespace'} (`StringEquals`): every "
                    "tenant's pods hold that role, so the statement opens it to all of them (a Deny elsewhere in the policy "
                    "is not credited)",
                )
            )
        return out

    def key_owner(holder: Any) -> tuple[Any, Any]:
        arn = arns.key_named(stack, holder, "keyId")
        key = keys.get(arn) if arn else None
        return (key_tenant(stack, key, tag), key) if key is not None else (None, None)

    def judge_key_policy(kp: Any) -> list[tuple[str | None, Any]]:
        owner, key = key_owner(kp)
        return documents(kp, owner, f"key {key.name}") if key is not None else []

    def judge_grant(grant: Any) -> list[tuple[str | None, Any]]:
        role = shared.named(known(peek(grant.props, "granteePrincipal")))
        if not role:
            return []
        owner, key = key_owner(grant)
        if key is None or owner is None:
            return []  # no key of the plan: tenant-data-access judges the grant, or reports its unknown key
        if owner is UNKNOWN:
            return [(grant.urn, Unverifiable.at(f"tags.{tag}", f"whose key is {key.name}: a tenant's?"))]
        if not owner:
            return []
        return [
            (
                grant.urn,
                f"KMS grant {grant.name} on tenant {owner}'s key {key.name} must not name the tenants' shared role {role} "
                "as grantee: every tenant's pods hold that role, and a grant cannot require the caller's session tag (its "
                "constraints bind only the encryption context, which the caller chooses); grant to a role only the tenant "
                "holds, or add a key policy statement pinned to `aws:PrincipalTag/kubernetes-namespace` = "
                f"{namespace_of(owner) or 'its namespace'}",
            )
        ]

    def judge_bucket_policy(bp: Any) -> list[tuple[str | None, Any]]:
        bucket = judged_bucket(stack, bp)
        if bucket is None:
            return []
        return documents(bp, tags_of(bucket.props).get(tag), f"silo bucket {bucket.name}")

    def judge_secret_policy(sp: Any) -> list[tuple[str | None, Any]]:
        deps = stack.linked(sp, "secretArn", SECRET)
        secret = deps[0] if len(deps) == 1 else secrets.get(known(peek(sp.props, "secretArn")))
        return documents(sp, tags_of(secret.props).get(tag), f"secret {secret.name}") if secret is not None else []

    return (
        judge_each(stack.of(*KMS_KEYS), lambda k: documents(k, key_tenant(stack, k, tag), f"key {k.name}"))
        + judge_each(stack.of(KEY_POLICY), judge_key_policy)
        + judge_each(stack.of(GRANT), judge_grant)
        + judge_each(stack.of(*S3_BUCKETS), lambda b: documents(b, tags_of(b.props).get(tag), f"silo bucket {b.name}"))
        + judge_each(stack.of(BUCKET_POLICY), judge_bucket_policy)
        + judge_each(stack.of(SECRET), lambda s: documents(s, tags_of(s.props).get(tag), f"secret {s.name}"))
        + judge_each(stack.of(SECRET_POLICY), judge_secret_policy)
    )
