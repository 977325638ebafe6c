"""Summaries first: `evaluate` starts with counts by severity and code and the top groups x
code, lists healthy users only with --all, and puts the same summary first in its JSON."""

from __future__ import annotations

import json

import pytest

from shared.cli.main import main
from tests.demo_tenant import DEMO


def test_the_table_starts_with_the_summary_before_any_user(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["evaluate", "--snapshot", str(DEMO)])
    out = capsys.readouterr().out
    lines = out.splitlines()

    summary = lines.index(next(line for line in lines if line.startswith("SUMMARY: ")))
    assert summary < lines.index(next(x for x in lines if x.startswith("USERS WITH FINDINGS")))
    error_line = next(x for x in lines[summary:] if x.startswith("  ERROR"))
    assert "CountViolation 2" in error_line
    top = lines.index(next(x for x in lines if x.startswith("  Top groups x code")))
    first = lines[top + 1].split()
    assert first[0] == "2"
    assert first[1:] == ["CountViolation", "Licensing_Office365_EMS_E3"]


def test_healthy_users_are_counted_not_listed_unless_all(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main(["evaluate", "--snapshot", str(DEMO)])
    short = capsys.readouterr().out
    main(["evaluate", "--snapshot", str(DEMO), "--all"])
    full = capsys.readouterr().out

    assert "(listed with --all)" in short
    assert "David Abbott <david.abbott@contoso.com>: Office 365 E3" not in short
    assert "David Abbott <david.abbott@contoso.com>: Office 365 E3" in full


def test_json_starts_with_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    main(["evaluate", "--snapshot", str(DEMO), "--format", "json"])
    out = capsys.readouterr().out
    document = json.loads(out)

    assert out.startswith('{"summary":')
    summary = document["summary"]
    assert summary["total"] == sum(summary["bySeverity"].values())
    count = {(c["code"], c["severity"]): c["count"] for c in summary["byCode"]}
    assert count[("CountViolation", "error")] == 2
    top = {(t["groupName"], t["code"]): t["count"] for t in summary["topGroups"]}
    assert top[("Licensing_Office365_EMS_E3", "CountViolation")] == 2
