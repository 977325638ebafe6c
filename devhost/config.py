"""App settings (local.settings.json + environment) and the host.json options devhost honours."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

_SETTING_REF = re.compile(r"%([^%]+)%")
_TIMESPAN = re.compile(r"(?:(?P<d>\d+)\.)?(?P<h>\d+):(?P<m>\d+):(?P<s>\d+(?:\.\d+)?)")


class DevHostError(Exception):
    """Configuration the devhost can't run with (the message says what and where)."""


class MissingSettingError(DevHostError, KeyError):
    """A `%NAME%` reference or a connection names an app setting that isn't defined."""

    def __init__(self, name: str, where: str) -> None:
        super().__init__(name)
        self.name = name
        self.where = where

    def __str__(self) -> str:
        return (
            f"app setting {self.name!r} is not defined (needed by {self.where}); "
            "add it to local.settings.json Values or the environment"
        )


def _setting_text(name: str, value: object, path: Path) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise DevHostError(f"{path}: Values.{name} must be a string, number or boolean")


def read_local_settings(path: str | Path) -> dict[str, str]:
    """The `Values` of a local.settings.json-format file, as strings."""
    file = Path(path)
    try:
        # bytes: json finds the encoding by the BOM (UTF-8, UTF-16) as `func start` does;
        # Windows tools write one (Notepad, Set-Content), Windows PowerShell's '>' UTF-16
        document = json.loads(file.read_bytes())
    except FileNotFoundError:
        raise DevHostError(f"settings file {file} does not exist") from None
    except ValueError as error:  # not JSON, or bytes that are no text
        raise DevHostError(f"{file} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise DevHostError(f"{file} must hold a JSON object with a 'Values' object")
    if document.get("IsEncrypted") is True:
        raise DevHostError(f"{file} is encrypted (IsEncrypted: true); devhost reads plain values")
    values = document.get("Values", {})
    if not isinstance(values, dict):
        raise DevHostError(f"{file}: 'Values' must be an object")
    return {str(k): _setting_text(str(k), v, file) for k, v in values.items()}


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Settings from the file's `Values`, overlaid by the process environment (env wins)."""
    settings = read_local_settings(path) if path is not None else {}
    env = os.environ if environ is None else environ
    for name in list(settings):
        if name in env:
            settings[name] = env[name]
    return settings


def resolve(text: str, settings: Mapping[str, str], where: str) -> str:
    """Replace each `%NAME%` with its app setting, as the host does for binding expressions."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in settings:
            raise MissingSettingError(name, where)
        return settings[name]

    return _SETTING_REF.sub(lookup, text)


def parse_timespan(text: str, what: str) -> timedelta:
    """A .NET TimeSpan string `[d.]hh:mm:ss[.fff]`, as host.json writes durations."""
    match = _TIMESPAN.fullmatch(text.strip())
    if not match:
        raise DevHostError(f"host.json {what}: {text!r} is not a [d.]hh:mm:ss[.fff] duration")
    return timedelta(
        days=int(match["d"] or 0),
        hours=int(match["h"]),
        minutes=int(match["m"]),
        seconds=float(match["s"]),
    )


@dataclass(frozen=True)
class QueueOptions:
    """host.json `extensions.queues`, with the documented defaults."""

    max_polling_interval: timedelta = timedelta(minutes=1)
    visibility_timeout: timedelta = timedelta(0)
    batch_size: int = 16
    max_dequeue_count: int = 5
    message_encoding: str = "base64"
    max_polling_interval_set: bool = False


@dataclass(frozen=True)
class HostOptions:
    route_prefix: str
    queues: QueueOptions

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> HostOptions:
        extensions = document.get("extensions") or {}
        http = extensions.get("http") or {}
        prefix = str(http.get("routePrefix", "api")).strip("/")
        q = extensions.get("queues") or {}
        defaults = QueueOptions()
        encoding = str(q.get("messageEncoding", defaults.message_encoding)).lower()
        if encoding not in {"base64", "none"}:
            raise DevHostError(f"host.json queues.messageEncoding: {encoding!r} (base64 | none)")
        batch = int(q.get("batchSize", defaults.batch_size))
        if not 1 <= batch <= 32:
            raise DevHostError(f"host.json queues.batchSize: {batch} is outside 1-32")
        max_dequeue = int(q.get("maxDequeueCount", defaults.max_dequeue_count))
        if max_dequeue < 1:
            raise DevHostError("host.json queues.maxDequeueCount must be at least 1")
        polling = q.get("maxPollingInterval")
        interval = (
            parse_timespan(str(polling), "queues.maxPollingInterval")
            if polling is not None
            else defaults.max_polling_interval
        )
        visibility = q.get("visibilityTimeout")
        return cls(
            route_prefix=prefix,
            queues=QueueOptions(
                max_polling_interval=max(interval, timedelta(milliseconds=100)),
                visibility_timeout=(
                    parse_timespan(str(visibility), "queues.visibilityTimeout")
                    if visibility is not None
                    else defaults.visibility_timeout
                ),
                batch_size=batch,
                max_dequeue_count=max_dequeue,
                message_encoding=encoding,
                max_polling_interval_set=polling is not None,
            ),
        )


def read_host_json(path: str | Path) -> dict[str, Any]:
    """host.json as a dict; an absent file means all defaults."""
    file = Path(path)
    if not file.exists():
        return {}
    try:
        document = json.loads(file.read_bytes())
    except ValueError as error:
        raise DevHostError(f"{file} is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise DevHostError(f"{file} must hold a JSON object")
    return document
