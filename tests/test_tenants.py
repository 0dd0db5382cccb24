"""Tenant isolation, plan quotas and cost caps in the real stacks under the offline engine."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.config import load_stack
from components.planning import tenant_sizing
from components.tenant import TENANT_LABEL

from .conftest import ROOT, STACKS


def of_type(plan, token):
    return [r for r in plan["resources"] if r["type"] == token]


def tenant_of_namespace(r):
    return (r["inputs"].get("metadata") or {}).get("labels", {}).get(TENANT_LABEL)


def as_list(v):
    return v if isinstance(v, list) else [v]


@pytest.mark.parametrize("stack", STACKS)
def test_each_tenant_gets_exactly_its_namespace_policies_quota_and_role(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    regions = {cfg.regions.primary.region, cfg.regions.dr.region}
    for tenant in cfg.tenants:
        ns = f"t-{tenant.id}"
        namespaces = [r for r in of_type(plan, "kubernetes:core/v1:Namespace") if r["inputs"]["metadata"]["name"] == ns]
        assert {r["region"] for r in namespaces} == regions and len(namespaces) == 2, f"{ns} must exist once per region"
        assert all(tenant_of_namespace(r) == tenant.id for r in namespaces)
        in_ns = lambda token: [r for r in of_type(plan, token) if r["inputs"]["metadata"].get("namespace") == ns]
        policies = in_ns("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        deny = [p for p in policies if p["inputs"]["spec"]["podSelector"] == {} and set(p["inputs"]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
                and not p["inputs"]["spec"].get("ingress") and not p["inputs"]["spec"].get("egress")]
        assert len(deny) == 2, f"{ns}: a default-deny (ingress and egress) policy per region"
        quotas = in_ns("kubernetes:core/v1:ResourceQuota")
        q = cfg.quota_of(tenant)
        assert [r["inputs"]["spec"]["hard"] for r in quotas] == [tenant_sizing(q.gql_qps, q.ingest_eps, q.storage_gb)] * 2
        (sa_primary, sa_dr) = in_ns("kubernetes:core/v1:ServiceAccount")
        roles = [r for r in of_type(plan, "aws:iam/role:Role") if (r["inputs"].get("tags") or {}).get("meridian:tenant") == tenant.id]
        assert {r["region"] for r in roles} == regions and len(roles) == 2
        for role in roles:
            trust = json.loads(role["inputs"]["assumeRolePolicy"])
            (statement,) = trust["Statement"]
            subs = [v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub")]
            assert subs == [f"system:serviceaccount:{ns}:{tenant.id}-app"], role["urn"]


@pytest.mark.parametrize("stack", STACKS)
def test_no_tenant_policy_reaches_another_tenants_prefix_or_key(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    by_urn = {r["urn"]: r for r in plan["resources"]}
    keys_of = defaultdict(set)
    reached = []
    for policy in of_type(plan, "aws:iam/rolePolicy:RolePolicy"):
        role = by_urn[policy["parent"]]
        tenant = (role["inputs"].get("tags") or {}).get("meridian:tenant")
        if tenant is None:
            continue
        for statement in json.loads(policy["inputs"]["policy"])["Statement"]:
            assert statement["Effect"] == "Allow"
            for resource in as_list(statement["Resource"]):
                assert resource != "*", f"{policy['urn']}: wildcard resource"
                if resource.startswith("arn:aws:kms:"):
                    assert "*" not in resource, f"{policy['urn']}: key wildcard"
                    keys_of[tenant].add(resource)
                elif "/" in resource:  # an object ARN: must sit under the tenant's own prefix
                    bucket, _, key = resource.partition(":::")[2].partition("/")
                    assert key == f"tenants/{tenant}/*", f"{policy['urn']} reaches {resource}"
                else:  # the bucket itself: only listing, only under the tenant's prefix
                    assert statement["Action"] == "s3:ListBucket"
                    assert statement["Condition"]["StringLike"]["s3:prefix"] == [f"tenants/{tenant}/*"]
            reached.append((tenant, resource))
    assert set(keys_of) == {t.id for t in cfg.tenants}
    owners = defaultdict(set)
    for tenant, keys in keys_of.items():
        for key in keys:
            owners[key].add(tenant)
    assert all(len(o) == 1 for o in owners.values()), "a KMS key is shared between tenants"


@pytest.mark.parametrize("stack", STACKS)
def test_silo_tenants_have_their_own_bucket_and_pool_tenants_share_one(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    buckets = of_type(plan, "aws:s3/bucket:Bucket")
    silo = {t.id for t in cfg.tenants if t.data_tier == "silo"}
    tagged = [(b["inputs"].get("tags") or {}).get("meridian:tenant") for b in buckets]
    assert sorted(t for t in tagged if t) == sorted(list(silo) * 2), "each silo tenant has its own bucket per region"
    assert tagged.count(None) == 2, "one shared pool bucket per region"
    for b in buckets:
        assert b["protect"], b["urn"]
    blocks = of_type(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert len(blocks) == len(buckets) and all(all(blk["inputs"][k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")) for blk in blocks)
    for policy in of_type(plan, "aws:s3/bucketPolicy:BucketPolicy"):
        (statement,) = json.loads(policy["inputs"]["policy"])["Statement"]
        assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("stack", STACKS)
def test_every_tenant_has_a_budget_filtered_on_its_tag_with_a_hard_cap(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    budgets = of_type(plan, "aws:budgets/budget:Budget")
    by_tenant = {(b["inputs"].get("tags") or {}).get("meridian:tenant"): b for b in budgets}
    stack_budget = by_tenant.pop(None)
    assert float(stack_budget["inputs"]["limitAmount"]) == cfg.cost.stack_cap_usd
    assert set(by_tenant) == {t.id for t in cfg.tenants}
    for tenant in cfg.tenants:
        budget = by_tenant[tenant.id]
        assert budget["inputs"]["costFilters"] == [{"name": "TagKeyValue", "values": [f"user:meridian:tenant${tenant.id}"]}]
        assert float(budget["inputs"]["limitAmount"]) == tenant.monthly_budget_usd
        thresholds = sorted(n["threshold"] for n in budget["inputs"]["notifications"] if n["notificationType"] == "ACTUAL")
        assert thresholds == sorted(cfg.cost.alert_thresholds_pct)
    actions = of_type(plan, "aws:budgets/budgetAction:BudgetAction")
    assert len(actions) == len(cfg.tenants)
    for action in actions:
        assert action["inputs"]["actionType"] == "APPLY_IAM_POLICY"
        assert action["inputs"]["actionThreshold"] == {"actionThresholdType": "PERCENTAGE", "actionThresholdValue": 100}
        assert len(action["inputs"]["definition"]["iamActionDefinition"]["roles"]) == 2, "the cap reaches the tenant's role in both regions"


quotas = st.tuples(st.integers(1, 5000), st.integers(1, 100_000), st.integers(1, 100_000))


@given(a=quotas, b=quotas)
def test_quota_sizing_is_monotone_in_the_plan(a, b):
    low, high = tuple(map(min, a, b)), tuple(map(max, a, b))
    small, big = tenant_sizing(*low), tenant_sizing(*high)
    for key in ("requests.cpu", "limits.cpu", "pods"):
        assert int(small[key]) <= int(big[key]), key
    assert big["requests.storage"] == f"{high[2]}Gi"
    assert big["services.loadbalancers"] == "0", "tenants never open their own load balancers"
