"""The mass-loss alert of the data-loss guard (`dataloss`): more than MASS_LOSS_THRESHOLD users
lost a capability within an hour, one mail naming the groups and who changed what."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import structlog

from shared.core.alerting import LedgerRow
from shared.core.graph_values import format_graph_time
from shared.ports.directory import DirectoryError
from shared.ports.tables import Entity
from shared.render.alert_mails import utc_time
from shared.render.mail import Section, Table
from shared.service.alerts.immediate import send_immediate
from shared.service.alerts.mail_delivery import Delivery
from shared.service.alerts.names import mail_names
from shared.service.alerts.sending import Sleep
from shared.service.recent_losses import MASS_WINDOW
from shared.service.services import Services

log = structlog.get_logger(__name__)

MASS_LOSS: Final = "massloss"
AUDITED_ACTIVITIES: Final = (
    "Set group license",
    "Remove member from group",
    "Delete group",
    "Change user license",
    "Update group",
)


async def send_mass_loss(
    svc: Services,
    pairs: Sequence[tuple[Entity, LedgerRow]],
    group_ids: Sequence[str],
    sleep: Sleep,
) -> Delivery | None:
    """One mass-loss alert about these findings: the groups involved (`group_ids`) and, from
    the directory audit log of the last hour, who changed what."""
    now = svc.now()
    since = format_graph_time(now - MASS_WINDOW)
    try:
        audits = await svc.directory.directory_audits(since, AUDITED_ACTIVITIES)
    except Exception as error:
        log.warning(
            "alerts.audits_unavailable",
            error=error.loggable if isinstance(error, DirectoryError) else type(error).__name__,
        )
        audits = []
    names = await mail_names(svc, [r for _, r in pairs])
    group_names = [names.group(g) for g in group_ids]
    involved = set(group_ids) | {r.subject for _, r in pairs}
    audit_rows = []
    for entry in audits:
        if not set(entry.target_ids) & involved:
            continue
        target = ", ".join(t.label for t in entry.targets)
        audit_rows.append((utc_time(entry.when), entry.activity, target, entry.actor or "unknown"))
    actors = sorted({row[3] for row in audit_rows})
    lead = (
        f"{len(pairs)} users lost a mailbox or OneDrive capability within the last hour "
        f"(threshold {svc.settings.mass_loss_threshold}). Groups involved: "
        f"{', '.join(group_names) or 'none found (direct assignments)'}."
        + (f" Changed by: {', '.join(actors)}." if actors else ""),
        "If this was not intended, undo the change now: a mailbox's data is deleted 30 days "
        "after the change, an unlicensed OneDrive is archived 93 days after it (each finding "
        "gives its deadline). Further losses this hour go to the digest.",
    )
    extra = [
        Section(
            "Who changed what (Entra audit log, last hour)",
            table=Table(("When (UTC)", "Activity", "Target", "By"), tuple(audit_rows[:50])),
        )
        if audit_rows
        else Section("Who changed what", paragraphs=("No matching audit entry was found.",))
    ]
    return await send_immediate(
        svc,
        channel=MASS_LOSS,
        kind="mass-loss",
        title=f"mass data-loss risk: {len(pairs)} users in the last hour",
        lead=lead,
        pairs=pairs,
        extra=extra,
        sleep=sleep,
    )
