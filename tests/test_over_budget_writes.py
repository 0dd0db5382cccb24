"""A capped tenant's object write: 403 `over_budget`, not a 500 (which the SLO would count as our fault).

The cap enforcer tags the tenant's keys over budget and the tenant role denies kms:GenerateDataKey on
them (components.tenantidentity): S3 refuses the PUT with AccessDenied carrying KMS's explicit deny.
S3's answers come from botocore's Stubber (moto evaluates no KMS key use through S3)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from starlette.testclient import TestClient

from service.app import create_app
from service.objects import S3Objects
from service.quotas import QuotaBook
from service.settings import ObjectStorage, TenantData
from tests.helpers import TENANTS, MemoryStore, auth, service_settings

KEY = "arn:aws:kms:us-east-1:123456789012:key/0d7c3a1e-5b1f-4f64-9d55-2a1c0f1b9e11"
SESSION = "arn:aws:sts::123456789012:assumed-role/us-us-east-1-tenant-identity-role/meridian-api-acme"
CAPPED = (
    f"User: {SESSION} is not authorized to perform: kms:GenerateDataKey on resource: {KEY} "
    "with an explicit deny in an identity-based policy"
)
UNGRANTED = f"User: {SESSION} is not authorized to perform: kms:GenerateDataKey on resource: {KEY} because no identity-based policy allows the kms:GenerateDataKey action"


class StubbedObjects(S3Objects):
    def __init__(self, s3):
        data = TenantData("pool", "tenants/t-acme/", KEY, "arn:aws:iam::123456789012:role/meridian/tenants/r", "t-acme")
        super().__init__(ObjectStorage(region="us-east-1"), {"acme": data})
        self.s3 = s3

    def client_of(self, tenant: str):
        return self.s3


def _put(message: str):
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    listing = {"Contents": [], "IsTruncated": False, "KeyCount": 0}
    with Stubber(s3) as stub:
        stub.add_response("list_objects_v2", listing)  # usage
        stub.add_response("list_objects_v2", listing)  # the old object's size
        stub.add_client_error("put_object", "AccessDenied", message, 403)
        app = create_app(service_settings(), MemoryStore(), QuotaBook(TENANTS), StubbedObjects(s3))
        with TestClient(app, raise_server_exceptions=False) as client:
            return client.put("/v1/tenants/acme/objects/report.csv", content=b"a,b\n", headers=auth("acme"))


def test_a_write_refused_by_the_cap_is_403_over_budget():
    r = _put(CAPPED)
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "over_budget" and r.json()["tenant"] == "acme"


@pytest.mark.parametrize(
    "message",
    [
        UNGRANTED,
        CAPPED.replace(KEY, KEY.rsplit("/", 1)[0] + "/another-key"),
        CAPPED.replace("kms:GenerateDataKey", "s3:PutObject"),
    ],
    ids=["no-grant", "another-key", "s3-deny"],
)
def test_other_access_denials_stay_faults_of_ours(message):
    """A missing grant, an explicit deny on another key, or S3's own deny: wiring, answered 500."""
    assert _put(message).status_code == 500
