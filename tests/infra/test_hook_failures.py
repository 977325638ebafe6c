"""The azd hook stops at a failed `az`/`azd` call on Windows as it does in sh.

postprovision.sh runs under `set -e`: a failed `az keyvault secret set` (a role not yet
propagated, a vault that refuses) stops the hook and azd reports it. In PowerShell,
`$ErrorActionPreference = 'Stop'` does not cover native commands: without
`$PSNativeCommandUseErrorActionPreference = $true` (PowerShell 7.3+, azure.yaml runs `pwsh`) a
failed `az` only sets `$LASTEXITCODE`, and postprovision.ps1 went on: it reported the
notification URLs set while Key Vault kept the placeholder, or recorded
SYNC_FUNCTION_DEPLOYED=true after installing an empty on-prem key. No PowerShell here, so the
script is read as text."""

from __future__ import annotations

import re

from tests.infra.bicep import INFRA

HOOK = INFRA / "scripts" / "postprovision.ps1"


def test_the_powershell_hook_stops_at_a_failed_native_command() -> None:
    lines = [ln.strip() for ln in HOOK.read_text(encoding="utf-8").splitlines()]
    code = [ln for ln in lines if ln and not ln.startswith("#")]
    assert "$ErrorActionPreference = 'Stop'" in code
    assert "$PSNativeCommandUseErrorActionPreference = $true" in code
    first_az = next(i for i, ln in enumerate(code) if re.match(r"(\$\w+ = )?azd? ", ln))
    assert code.index("$PSNativeCommandUseErrorActionPreference = $true") < first_az


def test_the_calls_allowed_to_fail_are_caught() -> None:
    """Reading a function key before the code is deployed, or a secret not yet written, may
    fail: both sit in try/catch and answer $null, as `|| true` does in the sh hook."""
    text = HOOK.read_text(encoding="utf-8")
    for function in ("Get-FunctionKey", "Get-SecretValue"):
        body = text[text.index(f"function {function}") :].split("\n}", 1)[0]
        assert re.search(r"try\s*\{\s*az ", body), function
        assert "catch { $null }" in body, function


def test_the_powershell_hook_passes_no_secret_on_azs_command_line() -> None:
    """The twin of test_postprovision_hook's argv check: the notification URLs (with their
    function keys) and the on-prem sync key reach az on standard input ('@-'), never as
    `--value $url` / `--key-value $key`, which the process list shows while az runs."""
    text = HOOK.read_text(encoding="utf-8")
    assert not re.search(r"--(key-)?value \$", text)
    assert text.count("--value '@-'") == 2
    assert "$syncKey | az functionapp function keys set" in text
    assert "--key-value '@-'" in text
