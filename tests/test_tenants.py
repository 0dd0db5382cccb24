"""Tenant isolation, plan quotas and cost caps in the real stacks under the offline engine."""

from __future__ import annotations

import fnmatch
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.functions.cap_enforcer import OVER_BUDGET_TAG
from components.tenant import TENANT_LABEL
from stackconfig import load_stack
from stackconfig.planning import tenant_sizing

from .helpers import ROOT, STACKS, of_type


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

        def in_ns(token, ns=ns):
            return [r for r in of_type(plan, token) if r["inputs"]["metadata"].get("namespace") == ns]

        policies = in_ns("kubernetes:networking.k8s.io/v1:NetworkPolicy")
        deny = [
            p
            for p in policies
            if p["inputs"]["spec"]["podSelector"] == {}
            and set(p["inputs"]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["inputs"]["spec"].get("ingress")
            and not p["inputs"]["spec"].get("egress")
        ]
        assert len(deny) == 2, f"{ns}: a default-deny (ingress and egress) policy per region"
        quotas = in_ns("kubernetes:core/v1:ResourceQuota")
        q = cfg.quota_of(tenant)
        assert [r["inputs"]["spec"]["hard"] for r in quotas] == [tenant_sizing(q.gql_qps, q.ingest_eps, q.storage_gb)] * 2
        assert len(in_ns("kubernetes:core/v1:ServiceAccount")) == 2
        associations = [
            a for a in of_type(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation") if a["inputs"]["namespace"] == ns
        ]
        assert {a["region"] for a in associations} == regions and len(associations) == 2
        for association in associations:
            assert association["inputs"]["serviceAccount"] == f"{tenant.id}-app"
            # EKS takes a session policy only with session tags off, and the tags tell tenants apart
            assert "policy" not in association["inputs"] and not association["inputs"].get("disableSessionTags")
            (role,) = [r for r in tenant_roles(plan) if r["region"] == association["region"]]
            assert role["urn"] in association["dependencies"], f"{association['urn']} must bind the region's tenant role"


def tenant_roles(plan):
    return [r for r in of_type(plan, "aws:iam/role:Role") if r["inputs"].get("path") == "/meridian/tenants/"]


@pytest.mark.parametrize("stack", STACKS)
def test_tenant_roles_do_not_grow_with_tenants(previews, stack):
    """One role per region for every tenant (IAM quota: 1,000 roles per account by default)."""
    plan = previews[stack].plan
    roles = tenant_roles(plan)
    assert len(roles) == 2 and not any((r["inputs"].get("tags") or {}).get("meridian:tenant") for r in roles)
    for role in roles:
        # tenant pods through EKS Pod Identity, and the reference service's broker naming one tenant
        pods, broker = json.loads(role["inputs"]["assumeRolePolicy"])["Statement"]
        assert pods["Principal"] == {"Service": "pods.eks.amazonaws.com"}
        assert sorted(pods["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
        assert pods["Condition"]["StringEquals"]["aws:RequestTag/eks-cluster-arn"].startswith(f"arn:aws:eks:{role['region']}:")
        assert list(broker["Principal"]) == ["AWS"] and sorted(broker["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
        # its own kubernetes-namespace and eks-cluster-arn are inherited (transitive): it may set only meridian-tenant
        assert broker["Condition"] == {
            "StringLike": {"aws:RequestTag/meridian-tenant": "t-*"},
            "ForAllValues:StringEquals": {"aws:TagKeys": ["meridian-tenant"]},
        }


def _matches(pattern: str, arn: str) -> bool:
    return fnmatch.fnmatchcase(arn, pattern)


POD_VARIABLE = "${aws:PrincipalTag/kubernetes-namespace}"
BROKERED_VARIABLE = "${aws:PrincipalTag/meridian-tenant}"


@pytest.mark.parametrize("stack", STACKS)
def test_abac_role_resolves_to_the_callers_own_data_only(previews, stack):
    """Evaluate the shared role's policy for each tenant's session, a pod's (its namespace tag) and the
    broker's naming it (its meridian-tenant tag), substituted as IAM would, against every other
    tenant's objects, buckets and keys: nothing of theirs matches."""
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    by_urn = {r["urn"]: r for r in plan["resources"]}
    keys = {}
    for key in of_type(plan, "aws:kms/key:Key"):
        tags = key["inputs"].get("tags") or {}
        if tags.get("meridian:tenant"):
            assert tags["meridian:namespace"] == f"t-{tags['meridian:tenant']}"
            keys[(key["region"], tags["meridian:tenant"])] = tags["meridian:namespace"]
    kinds = ("PoolObjects", "PoolListing", "SiloObjects", "SiloListing", "OwnKeys", "PoolReplicas")
    for policy in of_type(plan, "aws:iam/rolePolicy:RolePolicy"):
        role = by_urn[policy["parent"]]
        if role["inputs"].get("path") != "/meridian/tenants/":
            continue
        statements = json.loads(policy["inputs"]["policy"])["Statement"]
        # the cap, and every key but the session's own tenant's refused for writes (tests/test_tenant_data.py)
        denies = {"TenantOverBudget", "PodsWriteOnlyUnderTheirKey", "BrokeredWriteOnlyUnderTheirKey", "UntaggedWriteNoKey"}
        assert {s_["Sid"] for s_ in statements} == {f"{who}{kind}" for who in ("", "Brokered") for kind in kinds} | denies
        assert all(s_["Effect"] == "Deny" for s_ in statements if s_["Sid"] in denies), "they only take away"
        statements = [s_ for s_ in statements if s_["Sid"] not in denies]
        pool = next(s_["Resource"] for s_ in statements if s_["Sid"] == "PoolListing")
        silo_prefix = next(s_["Resource"] for s_ in statements if s_["Sid"] == "SiloListing").split("${")[0]
        for st_ in statements:
            cond = st_["Condition"]
            assert cond["StringEquals"]["aws:PrincipalTag/eks-cluster-arn"].startswith(f"arn:aws:eks:{role['region']}:")
            if st_["Sid"].startswith("Brokered"):  # the service's sessions: from its namespace, naming a tenant
                assert cond["StringEquals"]["aws:PrincipalTag/kubernetes-namespace"] == "platform"
                assert cond["StringLike"]["aws:PrincipalTag/meridian-tenant"] == "t-*"
                variable, other_variable = BROKERED_VARIABLE, POD_VARIABLE
            else:
                assert cond["StringLike"]["aws:PrincipalTag/kubernetes-namespace"] == "t-*", (
                    f"{st_['Sid']}: tenant namespaces only"
                )
                variable, other_variable = POD_VARIABLE, BROKERED_VARIABLE
            assert other_variable not in json.dumps(st_), f"{st_['Sid']} names data by the other kind's tag"
            for me in cfg.tenants:
                mine = f"t-{me.id}"
                for other in cfg.tenants:
                    if other.id == me.id:
                        continue
                    theirs = f"t-{other.id}"
                    targets = [
                        f"{pool}/tenants/{theirs}/data.json",
                        f"{silo_prefix}{theirs}/tenants/{theirs}/data.json",
                        f"{silo_prefix}{theirs}",
                    ]
                    if st_["Sid"].endswith("PoolReplicas"):  # the pool key: for my prefix (or the bucket, S3 Bucket Keys)
                        contexts = [c.replace(variable, mine) for c in cond["StringLike"]["kms:EncryptionContext:aws:s3:arn"]]
                        assert contexts == [pool, f"{pool}/tenants/{mine}/*"]
                        assert not any(_matches(c, f"{pool}/tenants/{theirs}/data.json") for c in contexts)
                        continue
                    for resource in as_list(st_["Resource"]):
                        resolved = resource.replace(variable, mine)
                        if st_["Sid"].endswith("OwnKeys"):
                            assert cond["StringEquals"]["aws:ResourceTag/meridian:namespace"] == variable
                            assert keys[(role["region"], other.id)] != mine, "another tenant's key carries my namespace tag"
                            continue
                        for target in targets:
                            assert not _matches(resolved, target), f"{me.id}'s session reaches {target} through {resource}"
                        listing = cond.get("StringLike", {}).get("s3:prefix")
                        if listing:
                            assert all(p.replace(variable, mine) == f"tenants/{mine}/*" for p in listing)


@pytest.mark.parametrize("stack", STACKS)
def test_tenant_keys_refuse_every_other_tenants_sessions(previews, stack):
    """The second wall, on the keys: a tenant key's own policy denies its use to pods of other tenant
    namespaces, to brokered sessions naming another tenant and to tenant-role sessions naming none,
    in three statements whatever the number of tenants."""
    plan = previews[stack].plan
    tenant_keys = [k for k in of_type(plan, "aws:kms/key:Key") if (k["inputs"].get("tags") or {}).get("meridian:tenant")]
    assert tenant_keys
    pod_tag, tenant_tag = "aws:PrincipalTag/kubernetes-namespace", "aws:PrincipalTag/meridian-tenant"
    for key in tenant_keys:
        namespace = key["inputs"]["tags"]["meridian:namespace"]
        denies = [s_ for s_ in json.loads(key["inputs"]["policy"])["Statement"] if s_["Effect"] == "Deny"]
        assert [d["Condition"] for d in denies] == [
            {"StringLike": {pod_tag: "t-*"}, "StringNotEquals": {pod_tag: namespace}},
            {"Null": {tenant_tag: "false"}, "StringNotEquals": {tenant_tag: namespace}},
            {
                "ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/meridian/tenants/*"},
                "StringNotLike": {pod_tag: "t-*"},
                "Null": {tenant_tag: "true"},
            },
        ], key["urn"]
        assert all(d["Principal"] == "*" and "kms:Decrypt" in d["Action"] for d in denies)
    # each tenant key has its own name (operators, offboarding, and the pack's tie from key to ARN)
    aliases = {a["inputs"]["name"]: a for a in of_type(plan, "aws:kms/alias:Alias")}
    for key in tenant_keys:
        name = key["urn"].rsplit("::", 1)[1].removesuffix("-key")
        alias = aliases[f"alias/meridian/{name}"]
        assert alias["propertyDependencies"]["targetKeyId"] == [key["urn"]] and not alias["protect"]


@pytest.mark.parametrize("stack", STACKS)
def test_silo_tenants_have_their_own_bucket_and_pool_tenants_share_one(previews, stack):
    plan = previews[stack].plan
    cfg = load_stack(ROOT, stack)
    access_logs = {
        u for lb in of_type(plan, "aws:lb/loadBalancer:LoadBalancer") for u in lb["propertyDependencies"]["accessLogs"]
    }
    buckets = [b for b in of_type(plan, "aws:s3/bucket:Bucket") if b["urn"] not in access_logs]  # the data buckets
    silo = {t.id for t in cfg.tenants if t.data_tier == "silo"}
    tagged = [(b["inputs"].get("tags") or {}).get("meridian:tenant") for b in buckets]
    assert sorted(t for t in tagged if t) == sorted(list(silo) * 2), "each silo tenant has its own bucket per region"
    assert tagged.count(None) == 2, "one shared pool bucket per region"
    for b in buckets:
        assert b["protect"], b["urn"]
    blocks = [
        blk
        for blk in of_type(plan, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
        if not set(blk["propertyDependencies"]["bucket"]) & access_logs
    ]
    assert len(blocks) == len(buckets) and all(
        all(blk["inputs"][k] for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
        for blk in blocks
    )
    key_of = {}  # silo bucket name -> its tenant's key ARN (the bucket's default encryption)
    log_names = {lb["inputs"]["accessLogs"]["bucket"] for lb in of_type(plan, "aws:lb/loadBalancer:LoadBalancer")}
    for sse in of_type(plan, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"):
        if sse["inputs"]["bucket"] in log_names:
            continue  # SSE-S3: ALB log delivery takes no KMS key (tests/test_backstops.py)
        key_of[sse["inputs"]["bucket"]] = sse["inputs"]["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]
    silo_buckets = {b["inputs"].get("bucket") for b in buckets if (b["inputs"].get("tags") or {}).get("meridian:tenant")}
    for policy in of_type(plan, "aws:s3/bucketPolicy:BucketPolicy"):
        statements = {s["Sid"]: s for s in json.loads(policy["inputs"]["policy"])["Statement"]}
        tls = statements["DenyInsecureTransport"]
        assert tls["Effect"] == "Deny" and tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        if len(statements) == 1 or policy["inputs"]["bucket"] in log_names:
            continue  # a platform bucket (logs, replicas of nothing tenant-owned)
        # tenant data: explicit SSE-KMS key, tenant sessions only, each in its own prefix
        assert {"TenantWritesNameTheirKey", "TenantWritesUseKms", "OnlyTenantSessionsWriteTenantData"} <= set(statements)
        assert statements["TenantSessionsStayInTheirPrefix"]["NotResource"].endswith(f"/tenants/{POD_VARIABLE}/*")
        assert statements["BrokeredSessionsStayInTheirTenantsPrefix"]["NotResource"].endswith(f"/tenants/{BROKERED_VARIABLE}/*")
        assert "TenantRoleSessionsNameATenant" in statements
        if policy["inputs"]["bucket"] in silo_buckets:
            required = statements["TenantWritesUseTheTenantKey"]["Condition"]["StringNotEquals"]
            assert required == {"s3:x-amz-server-side-encryption-aws-kms-key-id": key_of[policy["inputs"]["bucket"]]}
    pools = [
        p
        for p in of_type(plan, "aws:s3/bucketPolicy:BucketPolicy")
        if "OnlyTenantSessionsWriteTenantData" in p["inputs"]["policy"]
    ]
    assert len(pools) == 2 + len(silo_buckets), "every bucket holding tenant data binds it to tenant sessions and keys"


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
    assert not of_type(plan, "aws:budgets/budgetAction:BudgetAction"), "no managed policy per tenant on the shared role"
    assert not [p for p in of_type(plan, "aws:iam/policy:Policy") if "meridian:tenant" in (p["inputs"].get("tags") or {})], (
        "no IAM object grows with tenants for the caps"
    )
    (enforcer,) = of_type(plan, "aws:lambda/function:Function")
    env = enforcer["inputs"]["environment"]["variables"]
    assert env["STACK"] == stack
    assert sorted(env["REGIONS"].split(",")) == sorted([cfg.regions.primary.region, cfg.regions.dr.region])
    tenant_budget_names = [b["inputs"].get("name") or b["name"] for t, b in by_tenant.items()]
    assert all(n.startswith(env["BUDGET_PREFIX"]) for n in tenant_budget_names), "the enforcer finds every tenant budget"
    assert not stack_budget["name"].startswith(env["BUDGET_PREFIX"])
    (subscription,) = [
        s for s in of_type(plan, "aws:sns/topicSubscription:TopicSubscription") if s["inputs"]["protocol"] == "lambda"
    ]
    assert subscription["propertyDependencies"]["endpoint"] == [enforcer["urn"]]
    (topic,) = subscription["propertyDependencies"]["topic"]
    for budget in by_tenant.values():
        at_limit = [n for n in budget["inputs"]["notifications"] if n["notificationType"] == "ACTUAL" and n["threshold"] <= 100]
        assert at_limit and topic in budget["propertyDependencies"]["notifications"], budget["urn"]
    for policy in [
        p for p in of_type(plan, "aws:iam/rolePolicy:RolePolicy") if p["name"].endswith("-tenant-identity-data-access")
    ]:
        (deny,) = [st for st in json.loads(policy["inputs"]["policy"])["Statement"] if st["Sid"] == "TenantOverBudget"]
        assert deny["Effect"] == "Deny" and set(deny["Action"]) == {"kms:Encrypt", "kms:GenerateDataKey*"}
        assert deny["Condition"] == {"StringEquals": {f"aws:ResourceTag/{OVER_BUDGET_TAG}": "true"}}, (
            "the cap stops only sessions using a key the enforcer tagged: the capped tenant's own"
        )


quotas = st.tuples(st.integers(1, 5000), st.integers(1, 100_000), st.integers(1, 100_000))


@given(a=quotas, b=quotas)
def test_quota_sizing_is_monotone_in_the_plan(a, b):
    low, high = tuple(map(min, a, b)), tuple(map(max, a, b))
    small, big = tenant_sizing(*low), tenant_sizing(*high)
    for key in ("requests.cpu", "limits.cpu", "pods"):
        assert int(small[key]) <= int(big[key]), key
    assert big["requests.storage"] == f"{high[2]}Gi"
    assert big["services.loadbalancers"] == "0", "tenants never open their own load balancers"


@pytest.mark.parametrize("stack", STACKS)
def test_no_pod_starts_without_its_identity_or_falls_back_to_the_node_role(previews, stack):
    """The service's pods (and the migration Job) wait for the broker's Pod Identity association; and
    the nodes answer IMDSv2 only to themselves (hop limit 1), so no pod in any namespace gets the node
    role's credentials from instance metadata."""
    plan = previews[stack].plan
    brokers = {
        a["region"]: a["urn"]
        for a in of_type(plan, "aws:eks/podIdentityAssociation:PodIdentityAssociation")
        if a["inputs"]["namespace"] == "platform"
    }
    workloads = [
        r
        for token in ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job")
        for r in of_type(plan, token)
        if r["inputs"]["metadata"]["namespace"] == "platform"
    ]
    assert workloads and len(brokers) == 2
    for w in workloads:
        assert brokers[w["region"]] in w["dependencies"], f"{w['urn']} may start before its identity exists"
    templates = of_type(plan, "aws:ec2/launchTemplate:LaunchTemplate")
    assert templates
    for t in templates:
        assert t["inputs"]["metadataOptions"] == {
            "httpEndpoint": "enabled",
            "httpTokens": "required",
            "httpPutResponseHopLimit": 1,
        }
