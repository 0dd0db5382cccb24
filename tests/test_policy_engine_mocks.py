"""Mock realism the policy rules depend on: what the mocks invent must look like what AWS returns,
and a resource whose region cannot be determined is an error, never a silent us-east-1."""

from __future__ import annotations

import pytest
from pulumi.runtime import MockResourceArgs

from meridian.engine.mocks import MeridianMocks, MockConfigError

from .helpers import ROOT

PROVIDER_URN = "urn:pulumi:us::meridian::pulumi:providers:aws::{name}"


def _provider(mocks: MeridianMocks, name: str, inputs: dict) -> str:
    pid, _ = mocks.new_resource(MockResourceArgs("pulumi:providers:aws", name, inputs, custom=True))
    return f"{PROVIDER_URN.format(name=name)}::{pid}"


def test_role_arn_keeps_the_role_path():
    mocks = MeridianMocks(None)
    ref = _provider(mocks, "eu-west-1", {"region": "eu-west-1"})
    _, tenant = mocks.new_resource(
        MockResourceArgs("aws:iam/role:Role", "t-acme-role", {"path": "/meridian/tenants/", "name": "t-acme"}, ref, custom=True)
    )
    _, plain = mocks.new_resource(MockResourceArgs("aws:iam/role:Role", "eks-role", {}, ref, custom=True))
    assert tenant["arn"] == "arn:aws:iam::123456789012:role/meridian/tenants/t-acme"
    assert plain["arn"].startswith("arn:aws:iam::123456789012:role/eks-role-")


def test_failover_records_get_distinct_ids_from_their_set_identifier():
    mocks = MeridianMocks(None)
    ref = _provider(mocks, "us-east-1", {"region": "us-east-1"})
    common = {"zoneId": "Z1", "name": "api.example.com", "type": "CNAME"}
    ids = {
        mocks.new_resource(MockResourceArgs("aws:route53/record:Record", k, {**common, "setIdentifier": k}, ref, custom=True))[0]
        for k in ("primary", "secondary")
    }
    assert ids == {"Z1_api.example.com_CNAME_primary", "Z1_api.example.com_CNAME_secondary"}
    plain_id, _ = mocks.new_resource(MockResourceArgs("aws:route53/record:Record", "simple", common, ref, custom=True))
    assert plain_id == "Z1_api.example.com_CNAME"


def test_an_aws_provider_without_a_region_is_an_error():
    with pytest.raises(MockConfigError, match="AWS provider nowhere has no `region`"):
        MeridianMocks("us-east-1").new_resource(MockResourceArgs("pulumi:providers:aws", "nowhere", {}, custom=True))


def test_the_default_provider_needs_aws_region():
    with pytest.raises(MockConfigError, match="no `aws:region`"):
        MeridianMocks(None).new_resource(MockResourceArgs("aws:s3/bucket:Bucket", "b", {}, None, custom=True))
    _, out = MeridianMocks("eu-west-1").new_resource(MockResourceArgs("aws:s3/bucket:Bucket", "b", {}, None, custom=True))
    assert out["region"] == "eu-west-1"


def test_a_per_resource_region_wins_over_the_provider():
    mocks = MeridianMocks(None)
    ref = _provider(mocks, "us-east-1", {"region": "us-east-1"})
    _, out = mocks.new_resource(MockResourceArgs("aws:kms/key:Key", "k", {"region": "us-west-2"}, ref, custom=True))
    assert out["arn"].startswith("arn:aws:kms:us-west-2:")


def test_an_analyzer_stopped_before_it_answers_leaves_no_error_in_its_reader_thread(monkeypatch):
    """A config error stops the analyzer right after it was started: its port reader must end quietly
    (it printed an AttributeError traceback under the config error's message)."""
    import threading
    import time

    from meridian.engine.policy import Analyzer, pack_dir_of

    errors: list = []
    monkeypatch.setattr(threading, "excepthook", errors.append)
    analyzer = Analyzer(pack_dir_of(ROOT))
    analyzer.start()
    analyzer.stop()
    time.sleep(1.0)
    assert errors == []
