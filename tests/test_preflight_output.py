"""The preflight table as a CI log reads it: piped, nothing cut, no line padded to the longest rule."""

from __future__ import annotations

import io
import sys

from meridian.output import report_console
from meridian.preflight.context import CheckResult
from meridian.preflight.run import print_report

LONG = " ".join(f"rule{i} (https://docs.aws.amazon.com/x/{i}.html);" for i in range(60))  # ~2,400 characters


def test_piped_preflight_wraps_the_rules_without_cutting_a_word(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)  # not a terminal: the CI log's console
    results = [CheckResult("quotas", LONG, checked=63), CheckResult("names", "every physical name fits", checked=174)]
    print_report(results, report_console())
    text = out.getvalue()
    widest = max(len(line) for line in text.splitlines())
    assert widest <= 160, f"a line of {widest} columns"
    words = " ".join(line.strip("│┃ ") for line in text.splitlines())
    assert all(f"rule{i}" in words for i in range(60)), "every word of the rule is printed"
    assert "names" in text and "174" in text
