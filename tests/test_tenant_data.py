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
