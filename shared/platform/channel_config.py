"""``ALERT_CHANNELS``: where alerts go besides mail (see `shared.service.alerts.channel_delivery`).

A JSON list of ``{"type": "teams"|"slack"|"webhook", "urlSecretName": SETTING,
"minSeverity": "info"|"warning"|"error", "name": optional, "signingSecretName": optional}``.
``urlSecretName`` and ``signingSecretName`` name app settings holding Key Vault references:
the URLs and the shared secret are secrets, never plain settings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final

TYPES: Final = ("teams", "slack", "webhook")
_SETTING_NAME: Final = re.compile(r"[A-Za-z0-9_.]+")
"""What an app setting's name may hold (App Service on Linux: letters, digits, `_` and `.`)."""
SEVERITIES: Final = ("info", "warning", "error")


@dataclass(frozen=True, slots=True)
class Channel:
    name: str
    type: str
    url_setting: str
    min_severity: str = "warning"
    signing_setting: str | None = None


def parse_channels(text: str) -> tuple[Channel, ...]:
    """ALERT_CHANNELS; ValueError names the entry and what is wrong."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from None
    if not isinstance(raw, list):
        raise ValueError("must be a JSON list of channels")
    out: list[Channel] = []
    for n, item in enumerate(raw):
        where = f"channel {n}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: must be an object")
        kind, url = item.get("type"), item.get("urlSecretName")
        if kind not in TYPES:
            raise ValueError(f"{where}: type must be one of {', '.join(TYPES)}")
        if not isinstance(url, str) or not url.strip():
            raise ValueError(f"{where}: urlSecretName (an app setting name) is required")
        _setting_name(where, "urlSecretName", url.strip())
        minimum = item.get("minSeverity", "warning")
        if minimum not in SEVERITIES:
            raise ValueError(f"{where}: minSeverity must be one of {', '.join(SEVERITIES)}")
        signing = item.get("signingSecretName")
        if signing is not None and (kind != "webhook" or not isinstance(signing, str)):
            raise ValueError(f"{where}: signingSecretName is for webhook channels (a setting name)")
        if signing is not None:
            _setting_name(where, "signingSecretName", signing)
        name = str(item.get("name") or f"{kind}-{n}")
        if any(c.name == name for c in out):
            raise ValueError(f"{where}: the name {name!r} is used twice")
        out.append(Channel(name, kind, url.strip(), minimum, signing))
    return tuple(out)


def _setting_name(where: str, field: str, value: str) -> None:
    """A URL or secret pasted where its setting's name goes would be quoted as that name in
    every failure the channel records, logs and mails; refused without repeating it."""
    if not _SETTING_NAME.fullmatch(value):
        raise ValueError(
            f"{where}: {field} must name an app setting (letters, digits, '_' and '.'), "
            "not hold the URL or secret itself"
        )
