"""Pending findings rendered from templates equal the same findings rendered one by one.

The evaluate renderers fill a template per (SKU, group) with the user's id and name
(`FindingJsonEncoder.encode_pending`, `FindingLines.pending`); what is escaped or formatted
there must come out as it does for the built `Finding`: quotes, backslashes, `%`, control
characters and non-ASCII in names, and a subject that is not a user's.
"""

from __future__ import annotations

import orjson
import pytest

from shared.core.user_findings import PendingAssignment, pending_findings
from shared.render.findings import FindingJsonEncoder, FindingLines, finding_json

PENDING = (
    PendingAssignment("sku-1", "group-1", " is a member of 'Sales 100%', which assigns E3."),
    PendingAssignment("sku-2", "group-%b", ' is a member of "Ops\\Dev", which assigns \u00e9.'),
)
NAMES = ["Ann", 'Bo "the" %s \\ %b', "Zo\u00eb \u2603\n\t\x01", "%(x)s 100%"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("user_id", ["0b1c2d3e-aaaa-bbbb-cccc-000000000001", "odd id/%"])
def test_json_from_templates_equals_each_finding_encoded(user_id: str, name: str) -> None:
    built = pending_findings(user_id, name, PENDING)

    encoded = FindingJsonEncoder().encode_pending(user_id, name, PENDING)

    assert encoded == b",".join(orjson.dumps(finding_json(f)) for f in built)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("user_id", ["0b1c2d3e-aaaa-bbbb-cccc-000000000001", "group:g1", ""])
def test_table_lines_from_templates_equal_each_findings_lines(user_id: str, name: str) -> None:
    built = pending_findings(user_id, name, PENDING)
    expected = [line for f in built for line in FindingLines("  ").of(f)]

    items = FindingLines("  ").pending(user_id, name, PENDING)

    assert "\n".join(items) == "\n".join(expected)


def test_json_for_a_subject_that_is_not_a_user_takes_the_plain_path() -> None:
    built = pending_findings("group:g1", "Ann", PENDING)

    encoded = FindingJsonEncoder().encode_pending("group:g1", "Ann", PENDING)

    assert encoded == b",".join(orjson.dumps(finding_json(f)) for f in built)
    assert b"groupLink" not in encoded
