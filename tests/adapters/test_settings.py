"""Settings: read once from the environment, every problem named in one error."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from shared.platform.settings import Settings, SettingsError, StorageConnection
from tests.settings_env import SCHEDULE_ENV, WEBHOOK_ENV

ROOT = Path(__file__).resolve().parents[2]
G1 = "11111111-1111-4111-8111-111111111111"
G2 = "22222222-2222-4222-8222-222222222222"

REQUIRED = {
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
    "TENANT_ID": "0f0e0d0c-0b0a-4908-8706-050403020100",
    **WEBHOOK_ENV,
    **SCHEDULE_ENV,
}


def settings(**overrides: str) -> Settings:
    return Settings.from_env(REQUIRED | overrides)


def test_the_required_settings_alone_give_the_documented_defaults() -> None:
    s = settings()

    assert s.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert s.graph_static_token is None
    assert s.mode == "observe"
    assert s.act_group_allowlist == frozenset()
    assert s.writes_disabled is False
    assert (s.reprocess_rate_per_min, s.reprocess_daily_cap) == (10, 1000)
    assert s.storage_connection == StorageConnection(connection_string="UseDevelopmentStorage=true")


def test_one_error_names_every_missing_required_setting() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"TENANT_ID": REQUIRED["TENANT_ID"], "CLIENT_STATE": "  "})

    missing = set(REQUIRED) - {"TENANT_ID"}
    assert set(caught.value.missing) == missing
    assert all(name in str(caught.value) for name in missing)


def test_one_error_names_missing_and_invalid_settings_together() -> None:
    env = REQUIRED | {"WRITES_DISABLED": "maybe", "REPROCESS_DAILY_CAP": "0"}
    del env["TENANT_ID"]

    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)

    assert caught.value.missing == ("TENANT_ID",)
    assert set(caught.value.invalid) == {"WRITES_DISABLED", "REPROCESS_DAILY_CAP"}
    assert "'maybe' is not a boolean" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("1", True), ("Yes", True), ("on", True), ("FALSE", False), ("0", False)],
)
def test_the_kill_switch_reads_the_usual_spellings_of_a_boolean(text: str, expected: bool) -> None:
    assert settings(WRITES_DISABLED=text).writes_disabled is expected


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("LICENSE_GUARD_MODE", "enforce", "not one of observe, act"),
        ("TENANT_ID", "contoso", "not a GUID"),
        ("ACT_GROUP_ALLOWLIST", f"{G1},sales", "'sales' is not a GUID"),
        ("REPROCESS_RATE_PER_MIN", "ten", "not an integer"),
        ("SYNC_WATCH_SCHEDULE", "*/5 * * * *", "six-field NCRONTAB"),
        ("NOTIFICATION_URL", "guard.example.net/api", "not an absolute http(s) URL"),
        ("CLIENT_STATE", "short", "16 to 128 characters"),
        ("GRAPH_STATIC_TOKEN", "tok", "local use against graphsim"),
    ],
)
def test_an_invalid_value_is_named_with_the_reason(name: str, value: str, problem: str) -> None:
    with pytest.raises(SettingsError) as caught:
        settings(**{name: value})

    assert problem in caught.value.invalid[name]


def test_values_are_parsed_into_their_types() -> None:
    s = settings(
        LICENSE_GUARD_MODE="ACT",
        ACT_GROUP_ALLOWLIST=f" {G1.upper()} ,{G2},",
        REPROCESS_RATE_PER_MIN="30",
        GRAPH_BASE_URL="http://127.0.0.1:8765/v1.0/",
        GRAPH_STATIC_TOKEN="tok",
    )

    assert s.mode == "act"
    assert s.act_group_allowlist == {G1, G2}
    assert s.reprocess_rate_per_min == 30
    assert s.graph_base_url == "http://127.0.0.1:8765/v1.0"
    assert s.graph_static_token == "tok"


@pytest.mark.parametrize(
    ("name", "attribute"),
    [
        ("ACT_GROUP_ALLOWLIST", "act_group_allowlist"),
        ("ALERT_EXCLUDE_SKUS", "alert_exclude_skus"),
        ("ALERT_EXCLUDE_GROUPS", "alert_exclude_groups"),
    ],
)
def test_a_list_of_ids_takes_commas_semicolons_and_line_breaks(name: str, attribute: str) -> None:
    """Outlook joins a list with '; ', an Excel column pastes as lines: each is a separator."""
    s = settings(**{name: f"{G1}; {G2.upper()}\r\n{G1},\n"})

    assert getattr(s, attribute) == {G1, G2}


OUTLOOK_RECIPIENTS = (
    'Adele Vance <AdeleV@contoso.com>; "Sayers, Irvin" <IrvinS@contoso.com>;\nops@contoso.com'
)
"""Addresses as Outlook copies them from a To line, then one typed on the next line."""


def test_recipients_pasted_from_outlook_are_their_addresses() -> None:
    s = settings(ALERT_SENDER="guard@contoso.com", ALERT_RECIPIENTS=OUTLOOK_RECIPIENTS)

    assert s.alert_recipients == ("adelev@contoso.com", "irvins@contoso.com", "ops@contoso.com")


def test_excluded_users_pasted_from_outlook_are_their_upns() -> None:
    s = settings(ALERT_EXCLUDE_USERS=OUTLOOK_RECIPIENTS + f" {G1}")

    assert s.alert_exclude_users == {
        "adelev@contoso.com",
        "irvins@contoso.com",
        "ops@contoso.com",
        G1,
    }


def test_identity_based_storage_reads_the_service_uris_and_client_id() -> None:
    env = REQUIRED | {
        "AzureWebJobsStorage": "",
        "AzureWebJobsStorage__queueServiceUri": "https://acct.queue.core.windows.net",
        "AzureWebJobsStorage__tableServiceUri": "https://acct.table.core.windows.net",
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": "cid",
    }

    storage = Settings.from_env(env).storage_connection

    assert storage == StorageConnection(
        queue_service_uri="https://acct.queue.core.windows.net",
        table_service_uri="https://acct.table.core.windows.net",
        managed_identity_client_id="cid",
    )


def test_an_account_name_implies_the_public_cloud_service_uris() -> None:
    env = {k: v for k, v in REQUIRED.items() if k != "AzureWebJobsStorage"}
    env["AzureWebJobsStorage__accountName"] = "acct"

    storage = Settings.from_env(env).storage_connection

    assert storage.queue_service_uri == "https://acct.queue.core.windows.net"
    assert storage.table_service_uri == "https://acct.table.core.windows.net"
    assert storage.managed_identity_client_id is None


def test_identity_based_storage_without_a_table_uri_is_invalid() -> None:
    env = {k: v for k, v in REQUIRED.items() if k != "AzureWebJobsStorage"}
    env["AzureWebJobsStorage__queueServiceUri"] = "https://acct.queue.core.windows.net"

    with pytest.raises(SettingsError) as caught:
        Settings.from_env(env)

    assert "__tableServiceUri" in caught.value.invalid["AzureWebJobsStorage"]


def test_secrets_stay_out_of_repr() -> None:
    text = repr(settings(CLIENT_STATE="very-secret-client-state-value"))

    assert "very-secret-client-state-value" not in text
    assert "UseDevelopmentStorage" not in text


def test_no_secret_of_any_kind_is_in_repr_or_str() -> None:
    """The notification URLs carry the webhooks' function keys (``?code=``)."""
    secrets = {
        "NOTIFICATION_URL": "https://guard.example.net/api/graph/notifications?code=KEY-NOTIFY-1",
        "LIFECYCLE_NOTIFICATION_URL": "https://guard.example.net/api/graph/lifecycle?code=KEY-LC-2",
        "CLIENT_STATE": "current-client-state-3",
        "CLIENT_STATE_PREVIOUS": "previous-client-state-4",
        "GRAPH_STATIC_TOKEN": "static-token-5",
        "GRAPH_BASE_URL": "http://127.0.0.1:8080/v1.0",
        "AzureWebJobsStorage": "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=KEY-6",
    }
    loaded = settings(**secrets)

    assert loaded.notification_url == secrets["NOTIFICATION_URL"]
    for text in (repr(loaded), str(loaded)):
        for marker in ("KEY-NOTIFY-1", "KEY-LC-2", "client-state-3", "client-state-4"):
            assert marker not in text
        assert "static-token-5" not in text
        assert "KEY-6" not in text
        assert "tenant_id=" in text  # the rest is still shown


@pytest.mark.parametrize("name", ["NOTIFICATION_URL", "LIFECYCLE_NOTIFICATION_URL"])
def test_an_invalid_secret_setting_is_named_without_its_value(name: str) -> None:
    """A notification URL pasted without its scheme still carries the function key: the
    error (logged by the app at every start, printed by the CLI) says what is wrong, not it."""
    with pytest.raises(SettingsError) as caught:
        settings(**{name: "guard.example.net/api/graph/notifications?code=KEY-IN-URL-7"})

    assert "not an absolute http(s) URL" in caught.value.invalid[name]
    assert "KEY-IN-URL-7" not in str(caught.value)


# --- who may write ------------------------------------------------------------------------------


def test_observe_mode_never_writes() -> None:
    s = settings()

    assert not s.is_write_allowed((G1,))
    assert s.write_blocked_reason((G1,)) == "mode is observe, writes need act"


def test_act_mode_writes_when_there_is_no_allow_list() -> None:
    assert settings(LICENSE_GUARD_MODE="act").is_write_allowed()


def test_the_kill_switch_stops_writes_even_in_act_mode() -> None:
    s = settings(LICENSE_GUARD_MODE="act", WRITES_DISABLED="true")

    assert not s.is_write_allowed((G1,))
    assert "kill switch" in (s.write_blocked_reason((G1,)) or "")


def test_with_an_allow_list_one_allowed_relevant_group_is_enough() -> None:
    s = settings(LICENSE_GUARD_MODE="act", ACT_GROUP_ALLOWLIST=G1)

    assert s.is_write_allowed((G2, G1.upper()))
    assert not s.is_write_allowed((G2,))
    assert not s.is_write_allowed(())


@pytest.mark.parametrize("value", ['""', "''", ",", ";", " ; , ", "<>", '"" <>'])
def test_an_allow_list_that_names_no_group_is_refused_not_read_as_all_groups(value: str) -> None:
    """An empty ACT_GROUP_ALLOWLIST means every group. A value that holds no id (quotes left
    from a shell or the portal, a stray separator) is a list someone meant to fill: read as
    empty, it let act mode write for every group in the tenant."""
    with pytest.raises(SettingsError) as caught:
        settings(LICENSE_GUARD_MODE="act", ACT_GROUP_ALLOWLIST=value)

    assert "no group id" in caught.value.invalid["ACT_GROUP_ALLOWLIST"]


def test_an_unset_or_blank_allow_list_still_means_all_groups() -> None:
    for value in ("", "  "):
        assert settings(LICENSE_GUARD_MODE="act", ACT_GROUP_ALLOWLIST=value).is_write_allowed((G2,))


@pytest.mark.parametrize("name", ["NOTIFICATION_URL", "LIFECYCLE_NOTIFICATION_URL"])
def test_a_notification_url_must_be_https_unless_it_is_loopback(name: str) -> None:
    """Graph delivers (and validates) notifications to HTTPS URLs only (subscription resource:
    notificationUrl, lifecycleNotificationUrl): an http URL made every subscription the keeper
    asked for fail in Graph, long after the app started with it."""
    with pytest.raises(SettingsError) as caught:
        settings(**{name: "http://guard.example.net/api/graph/notifications?code=KEY-7"})

    problem = caught.value.invalid[name]
    assert "https" in problem
    assert "KEY-7" not in str(caught.value)

    for local in ("http://127.0.0.1:7071/api/graph/x?code=k", "http://localhost:7071/api/x"):
        assert settings(**{name: local})  # graphsim and the dev host, on this machine


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0 0 24 * * *", "hour field: 24 is outside 0-23"),
        ("0 60 * * * *", "minute field: 60 is outside 0-59"),
        ("0 0 2-4 32 * *", "day field: 32 is outside 1-31"),
        ("0 0 0 * 13 *", "month field: 13 is outside 1-12"),
        ("0 */x * * * *", "minute field: step 'x' is not a whole number"),
        ("0 0 4- * * *", "hour field: an empty value in '4-'"),
        ("0 0 2,,4 * * *", "hour field: empty list item"),
        ("0 0 * * * Mondays", "day-of-week field: 'Mondays' is not a number or a known name"),
        ("0 0 * * * 7", "day-of-week field: 7 is outside 0-6"),
    ],
)
def test_a_schedule_the_host_cannot_read_is_refused_naming_the_field(
    value: str, problem: str
) -> None:
    """The host resolves `%POISON_WATCH_SCHEDULE%` and refuses a schedule it cannot parse by
    not loading that one function: the poison watch and the tenant alerts (or the keeper, the
    nightly run) would just stop, with the app otherwise running."""
    with pytest.raises(SettingsError) as caught:
        settings(POISON_WATCH_SCHEDULE=value)

    assert problem in caught.value.invalid["POISON_WATCH_SCHEDULE"]


@pytest.mark.parametrize("value", ["0 */5 * * * *\n", "0 */5 * * * *\r\n", "0 */5\t* * * *"])
def test_a_schedule_with_a_line_break_or_tab_is_refused_as_the_host_would(value: str) -> None:
    """The host splits the schedule as written on spaces only: a line break pasted with the
    value (or a tab) makes a field it cannot read, and it does not load the timer. Reading the
    setting stripped hid that."""
    with pytest.raises(SettingsError) as caught:
        settings(POISON_WATCH_SCHEDULE=value)

    assert "splits a schedule on spaces only" in caught.value.invalid["POISON_WATCH_SCHEDULE"]


def test_spaces_around_a_schedule_are_read_as_the_host_reads_them() -> None:
    assert settings(POISON_WATCH_SCHEDULE=" 0 */5 * * * * ").poison_watch_schedule.split() == [
        "0", "*/5", "*", "*", "*", "*"
    ]  # fmt: skip


@pytest.mark.parametrize(
    "value",
    [
        "0 */5 * * * *",
        "0 0 2-4 * * *",
        "0 30 9 * Jan-Mar,October Mon-Fri",
        "*/10 0 0 1 1 0,6",
        "0 0/15 * * * *",
        "0 */0 * * * *",  # NCrontab reads a step below 1 as 1
        "0 0 4-2 * * *",  # and a range written backwards forwards (2-4)
        "0 0 9 * * M-F",  # names by any prefix: Monday to Friday
    ],
)
def test_schedules_the_host_reads_are_kept(value: str) -> None:
    assert settings(POISON_WATCH_SCHEDULE=value).poison_watch_schedule == value


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("REPORT_RETENTION_DAYS", "1000000", "at most 36500 (100 years)"),
        ("SWAP_GRACE_DAYS", "9999999", "at most 36500 (100 years)"),
        ("NOTIFICATION_SILENCE_MINUTES", "99999999999", "at most 52560000 (100 years)"),
        ("ALERT_GRACE_MINUTES", "99999999999", "at most 52560000 (100 years)"),
    ],
)
def test_a_span_of_time_past_a_century_is_refused(name: str, value: str, problem: str) -> None:
    """A retention of 1,000,000 days ("keep them for ever") started the app, and each night's
    prune then failed on `now - 1,000,000 days`, a date before year 1 (OverflowError); the
    other spans are subtracted from now the same way."""
    with pytest.raises(SettingsError) as caught:
        settings(**{name: value})

    assert problem in caught.value.invalid[name]
    assert settings(**{name: "36500" if name.endswith("DAYS") else "52560000"})


# --- local.settings.json.example ----------------------------------------------------------------


def example_values() -> dict[str, str]:
    example = json.loads((ROOT / "local.settings.json.example").read_text())
    assert example["IsEncrypted"] is False
    values: dict[str, str] = example["Values"]
    return values


def test_the_local_settings_example_lists_exactly_the_settings_we_read() -> None:
    read = {f.metadata["env"] for f in fields(Settings)}

    # FUNCTIONS_WORKER_RUNTIME and PYTHON_THREADPOOL_THREAD_COUNT are for the Functions host and
    # its Python worker, not for us.
    host = {"FUNCTIONS_WORKER_RUNTIME", "PYTHON_THREADPOOL_THREAD_COUNT"}
    assert set(example_values()) == read | host
    assert set(Settings.setting_names()) == read


def test_the_local_settings_example_is_valid_and_points_at_graphsim_in_observe_mode() -> None:
    s = Settings.from_env(example_values())

    assert s.graph_base_url == "http://127.0.0.1:8765/v1.0"
    assert s.storage_connection.connection_string == "UseDevelopmentStorage=true"
    assert s.mode == "observe"
    assert example_values()["FUNCTIONS_WORKER_RUNTIME"] == "python"
