"""The access-side bypasses the last security review left open, written as an attacker would, each
with the legitimate setup beside it that must still pass (on `access.tenancy_stack`, both designs):

- a Pod Identity association whose `roleArn` / `targetRoleArn` names a role the stack does not
  define (another account's, or one of this account outside the plan);
- a bucket policy or ACL granting a canonical user ID (`CanonicalUser`, or written as `AWS`), a
  public canned ACL, an ACL grant to an e-mail grantee;
- a service principal granted tenant data with nothing pinning the request's source to this
  account (a confused deputy), including the pins that do not hold (`...IfExists`, `ArnLike` on
  every bucket);
- the platform's database secret read by a tenant role (identity or resource policy, or `*` within
  the organisation), and a tenant role reading another tenant's settings secret;
- a RolePolicy / attachment granting tenant data to a role the plan does not define.
"""

from __future__ import annotations

from .access import (
    BROKER_ARN,
    CLUSTER,
    FOREIGN,
    KEY_ARNS,
    POOL,
    POOL_ARN,
    ROLE,
    SECRET_ARN,
    TENANT_ROLE_ARN,
    _doc,
    _key_policy,
)
from .base import ACCOUNT, PRIMARY, Mutation, Resources, add, add_statement, resource, set_input, stack_tags, together, urn

SECRET = "aws:secretsmanager/secret:Secret"
DB_SECRET_ARN = f"arn:aws:secretsmanager:{PRIMARY}:{ACCOUNT}:secret:db-app-credential-Zx81Qp"
CANONICAL = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"
OWNER_CANONICAL = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
POOL_OBJECTS = f"{POOL_ARN}/*"


def _add(*items: dict) -> Mutation:
    def mutate(resources: Resources) -> None:
        for r in items:
            add(r)(resources)

    return mutate


# --- 1. pod identity: roles the stack does not define -------------------------------------------


def _association(name: str, namespace: str, sa: str, role_arn: str) -> Mutation:
    return add(
        resource(
            "aws:eks/podIdentityAssociation:PodIdentityAssociation",
            name,
            {"clusterName": CLUSTER, "namespace": namespace, "serviceAccount": sa, "roleArn": role_arn},
        )
    )


def _reporting_role(trusted: str) -> Mutation:
    """A platform role of the stack that the broker may chain into, allowed CloudWatch only."""
    name = "reporting"
    return _add(
        resource(
            ROLE,
            "reporting-role",
            {
                "name": name,
                "assumeRolePolicy": _doc(
                    {"Effect": "Allow", "Principal": {"AWS": trusted}, "Action": ["sts:AssumeRole", "sts:TagSession"]}
                ),
            },
        ),
        resource(
            "aws:iam/rolePolicy:RolePolicy",
            "reporting-access",
            {"role": name, "policy": _doc({"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"})},
            deps={"role": [urn(ROLE, "reporting-role")]},
        ),
    )


REPORTING_ARN = f"arn:aws:iam::{ACCOUNT}:role/reporting"

# --- 2./3. bucket policies and ACLs -------------------------------------------------------------


def _pool_acl(name: str, grants: list[dict], owner: str = OWNER_CANONICAL) -> Mutation:
    return add(
        resource(
            "aws:s3/bucketAcl:BucketAcl",
            name,
            {"bucket": POOL, "accessControlPolicy": {"owner": {"id": owner}, "grants": grants}},
            deps={"bucket": [urn("aws:s3/bucket:Bucket", "pool-bucket")]},
        )
    )


def _grant(permission: str, **grantee) -> dict:
    return {"permission": permission, "grantee": grantee}


def _service_put(service: str, condition: dict | None = None, sid: str = "ServiceWrites") -> Mutation:
    st = {"Sid": sid, "Effect": "Allow", "Principal": {"Service": service}, "Action": "s3:PutObject", "Resource": POOL_OBJECTS}
    if condition:
        st["Condition"] = condition
    return add_statement("pool-policy", st)


def _key_service(service: str, condition: dict | None = None) -> Mutation:
    st = {
        "Sid": "ServiceUsesKey",
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
    }
    if condition:
        st["Condition"] = condition
    return _key_policy("acme", st)


PINNED = {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {"aws:SourceArn": f"arn:aws:logs:{PRIMARY}:{ACCOUNT}:*"}}

# --- 4. secrets ------------------------------------------------------------------------------------


def _platform_secret() -> Mutation:
    """The platform's database secret (no tenant tag), its ARN visible through its version as in the program."""
    secret = resource(SECRET, "db-app-credential", {"kmsKeyId": "alias/aws/secretsmanager"})
    version = resource(
        "aws:secretsmanager/secretVersion:SecretVersion",
        "db-app-credential-v1",
        {"secretId": DB_SECRET_ARN, "secretString": "[secret]"},
        deps={"secretId": [secret["urn"]]},
    )
    return _add(secret, version)


def _tenant_irsa_role(tenant: str, *statements: dict, secret_deps: list[str] = ()) -> Mutation:
    """A role tagged for `tenant`, assumable by its own service account (IRSA), with `statements`."""
    oidc = "oidc.eks.us-east-1.amazonaws.com/id/ABC"
    name = f"t-{tenant}-reader"
    trust = {
        "Effect": "Allow",
        "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{oidc}"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{oidc}:sub": f"system:serviceaccount:t-{tenant}:{tenant}-app"}},
    }
    role = resource(
        ROLE,
        f"{name}-role",
        {"name": name, "assumeRolePolicy": _doc(trust), "tags": stack_tags(PRIMARY, **{"meridian:tenant": tenant})},
    )
    deps = {"role": [role["urn"]], **({"policy": list(secret_deps)} if secret_deps else {})}
    return _add(
        role, resource("aws:iam/rolePolicy:RolePolicy", f"{name}-access", {"role": name, "policy": _doc(*statements)}, deps=deps)
    )


READ_DB_SECRET = {"Sid": "ReadDb", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": DB_SECRET_ARN}


def _db_secret_policy(*statements: dict) -> Mutation:
    return add(
        resource(
            "aws:secretsmanager/secretPolicy:SecretPolicy",
            "db-app-credential-policy",
            {"secretArn": DB_SECRET_ARN, "policy": _doc(*statements)},
            deps={"secretArn": [urn(SECRET, "db-app-credential")]},
        )
    )


# --- 5. grants to roles the plan does not define ---------------------------------------------------


def _outside_role_policy(role: str, *statements: dict) -> Mutation:
    return add(
        resource(
            "aws:iam/rolePolicy:RolePolicy", f"{role.rsplit('/', 1)[-1]}-inline", {"role": role, "policy": _doc(*statements)}
        )
    )


BYPASSES: list[tuple[str, Mutation]] = [
    (
        "a tenant's pod identity association chaining to another account's role (targetRoleArn)",
        set_input("t-acme-identity", "targetRoleArn", f"arn:aws:iam::{FOREIGN}:role/exfil"),
    ),
    (
        "the broker's association chaining to a role of this account the plan does not define",
        set_input("broker-identity", "targetRoleArn", f"arn:aws:iam::{ACCOUNT}:role/ops-admin"),
    ),
    (
        "a pod identity association in t-acme whose roleArn is another account's role",
        _association("acme-partner", "t-acme", "acme-app", f"arn:aws:iam::{FOREIGN}:role/partner"),
    ),
    (
        "a pool bucket policy granting a CanonicalUser s3:GetObject",
        add_statement(
            "pool-policy",
            {
                "Sid": "Partner",
                "Effect": "Allow",
                "Principal": {"CanonicalUser": CANONICAL},
                "Action": "s3:GetObject",
                "Resource": POOL_OBJECTS,
            },
        ),
    ),
    (
        "a pool bucket policy granting a canonical user ID written as AWS",
        add_statement(
            "pool-policy",
            {
                "Sid": "Partner",
                "Effect": "Allow",
                "Principal": {"AWS": CANONICAL},
                "Action": "s3:GetObject",
                "Resource": POOL_OBJECTS,
            },
        ),
    ),
    (
        "a pool bucket ACL granting WRITE to another canonical user",
        _pool_acl(
            "pool-acl",
            [
                _grant("FULL_CONTROL", type="CanonicalUser", id=OWNER_CANONICAL),
                _grant("WRITE", type="CanonicalUser", id=CANONICAL),
            ],
        ),
    ),
    (
        "a pool bucket ACL granting READ to an e-mail grantee",
        _pool_acl("pool-acl", [_grant("READ", type="AmazonCustomerByEmail", emailAddress="x@example.com")]),
    ),
    ("the pool bucket's canned ACL public-read-write", set_input("pool-bucket", "acl", "public-read-write")),
    ("the pool bucket's canned ACL authenticated-read", set_input("pool-bucket", "acl", "authenticated-read")),
    ("S3 (inventory, logging) granted PutObject on the pool with no condition", _service_put("s3.amazonaws.com")),
    ("log delivery granted PutObject on the pool with no condition", _service_put("delivery.logs.amazonaws.com")),
    (
        "a service grant pinned only by StringEqualsIfExists aws:SourceAccount",
        _service_put("logging.s3.amazonaws.com", {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT}}),
    ),
    (
        "a service grant pinned by ArnLike aws:SourceArn on every bucket",
        _service_put("s3.amazonaws.com", {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"}}),
    ),
    ("acme's key policy letting CloudWatch Logs use the key with no condition", _key_service("logs.amazonaws.com")),
    (
        "acme's key policy letting SNS use the key for another account",
        _key_service("sns.amazonaws.com", {"StringEquals": {"aws:SourceAccount": FOREIGN}}),
    ),
    (
        "a tenant role reading the platform's database secret (identity policy)",
        together(_platform_secret(), _tenant_irsa_role("acme", READ_DB_SECRET, secret_deps=[urn(SECRET, "db-app-credential")])),
    ),
    (
        "the platform's database secret policy naming the tenant role",
        together(
            _platform_secret(),
            _db_secret_policy(
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": TENANT_ROLE_ARN},
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                }
            ),
        ),
    ),
    (
        "the platform's database secret policy open to the organisation (tenant roles are in it)",
        together(
            _platform_secret(),
            _db_secret_policy(
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}},
                }
            ),
        ),
    ),
    (
        "globex's role reading acme's settings secret",
        _tenant_irsa_role(
            "globex",
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET_ARN},
            secret_deps=[urn(SECRET, "t-acme-settings")],
        ),
    ),
    (
        "a RolePolicy reading the pool for a role named outside the plan",
        _outside_role_policy("data-export", {"Effect": "Allow", "Action": "s3:GetObject", "Resource": POOL_OBJECTS}),
    ),
    (
        "a RolePolicy with kms:Decrypt on globex's key for a role ARN outside the plan",
        _outside_role_policy(
            f"arn:aws:iam::{ACCOUNT}:role/batch", {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY_ARNS["globex"]}
        ),
    ),
    (
        "AmazonS3ReadOnlyAccess attached to a role outside the plan",
        add(
            resource(
                "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                "export-ro",
                {"role": "data-export", "policyArn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"},
            )
        ),
    ),
    (
        "a PolicyAttachment of AmazonS3FullAccess listing a role outside the plan",
        add(
            resource(
                "aws:iam/policyAttachment:PolicyAttachment",
                "s3-full",
                {"roles": ["data-export"], "policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"},
            )
        ),
    ),
    (
        "an unknown AWS-managed policy (taken as every action) attached to a role outside the plan",
        add(
            resource(
                "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
                "outside-cw",
                {"role": "metrics-writer", "policyArn": "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"},
            )
        ),
    ),
]

TWINS: list[tuple[str, Mutation]] = [
    (
        "the broker's association chaining to a role the stack defines and judges",
        together(_reporting_role(BROKER_ARN), set_input("broker-identity", "targetRoleArn", REPORTING_ARN)),
    ),
    (
        "a pool bucket ACL granting FULL_CONTROL to its owner only",
        _pool_acl("pool-acl", [_grant("FULL_CONTROL", type="CanonicalUser", id=OWNER_CANONICAL)]),
    ),
    ("the pool bucket's canned ACL private", set_input("pool-bucket", "acl", "private")),
    ("a service grant pinned by aws:SourceAccount and aws:SourceArn", _service_put("delivery.logs.amazonaws.com", PINNED)),
    (
        "S3 inventory writing into the pool from one named bucket of this account",
        _service_put(
            "s3.amazonaws.com",
            {
                "StringEquals": {"aws:SourceAccount": ACCOUNT},
                "ArnEquals": {"aws:SourceArn": "arn:aws:s3:::inventory-source-1234567"},
            },
        ),
    ),
    (
        "acme's key policy letting CloudWatch Logs use the key for this account",
        _key_service("logs.amazonaws.com", {"StringEquals": {"aws:SourceAccount": ACCOUNT}}),
    ),
    (
        "the broker reading the platform's database secret",
        together(
            _platform_secret(),
            add_statement("broker-assume", {"Sid": "ReadDb", **{k: v for k, v in READ_DB_SECRET.items() if k != "Sid"}}),
        ),
    ),
    (
        "the platform's database secret policy naming the broker",
        together(
            _platform_secret(),
            _db_secret_policy(
                {"Effect": "Allow", "Principal": {"AWS": BROKER_ARN}, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
            ),
        ),
    ),
    (
        "acme's role reading acme's own settings secret",
        _tenant_irsa_role(
            "acme",
            {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": SECRET_ARN},
            secret_deps=[urn(SECRET, "t-acme-settings")],
        ),
    ),
]

# Reached only in the design the program uses: in the session-policy design each tenant session's
# policy allows no secretsmanager action, and a session policy limits what a resource policy grants
# to the role's ARN (the evaluator applies it, as AWS does).
TAGGED_BROKER_ONLY = frozenset(
    {
        "the platform's database secret policy naming the tenant role",
        "the platform's database secret policy open to the organisation (tenant roles are in it)",
    }
)

# a grant to a role outside the plan that reaches no tenant data: an advisory (who holds it is unknown), never silent
ADVISORIES: list[tuple[str, Mutation]] = [
    (
        "a RolePolicy allowing CloudWatch for a role named outside the plan",
        _outside_role_policy("metrics-writer", {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"}),
    ),
]


UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's value for an output unknown at preview

# values that decide these new paths but are only known after apply: an advisory each, never silence
UNKNOWNS: list[tuple[str, Mutation]] = [
    ("a tenant association's targetRoleArn unknown at preview", set_input("t-acme-identity", "targetRoleArn", UNKNOWN)),
    (
        "a RolePolicy whose role is unknown at preview",
        add(
            resource(
                "aws:iam/rolePolicy:RolePolicy",
                "late-inline",
                {"role": UNKNOWN, "policy": _doc({"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"})},
            )
        ),
    ),
]


def external_role_listed(config: dict) -> dict:
    """The rule's config with the foreign target of the first bypass reviewed and listed."""
    return {**config, "podIdentityExternalRoles": [f"arn:aws:iam::{FOREIGN}:role/exfil"]}


__all__ = ["ADVISORIES", "BYPASSES", "TAGGED_BROKER_ONLY", "TWINS", "UNKNOWNS", "external_role_listed"]
