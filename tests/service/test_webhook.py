"""The webhook's protocol checks: what Graph sends, what we accept, and what we drop."""

from __future__ import annotations

import orjson
import pytest

from shared.service.intake.webhook_protocol import (
    MAX_BODY_BYTES,
    MalformedNotification,
    NotificationTooLarge,
    parse_collection,
    secrets_match,
    validation_response_text,
    vet_notifications,
)

TENANT = "9b2f0c1e-0c5a-4a57-9a3e-6c1f0b0e8d11"
SUB = "5e7a1f3c-2b4d-4c6e-8f90-a1b2c3d4e5f6"
GROUP = "0f8fad5b-d9cb-469f-a165-70867728950e"
OTHER_GROUP = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def notification(group: str = GROUP, **overrides: object) -> dict[str, object]:
    item: dict[str, object] = {
        "subscriptionId": SUB,
        "clientState": "current-secret",
        "changeType": "updated",
        "resource": f"Groups/{group}",
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Group",
            "@odata.id": f"Groups/{group}",
            "id": group,
        },
        "subscriptionExpirationDateTime": "2026-12-01T00:00:00Z",
        "tenantId": TENANT,
    }
    item.update(overrides)
    return item


def vet(*items: dict[str, object]):  # type: ignore[no-untyped-def]
    return vet_notifications(
        list(items),
        client_states=("current-secret", "previous-secret"),
        subscription_ids={SUB},
        tenant_id=TENANT,
    )


def test_a_genuine_group_notification_yields_its_group_id() -> None:
    assert vet(notification()).group_ids == (GROUP,)


def test_the_same_group_named_twice_is_enqueued_once() -> None:
    vetted = vet(notification(), notification(), notification(OTHER_GROUP))

    assert vetted.group_ids == (GROUP, OTHER_GROUP)


def test_the_previous_client_state_is_still_accepted_during_rotation() -> None:
    assert vet(notification(clientState="previous-secret")).group_ids == (GROUP,)


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"clientState": "forged"}, "clientState does not match"),
        ({"clientState": None}, "clientState does not match"),
        ({"subscriptionId": "11111111-2222-3333-4444-555555555555"}, "subscriptionId is not ours"),
        ({"subscriptionId": "not-a-guid"}, "subscriptionId is not a GUID"),
        ({"tenantId": "11111111-2222-3333-4444-555555555555"}, "tenantId is not our tenant"),
    ],
)
def test_forged_or_foreign_items_are_rejected_with_a_reason(
    override: dict[str, object], reason: str
) -> None:
    vetted = vet(notification(**override))

    assert vetted.group_ids == ()
    assert [r.reason for r in vetted.rejected] == [reason]


def test_a_non_guid_group_id_is_rejected() -> None:
    item = notification(resource="Groups/../../users", resourceData={"id": "../../users"})

    assert vet(item).group_ids == ()


def test_deleted_groups_are_reported_as_deleted_too() -> None:
    vetted = vet(notification(changeType="deleted"))

    assert vetted.deleted_group_ids == (GROUP,)


def test_lifecycle_events_pass_the_same_checks() -> None:
    item = {
        "subscriptionId": SUB,
        "clientState": "current-secret",
        "tenantId": TENANT,
        "lifecycleEvent": "reauthorizationRequired",
        "subscriptionExpirationDateTime": "2026-12-01T00:00:00Z",
    }

    assert vet(item).lifecycle == ((SUB, "reauthorizationRequired"),)
    assert vet({**item, "clientState": "forged"}).lifecycle == ()


def test_malformed_bodies_are_rejected() -> None:
    with pytest.raises(MalformedNotification):
        parse_collection(b"not json")
    with pytest.raises(MalformedNotification):
        parse_collection(b'{"value": "nope"}')
    with pytest.raises(MalformedNotification):
        parse_collection(b'{"value": [1]}')


def test_oversized_bodies_are_rejected() -> None:
    with pytest.raises(NotificationTooLarge):
        parse_collection(b" " * (MAX_BODY_BYTES + 1))


def test_a_collection_parses_into_its_items() -> None:
    body = orjson.dumps({"value": [notification()]})

    assert parse_collection(body)[0]["subscriptionId"] == SUB


def test_validation_token_is_echoed_as_the_host_decoded_it_and_capped() -> None:
    """The host decodes query values once; a second decode would corrupt `%2B` into `+`."""
    assert validation_response_text("Validation: Testing") == "Validation: Testing"
    assert validation_response_text("a%2Bb+c d") == "a%2Bb+c d"
    assert len(validation_response_text("x" * 5000)) == 1024


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\t", "\x00", "x"])
def test_an_id_with_anything_after_the_guid_is_not_a_guid(suffix: str) -> None:
    """`$` also matches before a trailing newline: validators must match the whole string."""
    vetted = vet(
        notification(
            GROUP + suffix,
            resource=f"Groups/{GROUP}{suffix}",
            resourceData={"@odata.type": "#Microsoft.Graph.Group", "id": GROUP + suffix},
        )
    )

    assert vetted.group_ids == ()
    assert [r.reason for r in vetted.rejected] == ["resource is not a group"]


@pytest.mark.parametrize("field", ["subscriptionId", "tenantId"])
def test_a_subscription_or_tenant_id_with_a_trailing_newline_is_rejected(field: str) -> None:
    value = {"subscriptionId": SUB, "tenantId": TENANT}[field] + "\n"

    vetted = vet(notification(**{field: value}))

    assert vetted.group_ids == ()
    assert len(vetted.rejected) == 1


def test_secrets_compare_only_against_configured_non_empty_values() -> None:
    assert secrets_match("a", ["a", "b"])
    assert not secrets_match("", ["", "b"])
    assert not secrets_match(3, ["3"])
