"""Security review 17's misses on the AWS resource side, replayed on the real plans through the analyzer:
the tenants' shared role named on a tenant's key, silo bucket or secret without the session-tag proof
(O22, O27, O28), a KMS grant naming its key by bare key ID (O25), an alias whose name claims a tenant
targeting another key (O23, C29), a cell's association or grant on its platform's tenant role (C22, C23),
a tenant-data bucket's server access logs sent out of the stack or region (R27). Each attack draws the named rule's
mandatory violation; each legitimate twin draws nothing."""

from __future__ import annotations

import json

import pytest

from .policydata import UNKNOWN
from .test_policy_review16 import (  # noqa: F401 (cell_judge: the cell's plan, a module fixture)
    ACCOUNT,
    DATA,
    ISOLATED,
    TENANT_ROLE,
    _cell_resource,
    acme_key_statement,
    cell_judge,
    key_arn,
    one,
    pool,
    role_arn,
)
from .test_policy_review17 import ACME_KEY, RESOURCE_SIDE, shared_role_on_acme_key

pytestmark = pytest.mark.slow  # the plans come from the previews fixture

ACME_SILO_POLICY = "us-us-east-1-t-acme-silo-tls-only"
BACKUP_ROLE = f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/backup.amazonaws.com/AWSServiceRoleForBackup"


def added(type_: str, name: str, inputs, near: str = ACME_KEY, near_type: str = "kms/key:Key"):
    """A new resource beside `near` (same parent and provider); `inputs` may be a function of the plan."""

    def mutate(resources):
        anchor = one(resources, near, near_type)
        resources.append(
            {
                **{k: anchor[k] for k in ("custom", "parent", "provider")},
                "urn": anchor["urn"].rsplit("::", 1)[0].rsplit("$", 1)[0] + f"${type_}::{name}",
                "type": type_,
                "name": name,
                "inputs": inputs(resources) if callable(inputs) else inputs,
                "dependencies": [],
                "propertyDependencies": {},
            }
        )

    return mutate


def grant(grantee, key_id=lambda rs: key_arn(ACME_KEY)(rs), **extra):
    return added(
        "aws:kms/grant:Grant",
        "acme-grant",
        lambda rs: {
            "keyId": key_id(rs),
            "granteePrincipal": grantee(rs) if callable(grantee) else grantee,
            "operations": ["Decrypt"],
            **extra,
        },
    )


def shared_role(resources) -> str:
    return role_arn(resources, TENANT_ROLE)


def silo_statement(condition=None):
    """acme's silo bucket policy: one more statement letting the shared role read the bucket's objects."""

    def mutate(resources):
        holder = one(resources, ACME_SILO_POLICY, "bucketPolicy")
        doc = json.loads(holder["inputs"]["policy"])
        st = {
            "Sid": "Shared",
            "Effect": "Allow",
            "Principal": {"AWS": shared_role(resources)},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{holder['inputs']['bucket']}/*",
        }
        doc["Statement"].append({**st, "Condition": condition} if condition else st)
        holder["inputs"]["policy"] = json.dumps(doc)

    return mutate


def tenant_secret(condition=None):
    """A secret of tenant acme whose policy lets the shared role read it."""

    def inputs(resources):
        st = {
            "Effect": "Allow",
            "Principal": {"AWS": shared_role(resources)},
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
        }
        return {
            "name": "acme-api-token",
            "kmsKeyId": key_arn(ACME_KEY)(resources),
            "tags": {"meridian:tenant": "acme"},
            "policy": json.dumps({"Version": "2012-10-17", "Statement": [{**st, "Condition": condition} if condition else st]}),
        }

    return added("aws:secretsmanager/secret:Secret", "acme-api-token", inputs)


def pinned(op: str, values) -> dict:
    return {op: {"aws:PrincipalTag/kubernetes-namespace": values}}


SHARED_ROLE_ATTACKS = [
    *[(f"{what}: every tenant's session reaches acme's key", m) for what, m in RESOURCE_SIDE],
    *[
        (
            f"O28 acme's key policy lets the shared role decrypt under {op} {values}",
            acme_key_statement(shared_role_on_acme_key(pinned(op, values))),
        )
        for op, values in [
            ("StringEqualsIfExists", "t-acme"),
            ("ForAllValues:StringEquals", "t-acme"),
            ("ForAnyValue:StringEquals", ["t-acme", "t-globex"]),
            ("StringNotEquals", "t-globex"),
            ("StringLike", "t-*"),
            ("StringEquals", ["t-acme", "t-globex"]),
        ]
    ],
    (
        "O28 acme's key policy admits `*` whose principal ARN is the shared role",
        acme_key_statement(
            lambda rs: {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"ArnLike": {"aws:PrincipalArn": shared_role(rs)}},
            }
        ),
    ),
    (
        "O22 a grant on acme's key by key ID to the shared role",
        grant(shared_role, key_id=lambda rs: key_arn(ACME_KEY)(rs).rsplit("/", 1)[1]),
    ),
    (
        "O22 a grant on acme's key by alias name to the shared role",
        grant(shared_role, key_id=lambda rs: "alias/meridian/us-us-east-1-t-acme"),
    ),
    (
        "O28 acme's key policy names the shared role with its name in upper case",
        acme_key_statement(
            lambda rs: {
                **shared_role_on_acme_key()(rs),
                "Principal": {"AWS": shared_role(rs).replace("tenant-identity-role", "TENANT-IDENTITY-ROLE")},
            }
        ),
    ),
    (
        "a grant to the shared role with encryption-context constraints",
        grant(shared_role, constraints=[{"encryptionContextSubset": {"tenant": "acme"}}]),
    ),
    ("acme's silo bucket policy lets the shared role read every object", silo_statement()),
    ("acme's silo bucket policy pins the shared role under IfExists", silo_statement(pinned("StringEqualsIfExists", "t-acme"))),
    ("a secret of acme's lets the shared role read it", tenant_secret()),
]
SHARED_ROLE_TWINS = [
    (
        "acme's key policy: the shared role for acme's pod sessions only",
        acme_key_statement(shared_role_on_acme_key(pinned("StringEquals", "t-acme"))),
    ),
    (
        "acme's key policy: the shared role for sessions the broker opens for acme",
        acme_key_statement(shared_role_on_acme_key({"StringEquals": {"aws:PrincipalTag/meridian-tenant": "t-acme"}})),
    ),
    ("acme's silo bucket policy: the shared role for acme's sessions only", silo_statement(pinned("StringEquals", "t-acme"))),
    (
        "L38 a grant on acme's key to the AWS Backup role, bound to acme's prefix",
        added(
            "aws:kms/grant:Grant",
            "acme-grant",
            lambda rs: {
                "keyId": key_arn(ACME_KEY)(rs),
                "granteePrincipal": BACKUP_ROLE,
                "operations": ["Decrypt"],
                "constraints": [{"encryptionContextSubset": {"aws:s3:arn": pool(rs) + "/tenants/t-acme/"}}],
            },
        ),
    ),
]


@pytest.mark.parametrize("what,mutation", SHARED_ROLE_ATTACKS, ids=[a[0] for a in SHARED_ROLE_ATTACKS])
def test_the_shared_role_on_a_tenants_resource_without_the_proof_is_a_violation(judge, what, mutation):
    found = judge(mutation)
    hits = [v for v in found if v.policy == ISOLATED and v.level == "mandatory" and "shared role" in v.message]
    assert hits and all(" must " in v.message for v in hits), (what, [(v.policy, v.level, v.message) for v in found])


@pytest.mark.parametrize("what,mutation", SHARED_ROLE_TWINS, ids=[t[0] for t in SHARED_ROLE_TWINS])
def test_the_shared_role_with_the_proof_passes_the_whole_pack(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what


def test_o25_a_grant_naming_its_key_by_bare_id_is_judged_as_that_key(judge):
    """The lb-controller (a platform workload) granted acme's key by key ID: judged as acme's key (it was an advisory)."""
    found = judge(
        grant(
            lambda rs: role_arn(rs, "us-us-east-1-lb-controller-role"), key_id=lambda rs: key_arn(ACME_KEY)(rs).rsplit("/", 1)[1]
        )
    )
    hits = [v for v in found if v.policy == DATA and v.level == "mandatory"]
    assert hits and all("tenant acme" in v.message.lower() for v in hits), [(v.policy, v.level, v.message) for v in found]
    assert not [v for v in found if v.level != "mandatory" and "KMS grant" in v.message]


def test_a_grant_to_a_role_session_is_judged_as_the_role_not_a_pack_crash(judge):
    """Review 19 S07 / L18: KMS takes an assumed-role ARN as a grantee; principalmapper takes users and
    roles only, and the whole analysis failed. The session is judged as its role: the shared tenant
    role's session on acme's key is refused like the role, and a CI session of another role draws what
    a grant to that role draws, no longer a crash."""

    def session_of(role):
        return lambda rs: (
            role_arn(rs, role).replace(":iam::", ":sts::").replace(":role/meridian/tenants/", ":assumed-role/") + "/ci"
        )

    found = judge(grant(session_of(TENANT_ROLE)))
    assert any(v.level == "mandatory" for v in found), [(v.policy, v.level, v.message) for v in found]
    ci = f"arn:aws:sts::{ACCOUNT}:assumed-role/meridian-deploy/ci"  # judged as its role, not a crash
    as_role = judge(grant(f"arn:aws:iam::{ACCOUNT}:role/meridian-deploy"))
    assert [(v.policy, v.level) for v in judge(grant(ci))] == [(v.policy, v.level) for v in as_role]


def test_a_grant_by_bare_id_of_no_key_the_plan_places_stays_an_advisory(judge):
    """Some keys of the plan (platform keys no value names by ARN) have no ARN at preview: an ID matching none
    of the placed keys may still be one of them, so the grant is reported, never passed."""
    found = judge(
        grant(
            lambda rs: role_arn(rs, "us-us-east-1-lb-controller-role"), key_id=lambda rs: "0f0f0f0f-1111-2222-3333-444455556666"
        )
    )
    assert [(v.policy, v.level) for v in found] == [(DATA, "advisory")], [(v.policy, v.level, v.message) for v in found]
    assert "KMS grant acme-grant's key" in found[0].message


def alias(name: str, target):
    """A KMS alias `name` on the key `target(resources)` names (an ARN), not built from it."""
    return added("aws:kms/alias:Alias", "lookalike", lambda rs: {"name": name, "targetKeyId": target(rs)})


def pool_key(resources) -> str:
    """The us-east-1 pool key's ARN, as the pool's encryption setting (built from it) spells it."""
    sse = one(resources, "us-us-east-1-tenant-pool-data-sse", "ServerSideEncryption")
    return sse["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]


ALIAS_ATTACKS = [
    (
        "O23 an alias named for acme targets globex's key",
        alias("alias/meridian/us-us-east-1-t-acme-archive", key_arn("us-us-east-1-t-globex-key")),
    ),
    (
        "an alias named for acme targets the pool's key",
        alias("alias/meridian/us-us-east-1-t-acme-next", pool_key),
    ),
    (
        "an alias named for acme targets a key outside the plan",
        alias("alias/t-acme", lambda rs: f"arn:aws:kms:us-east-1:{ACCOUNT}:key/0f0f0f0f-1111-2222-3333-444455556666"),
    ),
    (
        "an alias named for acme targets globex's key by key ID",
        alias("alias/meridian/t-acme", lambda rs: key_arn("us-us-east-1-t-globex-key")(rs).rsplit("/", 1)[1]),
    ),
]
ALIAS_TWINS = [
    ("a second alias named for acme on acme's own key", alias("alias/meridian/us-us-east-1-t-acme-archive", key_arn(ACME_KEY))),
    (
        "an alias naming no tenant on the pool's key",
        alias("alias/meridian/us-us-east-1-pool", pool_key),
    ),
    (
        "an alias whose name only contains a namespace's letters",
        alias("alias/meridian/cat-acmex", key_arn("us-us-east-1-t-globex-key")),
    ),
]


@pytest.mark.parametrize("what,mutation", ALIAS_ATTACKS, ids=[a[0] for a in ALIAS_ATTACKS])
def test_an_alias_claiming_a_tenant_on_another_key_is_a_violation(judge, what, mutation):
    found = judge(mutation)
    hits = [v for v in found if v.policy == DATA and v.level == "mandatory" and "KMS alias" in v.message]
    assert hits and all(" must target that tenant's own key" in v.message for v in hits), (
        what,
        [(v.policy, v.level, v.message) for v in found],
    )


@pytest.mark.parametrize("what,mutation", ALIAS_TWINS, ids=[t[0] for t in ALIAS_TWINS])
def test_an_alias_on_its_tenants_key_or_naming_none_passes(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what


def cell_alias(name: str, target):
    return lambda resources: resources.append(
        _cell_resource("aws:kms/alias:Alias", "lookalike", {"name": name, "targetKeyId": target(resources)})
    )


def test_c29_a_cell_alias_named_for_a_platform_tenant_on_a_cell_key_is_a_violation(cell_judge):  # noqa: F811
    found = cell_judge(cell_alias("alias/meridian/us-us-east-1-t-acme-v2", key_arn("us-us-east-1-t-wonka-key")))
    hits = [v for v in found if v.policy == DATA and v.level == "mandatory" and "KMS alias" in v.message]
    assert hits and "t-acme" in hits[0].message and "tenant wonka's key" in hits[0].message, [
        (v.policy, v.level, v.message) for v in found
    ]


def test_a_cell_alias_named_for_a_platform_tenant_on_a_key_outside_the_cell_is_an_advisory(cell_judge):  # noqa: F811
    """The platform's keys are not in the cell's plan: whether the target is acme's key only the platform's plan shows."""
    found = cell_judge(
        cell_alias(
            "alias/meridian/us-us-east-1-t-acme-v2",
            lambda rs: f"arn:aws:kms:us-east-1:{ACCOUNT}:key/c9a76d15-49d9-4957-ac9a-c9a76d1549d9",
        )
    )
    new = [v for v in found if "alias/meridian/us-us-east-1-t-acme-v2" in v.message]
    assert [(v.policy, v.level) for v in new] == [(DATA, "advisory")], [(v.policy, v.level, v.message) for v in found]


# --- a cell and its platform's tenant role (C22, C23) ----------------------------------------------

PLATFORM_ROLE = f"arn:aws:iam::{ACCOUNT}:role/meridian/tenants/us-us-east-1-tenant-identity-role-c13bfbf"
WONKA = "us-us-east-1-t-wonka-identity"
ASSOCIATION = "aws:eks/podIdentityAssociation:PodIdentityAssociation"


def wonka_role(arn: str, every: bool = False):
    """wonka's association (every us-east-1 association of the cell, if `every`) names `arn` as its role."""

    def mutate(resources):
        for r in resources:
            if r["type"] == ASSOCIATION and (r["name"] == WONKA or (every and "us-east-1" in r["name"])):
                r["inputs"]["roleArn"] = arn
                r["propertyDependencies"]["roleArn"] = []

    return mutate


C22_ATTACKS = [
    ("C22 another auto-name suffix than the cell's other associations", wonka_role(PLATFORM_ROLE.replace("c13bfbf", "deadbee"))),
    ("C22 the platform role's name on another path", wonka_role(PLATFORM_ROLE.replace("meridian/tenants/", "sandbox/"))),
    ("C22 the platform role's logical name without a suffix", wonka_role(PLATFORM_ROLE[:-8])),
    ("C22 the platform role's name in another partition", wonka_role(PLATFORM_ROLE.replace("arn:aws:", "arn:aws-cn:"))),
    ("C21 the platform role's name in a foreign account", wonka_role(PLATFORM_ROLE.replace(ACCOUNT, "999988887777"))),
]


@pytest.mark.parametrize("what,mutation", C22_ATTACKS, ids=[a[0] for a in C22_ATTACKS])
def test_c22_a_role_provably_not_the_platforms_is_a_lane_violation(cell_judge, what, mutation):  # noqa: F811
    found = cell_judge(mutation)
    hits = [v for v in found if v.policy == DATA and v.level == "mandatory" and "of a cell must name" in v.message]
    assert hits, (what, [(v.policy, v.level, v.message) for v in found])


def test_c22_one_suffix_for_every_association_is_an_advisory_naming_the_suffix(cell_judge):  # noqa: F811
    """Every association names `-deadbee`: nothing in the cell's plan or config tells which suffix the platform's
    `pulumi up` gave its role, so the verdict is an advisory naming that suffix, never a pass and never a violation."""
    found = cell_judge(wonka_role(PLATFORM_ROLE.replace("c13bfbf", "deadbee"), every=True))
    assert [v for v in found if v.level == "mandatory"] == [], [(v.policy, v.message) for v in found if v.level == "mandatory"]
    said = [v for v in found if "-deadbee" in v.message and "matches all the cell pins" in v.message]
    assert len(said) == 1 and "suffix `deadbee`" in said[0].message and "in platform stack 'us'" in said[0].message, [
        v.message for v in found
    ]


def test_l37_the_platforms_role_by_its_exact_arn_draws_no_violation(cell_judge):  # noqa: F811
    assert [(v.policy, v.message) for v in cell_judge(wonka_role(PLATFORM_ROLE)) if v.level == "mandatory"] == []


def cell_grant_on_role(type_: str, inputs: dict):
    return lambda resources: resources.append(_cell_resource(type_, "pf-role-extra", inputs))


POOL_READ = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": "arn:aws:s3:::us-us-east-1-tenant-pool-data-bucket-ed3f900/*",
            }
        ],
    }
)
C23_ATTACKS = [
    (
        "C23 an inline RolePolicy on the platform's tenant role by name",
        cell_grant_on_role("aws:iam/rolePolicy:RolePolicy", {"role": PLATFORM_ROLE.rsplit("/", 1)[1], "policy": POOL_READ}),
    ),
    (
        "C23 a managed policy attached to the platform's tenant role by ARN",
        cell_grant_on_role(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            {"role": PLATFORM_ROLE, "policyArn": "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"},
        ),
    ),
    (
        "C23 a PolicyAttachment naming a look-alike of the platform's tenant role",
        cell_grant_on_role(
            "aws:iam/policyAttachment:PolicyAttachment",
            {"roles": ["us-us-west-2-tenant-identity-role-0000000"], "policyArn": f"arn:aws:iam::{ACCOUNT}:policy/x"},
        ),
    ),
]


@pytest.mark.parametrize("what,mutation", C23_ATTACKS, ids=[a[0] for a in C23_ATTACKS])
def test_c23_a_cell_changing_its_platforms_tenant_role_is_a_violation(cell_judge, what, mutation):  # noqa: F811
    found = cell_judge(mutation)
    hits = [v for v in found if v.policy == DATA and v.level == "mandatory" and "must not change the permissions" in v.message]
    assert hits, (what, [(v.policy, v.level, v.message) for v in found])
    assert not [v for v in found if "reaches no tenant data" in v.message], what  # the old, wrong advisory


# --- server access logs of tenant-data buckets (R27) -----------------------------------------------


def bucket_name(resources, logical: str) -> str:
    """A bucket's physical name as the plan spells it (given, or the auto-name a setting built from it names)."""
    bucket = one(resources, logical, "s3/bucket:Bucket")
    if bucket["inputs"].get("bucket"):
        return bucket["inputs"]["bucket"]
    return next(
        r["inputs"]["bucket"]
        for r in resources
        if bucket["urn"] in r["propertyDependencies"].get("bucket", []) and isinstance(r["inputs"].get("bucket"), str)
    )


POOL_BUCKET = "us-us-east-1-tenant-pool-data-bucket"
LOG_BUCKET = "us-use1-lb-logs-bucket"


def logging_of(source: str, target, type_: str = "aws:s3/bucketLoggingV2:BucketLoggingV2"):
    return added(
        type_,
        "access-logs",
        lambda rs: {"bucket": bucket_name(rs, source), "targetBucket": target(rs), "targetPrefix": "logs/"},
        near=source,
        near_type="s3/bucket:Bucket",
    )


def inline_logging(source: str, target):
    def mutate(resources):
        one(resources, source, "s3/bucket:Bucket")["inputs"]["logging"] = {
            "targetBucket": target(resources),
            "targetPrefix": "l/",
        }

    return mutate


ACCESS_LOG_ATTACKS = [
    (
        "R27 the pool's access logs to another account's bucket (BucketLoggingV2)",
        logging_of(POOL_BUCKET, lambda rs: "attacker-logs-eu"),
    ),
    (
        "R27b the pool's access logs to another account's bucket (BucketLogging)",
        logging_of(POOL_BUCKET, lambda rs: "attacker-logs-eu", "aws:s3/bucketLogging:BucketLogging"),
    ),
    (
        "the pool's access logs to the log bucket of the other region",
        logging_of(POOL_BUCKET, lambda rs: bucket_name(rs, "us-usw2-lb-logs-bucket")),
    ),
    (
        "the pool's access logs into acme's silo bucket",
        logging_of(POOL_BUCKET, lambda rs: bucket_name(rs, "us-us-east-1-t-acme-silo-bucket")),
    ),
    (
        "acme's silo access logs into the pool",
        logging_of("us-us-east-1-t-acme-silo-bucket", lambda rs: bucket_name(rs, POOL_BUCKET)),
    ),
    ("the pool's inline logging to another account's bucket", inline_logging(POOL_BUCKET, lambda rs: "attacker-logs-eu")),
]


@pytest.mark.parametrize("what,mutation", ACCESS_LOG_ATTACKS, ids=[a[0] for a in ACCESS_LOG_ATTACKS])
def test_r27_a_tenant_data_buckets_access_logs_leaving_the_stack_or_region_are_a_violation(judge, what, mutation):
    found = judge(mutation)
    hits = [v for v in found if v.policy == DATA and v.level == "mandatory" and "server access logs" in v.message]
    assert hits and all(" must " in v.message for v in hits), (what, [(v.policy, v.level, v.message) for v in found])


def test_r27_a_target_unknown_at_preview_is_an_advisory(judge):
    found = judge(logging_of(POOL_BUCKET, lambda rs: UNKNOWN))
    said = [v for v in found if v.policy == DATA and "targetBucket" in v.message]
    assert [v.level for v in said] == ["advisory"], [(v.policy, v.level, v.message) for v in found]


def test_the_pools_access_logs_to_the_regions_log_bucket_pass(judge):
    found = judge(logging_of(POOL_BUCKET, lambda rs: bucket_name(rs, LOG_BUCKET)))
    assert [(v.policy, v.message) for v in found if v.policy == DATA or v.level == "mandatory"] == []


def wonka_key_statement(condition=None):
    """wonka's (a cell tenant's) key policy: one more statement letting the platform's tenant role decrypt."""

    def mutate(resources):
        key = one(resources, "us-us-east-1-t-wonka-key", "kms/key:Key")
        doc = json.loads(key["inputs"]["policy"])
        st = {"Sid": "Shared", "Effect": "Allow", "Principal": {"AWS": PLATFORM_ROLE}, "Action": "kms:Decrypt", "Resource": "*"}
        doc["Statement"].append({**st, "Condition": condition} if condition else st)
        key["inputs"]["policy"] = json.dumps(doc)

    return mutate


def test_a_cell_tenants_key_opened_to_the_platforms_tenant_role_needs_the_proof(cell_judge):  # noqa: F811
    """In a cell the shared role is the platform's (not in the plan): the role its tenants' associations all name."""
    found = cell_judge(wonka_key_statement())
    assert [v for v in found if v.policy == ISOLATED and v.level == "mandatory" and "shared role" in v.message], [
        (v.policy, v.level, v.message) for v in found
    ]
    pinned_to_wonka = cell_judge(wonka_key_statement(pinned("StringEquals", "t-wonka")))
    assert [(v.policy, v.message) for v in pinned_to_wonka if v.level == "mandatory"] == []
