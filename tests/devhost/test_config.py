"""Settings (local.settings.json + environment), %SETTING% resolution, host.json and indexing."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import azure.functions as func
import pytest

from devhost.config import (
    DevHostError,
    HostOptions,
    MissingSettingError,
    load_settings,
    parse_timespan,
    resolve,
)
from devhost.host import DevHost
from devhost.index import Route
from tests.devhost import sample_app
from tests.devhost.conftest import HOST_JSON


def test_resolve_replaces_each_setting_reference() -> None:
    settings = {"A": "alpha", "B": "beta"}
    assert resolve("%A%-x-%B%", settings, "test") == "alpha-x-beta"
    assert resolve("plain", settings, "test") == "plain"


def test_missing_setting_names_the_setting_and_the_user() -> None:
    with pytest.raises(MissingSettingError) as caught:
        resolve("%NOPE%", {}, "function 'tick' trigger")
    assert caught.value.name == "NOPE"
    assert "'NOPE'" in str(caught.value)
    assert "function 'tick' trigger" in str(caught.value)


def test_local_settings_values_and_environment_override(tmp_path: Path) -> None:
    file = tmp_path / "local.settings.json"
    file.write_text(
        json.dumps({"IsEncrypted": False, "Values": {"A": "file", "B": "file", "N": 3, "T": True}})
    )
    settings = load_settings(file, environ={"B": "env", "OTHER": "x"})
    assert settings == {"A": "file", "B": "env", "N": "3", "T": "true"}


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_settings_files_saved_by_windows_tools_are_read(tmp_path: Path, encoding: str) -> None:
    """Notepad and Set-Content write a UTF-8 BOM, Windows PowerShell's '>' UTF-16; `func start`
    reads both, devhost refused the first and crashed on the second."""
    file = tmp_path / "local.settings.json"
    file.write_text(json.dumps({"Values": {"A": "file"}}), encoding=encoding)
    assert load_settings(file, environ={}) == {"A": "file"}


def test_settings_bytes_that_are_no_text_are_reported(tmp_path: Path) -> None:
    file = tmp_path / "local.settings.json"
    file.write_bytes(b'{"Values": {"A": "' + bytes([0xFF, 0xC0]) + b'"}}')
    with pytest.raises(DevHostError, match="not valid JSON"):
        load_settings(file, environ={})


def test_bad_settings_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(DevHostError, match="does not exist"):
        load_settings(tmp_path / "missing.json", environ={})
    encrypted = tmp_path / "enc.json"
    encrypted.write_text('{"IsEncrypted": true, "Values": {}}')
    with pytest.raises(DevHostError, match="encrypted"):
        load_settings(encrypted, environ={})
    nested = tmp_path / "nested.json"
    nested.write_text('{"Values": {"A": {"b": 1}}}')
    with pytest.raises(DevHostError, match=r"Values\.A"):
        load_settings(nested, environ={})


def test_host_json_defaults_are_the_documented_ones() -> None:
    options = HostOptions.from_json({})
    assert options.route_prefix == "api"
    q = options.queues
    assert (q.batch_size, q.max_dequeue_count, q.message_encoding) == (16, 5, "base64")
    assert q.visibility_timeout == timedelta(0)
    assert q.max_polling_interval == timedelta(minutes=1)


def test_host_json_queue_options_are_read() -> None:
    options = HostOptions.from_json(
        {
            "extensions": {
                "http": {"routePrefix": ""},
                "queues": {
                    "maxPollingInterval": "00:00:02",
                    "visibilityTimeout": "00:00:30",
                    "batchSize": 4,
                    "maxDequeueCount": 3,
                    "messageEncoding": "none",
                },
            }
        }
    )
    assert options.route_prefix == ""
    q = options.queues
    assert q.max_polling_interval == timedelta(seconds=2)
    assert q.visibility_timeout == timedelta(seconds=30)
    assert (q.batch_size, q.max_dequeue_count, q.message_encoding) == (4, 3, "none")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00:30", timedelta(seconds=30)),
        ("00:01:00", timedelta(minutes=1)),
        ("1.02:00:00", timedelta(days=1, hours=2)),
        ("00:00:00.5", timedelta(milliseconds=500)),
    ],
)
def test_timespans(text: str, expected: timedelta) -> None:
    assert parse_timespan(text, "x") == expected


def test_invalid_host_json_values_are_rejected() -> None:
    with pytest.raises(DevHostError, match="not a"):
        parse_timespan("30s", "queues.visibilityTimeout")
    with pytest.raises(DevHostError, match="messageEncoding"):
        HostOptions.from_json({"extensions": {"queues": {"messageEncoding": "utf8"}}})
    with pytest.raises(DevHostError, match="batchSize"):
        HostOptions.from_json({"extensions": {"queues": {"batchSize": 64}}})


def test_devhost_resolves_settings_from_the_decorators(settings: dict[str, str]) -> None:
    host = DevHost(sample_app.app, {**settings, "SAMPLE_SCHEDULE": "*/7 * * * * *"}, host_json={})
    tick, shout, echo = host.functions["tick"], host.functions["shout"], host.functions["echo"]
    assert tick.schedule is not None
    assert tick.schedule.expression == "*/7 * * * * *"
    assert shout.queue_name == settings["SAMPLE_IN_QUEUE"]
    assert [o.queue_name for o in shout.outputs] == [settings["SAMPLE_OUT_QUEUE"]]
    assert shout.connection == "AzureWebJobsStorage"
    assert echo.methods == ("GET", "POST")
    assert echo.auth_level == "FUNCTION"
    assert host.functions["slow"].auth_level == "ANONYMOUS"
    assert host.functions["secret"].auth_level == "ADMIN"
    assert set(host.functions) == {
        "echo", "relay", "slow", "secret", "broken", "shout", "always_fails", "tick",
    }  # fmt: skip


def test_a_function_disabled_by_app_setting_is_not_run(settings: dict[str, str]) -> None:
    disabled = {"AzureWebJobs.shout.Disabled": "true", "AzureWebJobs.echo.Disabled": "True"}
    host = DevHost(sample_app.app, {**settings, **disabled}, host_json={})

    assert "shout" not in host.functions
    assert "echo" not in host.functions
    assert "always_fails" in host.functions


@pytest.mark.parametrize("missing", ["SAMPLE_SCHEDULE", "SAMPLE_FAIL_QUEUE", "AzureWebJobsStorage"])
def test_devhost_reports_a_missing_setting_by_name(
    settings: dict[str, str], missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(missing, raising=False)
    incomplete = {k: v for k, v in settings.items() if k != missing}
    with pytest.raises(MissingSettingError, match=missing):
        DevHost(sample_app.app, incomplete, host_json={})


def test_settings_fall_back_to_the_environment(
    settings: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMPLE_SCHEDULE", "0 0 12 * * *")
    without = {k: v for k, v in settings.items() if k != "SAMPLE_SCHEDULE"}
    host = DevHost(sample_app.app, without, host_json={})
    schedule = host.functions["tick"].schedule
    assert schedule is not None
    assert schedule.expression == "0 0 12 * * *"


def test_invalid_queue_names_and_schedules_are_rejected(settings: dict[str, str]) -> None:
    with pytest.raises(DevHostError, match="not a valid queue name"):
        DevHost(sample_app.app, {**settings, "SAMPLE_IN_QUEUE": "Bad_Name"}, host_json={})
    with pytest.raises(DevHostError, match="six fields"):
        DevHost(sample_app.app, {**settings, "SAMPLE_SCHEDULE": "*/5 * * * *"}, host_json={})


def test_unsupported_bindings_are_rejected() -> None:
    app = func.FunctionApp()

    @app.blob_trigger(arg_name="blob", path="c/{name}", connection="AzureWebJobsStorage")
    def on_blob(blob: func.InputStream) -> None:
        pass

    with pytest.raises(DevHostError, match="blobTrigger"):
        DevHost(app, {}, host_json={})


def test_settings_are_exported_while_running_and_restored(make_host: object) -> None:
    assert "SAMPLE_EXPORTED" not in os.environ
    host = make_host(extra_settings={"SAMPLE_EXPORTED": "yes"})  # type: ignore[operator]
    assert os.environ["SAMPLE_EXPORTED"] == "yes"
    host.stop()
    assert "SAMPLE_EXPORTED" not in os.environ


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("items/{id:int}", "/api/items/42", {"id": "42"}),
        ("items/{id:int}", "/api/items/x", None),
        ("items/{id}", "/api/ITEMS/abc", {"id": "abc"}),
        ("files/{*rest}", "/api/files/a/b/c", {"rest": "a/b/c"}),
        ("opt/{name?}", "/api/opt", {}),
        ("opt/{name?}", "/api/opt/x", {"name": "x"}),
        ("items/{id}", "/api/items/a/b", None),
        ("items", "/items", None),
    ],
)
def test_route_templates(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert Route.compile(template, "api").match(path) == expected


def test_host_json_fixture_is_self_contained() -> None:
    # The tests never depend on the repository's host.json (others edit it).
    assert HOST_JSON["extensions"]["queues"]["maxDequeueCount"] == 5
