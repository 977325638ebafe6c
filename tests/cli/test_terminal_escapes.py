"""Names reach the admin's terminal escaped: a display name, group name or UPN with an ESC
sequence, a bell, a carriage return or a newline (whoever can rename a group or a user, or an
on-premises directory synced in) used to be printed raw by every table: the terminal obeyed
the sequence (retitle, clear the screen, hide text) and a newline broke a row in two. The
tables and checklists write each control character as its escape (`\\x1b`, `\\n`); JSON keeps
the name as Graph holds it."""

from __future__ import annotations

import argparse
import io
import json
import re
from pathlib import Path

import pytest

from shared.cli.act import write_outcomes
from shared.cli.live import print_result
from shared.cli.main import main
from shared.cli.preflight import render, target_from
from shared.cli.preflight_checks import FAIL, Check
from shared.core.findings import Finding
from shared.render.terminal_text import printable, printable_lines
from shared.service.manual_reprocess import ManualOutcome
from shared.service.reconcile.run_state import ReconcileResult
from tests.demo_tenant import DEMO, E3_BASE, E3_TEAMS, EMS_E3, JONI

HOSTILE_NAME = "Joni\x1b]0;pwned\x07\x1b[2J\rSherman\nFAKE ROW"
HOSTILE_UPN = "joni\x1b[8m.sherman@contoso.com"
HOSTILE_GROUP = "Licensing\x9b31m_EMS\r\nE3"
HOSTILE_TEAMS = "Teams\x1b[1A"  # named in a snapshot warning on standard error
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")  # any control character but the newline


def hostile_snapshot(tmp_path: Path) -> Path:
    snapshot = json.loads(DEMO.read_text(encoding="utf-8"))
    for user in snapshot["users"]:
        user["displayName"] += "\x1b[0m"  # every table names some user
        if user["id"] == JONI:
            user["displayName"], user["userPrincipalName"] = HOSTILE_NAME, HOSTILE_UPN
    for group in snapshot["groups"]:
        if group["id"] == EMS_E3:
            group["displayName"] = HOSTILE_GROUP
        if group["id"] == E3_TEAMS:
            group["displayName"] = HOSTILE_TEAMS
    # and what else of the tenant's reaches a table: its name, a product's part number, a
    # plan's name, an error Graph reported
    snapshot["organization"][0]["displayName"] += "\x1b[5m"
    sku = snapshot["subscribedSkus"][0]
    sku["skuPartNumber"] += "\x07"
    sku["servicePlans"][0]["servicePlanName"] += "\x1b[8m"
    for user in snapshot["users"]:
        for state in user.get("licenseAssignmentStates", []):
            if state.get("error") == "CountViolation":
                state["error"] = "Other\x1b[31m"
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(snapshot), encoding="utf-8")
    return path


def assert_escaped(text: str) -> None:
    assert not CONTROL.search(text), repr(CONTROL.search(text))
    assert not [line for line in text.splitlines() if line.startswith("FAKE ROW")]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_printable_escapes_control_characters_and_keeps_the_rest() -> None:
    assert printable("Zoë Łukasz 山田 <z@contoso.com>") == "Zoë Łukasz 山田 <z@contoso.com>"
    assert printable(HOSTILE_NAME) == "Joni\\x1b]0;pwned\\x07\\x1b[2J\\rSherman\\nFAKE ROW"
    assert printable("a\tb\x9bc\u2028d\x7f") == "a\\tb\\x9bc\\u2028d\\x7f"


def test_printable_escapes_bidi_overrides_and_keeps_right_to_left_text() -> None:
    """An override (U+202E) makes a terminal show the rest of the line reversed: a name can then
    read as another's ("Trojan Source"). Hebrew and Arabic need none and stay as written."""
    assert printable("Eve\u202egnp.exe") == "Eve\\u202egnp.exe"
    assert printable("a\u2066b\u2069c\u202ad") == "a\\u2066b\\u2069c\\u202ad"
    assert printable("דנה כהן / سارة") == "דנה כהן / سارة"


def test_printable_shows_invisible_characters_that_make_one_name_look_like_another() -> None:
    """A zero-width space, word joiner or BOM inside a name, or a bidirectional mark, is
    invisible in a terminal: "Sales" and "Sal\u200bes" would read as one group. The zero-width
    non-joiner and joiner stay: Persian names and emoji sequences are written with them."""
    assert printable("Sal\u200bes") == "Sal\\u200bes"
    assert printable("a\u2060b\ufeffc\u2062d") == "a\\u2060b\\ufeffc\\u2062d"
    assert printable("x\u200ey\u200fz\u061c") == "x\\u200ey\\u200fz\\u061c"
    assert printable("مهرداد\u200cزاده 👩\u200d💻") == "مهرداد\u200cزاده 👩\u200d💻"


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "--snapshot", "SNAPSHOT", "--all"],
        ["whatif", "--snapshot", "SNAPSHOT", "--remove-member", EMS_E3, JONI],
        ["whatif", "--snapshot", "SNAPSHOT", "--delete-group", E3_BASE],
        ["report", "migration", "--snapshot", "SNAPSHOT"],
    ],
    ids=["evaluate", "whatif-member", "whatif-group", "migration"],
)
def test_every_snapshot_table_escapes_names(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snapshot = str(hostile_snapshot(tmp_path))

    _, out, err = run(capsys, *[snapshot if arg == "SNAPSHOT" else arg for arg in argv])

    assert_escaped(out)
    assert_escaped(err)  # the snapshot's warnings name groups too
    assert "\\x1b" in out or "\\x9b" in out


def test_the_diff_table_escapes_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, err = run(capsys, "diff", str(DEMO), str(hostile_snapshot(tmp_path)))

    assert_escaped(out)
    assert_escaped(err)


def test_json_keeps_the_names_as_graph_holds_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = run(
        capsys, "evaluate", "--snapshot", str(hostile_snapshot(tmp_path)), "--format", "json"
    )

    users = {user["id"]: user for user in json.loads(out)["users"]}
    assert users[JONI]["displayName"] == HOSTILE_NAME


def test_the_reprocess_list_escapes_names() -> None:
    finding = Finding("CountViolation", "error", JONI, None, EMS_E3, f"{HOSTILE_NAME} lacks", "")
    out = io.StringIO()

    write_outcomes(
        [ManualOutcome(f"{HOSTILE_NAME} <{HOSTILE_UPN}>", "reprocessed", "ok", (finding,))],
        "table",
        dry_run=True,
        out=out,
    )

    assert_escaped(out.getvalue())


def test_the_reconcile_plan_escapes_names() -> None:
    result = ReconcileResult(
        users=1,
        new_findings=1,
        resolved_findings=0,
        queued=0,
        would_reprocess=0,
        run_id="run",
        date="2026-12-03",
        status="dry-run",
        planned=[f"new finding ERROR CountViolation: {HOSTILE_NAME} from '{HOSTILE_GROUP}'"],
        new=[Finding("CountViolation", "error", JONI, None, EMS_E3, HOSTILE_NAME, "")],
        group_names={EMS_E3: HOSTILE_GROUP},
    )
    out = io.StringIO()

    print_result(result, "table", out)

    assert_escaped(out.getvalue())


def test_the_preflight_checklist_escapes_what_graph_answered() -> None:
    args = argparse.Namespace(graph_base_url=None, token=None, mode=None)
    target = target_from({"GRAPH_BASE_URL": "http://127.0.0.1:9/v1.0"}, args)
    out = io.StringIO()

    render(target, [Check(FAIL, "identity", f"found {HOSTILE_NAME}", fix="\x1b[2J")], out)

    assert_escaped(out.getvalue())


def test_printable_lines_escapes_what_a_line_holds_and_keeps_the_breaks_between_them() -> None:
    assert printable_lines(["name", "Joni Sherman", ""]) == "name\nJoni Sherman\n"
    assert printable_lines(["a", "b\nFAKE ROW", "c\x7f", "d\x1b[2J"]) == (
        "a\nb\\nFAKE ROW\nc\\x7f\nd\\x1b[2J"
    )
    assert printable_lines(["Zoë", "Eve\u202e", "x\x9b"]) == "Zoë\nEve\\u202e\nx\\x9b"
    assert printable_lines(["Zoë", "山田"]) == "Zoë\n山田"
    assert printable_lines(["Zoë", "a\x1b]0;x\x07", "b"]) == "Zoë\na\\x1b]0;x\\x07\nb"
    assert printable_lines(["Zoë", "a\nb"]) == "Zoë\na\\nb"
    assert printable_lines([]) == ""
