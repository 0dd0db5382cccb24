"""`meridian diff` / `meridian preview --diff`: what a change does to a stack's plan, for the PR comment.

The recorded pair (tests/data/plandiff/record.py) is the us stack before and after a change that
opens the shared tenant bucket to public reads and adds a node per region.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meridian.cli import app
from meridian.engine.plandiff import COMMENT_MARKER, diff_plans, headline, load_plan, to_markdown, urn_name
from meridian.errors import BadInput

from .helpers import run_meridian

DATA = Path(__file__).parent / "data" / "plandiff"
RULE = "s3-bucket-public-access-blocked"
POOL_BLOCKS = ["us-us-east-1-tenant-pool-data-no-public", "us-us-west-2-tenant-pool-data-no-public"]
POOL_POLICIES = ["us-us-east-1-tenant-pool-data-tls-only", "us-us-west-2-tenant-pool-data-tls-only"]
NODE_GROUPS = ["us-us-east-1-eks-nodes", "us-us-west-2-eks-nodes"]


def recorded(label: str) -> dict:
    return json.loads(gzip.decompress((DATA / f"us-{label}.json.gz").read_bytes()))


@pytest.fixture(scope="module")
def base() -> dict:
    return recorded("base")


@pytest.fixture(scope="module")
def head() -> dict:
    return recorded("head-public-bucket")


def names(items) -> list[str]:
    return sorted(i.name for i in items)


def test_opening_a_bucket_shows_the_new_violations_rule_resource_and_cost_delta_at_a_glance(base, head):
    diff = diff_plans(base, head)
    assert names(diff.new_violations) == sorted(POOL_BLOCKS + POOL_POLICIES)
    assert {(v.policy, v.level) for v in diff.new_violations} == {(RULE, "mandatory")}
    assert diff.fixed_violations == [] and diff.policy_compared
    delta = head["cost"]["monthly_total_usd"] - base["cost"]["monthly_total_usd"]
    assert delta > 100 and diff.cost.total.delta == pytest.approx(delta)

    markdown = to_markdown(diff)
    lines = markdown.splitlines()
    assert lines[0] == COMMENT_MARKER.format(stack="us")
    # The headline alone says it blocks, names the rule, and gives the cost delta.
    top = lines[3]
    assert top == f"**{headline(diff)}**"
    assert "4 mandatory violations" in top and RULE in top and f"+${delta:,.2f}/month" in top
    # One table row per new violation: level, rule, the resource (name, type), region, what must change.
    row = next(line for line in lines if POOL_BLOCKS[0] in line and line.startswith("| **mandatory**"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["**mandatory**", f"`{RULE}`", f"`{POOL_BLOCKS[0]}` (aws:s3:BucketPublicAccessBlock)", "us-east-1"]
    assert "blockPublicPolicy" in cells[4] and "restrictPublicBuckets" in cells[4]
    # Cost: the total, each region and each tenant that moved, and the type that caused it.
    assert f"| **total** | ${base['cost']['monthly_total_usd']:,.2f} | ${head['cost']['monthly_total_usd']:,.2f} |" in markdown
    for region in ("us-east-1", "us-west-2"):
        assert f"| region `{region}` |" in markdown
    for tenant in ("acme", "globex", "initech", "umbrella"):
        assert f"| tenant `{tenant}` |" in markdown
    assert "| type `aws:eks:NodeGroup` |" in markdown
    # The violations come before the resource list, which folds away.
    assert markdown.index(RULE) < markdown.index("<details>")


def test_the_example_comment_in_the_ci_docs_is_what_the_code_writes(base, head):
    doc = (Path(__file__).parent.parent / "docs" / "ci.md").read_text()
    example = re.search(r"````markdown\n(.*?)````", doc, re.S).group(1)
    assert example == to_markdown(diff_plans(base, head)), "regenerate the example in docs/ci.md"


def test_changed_resources_name_the_input_keys_that_changed(base, head):
    diff = diff_plans(base, head)
    assert diff.added == [] and diff.removed == []
    changed = {r.name: r for r in diff.changed}
    assert sorted(changed) == sorted(POOL_BLOCKS + POOL_POLICIES + NODE_GROUPS)
    assert changed[POOL_BLOCKS[0]].keys == ["blockPublicPolicy", "restrictPublicBuckets"]
    assert changed[POOL_POLICIES[0]].keys == ["policy.Statement"]  # the policy document, compared as JSON
    assert changed[NODE_GROUPS[0]].keys == ["scalingConfig.desiredSize"]
    providers = sum(1 for r in head["resources"] if r["type"].startswith("pulumi:providers:"))
    assert diff.unchanged == sum(1 for r in head["resources"] if r["custom"]) - providers - 6
    markdown = to_markdown(diff)
    assert "`blockPublicPolicy`: true → false" in markdown
    assert "`scalingConfig.desiredSize`: 3 → 4" in markdown
    out = diff.to_json()
    by_urn = {r["urn"]: r for r in out["resources"]["changed"]}
    pab = next(r for r in head["resources"] if r["name"] == POOL_BLOCKS[1])
    assert by_urn[pab["urn"]]["changed_keys"] == ["blockPublicPolicy", "restrictPublicBuckets"]
    assert by_urn[pab["urn"]]["region"] == "us-west-2"


def test_the_reverse_change_fixes_the_violations_and_saves_the_cost(base, head):
    diff = diff_plans(head, base)
    assert diff.new_violations == [] and names(diff.fixed_violations) == sorted(POOL_BLOCKS + POOL_POLICIES)
    assert diff.head_mandatory == 0 and diff.cost.total.delta < -100
    top = headline(diff)
    assert "✅ 4 fixed" in top and "mandatory" not in top and "cost -$" in top
    assert "#### Fixed violations (4)" in to_markdown(diff)


def test_a_plan_against_itself_has_no_changes(base):
    diff = diff_plans(base, copy.deepcopy(base))
    assert not diff.has_changes
    assert (diff.added, diff.removed, diff.changed, diff.new_violations, diff.fixed_violations) == ([], [], [], [], [])
    markdown = to_markdown(diff)
    assert "No resource changes" in markdown and "±$0.00/month" in markdown and "<details>" not in markdown


def test_violations_already_open_on_base_are_counted_not_listed_as_new(base, head):
    before = copy.deepcopy(head)
    before["cost"] = base["cost"]
    diff = diff_plans(before, head)
    assert diff.new_violations == [] and diff.open_violations == 4
    assert "4 violations already open on the base branch" in to_markdown(diff)


def resource(urn_name: str, type_: str = "aws:s3/bucket:Bucket", **inputs) -> dict:
    return {
        "urn": f"urn:pulumi:us::meridian::{type_}::{urn_name}",
        "type": type_,
        "name": urn_name,
        "custom": True,
        "parent": None,
        "provider": None,
        "region": "us-east-1",
        "inputs": inputs,
        "dependencies": [],
        "protect": False,
    }


def plan(*resources: dict, violations=(), evaluated=True, total=10.0) -> dict:
    return {
        "project": "meridian",
        "stack": "us",
        "resources": list(resources),
        "outputs": {},
        "policy": {"evaluated": evaluated, "violations": list(violations)},
        "cost": {"evaluated": True, "monthly_total_usd": total, "by_region": {"us-east-1": total}, "tenants": []},
    }


def test_a_secret_is_never_shown_even_when_the_other_side_is_plain():
    before = plan(resource("db", "aws:rds/cluster:Cluster", masterPassword="[secret]", port=5432))
    after = plan(resource("db", "aws:rds/cluster:Cluster", masterPassword="hunter2-in-clear", port=5433))
    diff = diff_plans(before, after)
    assert diff.changed[0].keys == ["masterPassword", "port"]
    rendered = to_markdown(diff) + json.dumps(diff.to_json()) + to_markdown(diff_plans(after, before))
    assert "hunter2" not in rendered and "[secret]" not in rendered
    assert "`masterPassword`" in rendered and "`port`: 5432 → 5433" in rendered


@pytest.mark.parametrize("key", ["dbPassword", "authToken", "stringData.API_KEY", "data.settings"])
def test_credential_like_values_are_not_shown_even_in_clear(key):
    def inputs(value):
        node = value
        for part in reversed(key.split(".")):
            node = {part: node}
        return node

    before = plan(resource("s", "kubernetes:core/v1:Secret", **inputs("old-clear-value")))
    after = plan(resource("s", "kubernetes:core/v1:Secret", **inputs("new-clear-value")))
    diff = diff_plans(before, after)
    rendered = to_markdown(diff) + json.dumps(diff.to_json())
    assert diff.changed[0].keys == [key] and "clear-value" not in rendered


def test_long_values_are_named_not_printed():
    before = plan(resource("role", "aws:iam/role:Role", description="a" * 200))
    after = plan(resource("role", "aws:iam/role:Role", description="b" * 200))
    markdown = to_markdown(diff_plans(before, after))
    assert "`description`" in markdown and "bbbb" not in markdown


def test_added_removed_renamed_and_protected_resources():
    keep, old = resource("keep"), {**resource("old-name"), "protect": True}
    diff = diff_plans(plan(keep, old), plan({**keep, "protect": True}, resource("new-name")))
    assert names(diff.added) == ["new-name"] and names(diff.removed) == ["old-name"]
    assert diff.changed[0].keys == ["(protect)"]
    markdown = to_markdown(diff)
    assert "protected: the delete fails until unprotected" in markdown
    assert diff.to_json()["resources"]["removed"][0]["protect"] is True


def test_components_are_not_counted_as_resources():
    component = {**resource("net", "meridian:network:RegionNetwork"), "custom": False}
    diff = diff_plans(plan(), plan(component))
    assert diff.added == [] and not diff.has_changes


def test_policy_not_evaluated_on_one_side_is_said_and_nothing_is_called_fixed():
    bad = {"policy": RULE, "level": "mandatory", "urn": resource("b")["urn"], "message": "must | be\nprivate"}
    diff = diff_plans(plan(resource("b"), evaluated=False), plan(resource("b"), violations=[bad]))
    assert not diff.policy_compared and diff.fixed_violations == []
    markdown = to_markdown(diff)
    assert "not evaluated in the base plan" in markdown and "Policy violations in this change (1)" in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| **mandatory**"))
    assert row.count(" | ") == 4 and "must \\| be private" in row  # a pipe or newline cannot break the table


def test_stack_level_violations_and_missing_cost():
    stack_violation = {"policy": "tenant-isolation", "level": "advisory", "urn": "", "message": "m"}
    after = plan(violations=[stack_violation])
    del after["cost"]
    diff = diff_plans(plan(), after)
    markdown = to_markdown(diff)
    assert "| advisory | `tenant-isolation` | (stack) |" in markdown
    assert "no cost estimate in the head plan" in markdown and diff.to_json()["cost"]["monthly_total_usd"] is None


def test_large_diffs_are_capped_in_markdown_but_complete_in_json():
    after = plan(*(resource(f"b{i:03}") for i in range(300)))
    diff = diff_plans(plan(), after)
    markdown = to_markdown(diff)
    assert "... and 260 more" in markdown and len(markdown) < 65_000  # GitHub's comment limit is 65,536
    assert len(diff.to_json()["resources"]["added"]) == 300


def test_the_comment_always_fits_github_s_limit():
    long = "must change " * 150  # 40 rows of these alone are over the limit
    violations = [
        {"policy": f"rule-{i:03}", "level": "mandatory", "urn": resource(f"b{i:03}")["urn"], "message": long} for i in range(300)
    ]
    diff = diff_plans(plan(), plan(*(resource(f"b{i:03}") for i in range(300)), violations=violations))
    markdown = to_markdown(diff)
    assert len(markdown) <= 60_000 and "cut to fit a PR comment" in markdown
    assert markdown.splitlines()[3] == f"**{headline(diff)}**"  # the headline survives any cut
    assert markdown.count("<details>") == markdown.count("</details>")


runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args))


def test_cli_format_says_what_goes_to_stdout(tmp_path, base, head):
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "head.json").write_text(json.dumps(head))
    plans = [str(tmp_path / "base.json"), str(tmp_path / "head.json")]
    as_json = cli("diff", *plans, "--format", "json", "--json", str(tmp_path / "d.json"))
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == json.loads((tmp_path / "d.json").read_text()) == diff_plans(base, head).to_json()
    assert "diff JSON written to" in as_json.stderr  # notes stay off stdout
    as_markdown = cli("diff", *plans, "--format", "markdown")
    assert as_markdown.exit_code == 0 and as_markdown.stdout == to_markdown(diff_plans(base, head))


def test_cli_writes_markdown_and_json(tmp_path, base, head):
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "head.json").write_text(json.dumps(head))
    result = cli(
        "diff",
        str(tmp_path / "base.json"),
        str(tmp_path / "head.json"),
        "--markdown",
        str(tmp_path / "c.md"),
        "--json",
        str(tmp_path / "d.json"),
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c.md").read_text() == to_markdown(diff_plans(base, head))
    assert json.loads((tmp_path / "d.json").read_text())["policy"]["head_mandatory"] == 4
    assert RULE in result.output


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "file not found"),
        ("{not json", "not JSON (line 1"),
        ("[1, 2]", "expected a JSON object"),
        ('{"stack": "us"}', "not a meridian plan"),
        ('{"stack": "us", "resources": [{"urn": "u", "type": "t"}, {"urn": "u", "type": "t"}]}', "duplicate URN u"),
        ('{"stack": "eu", "resources": []}', "different stacks: base is 'eu', head is 'us'"),
    ],
)
def test_bad_plans_exit_2_with_what_is_wrong(tmp_path, base, content, expected):
    (tmp_path / "head.json").write_text(json.dumps(base))
    if content is not None:
        (tmp_path / "base.json").write_text(content)
    result = cli("diff", str(tmp_path / "base.json"), str(tmp_path / "head.json"))
    assert result.exit_code == 2
    assert expected in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_bad_output_path_exits_2_before_reading_plans(tmp_path):
    result = cli("diff", "a.json", "b.json", "--markdown", str(tmp_path / "missing" / "c.md"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_load_plan_reads_what_preview_writes(previews, tmp_path):
    """Producer -> consumer: the live `meridian preview --json` output is a plan this module accepts."""
    path = tmp_path / "us.json"
    path.write_text(json.dumps(previews["us"].plan))
    live = load_plan(path, "head")
    assert not diff_plans(live, copy.deepcopy(live)).has_changes


def test_preview_diff_shows_the_change_against_a_base_plan(previews, tmp_path):
    base_plan = copy.deepcopy(previews["us"].plan)
    pab = next(r for r in base_plan["resources"] if r["type"].endswith("BucketPublicAccessBlock"))
    pab["inputs"]["blockPublicPolicy"] = False  # the base had it off; the live program turns it on
    gone = next(r for r in base_plan["resources"] if r["type"] == "aws:kms/key:Key")
    gone["urn"] += "-renamed"
    (tmp_path / "base.json").write_text(json.dumps(base_plan))
    result = run_meridian("preview", "--stack", "us", "--no-policy", "--diff", str(tmp_path / "base.json"))
    assert result.code == 0, result.err + result.out[-2000:]
    out = " ".join(result.out.split())
    assert "against the base plan" in out
    assert re.search(r"resources \+1 ~1 -1", out), out[-3000:]
    assert "blockPublicPolicy: false → true" in out  # piped: plain text, nothing cut
    assert "policy pack not evaluated in the head plan" in out


def test_preview_diff_refuses_a_base_of_another_stack_before_running_the_program(previews, tmp_path):
    (tmp_path / "eu.json").write_text(json.dumps(previews["eu"].plan))
    result = run_meridian("preview", "--stack", "us", "--diff", str(tmp_path / "eu.json"))
    assert result.code == 2 and "is of stack 'eu', not 'us'" in " ".join(result.err.split())
    assert "resources in" not in result.out  # the program never ran


def test_preview_diff_with_bare_is_refused(tmp_path):
    result = cli("preview", "--stack", "us", "--bare", "--diff", str(tmp_path / "base.json"))
    assert result.exit_code == 2 and "cannot be combined with --bare" in " ".join(result.output.split())


def test_bad_base_is_a_bad_input_error(tmp_path):
    with pytest.raises(BadInput, match="file not found"):
        load_plan(tmp_path / "nope.json", "base")


def with_secrets(p: dict, key_id: str, digests: dict[str, dict[str, str]]) -> dict:
    return {**p, "secrets": {"key_id": key_id, "digests": digests}}


def settings(name: str = "api-settings") -> dict:
    return resource(name, "kubernetes:core/v1:Secret", stringData="[secret]", metadata={"name": name})


def test_a_secret_whose_value_changed_is_listed_as_changed_without_its_value():
    urn = settings()["urn"]
    before = with_secrets(plan(settings()), "k1", {urn: {"stringData": "aaaa"}})
    after = with_secrets(plan(settings()), "k1", {urn: {"stringData": "bbbb"}})
    diff = diff_plans(before, after)
    assert [r.name for r in diff.changed] == ["api-settings"] and diff.changed[0].keys == ["stringData"]
    assert "resources +0 ~1 -0" in headline(diff)
    markdown = to_markdown(diff)
    assert "`stringData` [secret]" in markdown and "aaaa" not in markdown + json.dumps(diff.to_json())
    assert diff.to_json()["secrets"] == {"compared": True, "note": ""}
    same = diff_plans(before, with_secrets(plan(settings()), "k1", {urn: {"stringData": "aaaa"}}))
    assert not same.has_changes


def test_secrets_of_plans_made_under_different_keys_are_not_compared_and_the_diff_says_so():
    urn = settings()["urn"]
    before = with_secrets(plan(settings()), "k1", {urn: {"stringData": "aaaa"}})
    after = with_secrets(plan(settings()), "k2", {urn: {"stringData": "bbbb"}})
    diff = diff_plans(before, after)
    assert not diff.changed, "digests under different keys always differ: they say nothing"
    assert "different digest keys" in to_markdown(diff) and diff.to_json()["secrets"]["compared"] is False
    older = diff_plans(plan(settings()), after)
    assert "the base plan records no secret digests" in to_markdown(older)


def test_a_protected_delete_is_a_blocker_in_the_headline_and_fails_strict(tmp_path):
    key = {**resource("t-hooli-key", "aws:kms/key:Key"), "protect": True}
    diff = diff_plans(plan(key, resource("t-hooli-bucket")), plan())
    assert headline(diff).startswith("🛑 1 protected delete (`pulumi up` fails until unprotected)")
    markdown = to_markdown(diff)
    assert markdown.index("Protected deletes (1)") < markdown.index("<details>"), "outside the collapsed list"
    assert diff.blocked and diff.to_json()["resources"]["protected_deletes"] == [key["urn"]]
    (tmp_path / "base.json").write_text(json.dumps(plan(key, resource("t-hooli-bucket"))))
    (tmp_path / "head.json").write_text(json.dumps(plan()))
    plans = [str(tmp_path / "base.json"), str(tmp_path / "head.json")]
    assert cli("diff", *plans).exit_code == 0, "without --strict the diff only reports"
    strict = cli("diff", *plans, "--strict")
    assert strict.exit_code == 1, strict.output
    unprotected = tmp_path / "unprotected.json"
    unprotected.write_text(json.dumps(plan({**key, "protect": False}, resource("t-hooli-bucket"))))
    assert cli("diff", str(unprotected), str(tmp_path / "head.json"), "--strict").exit_code == 0


def test_strict_fails_on_a_mandatory_violation(tmp_path, base, head):
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "head.json").write_text(json.dumps(head))
    assert cli("diff", str(tmp_path / "base.json"), str(tmp_path / "head.json"), "--strict").exit_code == 1
    assert cli("diff", str(tmp_path / "base.json"), str(tmp_path / "base.json"), "--strict").exit_code == 0


def test_piped_output_never_cuts_a_name(tmp_path, base, head):
    (tmp_path / "base.json").write_text(json.dumps(base))
    (tmp_path / "head.json").write_text(json.dumps(head))
    # stdout is a pipe, and no COLUMNS says how wide: what CI logs and `| cat` get
    result = run_meridian("diff", str(tmp_path / "base.json"), str(tmp_path / "head.json"), env={"COLUMNS": ""})
    assert result.code == 0, result.err
    for name in [*POOL_BLOCKS, *POOL_POLICIES, *NODE_GROUPS]:
        assert name in result.out, f"{name} cut in piped output"
    assert "…" not in result.out
    # plain text, not the Markdown source: `--format text` says "plain and uncut when piped"
    assert "**" not in result.out and "|---" not in result.out and "<details>" not in result.out
    assert "`" not in result.out.split("Resources:", 1)[1], "inline code marks are Markdown, not text"
    row = next(line for line in result.out.splitlines() if POOL_BLOCKS[0] in line and "blockPublicPolicy" in line)
    assert len(row) > 80, "a row is as long as its cells, never cut to 80 columns"
    total = next(line for line in result.out.splitlines() if line.startswith("total "))
    assert total.split()[1] == f"${base['cost']['monthly_total_usd']:,.2f}"


def test_tenant_cost_rows_say_they_include_an_allocated_share_and_pseudo_types_are_not_types(base, head):
    more_storage = copy.deepcopy(head)
    more_storage["cost"]["by_type"]["s3-storage-at-quota"] += 9.2
    more_storage["cost"]["monthly_total_usd"] += 9.2
    markdown = to_markdown(diff_plans(base, more_storage))
    assert "its share of the platform's shared costs" in markdown and "allocated by request quota" in markdown
    assert "| estimate `s3-storage-at-quota` |" in markdown
    for row in markdown.splitlines():
        if row.startswith("| type "):
            assert ":" in row.split("`")[1], f"{row}: a cost line that is not a resource type is labelled type"


@pytest.mark.slow
def test_onboarding_a_tenant_lists_the_settings_secrets_it_changes(tmp_path):
    """Two real previews of the us stack, before and after one more tenant, under one digest key."""
    from .helpers import full_project_copy

    project = tmp_path / "project"
    project.mkdir()
    full_project_copy(project)
    env_key = {"MERIDIAN_PLAN_DIGEST_KEY": "test-key-onboarding"}
    before = run_meridian(
        "preview", "--stack", "us", "--no-policy", "--json", str(tmp_path / "base.json"), cwd=project, env=env_key
    )
    assert before.code == 0, before.err
    stack_file = project / "Pulumi.us.yaml"
    stack_file.write_text(
        stack_file.read_text().replace(
            "    - {id: umbrella, plan: starter, monthly_budget_usd: 500, data_tier: pool}\n",
            "    - {id: umbrella, plan: starter, monthly_budget_usd: 500, data_tier: pool}\n"
            "    - {id: hooli, plan: starter, monthly_budget_usd: 500, data_tier: pool}\n",
        )
    )
    after = run_meridian(
        "preview", "--stack", "us", "--no-policy", "--json", str(tmp_path / "head.json"), cwd=project, env=env_key
    )
    assert after.code == 0, after.err
    diff = diff_plans(load_plan(tmp_path / "base.json", "base"), load_plan(tmp_path / "head.json", "head"))
    secret_only = sorted(r.name for r in diff.changed if r.type == "kubernetes:core/v1:Secret")
    assert len(secret_only) >= 4 and all(name.endswith("settings") for name in secret_only), secret_only
    assert all(any(c.secret for c in r.changes) for r in diff.changed if r.name in secret_only)
    assert "`stringData` [secret]" in to_markdown(diff)


SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
HOOK = "https://hooks.example.com/services/meridian/alerts/on-call-primary-rotation"  # 74 characters


def test_a_new_alert_subscriber_shows_its_endpoint_as_pulumi_preview_does():
    old = resource("us-alerts-failover-e1a2", SUBSCRIPTION, protocol="email", endpoint="oncall@example.com", topic="[unknown]")
    new = resource("us-alerts-failover-9f3c", SUBSCRIPTION, protocol="https", endpoint=HOOK, topic="[unknown]")
    with_token = resource(
        "us-alerts-hook-auth", "aws:ssm/parameter:Parameter", name="hook", authToken="clear-token", value="[secret]"
    )
    diff = diff_plans(plan(old), plan(new, with_token))
    markdown, document = to_markdown(diff), diff.to_json()
    added = next(line for line in markdown.splitlines() if "us-alerts-failover-9f3c" in line)
    assert f'`endpoint`: "{HOOK}"' in added and '`protocol`: "https"' in added, added
    removed = next(line for line in markdown.splitlines() if "us-alerts-failover-e1a2" in line)
    assert removed.startswith("| - |") and '`endpoint`: "oncall@example.com"' in removed, removed
    added_inputs = {urn_name(r["urn"]): r["inputs"] for r in document["resources"]["added"]}
    assert added_inputs["us-alerts-failover-9f3c"]["endpoint"] == HOOK
    assert document["resources"]["removed"][0]["inputs"] == {
        "endpoint": "oncall@example.com",
        "protocol": "email",
        "topic": "[unknown]",
    }
    hidden = markdown + json.dumps(document)
    assert "clear-token" not in hidden and "[secret]" not in hidden, "secrets and credential-like inputs stay unnamed values"
    assert '`name`: "hook"' in markdown


def test_an_added_resource_lists_at_most_eight_inputs_in_the_comment_and_all_in_the_json():
    many = resource("wide", "aws:sqs/queue:Queue", **{f"setting{i:02d}": i for i in range(12)})
    diff = diff_plans(plan(), plan(many))
    row = next(line for line in to_markdown(diff).splitlines() if "`wide`" in line)
    assert "`setting07`: 7" in row and "setting08" not in row and "(+4 more)" in row
    assert len(diff.to_json()["resources"]["added"][0]["inputs"]) == 12


def test_inputs_that_restate_the_type_are_left_out():
    quota = resource("t-hooli-quota", "kubernetes:core/v1:ResourceQuota", apiVersion="v1", kind="ResourceQuota")
    diff = diff_plans(plan(), plan(quota))
    assert diff.added[0].inputs == () and 'ResourceQuota"' not in to_markdown(diff)


@pytest.mark.slow
def test_adding_an_alert_subscriber_shows_its_endpoint_on_both_topics(tmp_path):
    """Two real previews of the us stack, before and after an HTTPS subscriber (docs/operations.md)."""
    from .helpers import full_project_copy

    project = tmp_path / "project"
    project.mkdir()
    full_project_copy(project)
    hook = "https://oncall.meridian.example.com/hooks/aws-sns"
    before = run_meridian("preview", "--stack", "us", "--no-policy", "--json", str(tmp_path / "base.json"), cwd=project)
    assert before.code == 0, before.err
    stack_file = project / "Pulumi.us.yaml"
    queue = '      - {protocol: sqs, endpoint: "arn:aws:sqs:us-east-1:123456789012:meridian-alerts"}\n'
    assert queue in stack_file.read_text()
    stack_file.write_text(stack_file.read_text().replace(queue, queue + f'      - {{protocol: https, endpoint: "{hook}"}}\n'))
    after = run_meridian("preview", "--stack", "us", "--no-policy", "--json", str(tmp_path / "head.json"), cwd=project)
    assert after.code == 0, after.err
    diff = diff_plans(load_plan(tmp_path / "base.json", "base"), load_plan(tmp_path / "head.json", "head"))
    assert not diff.changed and not diff.removed and len(diff.added) == 2
    rows = [line for line in to_markdown(diff).splitlines() if line.startswith("| + |")]
    assert len(rows) == 2 and all(f'`endpoint`: "{hook}"' in row and '`protocol`: "https"' in row for row in rows), rows


def test_the_diff_s_counts_add_up_to_the_preview_s(base, head):
    """`meridian preview` says "N resources + P providers": the diff's add/change/unchanged add up to N
    and the providers are named apart, never folded into "unchanged"."""
    diff = diff_plans(base, head)
    providers = sum(1 for r in head["resources"] if r["type"].startswith("pulumi:providers:"))
    resources = sum(1 for r in head["resources"] if r["custom"]) - providers
    assert providers and diff.unchanged_providers == providers
    assert len(diff.added) + len(diff.changed) + diff.unchanged == resources == diff.head_resources
    summary = next(line for line in to_markdown(diff).splitlines() if line.startswith("<details><summary>Resources:"))
    assert f"{diff.unchanged} unchanged; the change's plan: {resources} resources + {providers} providers" in summary
    assert diff.to_json()["resources"]["unchanged_providers"] == providers
