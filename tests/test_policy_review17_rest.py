"""Security review 17's remaining rows, replayed on the us stack's real plan through the analyzer:
a target group too slow to take a bad target out for the failover budget (H03), an Aurora instance
parameter group judged for a cluster-level TLS parameter (L23, a false positive), and a read-only
ClusterRole aggregated into `view` (L28): allowed exactly, with its attack twins refused."""

from __future__ import annotations

import pytest

from .policydata.base import UNKNOWN
from .test_policy_review16 import one, rbac

pytestmark = pytest.mark.slow  # the plan comes from the previews fixture

# --- H03: how long a bad target keeps its traffic ----------------------------------------------------

HEALTH = "lb-target-group-health-checked"
STABLE = "us-use1-lb-stable"


def health_check(**settings):
    """`settings` laid over the stable target group's health check (None removes a setting)."""

    def mutate(resources):
        check = one(resources, STABLE, "targetGroup")["inputs"]["healthCheck"]
        for key, value in settings.items():
            if value is None:
                check.pop(key, None)
            else:
                check[key] = value

    return mutate


SLOW_CHECKS = [
    ("H03 interval 300 x unhealthyThreshold 10 (50 minutes)", health_check(interval=300, unhealthyThreshold=10), "3005"),
    ("interval 30 x 2 + a 10 s timeout (70 s)", health_check(interval=30, timeout=10), "70"),
    ("the shipped interval with unhealthyThreshold 10", health_check(unhealthyThreshold=10), "105"),
    (
        "every timing left to the defaults (interval 30 x threshold 3 + timeout 10)",
        health_check(interval=None, timeout=None, unhealthyThreshold=None),
        "100",
    ),
]


@pytest.mark.parametrize("what,mutation,seconds", SLOW_CHECKS, ids=[s[0] for s in SLOW_CHECKS])
def test_a_target_group_slower_than_the_rto_target_to_take_out_a_bad_target_is_a_mandatory_violation(
    judge, what, mutation, seconds
):
    found = judge(mutation)
    hits = [v for v in found if v.policy == HEALTH]
    assert hits and all(v.level == "mandatory" and " must " in v.message for v in hits), (
        what,
        [(v.policy, v.level, v.message) for v in found],
    )
    assert any(f"= {seconds} s" in v.message and "60 s" in v.message for v in hits), [v.message for v in hits]


def test_a_health_check_timing_that_is_no_number_is_a_mandatory_violation_not_a_crash(judge):
    found = [v for v in judge(health_check(unhealthyThreshold="often")) if v.policy == HEALTH]
    assert [v.level for v in found] == ["mandatory"] and "as numbers" in found[0].message, found


def test_the_health_check_timing_unknown_at_preview_is_an_advisory_naming_it(judge):
    found = [v for v in judge(health_check(interval=UNKNOWN)) if v.policy == HEALTH]
    assert [v.level for v in found] == ["advisory"] and "healthCheck.interval" in found[0].message, found


@pytest.mark.parametrize(
    "what,mutation",
    [
        ("the shipped timing (10 x 2 + 5 = 25 s)", lambda resources: None),
        ("exactly the budget (interval 25 x 2 + timeout 10 = 60 s)", health_check(interval=25, timeout=10)),
        ("a faster check (5 x 2 + 2)", health_check(interval=5, timeout=2)),
    ],
)
def test_a_target_group_within_the_rto_target_passes_the_whole_pack(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what


# --- L23: Aurora's TLS parameter lives in the cluster parameter group ----------------------------------

TLS = "rds-parameter-group-tls-required"
INSTANCE_GROUP = "aws:rds/parameterGroup:ParameterGroup"


def instance_group(family: str, parameters: list[dict], on: str | None = "us-db-us-east-1-0"):
    """A DB (instance) parameter group `inst-params` of `family`, named by the cluster's first instance."""

    def mutate(resources):
        cluster_params = one(resources, "us-db-us-east-1-params", "clusterParameterGroup")
        resources.append(
            {
                **{k: cluster_params[k] for k in ("custom", "parent", "provider", "region")},
                "urn": cluster_params["urn"].rsplit("$", 1)[0] + f"${INSTANCE_GROUP}::inst-params",
                "type": INSTANCE_GROUP,
                "name": "inst-params",
                "inputs": {
                    "name": "inst-params",
                    "family": family,
                    "parameters": parameters,
                },
                "dependencies": [],
                "propertyDependencies": {},
            }
        )
        if on:
            one(resources, on, "clusterInstance")["inputs"]["dbParameterGroupName"] = "inst-params"

    return mutate


WORK_MEM = [{"name": "work_mem", "value": "65536"}]


def cluster_group_without_tls(resources):
    group = one(resources, "us-db-us-east-1-params", "clusterParameterGroup")["inputs"]
    group["parameters"] = [p for p in group["parameters"] if p["name"] != "rds.force_ssl"]


@pytest.mark.parametrize(
    "what,mutation",
    [
        ("an RDS for PostgreSQL 14 instance group without rds.force_ssl", instance_group("postgres14", WORK_MEM, on=None)),
        (
            "an RDS for PostgreSQL 16 instance group turning rds.force_ssl off",
            instance_group("postgres16", [{"name": "rds.force_ssl", "value": "0"}], on=None),
        ),
        ("an RDS for MySQL 8.0 instance group without require_secure_transport", instance_group("mysql8.0", WORK_MEM, on=None)),
        (
            "the Aurora instance group fine, the cluster's group no longer forcing TLS",
            lambda rs: (instance_group("aurora-postgresql16", WORK_MEM)(rs), cluster_group_without_tls(rs)),
        ),
    ],
)
def test_a_group_that_leaves_tls_optional_is_still_a_mandatory_violation(judge, what, mutation):
    hits = [v for v in judge(mutation) if v.policy == TLS]
    assert hits and all(v.level == "mandatory" and " must " in v.message for v in hits), (what, hits)


@pytest.mark.parametrize("family", ["aurora-postgresql16", "aurora-mysql8.0"])
def test_l23_an_aurora_instance_parameter_group_without_the_cluster_tls_parameter_passes_the_whole_pack(judge, family):
    assert [(v.policy, v.level, v.message) for v in judge(instance_group(family, WORK_MEM))] == []


# --- L28: a read-only role aggregated into view ----------------------------------------------------------

SCOPED = "k8s-rbac-binding-scoped"
VIEW = "rbac.authorization.k8s.io/aggregate-to-view"
READ_WIDGETS = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list", "watch"]}


def aggregated(rules, labels=None, name: str = "widget-reader"):
    """A ClusterRole labelled to aggregate (into view unless `labels` says otherwise), with no binding of its own."""
    body = {"metadata": {"name": name, "labels": labels or {VIEW: "true"}}, "rules": rules}
    return lambda resources: resources.append(rbac("ClusterRole", name, body))


AGGREGATION_ATTACKS = [
    ("every verb on widgets", aggregated([{**READ_WIDGETS, "verbs": ["*"]}])),
    ("reads Secrets", aggregated([READ_WIDGETS, {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}])),
    ("reads every resource of its group", aggregated([{**READ_WIDGETS, "resources": ["*"]}])),
    ("gets nodes/proxy (the kubelet API)", aggregated([{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}])),
    (
        "gets pods/* (exec and attach by the websocket upgrade)",
        aggregated([{"apiGroups": [""], "resources": ["pods/*"], "verbs": ["get"]}]),
    ),
    ("gets serviceaccounts/token", aggregated([{"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["get"]}])),
    ("updates widgets", aggregated([{**READ_WIDGETS, "verbs": ["get", "update"]}])),
    ("read-only, into edit", aggregated([READ_WIDGETS], {"rbac.authorization.k8s.io/aggregate-to-edit": "true"})),
    ("read-only, into admin", aggregated([READ_WIDGETS], {"rbac.authorization.k8s.io/aggregate-to-admin": "true"})),
    (
        "read-only, into cluster-admin",
        aggregated([READ_WIDGETS], {"rbac.authorization.k8s.io/aggregate-to-cluster-admin": "true"}),
    ),
    (
        "read-only, into view and edit",
        aggregated([READ_WIDGETS], {VIEW: "true", "rbac.authorization.k8s.io/aggregate-to-edit": "true"}),
    ),
]


@pytest.mark.parametrize("what,mutation", AGGREGATION_ATTACKS, ids=[a[0] for a in AGGREGATION_ATTACKS])
def test_an_aggregation_beyond_reads_into_view_is_a_mandatory_violation(judge, what, mutation):
    hits = [v for v in judge(mutation) if v.policy == SCOPED]
    assert hits and all(v.level == "mandatory" and "must not aggregate" in v.message for v in hits), (what, hits)


@pytest.mark.parametrize(
    "what,mutation",
    [
        ("L28 get/list/watch on a custom resource", aggregated([READ_WIDGETS])),
        (
            "reads of pods' logs and status (view's own subresources)",
            aggregated([{"apiGroups": [""], "resources": ["pods/log", "pods/status"], "verbs": ["get"]}]),
        ),
        (
            "reads of a custom resource's status, and named widgets",
            aggregated([{**READ_WIDGETS, "resources": ["widgets", "widgets/status"], "resourceNames": ["w1"]}]),
        ),
        (
            "view's label set to false beside it",
            aggregated([READ_WIDGETS], {VIEW: "true", "rbac.authorization.k8s.io/aggregate-to-edit": "false"}),
        ),
    ],
)
def test_a_read_only_role_aggregated_into_view_passes_the_whole_pack(judge, what, mutation):
    assert [(v.policy, v.level, v.message) for v in judge(mutation)] == [], what
