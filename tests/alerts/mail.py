"""Reading the mails an alert world's FakeDirectory accepted: the messages, a body, a header."""

from __future__ import annotations

from typing import Any

from tests.service.world import World


def mails(world: World) -> list[dict[str, Any]]:
    return [m["message"] for m in world.directory.sent_mail]


def html(mail: dict[str, Any]) -> str:
    return str(mail["body"]["content"])


def header(mail: dict[str, Any], name: str = "x-license-guard-digest") -> str | None:
    for h in mail.get("internetMessageHeaders") or []:
        if h["name"] == name:
            return str(h["value"])
    return None
