"""The on-premises senders of SyncCompleted: the PowerShell template and the Python script.

The Python sender runs end to end against the real `function_app.app` on the DevHost (Azurite
and graphsim behind it): it POSTs to ``/api/directory/sync-completed`` with that function's own
key, the endpoint queues the message, the queue trigger records the sync and queues a delta
sweep, and the sweep runs, exactly as when the message was put on the queue directly.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import httpx
import orjson
import pytest

from devhost.azurite import AzuriteEndpoints, wipe_storage
from shared.adapters.tables import tables_for
from shared.ports.messages import SyncCompleted, decode_message, encode_message
from shared.service.stores import ServiceState
from shared.service.watch import LAST_SYNC
from tests.e2e.harness import Stack, free_port, load_tenant, running_stack
from tests.loopback import serving

ONPREM = Path(__file__).resolve().parents[2] / "infra" / "onprem"
PS1 = ONPREM / "Send-SyncCompleted.ps1"
ROUTE = "/api/directory/sync-completed"
SYNC_KEY = "onprem-sync-key-for-tests-7f3a9c"
TENANT = "9b2f0c1e-0c5a-4a57-9a3e-6c1f0b0e8d11"


def _load_sender() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "send_sync_completed", ONPREM / "send_sync_completed.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sender = _load_sender()


def wire_keys() -> list[str]:
    msg = SyncCompleted(
        tenant_id=TENANT,
        completed_at="2026-03-01T07:30:00Z",
        source="entra-connect",
        correlation_id=str(uuid.uuid4()),
    )
    return list(orjson.loads(encode_message(msg)))


# --------------------------------------------------------------------------- PowerShell (text)


def ps1_template() -> dict[str, str]:
    """The keys and value expressions of the script's `$message = [ordered]@{ ... }` block."""
    text = PS1.read_text(encoding="utf-8")
    block = re.search(r"\$message\s*=\s*\[ordered\]@\{(.*?)\n\}", text, re.DOTALL)
    assert block, "the script builds its message as $message = [ordered]@{ ... }"
    entries = re.findall(r"^\s{4}(\w+)\s*=\s*(.+)$", block.group(1), re.MULTILINE)
    return dict(entries)


def test_the_powershell_template_has_the_wire_format_field_names_in_order() -> None:
    assert list(ps1_template()) == wire_keys()


def test_the_powershell_template_fixes_type_and_version() -> None:
    template = ps1_template()

    assert template["type"].strip() == "'SyncCompleted'"
    assert template["version"].strip() == "1"
    assert "ToUniversalTime()" in template["completedAt"]
    assert "'Z'" in template["completedAt"]  # UTC with a Z, as SyncCompleted requires
    assert "NewGuid()" in template["correlationId"]


def test_the_powershell_script_posts_json_with_the_key_in_the_functions_header() -> None:
    text = PS1.read_text(encoding="utf-8")

    assert "$headers = @{ 'x-functions-key' = (Get-PlainKey) }" in text
    assert "$contentType = 'application/json; charset=utf-8'" in text
    assert re.search(r"Invoke-WebRequest -Method Post -Uri \$uri", text)
    assert "-MaximumRedirection 0" in text  # the key never follows a redirect
    # PowerShell 7 may return the 3xx instead of throwing: only a 2xx is taken as accepted
    assert "if ($code -ne $accepted) {" in text  # only the answer of the one asked
    assert "$accepted = 202" in text
    assert "$accepted = 201" in text  # the queue's Put Message (managed identity)
    assert "ValidatePattern('^https://[^?]+/api/directory/sync-completed$')" in text
    function = (ONPREM.parents[1] / "functions" / "directory_sync.py").read_text()
    assert 'route="directory/sync-completed"' in function


def test_the_powershell_script_reads_the_key_from_dpapi_or_secret_management_only() -> None:
    text = PS1.read_text(encoding="utf-8")
    declared = re.findall(r"\[(?:string|switch|guid|datetime|int|double)\] \$(\w+)", text)

    assert "Import-Clixml -Path $KeyFile" in text  # Export-Clixml: DPAPI-protected SecureString
    assert "Get-Secret @from" in text  # SecretManagement (SecretStore, Credential Manager)
    assert not {"Key", "FunctionKey", "SasToken"} & set(declared)  # never on the command line


def test_the_powershell_script_retries_throttling_and_server_errors_with_backoff() -> None:
    text = PS1.read_text(encoding="utf-8")

    # other 4xx: refused, no retry; 408 (request timeout) and 429 are retried, as in Python
    assert "$status -ne 408 -and $status -ne 429 -and $status -lt 500" in text
    assert "[math]::Pow(2, $attempt - 1)" in text
    for code in ("exit 0", "exit 1", "exit 2", "exit 3"):
        assert code in text


def test_the_powershell_queue_path_base64_encodes_for_the_queue_trigger() -> None:
    text = PS1.read_text(encoding="utf-8")

    assert "[Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($json))" in text
    assert "<QueueMessage><MessageText>$text</MessageText></QueueMessage>" in text
    assert '$uri = "$QueueUrl/messages"' in text


def test_the_powershell_queue_path_reads_only_the_arc_agents_key_file() -> None:
    """The identity endpoint's 401 names the file whose content becomes the Basic credential;
    read whatever it names, and anything listening on the identity port (or an edited
    IDENTITY_ENDPOINT) is sent any file the task's account can read. The Azure SDKs accept only
    a .key file of at most 4,096 bytes in the agent's Tokens folder; so does the script."""
    text = PS1.read_text(encoding="utf-8")

    assert "[IO.Path]::GetFullPath($Matches[1].Trim())" in text
    assert "'AzureConnectedMachineAgent', 'Tokens'" in text
    assert "[IO.Path]::GetExtension($keyFile) -ne '.key'" in text
    assert "(Get-Item -LiteralPath $keyFile).Length -gt 4096" in text
    assert "Get-Content -Raw -LiteralPath $keyFile" in text
    assert "-Path $Matches" not in text


def test_the_powershell_script_documents_registration_and_holds_no_secret() -> None:
    text = PS1.read_text(encoding="utf-8")

    assert "Register-ScheduledTask" in text
    assert "Start-ADSyncSyncCycle" in text
    assert "EventID=904" in text
    assert not re.search(r"sig=[A-Za-z0-9%]{10,}", text)
    assert "AccountKey=" not in text
    assert "?code=" not in text


def test_python_and_powershell_senders_write_the_same_fields() -> None:
    built = sender.build_message(TENANT, datetime(2026, 3, 1, 7, 30, tzinfo=UTC), "entra-connect")

    assert list(built) == wire_keys() == list(ps1_template())
    assert isinstance(decode_message(json.dumps(built)), SyncCompleted)


# --------------------------------------------------------------------------- Python, end to end


@pytest.fixture
def stack(azurite: AzuriteEndpoints) -> Iterator[Stack]:
    """The function app on the DevHost, with the sync endpoint's own key as in Azure."""
    wipe_storage(azurite.connection_string)
    with running_stack(
        load_tenant(),
        storage=azurite.connection_string,
        mode="observe",
        function_keys={"sync_completed_http": SYNC_KEY},
    ) as running:
        yield running


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "onprem-sync-key"
    path.write_text(SYNC_KEY + "\n", encoding="utf-8")
    return path


def sync_url(stack: Stack) -> str:
    return f"{stack.host.base_url}{ROUTE}"


def last_sync(stack: Stack) -> dict[str, Any]:
    """The sync the service recorded (servicestate table), as the queue path writes it."""
    recorded = ServiceState(tables_for(stack.storage).servicestate).get(LAST_SYNC)
    assert recorded is not None, "no sync recorded"
    return dict(recorded.fields)


def statuses(stack: Stack, function: str) -> list[int | None]:
    return [i.status_code for i in stack.host.invocations_of(function)]


def tenant_of(stack: Stack) -> str:
    return stack.settings["TENANT_ID"]


@pytest.mark.e2e
def test_python_sender_posts_to_the_endpoint_and_the_service_sweeps_as_for_the_queue(
    stack: Stack, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = sender.main(
        [
            "--url", sync_url(stack),
            "--key-file", str(key_file),
            "--tenant-id", tenant_of(stack).upper(),
            "--completed-at", "2026-03-01T08:30:00+01:00",
            "--source", "cloud-sync",
            "--correlation-id", "run-42",
        ]
    )  # fmt: skip
    stack.host.wait_idle(timeout=30)

    assert status == 0
    assert '"correlationId":"run-42"' in capsys.readouterr().out
    assert statuses(stack, "sync_completed_http") == [202]
    [queued] = stack.host.invocations_of("sync_completed")
    assert queued.error is None
    recorded = last_sync(stack)
    assert recorded["completedAt"] == "2026-03-01T07:30:00Z"
    assert recorded["source"] == "cloud-sync"
    sweeps = stack.host.invocations_of("group_changes")  # the DeltaSweep the sync queued
    assert sweeps
    assert all(s.error is None for s in sweeps)


@pytest.mark.e2e
def test_the_same_sync_posted_twice_sweeps_once(stack: Stack, key_file: Path) -> None:
    args = ["--url", sync_url(stack), "--key-file", str(key_file),
            "--tenant-id", tenant_of(stack), "--completed-at", "2026-03-01T07:30:00Z"]  # fmt: skip

    assert sender.main(args) == 0
    stack.host.wait_idle(timeout=30)
    sweeps = len(stack.host.invocations_of("group_changes"))
    assert sender.main(args) == 0  # e.g. a retry after a lost 202
    stack.host.wait_idle(timeout=30)

    assert statuses(stack, "sync_completed_http") == [202, 202]
    assert len(stack.host.invocations_of("sync_completed")) == 2
    assert len(stack.host.invocations_of("group_changes")) == sweeps


@pytest.mark.e2e
def test_the_key_comes_from_the_environment_when_no_file_is_given(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sender.KEY_ENVIRONMENT, SYNC_KEY)

    assert sender.main(["--url", sync_url(stack), "--tenant-id", tenant_of(stack)]) == 0
    stack.host.wait_idle(timeout=30)
    assert statuses(stack, "sync_completed_http") == [202]


@pytest.mark.e2e
def test_a_wrong_key_is_refused_at_once_with_exit_1(
    stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = tmp_path / "key"
    wrong.write_text("not-the-key", encoding="utf-8")

    status = sender.main(["--url", sync_url(stack), "--key-file", str(wrong),
                          "--tenant-id", tenant_of(stack), "--backoff", "0"])  # fmt: skip

    assert status == 1
    assert "function key was not accepted" in capsys.readouterr().err
    assert stack.host.invocations_of("sync_completed_http") == []  # 401 before the function


@pytest.mark.e2e
def test_a_foreign_tenant_is_refused_with_exit_1_and_nothing_is_queued(
    stack: Stack, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = sender.main(["--url", sync_url(stack), "--key-file", str(key_file),
                          "--tenant-id", TENANT, "--backoff", "0"])  # fmt: skip
    stack.host.wait_idle(timeout=30)

    assert status == 1
    assert "not this deployment's tenant" in capsys.readouterr().err
    assert statuses(stack, "sync_completed_http") == [422]
    assert stack.host.invocations_of("sync_completed") == []


@pytest.mark.e2e
def test_the_sync_key_opens_only_the_sync_endpoint(stack: Stack) -> None:
    notifications = f"{stack.host.base_url}/api/graph/notifications"
    answer = httpx.post(notifications, headers={"x-functions-key": SYNC_KEY}, content=b"{}")

    assert answer.status_code == 401


# --------------------------------------------------------------------------- Python, retries


class FlakyApp(http.server.BaseHTTPRequestHandler):
    """The app's endpoint answering from a script of statuses (then 202), recording each POST."""

    script: ClassVar[list[tuple[int, dict[str, str]]]] = []
    seen: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.seen.append(
            {
                "key": self.headers.get("x-functions-key"),
                "body": self.rfile.read(length),
                "type": self.headers.get("Content-Type"),
            }
        )
        status, headers = self.script.pop(0) if self.script else (202, {})
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status":"accepted"}' if status == 202 else b'{"message":"busy"}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[tuple[str, type[FlakyApp]]]:
    handler = type("Handler", (FlakyApp,), {"script": [], "seen": []})
    with serving(handler) as base_url:
        yield f"{base_url}{ROUTE}", handler


def test_throttling_and_server_errors_are_retried_with_backoff(
    flaky: tuple[str, type[FlakyApp]],
) -> None:
    url, app = flaky
    app.script = [(503, {}), (429, {"Retry-After": "0"}), (500, {})]
    waits: list[float] = []
    data = json.dumps(sender.build_message(TENANT, datetime.now(UTC), "entra-connect")).encode()

    answer = sender.send(url, SYNC_KEY, data, attempts=6, backoff=0.5, timeout=5,
                         sleep=waits.append)  # fmt: skip

    assert json.loads(answer) == {"status": "accepted"}
    assert len(app.seen) == 4
    assert waits == [0.5, 0.0, 2.0]  # doubling, except where Retry-After said otherwise
    assert {s["key"] for s in app.seen} == {SYNC_KEY}
    assert {s["body"] for s in app.seen} == {data}  # the same message each time
    assert app.seen[0]["type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("retry_after", ["nan", "NaN"])
def test_a_retry_after_that_is_not_a_number_of_seconds_falls_back_to_backoff(
    flaky: tuple[str, type[FlakyApp]], retry_after: str
) -> None:
    # float() takes "nan": time.sleep(nan) raised ValueError, a traceback instead of a retry.
    url, app = flaky
    app.script = [(503, {"Retry-After": retry_after})]
    waits: list[float] = []
    data = json.dumps(sender.build_message(TENANT, datetime.now(UTC), "entra-connect")).encode()

    sender.send(url, SYNC_KEY, data, attempts=3, backoff=0.5, timeout=5, sleep=waits.append)

    assert waits == [0.5]


def test_a_request_timeout_408_is_retried_not_refused(flaky: tuple[str, type[FlakyApp]]) -> None:
    # 408: the front end gave up waiting for the request; the same request again can succeed.
    url, app = flaky
    app.script = [(408, {})]
    data = json.dumps(sender.build_message(TENANT, datetime.now(UTC), "entra-connect")).encode()

    sender.send(url, SYNC_KEY, data, attempts=3, backoff=0, timeout=5, sleep=lambda _: None)

    assert len(app.seen) == 2


def test_a_key_file_saved_with_a_byte_order_mark_sends_the_key_without_it(
    flaky: tuple[str, type[FlakyApp]], tmp_path: Path
) -> None:
    # Notepad (Windows PowerShell's Out-File, Set-Content -Encoding UTF8) writes a BOM: it
    # stayed in the key, and http.client could not put it in a header (a traceback).
    url, app = flaky
    path = tmp_path / "key-with-bom"
    path.write_text(SYNC_KEY + "\r\n", encoding="utf-8-sig")

    status = sender.main(["--url", url, "--key-file", str(path), "--tenant-id", TENANT])

    assert status == 0
    assert [s["key"] for s in app.seen] == [SYNC_KEY]


@pytest.mark.parametrize("key", ["clé-ünïcode", "two\nlines"])
def test_a_key_no_header_can_carry_is_a_usage_error_not_a_traceback(
    tmp_path: Path, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad-key"
    path.write_text(key, encoding="utf-8")
    url = f"http://127.0.0.1:{free_port()}{ROUTE}"

    status = sender.main(["--url", url, "--key-file", str(path), "--tenant-id", TENANT,
                          "--attempts", "1"])  # fmt: skip

    assert status == 2
    assert "does not hold a function key" in capsys.readouterr().err


def test_the_python_sender_retries_to_success_with_exit_0(
    flaky: tuple[str, type[FlakyApp]], key_file: Path
) -> None:
    url, app = flaky
    app.script = [(502, {}), (503, {})]

    status = sender.main(["--url", url, "--key-file", str(key_file), "--tenant-id", TENANT,
                          "--backoff", "0"])  # fmt: skip

    assert status == 0
    assert len(app.seen) == 3


def test_the_sender_gives_up_with_exit_3_when_the_errors_persist(
    flaky: tuple[str, type[FlakyApp]], key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, app = flaky
    app.script = [(503, {})] * 3

    status = sender.main(["--url", url, "--key-file", str(key_file), "--tenant-id", TENANT,
                          "--attempts", "3", "--backoff", "0"])  # fmt: skip

    assert status == 3
    assert len(app.seen) == 3
    assert "gave up after 3 tries" in capsys.readouterr().err


def test_an_unreachable_app_is_retried_then_exit_3(
    key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}{ROUTE}"  # nothing listens there

    status = sender.main(["--url", url, "--key-file", str(key_file), "--tenant-id", TENANT,
                          "--attempts", "2", "--backoff", "0", "--timeout", "2"])  # fmt: skip

    assert status == 3
    err = capsys.readouterr().err
    assert "try 1: no answer" in err
    assert "gave up after 2 tries" in err


class LoginPage(http.server.BaseHTTPRequestHandler):
    """Where a redirect leads (a sign-in page, a proxy): answers 200 and records who came."""

    seen: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        self.seen.append({"key": self.headers.get("x-functions-key"), "path": self.path})
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>Sign in</html>")

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("status", [301, 302, 303])
def test_a_redirect_is_refused_and_the_key_never_follows_it(
    flaky: tuple[str, type[FlakyApp]],
    key_file: Path,
    status: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """App Service Authentication (or a proxy) in front of the app answers 302 to a sign-in
    page: urllib followed it with the function key and took the page's 200 for accepted."""
    url, app = flaky
    login = type("Login", (LoginPage,), {"seen": []})
    with serving(login) as elsewhere:
        app.script = [(status, {"Location": f"{elsewhere}/login?redirect_uri=x"})]

        code = sender.main(["--url", url, "--key-file", str(key_file), "--tenant-id", TENANT,
                            "--backoff", "0"])  # fmt: skip

    assert code == 1
    assert login.seen == []
    assert len(app.seen) == 1
    assert "redirect" in capsys.readouterr().err


@pytest.mark.parametrize("status", [200, 204])
def test_a_success_other_than_202_is_not_taken_for_accepted(
    flaky: tuple[str, type[FlakyApp]], key_file: Path, status: int,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The endpoint answers 202 once the message is queued; a 200 or 204 is somebody else's
    answer (a TLS-inspecting proxy's page, a wrong host or path): nothing was queued."""
    url, app = flaky
    app.script = [(status, {})]

    code = sender.main(["--url", url, "--key-file", str(key_file), "--tenant-id", TENANT])

    assert code == 1
    assert f"HTTP {status}" in capsys.readouterr().err


# --------------------------------------------------------------------------- Python, arguments


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--tenant-id", "not-a-guid", "--url", "https://a.example" + ROUTE], "is not a GUID"),
        (
            ["--tenant-id", TENANT, "--url", "https://a.example" + ROUTE,
             "--completed-at", "2026-03-01T07:30"],
            "has no time zone",
        ),
        (["--tenant-id", TENANT, "--url", "http://a.example" + ROUTE], "use https://"),
        (["--tenant-id", TENANT, "--url", "https://a.example" + ROUTE + "?code=x"], "header"),
        (["--tenant-id", TENANT], "--url"),
    ],
)  # fmt: skip
def test_python_sender_rejects_bad_arguments_with_status_2(
    args: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        sender.main(args)

    assert exit_info.value.code == 2
    assert problem in capsys.readouterr().err


def test_no_key_is_status_2_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(sender.KEY_ENVIRONMENT, raising=False)
    url = "https://a.example" + ROUTE

    assert sender.main(["--url", url, "--tenant-id", TENANT]) == 2
    assert "pass --key-file or set LICENSE_GUARD_SYNC_KEY" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    assert sender.main(["--url", url, "--tenant-id", TENANT, "--key-file", str(empty)]) == 2
    assert "is empty" in capsys.readouterr().err


def test_python_sender_runs_standalone_as_a_script() -> None:
    result = subprocess.run(
        [sys.executable, str(ONPREM / "send_sync_completed.py"), "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ONPREM,
    )

    assert result.returncode == 0
    assert "--key-file" in result.stdout
