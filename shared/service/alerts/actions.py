"""What License Guard did, would do or deliberately does not do about each line of an alert,
and the mode note at its foot (observe, act, writes disabled)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from shared.core import findings as codes
from shared.core.alerting import LedgerRow
from shared.core.dataloss import DATA_LOSS_RISK
from shared.core.reprocess import REPROCESSABLE
from shared.core.reprocess_plan import GROUP_THRESHOLD
from shared.service.alerts.ledger import Key
from shared.service.services import Services

_ACTION: Final = {
    codes.COUNT_VIOLATION: "reprocesses the waiting users automatically once seats are free "
    "(oldest errors first); Entra does not retry by itself",
    codes.MUTUALLY_EXCLUSIVE: "did not reprocess: it would fail the same way until one license is "
    "chosen; it reprocesses once it sees the conflict change",
    codes.PROHIBITED_IN_USAGE_LOCATION: "did not reprocess: it would fail the same way until the "
    "usage location changes; it reprocesses once it does",
    codes.PENDING_GROUP_ASSIGNMENT: "reprocesses once the group shows ProcessingComplete "
    "(once per processing run)",
    codes.STALE_GROUP_ASSIGNMENT: "reprocesses once the group shows ProcessingComplete "
    "(once per processing run)",
    codes.PLAN_MISMATCH: "reprocesses once the group shows ProcessingComplete "
    "(once per processing run)",
    codes.UNIQUENESS_VIOLATION: "deliberately does not reprocess: a reprocess cannot fix a "
    "duplicate proxy address, and the fix does not show in the user's license states; remove "
    "the duplicate, then reprocess the user (license-guard reprocess)",
    codes.DEPENDENCY_VIOLATION: "deliberately does not reprocess: the dependent plans must be "
    "handled first",
    codes.OTHER: "deliberately does not reprocess an unclassified error: read the audit log first",
    DATA_LOSS_RISK: "changes nothing here: restoring the license is an admin's decision",
}


DIRECT: Final = (
    "does not reprocess a direct assignment: reprocessLicenseAssignment re-runs group-based "
    "assignments only; assign the license again once the cause is fixed"
)
"""A user's error on a license assigned directly (no group): the policy alerts instead."""


def actions(
    svc: Services, rows: Iterable[LedgerRow], open_rows: Iterable[LedgerRow] | None = None
) -> dict[Key, str]:
    """Per group x SKU x code: whether License Guard queued a reprocess, would (observe), or
    deliberately did not, and why. `open_rows`: every open finding (default: `rows`), to tell
    a mass failure, whose users the policy leaves to one group alert."""
    rows = list(rows)
    by_key: dict[Key, list[LedgerRow]] = {}
    for row in rows:
        by_key.setdefault((row.group_id, row.sku_id, row.code), []).append(row)
    failing = _failing_users(rows if open_rows is None else open_rows)
    out = {}
    for key, items in by_key.items():
        group_id, _, code = key
        queued = [r for r in items if r.reprocess_queued_at]
        blocked = svc.settings.write_blocked_reason(frozenset({group_id} if group_id else ()))
        if queued:
            latest = max(r.reprocess_queued_at for r in queued if r.reprocess_queued_at)
            out[key] = (
                f"queued a reprocess for {len(queued)} of {len(items)} "
                f"(latest {latest:%Y-%m-%d %H:%M} UTC)"
            )
        elif code in REPROCESSABLE and group_id is None:
            out[key] = DIRECT
        elif code in REPROCESSABLE and len(failing.get(key, ())) > GROUP_THRESHOLD:
            out[key] = MASS_FAILURE.format(users=len(failing[key]))
        elif code in REPROCESSABLE and blocked:
            out[key] = f"would reprocess when the cause clears, but writes nothing: {blocked}"
        elif code in _ACTION:
            out[key] = _ACTION[code]
    return out


MASS_FAILURE: Final = (
    "does not reprocess these users one by one: {users} users of the group fail alike, one "
    "cause with one fix in one place (the reprocess policy's group alert); fix it, then "
    + codes.GROUP_REPROCESS.replace("{", "{{").replace("}", "}}")
)
"""More than `GROUP_THRESHOLD` users of one group, SKU and code: the policy raises one group
alert instead of a reprocess per user, now and once the cause clears."""


def _failing_users(rows: Iterable[LedgerRow]) -> dict[Key, set[str]]:
    """The users with an open finding, per group x SKU x code."""
    found: dict[Key, set[str]] = {}
    for row in rows:
        if row.is_open and row.group_id is not None:
            found.setdefault((row.group_id, row.sku_id, row.code), set()).add(row.subject)
    return found


def mode_note(svc: Services) -> str:
    s = svc.settings
    if s.writes_disabled:
        return "Writes are disabled (WRITES_DISABLED): License Guard changes nothing in the tenant."
    if s.mode == "observe":
        return (
            "Mode: observe. License Guard records and reports; it writes nothing to the tenant "
            "('would reprocess' says what act mode would do)."
        )
    allow = " for the groups in ACT_GROUP_ALLOWLIST" if s.act_group_allowlist else ""
    return f"Mode: act. License Guard reprocesses users when the cause has cleared{allow}."
