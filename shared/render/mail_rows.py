"""The lines of an alert mail: findings grouped by group x SKU x code, each with its cause
(one sentence per code), fix, named users (at most `MAX_NAMED_USERS`) and where the fix is made;
and the tables of counts and of resolved findings."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from shared.core import findings as codes
from shared.core.alerting import LedgerRow, RowGroup, group_rows
from shared.core.dataloss import DATA_LOSS_RISK
from shared.core.links import finding_url, group_license_url, user_license_url
from shared.render.mail import (
    MAX_NAMED_USERS,
    MailNames,
    RowView,
    Section,
    Table,
    UserName,
    more_users,
)

CAUSES: Final = {  # the service's own codes are spelled out: render may not import the service
    codes.COUNT_VIOLATION: "No free seats were left when Entra tried to assign the license.",
    codes.MUTUALLY_EXCLUSIVE: (
        "A service plan of this license conflicts with a plan the user already holds from "
        "another license."
    ),
    codes.DEPENDENCY_VIOLATION: (
        "Entra kept the license instead of removing it, because another plan the user holds "
        "depends on it."
    ),
    codes.PROHIBITED_IN_USAGE_LOCATION: (
        "The product may not be used in the user's usage location."
    ),
    codes.UNIQUENESS_VIOLATION: "A proxy address of the user is already used by another object.",
    codes.OTHER: "Entra reported an unclassified error; the Entra audit log has the reason.",
    codes.PENDING_GROUP_ASSIGNMENT: (
        "The user is in a licensing group, but Graph shows no license from it: the group "
        "finished processing, or the license has been pending for 24 hours (the group may "
        "still be processing)."
    ),
    codes.STALE_GROUP_ASSIGNMENT: (
        "Graph still shows a license from a group the user left (or that dropped the product)."
    ),
    codes.PLAN_MISMATCH: "The user's enabled service plans differ from what the group enables.",
    DATA_LOSS_RISK: (
        "The user no longer holds a mailbox or OneDrive storage through any path: the data is "
        "deleted once the retention period ends."
    ),
    codes.SEAT_SHORTFALL: "More users should hold the product than there are seats.",
    codes.SUBSCRIPTION_AT_RISK: (
        "Seats of a product in use are in warning, suspended or locked-out state: the "
        "subscription is lapsing."
    ),
    "DirectorySyncStale": "Entra Connect has not synced for more than three cycles.",
    "ReconcileOverdue": "The nightly reconciliation has not finished for two nights.",
    "NotificationsSilent": "Group change notifications are not reaching License Guard.",
    "SubscriptionMissing": "License Guard has no change-notification subscription.",
    "PoisonedMessage": "A queue message failed every attempt and was set aside.",
    "AlertRecipientsRefused": "Alert recipients outside the tenant's verified domains.",
    "AlertChannelFailing": "An alert channel (Teams, Slack or a webhook) keeps refusing posts.",
    "WritesRefused": "Microsoft Graph refuses License Guard's reprocess calls (401/403).",
    "ReprocessRefused": (
        "Microsoft Graph refuses License Guard's reprocess of this user (403) although the app "
        "holds the permission: a restricted administrative unit or a privileged user."
    ),
}


def row_views(
    rows: Iterable[LedgerRow],
    names: MailNames,
    action: Mapping[tuple[str | None, str | None, str], str] | None = None,
) -> tuple[RowView, ...]:
    """Group x SKU x code lines, at most MAX_NAMED_USERS named users each; a line's findings
    with different fixes (a restore through each user's own groups, a synced user's attribute
    set on-premises) are a line per fix, so no user is shown another user's fix."""
    views = []
    for rg in group_rows(rows):
        for part in _by_remedy(rg):
            views.append(
                _row_view(part, names, (action or {}).get((rg.group_id, rg.sku_id, rg.code)))
            )
    return tuple(views)


def _by_remedy(rg: RowGroup) -> list[RowGroup]:
    """The line's findings by fix, in order (each part shares the line's group x SKU x code)."""
    parts: dict[str, list[LedgerRow]] = {}
    for row in rg.rows:
        parts.setdefault(row.remedy, []).append(row)
    return [rg] if len(parts) == 1 else [group_rows(rows)[0] for rows in parts.values()]


def _row_view(rg: RowGroup, names: MailNames, action: str | None) -> RowView:
    user_ids = rg.user_ids
    first = rg.rows[0]
    cause = CAUSES.get(rg.code, first.message)
    # a data loss's example says a deadline: the earliest of the line's (first seen first)
    example = min(rg.rows, key=lambda r: r.first_seen) if rg.code == DATA_LOSS_RISK else first
    users = tuple(
        UserName(n.display_name, n.upn, user_license_url(u))
        for u in user_ids[:MAX_NAMED_USERS]
        for n in (names.user(u),)
    )
    return RowView(
        severity=rg.severity,
        code=rg.code,
        group=_group_label(rg, names),
        product=names.product(rg.sku_id),
        count=len(rg.rows),
        users=users,
        more=max(0, rg.user_total - len(users)),
        more_is_minimum=not rg.user_total_exact,
        cause=cause,
        example="" if example.message == cause else example.message,
        fix=first.remedy,
        action=action or "",
        url=_row_url(_line_group_id(rg), first.subject),
    )


def _line_group_id(rg: RowGroup) -> str | None:
    """The group a line is about, if any (its rows share their group; not a queue's)."""
    return rg.rows[0].named_group_id


def _group_label(rg: RowGroup, names: MailNames) -> str:
    """A line's Group column: the group's name, else what its subject is (a direct
    assignment, the tenant, a queue, the service)."""
    group_id = _line_group_id(rg)
    return names.group(group_id) if group_id else subject_label(rg.rows[0].subject, rg.code)


def _row_url(group_id: str | None, subject: str) -> str:
    """Where a row's fix is made; none for the service's own subjects (queue:, service:)."""
    if group_id:
        return group_license_url(group_id)
    if ":" not in subject or subject.startswith(("sku:", "group:")):
        return finding_url(subject)
    return ""


NOT_AN_ASSIGNMENT: Final = frozenset(
    {
        DATA_LOSS_RISK,
        codes.MISSING_USAGE_LOCATION,
        codes.LICENSED_DISABLED_ACCOUNT,
        "ReprocessRefused",  # the service's own (render may not import it)
    }
)
"""Codes about a user, not about one of the user's assignments: no group is not 'direct'."""


def subject_label(subject: str, code: str = "") -> str:
    if ":" not in subject:
        return "-" if code in NOT_AN_ASSIGNMENT else "direct assignment"
    kind, _, rest = subject.partition(":")
    return {"sku": "tenant", "queue": f"queue {rest}", "service": f"service ({rest})"}.get(
        kind, subject
    )


def counts_table(rows: Iterable[LedgerRow], names: MailNames) -> Table:
    """Group x SKU x code with counts and severity (no user names)."""
    lines = []
    for rg in group_rows(rows):
        group = _group_label(rg, names)
        lines.append((rg.severity, rg.code, group, names.product(rg.sku_id), str(len(rg.rows))))
    return Table(("Severity", "Issue", "Group", "Product", "Count"), tuple(lines))


def resolved_section(rows: Sequence[LedgerRow], names: MailNames) -> Section:
    table_rows, severities = [], []
    for rg in group_rows(rows):
        severities.append(rg.severity)
        users = [names.user(u).display_name for u in rg.user_ids[:MAX_NAMED_USERS]]
        shown = ", ".join(users)
        if rg.user_total > len(users):
            more = more_users(rg.user_total - len(users), minimum=not rg.user_total_exact)
            shown += f" {more}"
        group = _group_label(rg, names)
        table_rows.append((rg.code, group, names.product(rg.sku_id), str(len(rg.rows)), shown))
    return Section(
        "Resolved since the last digest",
        paragraphs=(DATA_LOSS_ENDED,) if any(r.code == DATA_LOSS_RISK for r in rows) else (),
        table=Table(
            ("Issue", "Group", "Product", "Count", "Users"), tuple(table_rows), tuple(severities)
        ),
    )


DATA_LOSS_ENDED: Final = (
    "A DataLossRisk ends when the user holds the mailbox or OneDrive again, when its time ran "
    "out without it (30 days for a mailbox: its data is then deleted; 93 for a OneDrive: "
    "archived), or when the user was deleted (restoring the user within 30 days brings the "
    "mailbox back). Check the user before taking it as restored."
)
