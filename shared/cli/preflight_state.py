"""What preflight reads of the running service in storage (`shared.cli.preflight`): the
subscription keeper's record of the Graph change-notification subscription, and the work
queues' backlog. Reads and peeks only: nothing is created, received or changed.

* The subscription: the keeper records each subscription it makes or renews (table
  `subscriptions`: id and expiration) and the dead-man switch its last look at Graph
  (`servicestate` `subscription-live`). Graph deletes a subscription it was not renewed for,
  and notifications then stop silently; the keeper renews it 48 h before it expires, every 6 h,
  so one expiring within 24 h means the keeper has missed its runs.
* The backlog: per work queue, the messages waiting (the queue's approximate count) and the age
  of the oldest visible one (a peek: when it was queued). Messages that wait longer than
  `--max-queue-age` minutes, or more than `--max-queue-messages` on a queue, mean the app is
  not keeping up, or not running.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core.exceptions import AzureError, ResourceNotFoundError

from shared.cli.preflight_checks import FAIL, PASS, Check, Target, first_line, signed_in
from shared.core.graph_values import graph_time_or_none
from shared.ports.queues import QUEUE_NAMES
from shared.ports.tables import SERVICESTATE, SUBSCRIPTIONS
from shared.service.stores import ServiceState
from shared.service.subscriptions import RENEW_WITHIN, SUBSCRIPTION_LIVE, SUBSCRIPTION_PK

EXPIRY_MARGIN = RENEW_WITHIN / 2
"""Less than this left: the keeper (renewing 48 h ahead, every 6 h) has missed several runs."""
_NEVER = datetime.min.replace(tzinfo=UTC)
KEEPER_FIX = (
    "start subscription_keeper again (azd hooks run postdeploy) and read its log: "
    "docs/operations.md 'Install' step 3"
)
BACKLOG_FIX = (
    "check the function app runs and its queue functions succeed (Application Insights); "
    "--max-queue-age / --max-queue-messages set the limits"
)


def running_state_checks(target: Target, credential: Any = None) -> list[Check]:
    """The subscription and backlog checks; none without storage (its check says why)."""
    if target.storage is None or target.storage_problem:
        return []
    from shared.bootstrap import preflight_storage_clients  # noqa: PLC0415 - the SDKs

    with signed_in(target.storage, credential) as signed:
        table, queue = preflight_storage_clients(target.storage, signed)
        now = datetime.now(UTC)
        return [
            subscription_check(table, now),
            backlog_check(queue, now, target.max_queue_age, target.max_queue_messages),
        ]


def subscription_check(table: Callable[[str], Any], now: datetime) -> Check:
    """The keeper's newest recorded subscription exists, Graph had it live, and it is not
    about to expire."""
    try:
        rows = list(
            table(SUBSCRIPTIONS).query_entities(
                "PartitionKey eq @pk", parameters={"pk": SUBSCRIPTION_PK}
            )
        )
        verdict = _entity(table(SERVICESTATE), ServiceState.META_PK, SUBSCRIPTION_LIVE)
    except AzureError as exc:
        return Check(FAIL, "subscription", f"not readable: {first_line(exc)}", KEEPER_FIX)
    if not rows:
        return Check(FAIL, "subscription", "none recorded: the keeper has made none", KEEPER_FIX)
    newest = max(rows, key=lambda row: _moment(row.get("expiration")) or _NEVER)
    expires = _moment(newest.get("expiration"))
    name = f"subscription {newest['RowKey']}"
    if verdict is not None and verdict.get("live") is False:
        dead = f"Graph says {verdict.get('reason')} ({_when(verdict)})"
        return Check(FAIL, "subscription", dead, KEEPER_FIX)
    if expires is None or expires <= now:
        expired = f"{name} expired ({newest.get('expiration')})"
        return Check(FAIL, "subscription", expired, KEEPER_FIX)
    left = expires - now
    if left < EXPIRY_MARGIN:
        hours = left.total_seconds() / 3600
        detail = f"{name} expires in {hours:.0f} h: the keeper renews 48 h ahead and has not"
        return Check(FAIL, "subscription", detail, KEEPER_FIX)
    seen = f"; Graph had it live {_when(verdict)}" if verdict is not None else ""
    return Check(PASS, "subscription", f"{name} expires in {left.days} day(s){seen}")


def backlog_check(
    queue: Callable[[str], Any],
    now: datetime,
    max_age: timedelta,
    max_messages: int,
) -> Check:
    """The messages waiting on each work queue, and how long the oldest has waited."""
    waiting: dict[str, int] = {}
    oldest: dict[str, timedelta] = {}
    for name in QUEUE_NAMES:
        client = queue(name)
        try:
            waiting[name] = client.get_queue_properties().approximate_message_count or 0
            peeked = list(client.peek_messages(max_messages=1)) if waiting[name] else []
        except AzureError:
            continue  # its storage check above names the problem
        if peeked and peeked[0].inserted_on is not None:
            oldest[name] = now - peeked[0].inserted_on
    over = [
        name
        for name in waiting
        if waiting[name] > max_messages or oldest.get(name, timedelta()) > max_age
    ]
    if over:
        detail = "; ".join(f"{name}: {_backlog(waiting[name], oldest.get(name))}" for name in over)
        limits = f"limits {max_messages} messages, {_minutes(max_age)}"
        return Check(FAIL, "queue backlog", f"{detail} ({limits})", BACKLOG_FIX)
    total = sum(waiting.values())
    detail = f"{total} message(s) waiting on {len(waiting)} work queue(s)"
    if oldest:
        name = max(oldest, key=lambda n: oldest[n])
        detail += f", the oldest {_minutes(oldest[name])} ({name})"
    return Check(PASS, "queue backlog", detail)


def _entity(client: Any, pk: str, rk: str) -> Any:
    try:
        return client.get_entity(pk, rk)
    except ResourceNotFoundError:
        return None


def _moment(value: object) -> datetime | None:
    """A recorded time (the table's own, or Graph's text: `graph_time_or_none`), in UTC when
    it names no zone."""
    if not isinstance(value, datetime):
        return graph_time_or_none(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _when(verdict: Any) -> str:
    checked = _moment(verdict.get("checkedAt"))
    return f"at {checked:%Y-%m-%d %H:%M} UTC" if checked else "at an unknown time"


def _backlog(count: int, age: timedelta | None) -> str:
    return f"{count} waiting" + (f", the oldest {_minutes(age)}" if age is not None else "")


def _minutes(age: timedelta) -> str:
    return f"{age.total_seconds() / 60:.0f} min"
