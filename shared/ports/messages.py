"""Messages between License Guard's functions: small typed commands and one codec.

Every message is a frozen dataclass with a ``version`` (1 for all of today's) and a
``correlation_id`` that follows the work from the notification or timer that caused it to
every log line and Graph call it leads to. Constructing a message validates it (ids are Graph
GUIDs, normalised to lower case; texts are non-empty; timestamps carry a time zone), so an
invalid message never reaches a queue.

Queues (``shared.adapters.queues``):

* ``groups-changed``: `GroupsChanged` (a webhook saw these groups change) and `DeltaSweep`
  (walk the delta query of every partition, e.g. after a sync or on the reconcile timer).
* ``recompute-users``: `RecomputeUsers`, at most `MAX_USERS_PER_RECOMPUTE` users each.
* ``reprocess-user``: `ReprocessUser`, one user and the cause keys the reprocess should fix.
* ``sync-completed``: `SyncCompleted`, posted from on-premises after an Entra Connect cycle.
* ``subscription-lifecycle``: `LifecycleEvent`, a lifecycle notification the webhook vetted.

Wire format
===========

`encode_message` writes compact UTF-8 JSON: a ``"type"`` discriminator (the class name), then
the fields in camelCase. The queue adapter wraps that text in Base64, as the Functions queue
trigger expects (host.json ``messageEncoding: base64``); this module knows nothing of Base64.
`decode_message` reads it back and raises `MessageError` (a ValueError) naming the problem:
malformed JSON, unknown type, unsupported version, a missing or invalid field. Unknown extra
keys are ignored, so a newer producer can add optional fields without breaking older readers;
a change that older readers must not misread bumps ``version``. ``version`` may be omitted
and then means 1. An encoded message is at most `MAX_ENCODED_BYTES`: Base64 grows it by a
third and a Storage queue message holds 64 KiB.

SyncCompleted (what an on-premises script posts)
================================================

After an Entra Connect (or Cloud Sync) cycle finishes, a script on the sync server POSTs this
JSON (UTF-8) to ``/api/directory/sync-completed`` with that function's own key
(`intake.directory_sync`), which queues it on ``sync-completed``; a sender with an Entra
identity may put it on that queue directly, Base64-encoded::

    {"type": "SyncCompleted", "version": 1,
     "tenantId": "<tenant GUID>",
     "completedAt": "2026-03-01T07:30:00Z",
     "source": "entra-connect",
     "correlationId": "<any id, e.g. the sync run's GUID>"}

* ``type``: always ``"SyncCompleted"``.
* ``version``: 1 (optional; 1 when left out).
* ``tenantId``: the Entra tenant the cycle exported to, a GUID; must match ``TENANT_ID``.
* ``completedAt``: when the cycle finished, ISO 8601 in UTC (``Z`` or ``+00:00``).
* ``source``: what ran, e.g. ``"entra-connect"`` or ``"cloud-sync"`` (1-64 characters).
* ``correlationId``: 1-128 printable characters; ties the resulting sweep to the sync run.

On the queue, the whole message is what Base64 wraps:
``[Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes($json))`` in PowerShell. A raw
(non-Base64) body is the classic mistake: the Functions trigger cannot bind it and moves it to
``sync-completed-poison`` after five tries.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias

import orjson

from shared.ports import message_fields
from shared.ports.message_fields import (
    check_guid,
    check_guids,
    check_printable,
    check_text,
    check_texts,
    check_timestamp,
    check_version,
    set_normalised,
)

MessageError = message_fields.MessageError
"""A message is malformed or invalid (defined with the field checks, raised from here too)."""

MAX_USERS_PER_RECOMPUTE: Final = 100
MAX_GROUPS_PER_MESSAGE: Final = 1000
"""1,000 GUIDs encode to about 39 KB, well under `MAX_ENCODED_BYTES` (1,257 would not fit)."""
MAX_GROUPS_PER_RECOMPUTE: Final = 500
"""`RecomputeUsers.group_ids` names at most these (about 20 KB beside 100 users' 4 KB)."""
MAX_ENCODED_BYTES: Final = 48 * 1024
"""Base64 of 48 KiB is exactly 64 KiB, the Storage queue message limit."""
MAX_CORRELATION_ID: Final = 128
MAX_SOURCE: Final = 64
MAX_TEXT: Final = message_fields.MAX_TEXT


# ---------------------------------------------------------------------------------------------
# field validation: `shared.ports.message_fields`


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, as messages carry it; `moment` must be time-zone aware."""
    if moment.utcoffset() is None:
        raise ValueError("format_timestamp needs an aware datetime")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def clipped(text: str, maximum: int = MAX_TEXT) -> str:
    """`text` cut to `maximum` characters (an ellipsis marks a cut), for a message's free-text
    field built from data of any length (a reprocess's reasons, one per cause)."""
    return text if len(text) <= maximum else text[: maximum - 1] + "\u2026"


def new_correlation_id() -> str:
    """A fresh correlation id (a random GUID) for work that starts here."""
    return str(uuid.uuid4())


def _chunks(ids: Iterable[str], size: int) -> list[tuple[str, ...]]:
    """The ids without duplicates (first seen first), in runs of at most `size`."""
    unique = list(dict.fromkeys(ids))
    return [tuple(unique[i : i + size]) for i in range(0, len(unique), size)]


# ---------------------------------------------------------------------------------------------
# the messages


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupsChanged:
    """The webhook saw these groups change: walk their membership deltas."""

    group_ids: tuple[str, ...]
    correlation_id: str
    received_at: str
    version: int = 1

    def __post_init__(self) -> None:
        set_normalised(
            self, "group_ids", check_guids("GroupsChanged.groupIds", self.group_ids, minimum=1)
        )
        check_printable(
            "GroupsChanged.correlationId", self.correlation_id, maximum=MAX_CORRELATION_ID
        )
        check_timestamp("GroupsChanged.receivedAt", self.received_at)
        check_version("GroupsChanged.version", self.version)

    @classmethod
    def batches(
        cls, group_ids: Iterable[str], *, correlation_id: str, received_at: str
    ) -> list[GroupsChanged]:
        """Split any number of groups into messages of at most `MAX_GROUPS_PER_MESSAGE`, so a
        large notification batch never exceeds the queue's message size; duplicates dropped."""
        return [
            cls(group_ids=chunk, correlation_id=correlation_id, received_at=received_at)
            for chunk in _chunks(group_ids, MAX_GROUPS_PER_MESSAGE)
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class DeltaSweep:
    """Walk the delta query of every partition (travels on ``groups-changed`` too)."""

    reason: str
    correlation_id: str
    version: int = 1

    def __post_init__(self) -> None:
        check_text("DeltaSweep.reason", self.reason)
        check_printable("DeltaSweep.correlationId", self.correlation_id, maximum=MAX_CORRELATION_ID)
        check_version("DeltaSweep.version", self.version)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecomputeUsers:
    """Re-evaluate these users' licenses (1 to 100 users; `group_ids`: the groups that moved).
    `due_at` (optional): a delayed retry's due time, as its sender's clock read it; one handled
    before it waits for it again (`shared.service.users.recompute_users`)."""

    user_ids: tuple[str, ...]
    reason: str
    correlation_id: str
    group_ids: tuple[str, ...] = ()
    due_at: str | None = None
    version: int = 1

    def __post_init__(self) -> None:
        users = check_guids(
            "RecomputeUsers.userIds", self.user_ids, minimum=1, maximum=MAX_USERS_PER_RECOMPUTE
        )
        set_normalised(self, "user_ids", users)
        set_normalised(
            self, "group_ids", check_guids("RecomputeUsers.groupIds", self.group_ids, minimum=0)
        )
        check_text("RecomputeUsers.reason", self.reason)
        if self.due_at is not None:
            check_timestamp("RecomputeUsers.dueAt", self.due_at)
        check_printable(
            "RecomputeUsers.correlationId", self.correlation_id, maximum=MAX_CORRELATION_ID
        )
        check_version("RecomputeUsers.version", self.version)

    @classmethod
    def batches(
        cls,
        user_ids: Iterable[str],
        *,
        reason: str,
        correlation_id: str,
        group_ids: tuple[str, ...] = (),
        due_at: str | None = None,
    ) -> list[RecomputeUsers]:
        """Split any number of users into messages of at most 100, duplicates dropped. The
        groups only say why (the recompute reads each user afresh): a change to more groups
        than `MAX_GROUPS_PER_RECOMPUTE` names the first of them, so every message still fits."""
        named = group_ids[:MAX_GROUPS_PER_RECOMPUTE]
        return [
            cls(
                user_ids=chunk,
                reason=reason,
                correlation_id=correlation_id,
                group_ids=named,
                due_at=due_at,
            )
            for chunk in _chunks(user_ids, MAX_USERS_PER_RECOMPUTE)
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReprocessUser:
    """Ask Entra to reprocess one user's group-based licenses, for these cause keys.

    `causes` are `shared.core.reprocess.Cause.key` strings; empty for a manual request."""

    user_id: str
    causes: tuple[str, ...]
    reason: str
    correlation_id: str
    version: int = 1

    def __post_init__(self) -> None:
        set_normalised(self, "user_id", check_guid("ReprocessUser.userId", self.user_id))
        set_normalised(self, "causes", check_texts("ReprocessUser.causes", self.causes))
        check_text("ReprocessUser.reason", self.reason)
        check_printable(
            "ReprocessUser.correlationId", self.correlation_id, maximum=MAX_CORRELATION_ID
        )
        check_version("ReprocessUser.version", self.version)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncCompleted:
    """An on-premises sync cycle finished (see the module docstring for the wire format)."""

    tenant_id: str
    completed_at: str
    source: str
    correlation_id: str
    version: int = 1

    def __post_init__(self) -> None:
        set_normalised(self, "tenant_id", check_guid("SyncCompleted.tenantId", self.tenant_id))
        check_timestamp("SyncCompleted.completedAt", self.completed_at, utc=True)
        check_printable("SyncCompleted.source", self.source, maximum=MAX_SOURCE)
        check_printable(
            "SyncCompleted.correlationId", self.correlation_id, maximum=MAX_CORRELATION_ID
        )
        check_version("SyncCompleted.version", self.version)


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleEvent:
    """A vetted lifecycle notification (`reauthorizationRequired`, `subscriptionRemoved`,
    `missed`) about one of our subscriptions: the webhook only queues it, a queue worker acts."""

    subscription_id: str
    event: str
    correlation_id: str
    received_at: str
    version: int = 1

    def __post_init__(self) -> None:
        check_printable("LifecycleEvent.subscriptionId", self.subscription_id, maximum=MAX_SOURCE)
        check_printable("LifecycleEvent.event", self.event, maximum=MAX_SOURCE)
        check_printable(
            "LifecycleEvent.correlationId", self.correlation_id, maximum=MAX_CORRELATION_ID
        )
        check_timestamp("LifecycleEvent.receivedAt", self.received_at)
        check_version("LifecycleEvent.version", self.version)


Message: TypeAlias = (
    GroupsChanged | DeltaSweep | RecomputeUsers | ReprocessUser | SyncCompleted | LifecycleEvent
)
MESSAGE_TYPES: Final[Mapping[str, type[Message]]] = {
    cls.__name__: cls
    for cls in (
        GroupsChanged,
        DeltaSweep,
        RecomputeUsers,
        ReprocessUser,
        SyncCompleted,
        LifecycleEvent,
    )
}


# ---------------------------------------------------------------------------------------------
# the codec


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _wire(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def encode_message(msg: Message) -> str:
    """Compact JSON: ``{"type": ..., <camelCase fields>}``; raises MessageError when too big."""
    if type(msg).__name__ not in MESSAGE_TYPES:
        raise MessageError(f"not a message: {type(msg).__name__}")
    body: dict[str, object] = {"type": type(msg).__name__, "version": msg.version}
    for f in fields(msg):
        value = getattr(msg, f.name)
        if value is None and f.default is None:
            continue  # an optional field not given (`RecomputeUsers.due_at`): left out
        body.setdefault(_camel(f.name), _wire(value))
    try:
        data = orjson.dumps(body)
    except orjson.JSONEncodeError as error:
        raise MessageError(f"{type(msg).__name__}: cannot encode: {error}") from None
    if len(data) > MAX_ENCODED_BYTES:
        raise MessageError(
            f"{type(msg).__name__}: {len(data)} bytes encoded, over the "
            f"{MAX_ENCODED_BYTES}-byte limit of one queue message; split it"
        )
    return data.decode("utf-8")


def decode_message(text: str | bytes) -> Message:
    """Parse what `encode_message` wrote; raises MessageError naming what is wrong."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise MessageError("message is not UTF-8 text") from None
    try:
        body: Any = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise MessageError(f"message is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise MessageError(f"message must be a JSON object, got {type(body).__name__}")
    kind = body.get("type")
    cls = MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        known = ", ".join(MESSAGE_TYPES)
        raise MessageError(f"unknown message type {kind!r} (known: {known})")
    check_version(f"{kind}.version", body.get("version", 1))
    values: dict[str, object] = {}
    missing = []
    for f in fields(cls):
        key = _camel(f.name)
        if key in body:
            values[f.name] = body[key]
        elif f.default is not MISSING:
            continue
        else:
            missing.append(key)
    if missing:
        raise MessageError(f"{kind}: missing field(s) {', '.join(missing)}")
    build: Callable[..., Message] = cls
    try:
        return build(**values)
    except TypeError as error:  # should not happen: every field is checked above
        raise MessageError(f"{kind}: {error}") from None
