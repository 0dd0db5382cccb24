"""Every `meridian ...` and `make ...` command quoted in README.md and docs/ is one the CLI accepts,
and every relative link in them points at a file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .cli_commands import ROOT, check, commands_in, help_text, markdown_commands

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def quoted_commands():
    return [c for path in DOCS for c in commands_in(markdown_commands(path))]


def test_every_command_quoted_in_the_docs_is_accepted_by_the_cli():
    commands = quoted_commands()
    assert sum(c.tool == "meridian" for c in commands) >= 10 and sum(c.tool == "make" for c in commands) >= 3
    problems = [p for c in commands for p in check(c)]
    assert not problems, "commands in the docs that the CLI does not accept:\n" + "\n".join(problems)


def test_every_relative_link_in_the_docs_resolves():
    broken = []
    for path in DOCS:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            for target in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"^[a-z]+:|^#", target):
                    continue  # a URL or an anchor in the same page
                if not (path.parent / target.split("#", 1)[0]).exists():
                    broken.append(f"{path.relative_to(ROOT)}:{i}: {target}")
    assert not broken, "links to files that do not exist:\n" + "\n".join(broken)


def test_the_readme_leads_with_the_two_commands():
    first_block = re.search(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    lines = [line.split("#")[0].split() for line in first_block.splitlines()]
    assert ["make", "preview"] in lines and ["make", "test"] in lines


def _quoted(text: str, tmp: Path):
    path = tmp / "doc.md"
    path.write_text(text)
    return markdown_commands(path)


# --- the checker itself: it must catch what it claims to -----------------------------------------

BAD_DOC = """\
Run `meridian preview --stack us --no-such-flag` or `meridian frobnicate --stack us`.

```bash
make preview STACK=eu          # fine
make no-such-target
.venv/bin/meridian sandbox up --stack us \\
    --time-scale 5 --wrong
meridian preview|policy --json PATH
meridian preview|cost --tenants N   # cost has --tenants, policy does not: checked above only for these two
```

```yaml
run: meridian preview --not-checked-in-yaml
```

```
error: invalid config for stack 'us' (2 problems):
  Pulumi.us.yaml: meridian:failover.dns_ttl: unknown key
```

````markdown
```bash
meridian preview --inside-a-markdown-example
```
````
"""


def test_the_checker_finds_bad_flags_unknown_subcommands_and_make_targets(tmp_path):
    commands = commands_in(_quoted(BAD_DOC, tmp_path))
    problems = "\n".join(p for c in commands for p in check(c))
    assert "has no flag --no-such-flag" in problems
    assert "`meridian frobnicate --help` exits 2" in problems
    assert "`make -n no-such-target` fails" in problems
    assert "`meridian sandbox up` has no flag --wrong" in problems  # a continued line is one command
    assert "no flag --time-scale" not in problems and "make -n preview" not in problems
    assert "--not-checked-in-yaml" not in problems  # only shell blocks hold commands
    assert "dns_ttl" not in problems  # output lines are not commands
    assert "--inside-a-markdown-example" not in problems  # a fence inside a longer fence is text
    # `a|b` at a subcommand position checks both
    assert "`meridian preview` has no flag --tenants" not in problems
    assert len(problems.splitlines()) == 4, problems


def test_a_flag_only_mentioned_in_a_help_text_is_not_accepted(tmp_path):
    # `meridian evidence verify --help` mentions `drill --evidence`; verify itself has no --evidence
    assert "--evidence" in help_text(("evidence", "verify"))[1]
    commands = commands_in(_quoted("`meridian evidence verify out/ --evidence x`\n", tmp_path))
    assert [p for c in commands for p in check(c)] == [
        f"{tmp_path / 'doc.md'}:1: `meridian evidence verify` has no flag --evidence (quoted: 'meridian evidence verify out/ --evidence x')"
    ]


def test_placeholders_and_optional_parts_are_accepted(tmp_path):
    text = "`meridian cost --stack STACK [--json PATH] [--tenants N]` and `meridian preview|cost --tenants N`\n"
    commands = commands_in(_quoted(text, tmp_path))
    assert len(commands) == 2 and [p for c in commands for p in check(c)] == []


@pytest.mark.parametrize(
    ("text", "args"),
    [
        ("`.venv/bin/meridian --help`", ["--help"]),
        ("`python -m meridian preview`", ["preview"]),
        ("`STACK=eu make preview`", ["preview"]),
        ("`cd x && make test`", ["test"]),
        ("`if make -C base setup; then echo ok; fi`", ["-C", "base", "setup"]),
        ("`meridian:stack` tag", None),
        ("`meridian/engine/plan.py`", None),
    ],
)
def test_what_counts_as_a_command(tmp_path, text, args):
    commands = commands_in(_quoted(text + "\n", tmp_path))
    assert [c.args for c in commands] == ([args] if args is not None else [])


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in markdown.splitlines()
        if line.startswith("#")
    }


def test_a_newcomer_finds_tenant_onboarding_from_the_readme_and_the_tenancy_doc():
    operations = _anchors((ROOT / "docs" / "operations.md").read_text())
    assert {"onboarding-a-tenant", "offboarding-a-tenant"} <= operations
    readme_row = next(line for line in (ROOT / "README.md").read_text().splitlines() if "tenancy-and-cost.md" in line)
    tenancy = (ROOT / "docs" / "tenancy-and-cost.md").read_text()
    for where, text, prefix in (
        ("README.md", readme_row, "docs/operations.md"),
        ("tenancy-and-cost.md", tenancy, "operations.md"),
    ):
        for anchor in ("onboarding-a-tenant", "offboarding-a-tenant"):
            assert f"]({prefix}#{anchor})" in text, f"{where} does not link {anchor}"
