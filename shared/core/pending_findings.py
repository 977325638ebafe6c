"""A user's PendingGroupAssignment findings, built from their groups' pending assignments:
one `PendingAssignment` per SKU and group, shared by every member (the message's tail, the
remedy and the severity are the same for all), so a large group's findings cost little."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from shared.core.findings import PENDING_GROUP_ASSIGNMENT, WARNING, Finding


class PendingAssignment(NamedTuple):
    """An assignment a user's group should give and Graph does not show yet: the SKU, the group
    and the part of the pending message that follows the user's name (the same for every user)."""

    sku_id: str
    group_id: str
    message_tail: str
    remedy: str = ""
    """The remedy (`PENDING_REMEDY` when empty, or `PROCESSED_REMEDY` for a group Entra has
    finished processing)."""


PendingAssignments = tuple[PendingAssignment, ...]
"""A combination of groups' pending assignments: one tuple, shared by its members."""


PENDING_SEVERITY = WARNING
"""Every pending finding's severity (the table orders a user's findings by it)."""


def pending_findings(
    user_id: str, name: str, pending: Sequence[PendingAssignment]
) -> list[Finding]:
    """The PendingGroupAssignment findings of a user named `name`, one per assignment."""
    return [
        Finding(
            PENDING_GROUP_ASSIGNMENT,
            PENDING_SEVERITY,
            user_id,
            sku,
            group,
            name + tail,
            remedy or PENDING_REMEDY,
        )
        for sku, group, tail, remedy in pending
    ]


PENDING_REMEDY = (
    "Wait for Entra to process the group (large groups take hours). If the group shows "
    "'ProcessingComplete' and the license is still missing, reprocess the user."
)
"""The pending finding's remedy: the same for every pending assignment."""

PROCESSED_REMEDY = (
    "Entra has finished processing the group and shows no assignment from it yet: reprocess the "
    "user (License Guard does so in act mode). If it stays missing, look up 'Change user "
    "license' for the user in the Entra audit log."
)
"""The remedy of a pending assignment whose group shows 'ProcessingComplete': nothing to wait
for."""
