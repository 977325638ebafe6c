"""Live commands need only what they use: local.settings.json is read when present, the
environment wins over it, and settings only the function app uses are not asked for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.cli.env import LocalSettingsError, cli_environment
from shared.cli.main import EXIT_BAD_INPUT, main
from shared.platform.settings import Settings, SettingsError

STORAGE = "UseDevelopmentStorage=true"


def test_storage_alone_is_enough_for_a_command_that_touches_storage(tmp_path: Path) -> None:
    env = cli_environment({"AzureWebJobsStorage": STORAGE}, tmp_path)

    settings = Settings.from_env(env)

    assert settings.mode == "observe"
    assert settings.graph_base_url == "https://graph.microsoft.com/v1.0"


def test_without_storage_the_error_names_only_storage(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as error:
        Settings.from_env(cli_environment({}, tmp_path))

    assert str(error.value).count("missing required setting(s): AzureWebJobsStorage") == 1
    assert "TENANT_ID" not in str(error.value)


def test_local_settings_are_read_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text(
        json.dumps(
            {
                "Values": {
                    "AzureWebJobsStorage": STORAGE,
                    "LICENSE_GUARD_MODE": "act",
                    "TENANT_ID": "11111111-1111-4111-8111-111111111111",
                }
            }
        )
    )

    env = cli_environment({"LICENSE_GUARD_MODE": "observe"}, tmp_path)

    assert env["AzureWebJobsStorage"] == STORAGE
    assert env["LICENSE_GUARD_MODE"] == "observe"
    assert env["TENANT_ID"] == "11111111-1111-4111-8111-111111111111"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_local_settings_saved_by_windows_tools_are_read(tmp_path: Path, encoding: str) -> None:
    """Windows PowerShell 5.1 writes UTF-8 with a BOM (Set-Content -Encoding UTF8) or UTF-16
    (Out-File, '>'); `func start` reads both (.NET detects the BOM). The CLI refused the
    first ('Unexpected UTF-8 BOM') and crashed with a traceback on the second."""
    values = {"AzureWebJobsStorage": STORAGE, "LICENSE_GUARD_MODE": "act"}
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"IsEncrypted": False, "Values": values}), encoding=encoding
    )

    env = cli_environment({}, tmp_path)

    assert env["LICENSE_GUARD_MODE"] == "act"


def test_local_settings_that_are_not_text_are_named(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_bytes(
        b'{"Values": {"A": "' + bytes([0xFF, 0xC0]) + b'"}}'
    )

    with pytest.raises(LocalSettingsError, match="cannot read it"):
        cli_environment({}, tmp_path)


def test_a_malformed_local_settings_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json").write_text("[1, 2]")

    with pytest.raises(LocalSettingsError, match="needs an object 'Values'"):
        cli_environment({}, tmp_path)


def test_the_command_reports_a_malformed_file_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "local.settings.json").write_text("{not json")
    monkeypatch.chdir(tmp_path)

    status = main(["snapshot", "--quiet"])
    err = capsys.readouterr().err

    assert status == EXIT_BAD_INPUT
    assert err.startswith("license-guard: error: ")
    assert "local.settings.json: cannot read it" in err
    assert err.count("\n") == 1
