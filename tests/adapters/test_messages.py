"""Messages between functions: one codec, typed values, errors that name the problem."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.ports.messages import (
    MAX_USERS_PER_RECOMPUTE,
    DeltaSweep,
    GroupsChanged,
    LifecycleEvent,
    Message,
    MessageError,
    RecomputeUsers,
    ReprocessUser,
    SyncCompleted,
    decode_message,
    encode_message,
    format_timestamp,
)

G1 = "11111111-1111-4111-8111-111111111111"
G2 = "22222222-2222-4222-8222-222222222222"
U1 = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
TENANT = "0f0e0d0c-0b0a-4908-8706-050403020100"

EXAMPLES: list[Message] = [
    GroupsChanged(group_ids=(G1, G2), correlation_id="c-1", received_at="2026-03-01T07:30:00Z"),
    DeltaSweep(reason="reconcile timer", correlation_id="c-2"),
    RecomputeUsers(user_ids=(U1,), reason="group changed", correlation_id="c-3", group_ids=(G1,)),
    RecomputeUsers(user_ids=(U1,), reason="recheck", correlation_id="c-4"),
    ReprocessUser(
        user_id=U1, causes=("CountViolation|sku|grp",), reason="seats free", correlation_id="c-5"
    ),
    SyncCompleted(
        tenant_id=TENANT,
        completed_at="2026-03-01T07:30:00Z",
        source="entra-connect",
        correlation_id="c-6",
    ),
    LifecycleEvent(
        subscription_id=G1,
        event="subscriptionRemoved",
        correlation_id="c-7",
        received_at="2026-03-01T07:30:00Z",
    ),
]


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_type_survives_a_round_trip(msg: Message) -> None:
    assert decode_message(encode_message(msg)) == msg


def test_encoded_message_is_compact_json_with_a_type_and_camel_case_keys() -> None:
    msg = RecomputeUsers(user_ids=(U1,), reason="r", correlation_id="c", group_ids=(G1,))

    text = encode_message(msg)

    assert " " not in text
    assert orjson.loads(text) == {
        "type": "RecomputeUsers",
        "version": 1,
        "userIds": [U1],
        "reason": "r",
        "correlationId": "c",
        "groupIds": [G1],
    }


def test_bytes_decode_like_text() -> None:
    msg = DeltaSweep(reason="sync", correlation_id="c")

    assert decode_message(encode_message(msg).encode("utf-8")) == msg


def test_sync_completed_as_documented_for_the_on_prem_script_decodes() -> None:
    posted = (
        '{"type": "SyncCompleted", "version": 1, "tenantId": "' + TENANT + '", '
        '"completedAt": "2026-03-01T07:30:00Z", "source": "entra-connect", '
        '"correlationId": "run-42"}'
    )

    msg = decode_message(posted)

    assert msg == SyncCompleted(
        tenant_id=TENANT,
        completed_at="2026-03-01T07:30:00Z",
        source="entra-connect",
        correlation_id="run-42",
    )


def test_missing_version_means_version_one_and_unknown_keys_are_ignored() -> None:
    msg = decode_message('{"type": "DeltaSweep", "reason": "r", "correlationId": "c", "x": 1}')

    assert msg == DeltaSweep(reason="r", correlation_id="c", version=1)


def test_ids_are_normalised_to_lower_case() -> None:
    msg = ReprocessUser(user_id=U1.upper(), causes=(), reason="r", correlation_id="c")

    assert msg.user_id == U1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("{not json", "not valid JSON", id="malformed-json"),
        pytest.param("[1, 2]", "must be a JSON object", id="not-an-object"),
        pytest.param('{"type": "Teleport"}', "unknown message type 'Teleport'", id="unknown-type"),
        pytest.param('{"reason": "r"}', "unknown message type None", id="no-type"),
        pytest.param(
            '{"type": "DeltaSweep", "version": 2, "reason": "r", "correlationId": "c"}',
            "unsupported version 2",
            id="future-version",
        ),
        pytest.param(
            '{"type": "ReprocessUser", "reason": "r"}',
            "ReprocessUser: missing field(s) userId, causes, correlationId",
            id="missing-fields",
        ),
        pytest.param(
            '{"type": "ReprocessUser", "userId": "bob", "causes": [], "reason": "r", '
            '"correlationId": "c"}',
            "ReprocessUser.userId: 'bob' is not a GUID",
            id="non-guid-user",
        ),
        pytest.param(
            '{"type": "GroupsChanged", "groupIds": "' + G1 + '", "correlationId": "c", '
            '"receivedAt": "2026-03-01T07:30:00Z"}',
            "GroupsChanged.groupIds: expected a list of GUIDs",
            id="ids-not-a-list",
        ),
        pytest.param(
            '{"type": "GroupsChanged", "groupIds": [], "correlationId": "c", '
            '"receivedAt": "2026-03-01T07:30:00Z"}',
            "at least 1",
            id="no-groups",
        ),
        pytest.param(
            '{"type": "GroupsChanged", "groupIds": ["' + G1 + '"], "correlationId": "c", '
            '"receivedAt": "2026-03-01T07:30:00"}',
            "has no time zone",
            id="naive-timestamp",
        ),
        pytest.param(
            '{"type": "SyncCompleted", "tenantId": "' + TENANT + '", "source": "s", '
            '"completedAt": "2026-03-01T08:30:00+01:00", "correlationId": "c"}',
            "must be in UTC",
            id="sync-not-utc",
        ),
        pytest.param(
            '{"type": "DeltaSweep", "reason": " ", "correlationId": "c"}',
            "DeltaSweep.reason: must not be empty",
            id="blank-reason",
        ),
        pytest.param(
            '{"type": "DeltaSweep", "reason": "r", "correlationId": "a\\nb"}',
            "without control characters",
            id="control-char-correlation-id",
        ),
    ],
)
def test_bad_messages_raise_an_error_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(MessageError, match=re.escape(problem)):
        decode_message(text)


def test_message_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not UTF-8"):
        decode_message(b"\xff\xfe")


def test_recompute_users_refuses_more_than_a_hundred_users() -> None:
    users = tuple(f"00000000-0000-4000-8000-{i:012d}" for i in range(MAX_USERS_PER_RECOMPUTE + 1))

    with pytest.raises(MessageError, match="at most 100 ids"):
        RecomputeUsers(user_ids=users, reason="r", correlation_id="c")


def test_batches_split_many_users_into_messages_of_a_hundred_without_duplicates() -> None:
    users = [f"00000000-0000-4000-8000-{i:012d}" for i in range(250)]

    batches = RecomputeUsers.batches([*users, users[0]], reason="r", correlation_id="c")

    assert [len(b.user_ids) for b in batches] == [100, 100, 50]
    assert [u for b in batches for u in b.user_ids] == users


def test_a_message_too_big_for_one_queue_message_is_refused_at_encoding() -> None:
    groups = tuple(f"00000000-0000-4000-8000-{i:012d}" for i in range(2000))
    msg = GroupsChanged(group_ids=groups, correlation_id="c", received_at="2026-03-01T07:30:00Z")

    with pytest.raises(MessageError, match="split it"):
        encode_message(msg)


def test_format_timestamp_writes_utc_with_a_z() -> None:
    assert format_timestamp(datetime(2026, 3, 1, 7, 30, tzinfo=UTC)) == "2026-03-01T07:30:00Z"


# --- property: any valid message of any type survives the codec --------------------------------

guids = st.uuids().map(str)
texts = st.text(min_size=1, max_size=40).filter(str.strip)
correlation_ids = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=128
).filter(lambda s: s.strip() and s.isprintable())
stamps = st.datetimes(timezones=st.just(UTC)).map(format_timestamp)
messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(
        GroupsChanged,
        group_ids=st.lists(guids, min_size=1, max_size=20).map(tuple),
        correlation_id=correlation_ids,
        received_at=stamps,
    ),
    st.builds(DeltaSweep, reason=texts, correlation_id=correlation_ids),
    st.builds(
        RecomputeUsers,
        user_ids=st.lists(guids, min_size=1, max_size=MAX_USERS_PER_RECOMPUTE).map(tuple),
        reason=texts,
        correlation_id=correlation_ids,
        group_ids=st.lists(guids, max_size=5).map(tuple),
    ),
    st.builds(
        ReprocessUser,
        user_id=guids,
        causes=st.lists(texts, max_size=5).map(tuple),
        reason=texts,
        correlation_id=correlation_ids,
    ),
    st.builds(
        SyncCompleted,
        tenant_id=guids,
        completed_at=stamps,
        source=correlation_ids.filter(lambda s: len(s) <= 64),
        correlation_id=correlation_ids,
    ),
    st.builds(
        LifecycleEvent,
        subscription_id=guids,
        event=st.sampled_from(["reauthorizationRequired", "subscriptionRemoved", "missed"]),
        correlation_id=correlation_ids,
        received_at=stamps,
    ),
)


@given(messages)
def test_any_valid_message_round_trips(msg: Message) -> None:
    assert decode_message(encode_message(msg)) == msg
