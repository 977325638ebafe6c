"""CSV formula injection (https://owasp.org/www-community/attacks/CSV_Injection): every CSV we
write opens as text in a spreadsheet, whatever a directory name holds."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from pathlib import Path

import pytest

from shared.fakes.blobs import InMemoryBlobStore
from shared.render.csvsafe import csv_writer, safe_cell
from shared.service.reconcile.nightly import reconcile_nightly
from shared.service.reconcile.run_state import Options
from tests.csv_files import csv_rows
from tests.service.world import build_world, demo_snapshot

ROOT = Path(__file__).resolve().parents[2]
SPLITS = ",;\t|\r\n"
PAYLOADS = [
    "=1+1",
    "+1",
    "-1",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
    "\n=1",
    ' =HYPERLINK("http://evil.test")',
    "\u00a0+1",
    "\u200b=1",
    "\ufeff@x",
    "\uff1dcmd|' /C calc'!A0",  # full-width =
    "\uff0b1",
    "\uff0d1",
    "\uff20x",
    "\ufe66x",  # small equals sign
    "\u22121",  # minus sign
    "Alice;=1+1",
    'Bob,=HYPERLINK("x")',
    "Carol,  +1",
    "Dave\t@x",
    "Eve|-1",
    "Frank\n=1",
    'quote";=1',
]


def starts_formula(text: str) -> bool:
    """The test's own reading of 'a spreadsheet would run this': independent of safe_cell."""
    stripped = text.lstrip(" \t\r\n\u00a0\u200b\ufeff\u2060")
    if not stripped:
        return False
    first = stripped[0]
    return first in "=+-@\u2212" or unicodedata.normalize("NFKC", first) in "=+-@"


def inert(cell: str) -> bool:
    """No segment a spreadsheet might split the cell into starts a formula."""
    if not cell:
        return True
    if cell[0] in "\t\r\n" or starts_formula(cell):
        return False
    return not any(starts_formula(part) for part in re.split(r"[,;\t|\r\n]", cell)[1:])


@pytest.mark.parametrize("payload", PAYLOADS)
def test_each_payload_is_neutralised_with_a_leading_quote(payload: str) -> None:
    cell = safe_cell(payload)

    assert cell.startswith("'")
    assert inert(cell)
    assert cell.replace("'", "") == payload.replace("'", "")  # only quotes were added


@pytest.mark.parametrize(
    "text",
    ["Licensing_Office365_E3_Base", "Doe, John", "A - B", "x=1", "", "EXCHANGE;TEAMS1", "a@b.c"],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert safe_cell(text) == text


def test_none_is_an_empty_cell() -> None:
    assert safe_cell(None) == ""


def test_the_writer_quotes_every_cell_and_round_trips() -> None:
    out = io.StringIO()
    csv_writer(out).writerows([["a", 'say "hi"', "x;=1"], ["1", "", "=2"]])

    assert out.getvalue().splitlines()[0] == '"a","say ""hi""","\'x;\'=1"'
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["a", 'say "hi"', "'x;'=1"],
        ["1", "", "'=2"],
    ]


def test_no_module_writes_csv_but_through_the_safe_writer() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("shared", "functions", "devhost", "tools", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if path.name != "csvsafe.py"
        and re.search(r"csv\.(writer|DictWriter)\(", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


@pytest.mark.anyio
async def test_the_nightly_paths_and_migration_csv_are_inert() -> None:
    snapshot = demo_snapshot()
    for i, user in enumerate(snapshot["users"]):
        user["displayName"] = PAYLOADS[i % len(PAYLOADS)]
    for i, group in enumerate(snapshot["groups"]):
        group["displayName"] = PAYLOADS[(i + 7) % len(PAYLOADS)]
    world = build_world(snapshot)
    blobs = InMemoryBlobStore(now=world.clock.now)

    result = await reconcile_nightly(world.svc, blobs, Options())

    for suffix in ("paths.csv", "migration.csv"):
        [name] = [n for n in result.report_blobs if n.endswith(suffix)]
        rows = csv_rows(blobs.get(name) or b"")
        cells = [c for row in rows[1:] for c in row]
        assert any(c.lstrip("'") in PAYLOADS for c in cells), suffix  # the payloads are there
        assert [c for c in cells if not inert(c)] == [], suffix


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
