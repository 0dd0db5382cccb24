"""The tenant data path: each tenant's objects in its own bucket/prefix, under its own KMS key,
reached only through its own session, in the sandbox and in the plan.

Sandbox half: `meridian sandbox up` with its moto stand-in (IAM enforced after setup); objects go
through the front door (HAProxy) to the service, which assumes the tenant's role per request.
What moto enforces is asserted here (identity policies on Action/Resource, unknown keys refused,
the role trust's principal); what only AWS evaluates (bucket policies, session policies and tags,
`${aws:PrincipalTag/...}`, KMS key use) is proven on the plan by the policy pack and the statement
tests below, and listed in docs/tenancy-and-cost.md.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from meridian.sandbox import manifest as mf
from tests.helpers import require_sandbox_parts, run_meridian

STACK = "us"


# --- the plan's documents (no sandbox needed) -------------------------------------------------------


def test_pool_bucket_policy_binds_tenant_objects_to_tenant_sessions_and_named_keys():
    from components.bucket import KMS_KEY_HEADER, TenantDataRules, bucket_policy

    doc = json.loads(bucket_policy("arn:aws:s3:::pool", TenantDataRules()))
    by_sid = {s["Sid"]: s for s in doc["Statement"]}
    assert all(s["Effect"] == "Deny" and s["Principal"] == "*" for s in doc["Statement"])
    assert by_sid["TenantWritesNameTheirKey"]["Resource"] == "arn:aws:s3:::pool/tenants/*"
    assert by_sid["TenantWritesNameTheirKey"]["Condition"] == {"Null": {KMS_KEY_HEADER: "true"}}
    assert by_sid["TenantWritesUseKms"]["Condition"] == {"StringNotEquals": {"s3:x-amz-server-side-encryption": "aws:kms"}}
    # a writer that is neither a tenant pod nor a session the broker opened for a tenant
    assert by_sid["OnlyTenantSessionsWriteTenantData"]["Condition"] == {
        "StringNotLike": {"aws:PrincipalTag/kubernetes-namespace": "t-*"},
        "Null": {"aws:PrincipalTag/meridian-tenant": "true"},
    }
    stay = by_sid["TenantSessionsStayInTheirPrefix"]
    assert stay["NotResource"] == "arn:aws:s3:::pool/tenants/${aws:PrincipalTag/kubernetes-namespace}/*"
    assert stay["Condition"] == {"StringLike": {"aws:PrincipalTag/kubernetes-namespace": "t-*"}}
    assert "s3:PutObject" in stay["Action"] and "s3:GetObject" in stay["Action"]
    brokered = by_sid["BrokeredSessionsStayInTheirTenantsPrefix"]
    assert brokered["NotResource"] == "arn:aws:s3:::pool/tenants/${aws:PrincipalTag/meridian-tenant}/*"
    assert brokered["Condition"] == {"Null": {"aws:PrincipalTag/meridian-tenant": "false"}}
    untagged = by_sid["TenantRoleSessionsNameATenant"]
    assert untagged["Resource"] == "arn:aws:s3:::pool/*"
    assert untagged["Condition"]["ArnLike"] == {"aws:PrincipalArn": "arn:aws:iam::*:role/meridian/tenants/*"}
    assert brokered["Action"] == stay["Action"] == untagged["Action"]
    assert "TenantWritesUseTheTenantKey" not in by_sid  # a pool has many tenants: the sessions bind the key
    assert len(json.dumps(doc, separators=(",", ":"))) < 20 * 1024  # S3's bucket policy limit, whatever the tenant count


def test_silo_bucket_policy_refuses_any_key_but_the_tenants():
    from components.bucket import KMS_KEY_HEADER, TenantDataRules, bucket_policy

    key = "arn:aws:kms:us-east-1:123456789012:key/1111"
    doc = json.loads(bucket_policy("arn:aws:s3:::silo", TenantDataRules(key_arn=key), key))
    (own_key,) = [s for s in doc["Statement"] if s["Sid"] == "TenantWritesUseTheTenantKey"]
    assert own_key["Effect"] == "Deny" and own_key["Action"] == "s3:PutObject"
    assert own_key["Resource"] == "arn:aws:s3:::silo/tenants/*"
    assert own_key["Condition"] == {"StringNotEquals": {KMS_KEY_HEADER: key}}


def test_the_service_session_policy_names_only_the_tenants_prefix_bucket_and_key():
    from service.objects import session_policy

    doc = json.loads(session_policy("arn:aws:s3:::b", "tenants/t-acme/", "arn:k"))
    resources = {json.dumps(s["Resource"]) for s in doc["Statement"]}
    assert resources == {'"arn:aws:s3:::b/tenants/t-acme/*"', '"arn:aws:s3:::b"', '"arn:k"'}


def test_the_broker_may_assume_only_naming_a_tenant_in_its_own_tag():
    """Its Pod Identity session's kubernetes-namespace and eks-cluster-arn are transitive: STS refuses
    them as request tags, so the trust and the broker's grant allow exactly one key, meridian-tenant."""
    from components.tenantidentity import broker_policy, trust_policy

    cluster = "arn:aws:eks:us-east-1:123456789012:cluster/c"
    trust = json.loads(trust_policy("123456789012", cluster, "arn:aws:iam::123456789012:role/broker"))
    (broker,) = [s for s in trust["Statement"] if s["Sid"] == "ServiceBroker"]
    assert broker["Principal"] == {"AWS": "arn:aws:iam::123456789012:role/broker"}
    assert broker["Condition"] == {
        "StringLike": {"aws:RequestTag/meridian-tenant": "t-*"},
        "ForAllValues:StringEquals": {"aws:TagKeys": ["meridian-tenant"]},
    }
    (grant,) = json.loads(broker_policy("arn:aws:iam::123456789012:role/meridian/tenants/r"))["Statement"]
    assert set(grant["Action"]) == {"sts:AssumeRole", "sts:TagSession"} and grant["Condition"] == broker["Condition"]


def test_the_service_names_the_tenant_in_meridian_tenant_and_never_an_inherited_key():
    """What the service sends STS, through botocore's Stubber (moto accepts any tags and models no
    transitive ones): one tag, meridian-tenant = the tenant's namespace, and the session policy."""
    from botocore.stub import Stubber

    from service.objects import S3Objects, session_policy
    from service.settings import ObjectStorage, TenantData

    data = TenantData(
        "pool", "tenants/t-acme/", "arn:aws:kms:us-east-1:123456789012:key/k", "arn:aws:iam::123456789012:role/r", "t-acme"
    )
    sts = boto3.client("sts", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")

    class PodIdentity:  # the pod's own session; its STS client stubbed
        def client(self, service: str, **_: object):
            assert service == "sts"
            return sts

    objects = S3Objects(ObjectStorage(region="us-east-1"), {"acme": data}, base_session=PodIdentity())
    with Stubber(sts) as stub:
        stub.add_response(
            "assume_role",
            {
                "Credentials": {
                    "AccessKeyId": "ASIAEXAMPLEEXAMPLE00",
                    "SecretAccessKey": "s" * 40,
                    "SessionToken": "t",
                    "Expiration": datetime(2099, 1, 1, tzinfo=UTC),
                }
            },
            {
                "RoleArn": data.role_arn,
                "RoleSessionName": "meridian-api-acme",
                "DurationSeconds": 3600,
                "Tags": [{"Key": "meridian-tenant", "Value": "t-acme"}],
                "Policy": session_policy("arn:aws:s3:::pool", "tenants/t-acme/", data.kms_key_arn),
            },
        )
        objects.client_of("acme")
        stub.assert_no_pending_responses()


# --- the sandbox -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def box():
    require_sandbox_parts()
    state_dir = Path(tempfile.mkdtemp(prefix="meridian-tenant-data-"))
    os.chmod(state_dir, 0o755)  # the postgres user must reach the data dirs
    try:
        up = run_meridian("sandbox", "up", "--stack", STACK, "--state-dir", str(state_dir), timeout=240)
        assert up.code == 0, up.out + up.err
        root = state_dir / STACK
        doc = mf.read(root)
        made = json.loads((root / "run" / "objects.json").read_text())
        yield doc, made
    finally:
        down = run_meridian("sandbox", "down", "--stack", STACK, "--state-dir", str(state_dir), "--wipe", timeout=120)
        shutil.rmtree(state_dir, ignore_errors=True)
        assert down.code == 0, down.out + down.err


def _key(doc: mf.Manifest, tenant: str) -> dict:
    return {"authorization": "Bearer " + next(t.api_key for t in doc.tenants if t.id == tenant)}


def _session(made: dict, region: str, tenant: str | None):
    """An S3 client as the broker itself (tenant None) or on `tenant`'s session (the broker assuming its role)."""
    broker = made["broker"]
    creds = {"aws_access_key_id": broker["access_key_id"], "aws_secret_access_key": broker["secret_access_key"]}
    if tenant is not None:
        data = made["regions"][region]["tenants"][tenant]
        sts = boto3.client("sts", region_name=region, endpoint_url=made["endpoint"], **creds)
        c = sts.assume_role(
            RoleArn=data["role_arn"],
            RoleSessionName=f"test-{tenant}",
            Tags=[{"Key": "meridian-tenant", "Value": data["namespace"]}],
        )["Credentials"]
        creds = {
            "aws_access_key_id": c["AccessKeyId"],
            "aws_secret_access_key": c["SecretAccessKey"],
            "aws_session_token": c["SessionToken"],
        }
    return boto3.client("s3", region_name=region, endpoint_url=made["endpoint"], **creds)


def _denied(fn) -> str:
    with pytest.raises(ClientError) as exc:
        fn()
    return exc.value.response["Error"]["Code"]


@pytest.mark.sandbox
def test_objects_through_the_front_door_land_in_the_tenants_place_under_its_key(box):
    doc, made = box
    region = doc.regions["primary"].region  # HAProxy sends traffic to the primary region
    for tenant in ("acme", "globex"):  # silo, pool
        url = f"{doc.endpoint}/v1/tenants/{tenant}/objects/docs/hello.txt"
        put = httpx.put(url, content=f"hello from {tenant}".encode(), headers=_key(doc, tenant), timeout=30)
        assert put.status_code == 201, put.text
        got = httpx.get(url, headers=_key(doc, tenant), timeout=30)
        assert got.status_code == 200 and got.content == f"hello from {tenant}".encode()
        listed = httpx.get(f"{doc.endpoint}/v1/tenants/{tenant}/objects?prefix=docs/", headers=_key(doc, tenant), timeout=30)
        assert [o["key"] for o in listed.json()["objects"]] == ["docs/hello.txt"]
        data = made["regions"][region]["tenants"][tenant]
        head = _session(made, region, tenant).head_object(Bucket=data["bucket"], Key=f"{data['prefix']}docs/hello.txt")
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", data["kms_key_arn"])
    acme, globex = (made["regions"][region]["tenants"][t] for t in ("acme", "globex"))
    assert acme["bucket"] != globex["bucket"] and acme["bucket"].endswith("-t-acme")  # silo: its own bucket
    assert globex["bucket"] == made["regions"][region]["tenants"]["initech"]["bucket"]  # pool: shared, by prefix


@pytest.mark.sandbox
def test_another_tenants_api_key_never_reaches_the_object(box):
    doc, _ = box
    url = f"{doc.endpoint}/v1/tenants/acme/objects/private.bin"
    assert httpx.put(url, content=b"acme-only", headers=_key(doc, "acme"), timeout=30).status_code == 201
    for method in ("GET", "PUT", "DELETE"):
        r = httpx.request(method, url, content=b"x", headers=_key(doc, "globex"), timeout=30)
        assert r.status_code == 404 and b"acme-only" not in r.content
    own = httpx.get(f"{doc.endpoint}/v1/tenants/globex/objects/private.bin", headers=_key(doc, "globex"), timeout=30)
    assert own.status_code == 404
    assert httpx.get(url, headers=_key(doc, "acme"), timeout=30).content == b"acme-only"


@pytest.mark.sandbox
def test_the_s3_layer_refuses_another_tenants_session(box):
    """moto evaluates the sessions' identity policies: a tenant's session cannot read, write or
    delete another tenant's objects, in a silo bucket or in the shared pool; the broker alone
    reaches no tenant data; an unknown key reaches nothing."""
    doc, made = box
    region = doc.regions["primary"].region
    t = made["regions"][region]["tenants"]
    acme, globex = t["acme"], t["globex"]
    httpx.put(f"{doc.endpoint}/v1/tenants/globex/objects/pool.bin", content=b"globex", headers=_key(doc, "globex"), timeout=30)
    initech = _session(made, region, "initech")  # a pool neighbour of globex
    other = _session(made, region, "globex")
    assert _denied(lambda: initech.get_object(Bucket=globex["bucket"], Key=f"{globex['prefix']}pool.bin")) == "AccessDenied"
    assert _denied(lambda: initech.put_object(Bucket=globex["bucket"], Key=f"{globex['prefix']}x", Body=b"x")) == "AccessDenied"
    assert _denied(lambda: initech.delete_object(Bucket=globex["bucket"], Key=f"{globex['prefix']}pool.bin")) == "AccessDenied"
    assert _denied(lambda: other.get_object(Bucket=acme["bucket"], Key=f"{acme['prefix']}private.bin")) == "AccessDenied"
    broker = _session(made, region, None)
    assert _denied(lambda: broker.get_object(Bucket=globex["bucket"], Key=f"{globex['prefix']}pool.bin")) == "AccessDenied"
    stranger = boto3.client(
        "s3", region_name=region, endpoint_url=made["endpoint"], aws_access_key_id="AKIANOBODY", aws_secret_access_key="x"
    )
    assert _denied(lambda: stranger.list_buckets()) == "InvalidAccessKeyId"
    # the owner's own session does reach it: the refusals above are about the tenant, not the setup
    own = _session(made, region, "globex")
    assert own.get_object(Bucket=globex["bucket"], Key=f"{globex['prefix']}pool.bin")["Body"].read() == b"globex"


@pytest.mark.sandbox
def test_the_manifest_names_each_tenants_data(box):
    doc, made = box
    assert doc.objects.endpoint == made["endpoint"]
    for role in ("primary", "dr"):
        region = doc.regions[role].region
        assert set(doc.objects.regions[region]) == {t.id for t in doc.tenants}


# --- replicas in the other region (N2): the region's pool key, each tenant only its own ------------------------------

ACCT = "123456789012"
DR = "us-west-2"
DR_POOL = "arn:aws:s3:::us-us-west-2-tenant-pool-data-bucket-e321cb3"
DR_POOL_KEY = f"arn:aws:kms:{DR}:{ACCT}:key/00000000-0000-4000-8000-000000000001"
CLUSTER = f"arn:aws:eks:{DR}:{ACCT}:cluster/us-us-west-2-eks"
TENANT_ROLE = f"arn:aws:iam::{ACCT}:role/meridian/tenants/us-us-west-2-tenant-identity-role-1a2b3c4"


def _evaluator():
    """The pack's evaluator (principalmapper behind its version check), imported as the analyzer does."""
    import sys

    pack = str(Path(__file__).resolve().parents[1] / "policies")
    sys.path.insert(0, pack)
    try:
        from access import simulator

        return simulator
    finally:
        sys.path.remove(pack)


def _replica_request(session: dict[str, str], owner: str, *, via: str | None = f"s3.{DR}.amazonaws.com"):
    """kms:Decrypt of the dr pool key as S3 asks it for a replica of `owner`'s object (object-ARN context)."""
    from principalmapper.util.case_insensitive_dict import CaseInsensitiveDict

    context = {
        **{f"aws:PrincipalTag/{k}": v for k, v in session.items()},
        "aws:PrincipalArn": TENANT_ROLE,
        "kms:EncryptionContext:aws:s3:arn": f"{DR_POOL}/tenants/{owner}/report.csv",
    }
    if via:
        context["kms:ViaService"] = via
    return CaseInsensitiveDict(context)


def _role_doc():
    from components.tenantidentity import abac_policy

    return json.loads(
        abac_policy(
            account_id=ACCT,
            region=DR,
            cluster_arn=CLUSTER,
            pool_bucket_arn=DR_POOL,
            pool_key_arn=DR_POOL_KEY,
            silo_bucket_prefix="mer-0123456789-",
            prefix_root="tenants/",
            service_namespace="platform",
        )
    )


def _grants_decrypt(sim, doc: dict, context) -> bool:
    """An Allow of kms:Decrypt on the dr pool key whose every condition holds, with IAM's own matching
    (principalmapper), the request's S3-set keys bound rather than narrowed away."""
    from principalmapper.querying.local_policy_simulation import _get_condition_match

    bound = sim.bind(doc, dict(context))
    for st in bound["Statement"]:
        actions = st.get("Action")
        actions = [actions] if isinstance(actions, str) else actions or []
        resources = st.get("Resource")
        resources = [resources] if isinstance(resources, str) else resources or []
        if st["Effect"] != "Allow" or "kms:Decrypt" not in actions or DR_POOL_KEY not in resources:
            continue
        if _get_condition_match(st.get("Condition", {}), context):
            return True
    return False


@pytest.mark.parametrize("kind", ["pod", "brokered"])
def test_a_pool_tenant_decrypts_its_own_replicas_with_the_regions_pool_key_and_never_anothers(kind):
    """The objects the dr region received by replication are under its pool key (components.dr): tenant A's
    sessions (a pod in t-a, or the broker's session naming t-a) decrypt them through S3 for A's prefix,
    not for B's, and never outside S3. Before N2 no statement allowed the pool key at all."""
    sim = _evaluator()
    session = (
        {"eks-cluster-arn": CLUSTER, "kubernetes-namespace": "t-a"}
        if kind == "pod"
        else {"eks-cluster-arn": CLUSTER, "kubernetes-namespace": "platform", "meridian-tenant": "t-a"}
    )
    doc = _role_doc()
    assert _grants_decrypt(sim, doc, _replica_request(session, "t-a")), "A reads its own replicas"
    assert not _grants_decrypt(sim, doc, _replica_request(session, "t-b")), "A decrypts B's replicas"
    assert not _grants_decrypt(sim, doc, _replica_request(session, "t-a", via=None)), "the key outside S3"
    assert not _grants_decrypt(sim, doc, _replica_request(session, "t-a", via="s3.us-east-1.amazonaws.com"))


def test_the_s3_layer_keeps_a_tenant_off_anothers_replicas_whatever_kms_allows():
    """With S3 Bucket Keys the context is the bucket's ARN, the same for every tenant: what keeps A off B's
    replicas then is S3, which refuses the GetObject before it asks KMS. The pack's evaluator, over the
    role's policy and the pool bucket's policy: A gets its own replica and not B's."""
    from components.bucket import TenantDataRules, bucket_policy

    sim = _evaluator()
    values = {
        "aws:PrincipalTag/eks-cluster-arn": CLUSTER,
        "aws:PrincipalTag/kubernetes-namespace": "t-a",
        "aws:PrincipalArn": TENANT_ROLE,
        "s3:ResourceAccount": ACCT,
        "aws:PrincipalAccount": ACCT,
    }
    principal = sim.node(TENANT_ROLE, [("data-access", _role_doc())], values=values)
    resource_policy = sim.for_any_request(json.loads(bucket_policy(DR_POOL, TenantDataRules())))

    def get(owner: str) -> bool:
        return sim.authorized(
            principal,
            "s3:GetObject",
            f"{DR_POOL}/tenants/{owner}/report.csv",
            values,
            resource_policy=resource_policy,
            owner=ACCT,
        )

    assert get("t-a")
    assert not get("t-b")


def test_the_service_session_policy_lets_the_broker_decrypt_only_the_tenants_replicas():
    from service.objects import session_policy

    sim = _evaluator()
    doc = json.loads(
        session_policy(DR_POOL, "tenants/t-a/", "arn:aws:kms:us-west-2:1:key/a", replica_key_arn=DR_POOL_KEY, region=DR)
    )
    session = {"eks-cluster-arn": CLUSTER, "kubernetes-namespace": "platform", "meridian-tenant": "t-a"}
    assert _grants_decrypt(sim, doc, _replica_request(session, "t-a"))
    assert not _grants_decrypt(sim, doc, _replica_request(session, "t-b"))
    assert not _grants_decrypt(sim, doc, _replica_request(session, "t-a", via=None))
    without = json.loads(session_policy(DR_POOL, "tenants/t-a/", "arn:aws:kms:us-west-2:1:key/a"))
    assert not _grants_decrypt(sim, without, _replica_request(session, "t-a")), "silo tenants: no pool key"


# --- every tenant write under the tenant's own key (the hard cap's premise) ----------------------------------------

AWS_S3_KEY = f"arn:aws:kms:{DR}:{ACCT}:key/00000000-0000-4000-8000-0000000000a5"


def _aws_s3_key_policy() -> dict:
    """The AWS-managed `aws/s3` key's policy: any principal of the account, through S3."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": ACCT, "kms:ViaService": f"s3.{DR}.amazonaws.com"}},
            }
        ],
    }


@pytest.mark.parametrize("kind", ["pod", "brokered"])
def test_a_tenant_makes_data_keys_only_under_its_own_key(kind):
    """A pool tenant's PutObject with SSE-KMS under `aws/s3` (or another tenant's key, or the pool key)
    would be a write outside its key and so outside its hard cap. The pack's evaluator over the tenant
    role's policy and each key's policy: A makes data keys (through S3) under its own key only."""
    from components.tenantidentity import tenant_key_statements

    sim = _evaluator()
    session = (
        {"eks-cluster-arn": CLUSTER, "kubernetes-namespace": "t-a"}
        if kind == "pod"
        else {"eks-cluster-arn": CLUSTER, "kubernetes-namespace": "platform", "meridian-tenant": "t-a"}
    )
    values = {f"aws:PrincipalTag/{k}": v for k, v in session.items()} | {
        "aws:PrincipalArn": TENANT_ROLE,
        "aws:PrincipalAccount": ACCT,
        "kms:CallerAccount": ACCT,
        "kms:ViaService": f"s3.{DR}.amazonaws.com",
    }
    principal = sim.node(TENANT_ROLE, [("data-access", _role_doc())], values=values)
    account_root = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCT}:root"}, "Action": "kms:*", "Resource": "*"}

    def tenant_key(namespace: str) -> tuple[dict, dict]:
        doc = {"Version": "2012-10-17", "Statement": [account_root, *tenant_key_statements(namespace)]}
        return doc, {"aws:ResourceTag/meridian:namespace": namespace, "aws:ResourceTag/meridian:tenant": namespace[2:]}

    def data_key(key_arn: str, key_policy: dict, key_tags: dict) -> bool:
        return sim.authorized(
            principal,
            "kms:GenerateDataKey",
            key_arn,
            values | key_tags,
            resource_policy=sim.for_any_request(key_policy),
            owner=ACCT,
        )

    own, own_tags = tenant_key("t-a")
    other, other_tags = tenant_key("t-b")
    assert data_key(f"arn:aws:kms:{DR}:{ACCT}:key/a", own, own_tags), "A under its own key"
    assert not data_key(AWS_S3_KEY, _aws_s3_key_policy(), {}), "A under aws/s3"
    assert not data_key(f"arn:aws:kms:{DR}:{ACCT}:key/b", other, other_tags), "A under B's key"
    pool_key = {"Version": "2012-10-17", "Statement": [account_root]}
    assert not data_key(DR_POOL_KEY, pool_key, {"aws:ResourceTag/meridian:stack": "us"}), "A under the pool key"
    capped = own_tags | {"aws:ResourceTag/meridian:over-budget": "true"}
    assert not data_key(f"arn:aws:kms:{DR}:{ACCT}:key/a", own, capped), "A capped, under its own key"
