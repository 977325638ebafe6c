"""Exit codes of every snapshot command: 0 ok, 1 the documented condition, 2 bad input or I/O
(one line on standard error, no traceback); `--version` on the top command."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from shared.cli.files import output
from shared.cli.main import EXIT_BAD_INPUT, EXIT_OK, main, version
from tests.demo_tenant import DEMO

COMMANDS = [
    ["evaluate", "--snapshot", str(DEMO)],
    ["evaluate", "--snapshot", str(DEMO), "--format", "json"],
    ["evaluate", "--snapshot", str(DEMO), "--format", "csv"],
    ["whatif", "--snapshot", str(DEMO), "--delete-group", "Sales_Team"],
    ["whatif", "--snapshot", str(DEMO), "--format", "json"],
    ["diff", str(DEMO), str(DEMO)],
    ["report", "migration", "--snapshot", str(DEMO)],
    ["report", "migration", "--snapshot", str(DEMO), "--format", "csv"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:3:2]))
def test_an_out_path_in_a_missing_directory_is_one_line_and_exit_2(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "no-such-dir" / "out.txt"

    status = main([*command, "--out", str(target)])
    err = capsys.readouterr().err

    assert status == EXIT_BAD_INPUT
    assert err.splitlines()[-1] == f"license-guard: error: {target}: No such file or directory"
    assert "Traceback" not in err


def test_an_out_path_that_is_a_directory_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["evaluate", "--snapshot", str(DEMO), "--out", str(tmp_path)])
    err = capsys.readouterr().err

    assert status == EXIT_BAD_INPUT
    assert err.splitlines()[-1].startswith("license-guard: error: ")
    assert "Traceback" not in err


def test_the_same_command_with_a_good_out_path_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out.txt"

    status = main(["evaluate", "--snapshot", str(DEMO), "--out", str(target)])

    assert status == EXIT_OK
    assert target.read_text(encoding="utf-8").strip()


def test_version_prints_the_package_version_and_exits_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])

    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"license-guard {version()}\n"
    assert version() != "unknown"


def test_a_command_failing_midway_leaves_the_out_file_that_was_there(tmp_path: Path) -> None:
    target = tmp_path / "tenant.json"
    target.write_text("last good snapshot", encoding="utf-8")

    def snapshot_cut_short() -> None:
        with output(str(target), binary=True) as out:
            out.write(b'{"subscribedSkus":[')
            raise ConnectionError("Graph stopped answering midway")

    with pytest.raises(ConnectionError):
        snapshot_cut_short()

    assert target.read_text(encoding="utf-8") == "last good snapshot"
    assert [p.name for p in tmp_path.iterdir()] == ["tenant.json"]


def test_the_out_file_is_replaced_whole_keeping_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old", encoding="utf-8")
    target.chmod(0o600)

    status = main(["evaluate", "--snapshot", str(DEMO), "--out", str(target)])

    assert status == EXIT_OK
    assert target.read_text(encoding="utf-8").startswith("Tenant Contoso")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_an_out_file_behind_a_link_is_written_through_the_link(tmp_path: Path) -> None:
    """`latest.txt -> reports/out.txt`: the write-then-rename replaced the link itself with a
    regular file, and the file it pointed to kept the old content."""
    (tmp_path / "reports").mkdir()
    target = tmp_path / "reports" / "out.txt"
    target.write_text("old", encoding="utf-8")
    link = tmp_path / "latest.txt"
    link.symlink_to(target)

    assert main(["evaluate", "--snapshot", str(DEMO), "--out", str(link)]) == EXIT_OK

    assert link.is_symlink()
    assert target.read_text(encoding="utf-8").startswith("Tenant Contoso")


@pytest.mark.skipif(not Path(os.devnull).exists(), reason="no null device")
def test_out_to_the_null_device_writes_through_it() -> None:
    assert main(["evaluate", "--snapshot", str(DEMO), "--out", os.devnull]) == EXIT_OK
    assert Path(os.devnull).exists()
