"""Every CSV export starts with the UTF-8 byte order mark, as the Microsoft 365 and Entra admin
centers' downloads do: Excel, opening a CSV by a double-click, reads one without it in the ANSI
code page and garbles a non-ASCII display name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.cli.main import main
from shared.fakes.blobs import InMemoryBlobStore
from shared.service.reconcile.nightly import reconcile_nightly
from shared.service.reconcile.run_state import Options
from tests.csv_files import BOM, csv_records
from tests.reconcile.conftest import SmallPages
from tests.service.world import build_world, demo_snapshot

NAME = "Mégan Bøwen-Łukasik 山田"
"""Megan Bowen, a removal candidate of the demo tenant's migration plan, renamed."""


def renamed_snapshot(tmp_path: Path) -> str:
    snapshot = demo_snapshot()
    megan = next(u for u in snapshot["users"] if u["displayName"] == "Megan Bowen")
    megan["displayName"] = NAME
    path = tmp_path / "snapshot.json"
    path.write_text(json.dumps(snapshot), encoding="utf-8")
    return str(path)


def assert_excel_reads_the_name(data: bytes) -> None:
    assert data.startswith(BOM)
    assert not data[len(BOM) :].startswith(BOM)  # one mark, not one per page or part
    assert NAME in {r["displayName"] for r in csv_records(data)}


@pytest.mark.parametrize(
    "command", [["evaluate"], ["report", "migration"]], ids=["evaluate", "migration"]
)
def test_the_csv_file_starts_with_the_bom_and_keeps_a_non_ascii_name(
    tmp_path: Path, command: list[str]
) -> None:
    out = tmp_path / "export.csv"

    status = main([*command, "--snapshot", renamed_snapshot(tmp_path), "--format", "csv",
                   "--out", str(out)])  # fmt: skip

    assert status == 0
    assert_excel_reads_the_name(out.read_bytes())


def test_a_csv_on_standard_output_is_utf8_with_the_bom(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    """`evaluate --format csv > paths.csv` gives the same file as `--out paths.csv`."""
    main(["evaluate", "--snapshot", renamed_snapshot(tmp_path), "--format", "csv"])

    assert_excel_reads_the_name(capsysbinary.readouterr().out)


@pytest.mark.anyio
async def test_the_nightly_csv_reports_start_with_the_bom() -> None:
    snapshot = demo_snapshot()
    megan = next(u for u in snapshot["users"] if u["displayName"] == "Megan Bowen")
    megan["displayName"] = NAME
    world = build_world(snapshot, fake=SmallPages)  # several pages, one header
    blobs = InMemoryBlobStore(now=world.clock.now)

    result = await reconcile_nightly(world.svc, blobs, Options())

    for suffix in ("paths.csv", "migration.csv"):
        [name] = [n for n in result.report_blobs if n.endswith(suffix)]
        assert_excel_reads_the_name(blobs.get(name) or b"")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
