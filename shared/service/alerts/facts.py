"""What the pure alerting rules (`shared.core.alerting`) need to know beyond the ledger: the
exclusions, grace periods, the groups' processing states and, for conflicts, memberships."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from shared.core.alerting import AlertFacts, Exclusions, LedgerRow
from shared.core.findings import MUTUALLY_EXCLUSIVE
from shared.service.services import Services
from shared.service.stores import LicensedGroups
from shared.service.user_reads import read_user_records


def exclusions(svc: Services) -> Exclusions:
    s = svc.settings
    return Exclusions(s.alert_exclude_skus, s.alert_exclude_groups, s.alert_exclude_users)


async def alert_facts(svc: Services, rows: Sequence[LedgerRow]) -> AlertFacts:
    s = svc.settings
    groups = LicensedGroups(svc.tables.deltalinks).configs()
    processing = {gid: config.processing_state for gid, config in groups.items()}
    memberships: dict[str, frozenset[str]] = {}
    for row in rows:
        if row.is_open and row.code == MUTUALLY_EXCLUSIVE and row.user_id:
            memberships[row.user_id] = frozenset(
                gid for gid in groups if svc.tables.groupmembers.get(gid, row.user_id) is not None
            )
    return AlertFacts(
        now=svc.now(),
        grace=timedelta(minutes=s.alert_grace_minutes),
        swap_grace=timedelta(days=s.swap_grace_days),
        group_processing=processing,
        memberships=memberships,
        exclusions=exclusions(svc),
        upns=await exclusion_upns(svc, rows),
    )


async def exclusion_upns(svc: Services, rows: Sequence[LedgerRow]) -> dict[str, str]:
    """User id -> UPN for the users of the open findings and of the resolutions a digest may
    mail, when ALERT_EXCLUDE_USERS names UPNs (`Exclusions.mutes` needs them); empty
    otherwise (no Graph read)."""
    if not any("@" in u for u in svc.settings.alert_exclude_users):
        return {}
    news = (r for r in rows if r.is_open or (r.alerted_in and not r.resolved_in))
    ids = sorted({r.user_id for r in news if r.user_id})
    users = await read_user_records(svc, ids)
    return {uid: u.user_principal_name for uid, u in users.items()}
