"""The settings a CLI command runs with: only what it uses is asked of the admin.

`local.settings.json` (the Functions host's file, in the current directory) is read when
present; the process environment wins over it. Settings that only the function app uses
(where Graph sends notifications, their clientState, the timers' schedules, the tenant id
incoming messages are checked against) get inert values: the CLI receives no notifications and
runs no timers. What the command does use stays required: AzureWebJobsStorage for commands
that touch storage, GRAPH_BASE_URL (default real Graph) and a credential for Graph.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

LOCAL_SETTINGS = "local.settings.json"
_NEVER: str = "0 0 0 1 1 *"  # a valid NCRONTAB; the CLI runs no timers
FUNCTION_APP_ONLY: Mapping[str, str] = {
    "TENANT_ID": "00000000-0000-0000-0000-000000000000",
    "NOTIFICATION_URL": "https://localhost/cli-receives-no-notifications",
    "LIFECYCLE_NOTIFICATION_URL": "https://localhost/cli-receives-no-notifications",
    "SUBSCRIPTION_KEEPER_SCHEDULE": _NEVER,
    "SYNC_WATCH_SCHEDULE": _NEVER,
    "RECHECK_ERRORS_SCHEDULE": _NEVER,
    "POISON_WATCH_SCHEDULE": _NEVER,
    "RECONCILE_SCHEDULE": _NEVER,
}


class LocalSettingsError(ValueError):
    """local.settings.json exists but is not the Functions host's format."""


def local_settings(path: Path) -> dict[str, str]:
    """The `Values` of a local.settings.json, or nothing when the file is absent."""
    if not path.is_file():
        return {}
    try:
        # Bytes: json finds the encoding by the BOM (UTF-8, UTF-16, UTF-32), as `func start`
        # does; Windows tools write a BOM, Windows PowerShell's Out-File UTF-16.
        document = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:  # ValueError: not JSON, or bytes that are no text
        raise LocalSettingsError(f"{path}: cannot read it ({exc})") from None
    values = document.get("Values") if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise LocalSettingsError(f"{path}: needs an object 'Values'")
    return {str(k): str(v) for k, v in values.items() if v is not None}


def cli_environment(
    env: Mapping[str, str] | None = None, directory: Path | None = None
) -> dict[str, str]:
    """local.settings.json, then the environment over it, then inert values for settings only
    the function app uses (never over a value the admin gave)."""
    merged = local_settings((directory or Path.cwd()) / LOCAL_SETTINGS)
    merged.update({k: v for k, v in (os.environ if env is None else env).items() if v})
    for name, value in FUNCTION_APP_ONLY.items():
        merged.setdefault(name, value)
    merged.setdefault("CLIENT_STATE", secrets.token_urlsafe(24))  # never sent anywhere
    return merged
