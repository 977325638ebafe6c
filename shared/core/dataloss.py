"""The data-loss guard: which users would stop holding a data-bearing capability after a change.

A capability (a mailbox, OneDrive/SharePoint storage) is provided by a set of service plans,
given as an input map `capability -> frozenset[servicePlanId]` (built from Microsoft's catalog
outside the core, see `catalog/capabilities.py`). A user *has* a capability when any of its plans
is enabled for them through any path (direct or group). A user *loses* it when they had it
before and have none of its plans after: that is what deletes a mailbox 30 days later. Moving
between plans of one capability (Exchange Online Plan 1 -> Plan 2, Office 365 E1 -> E3) is not a
loss, and plans that hold no data (Teams, Office for the web) are simply not in the map.

Pure: no I/O, no clock. Works on effective licenses, so it answers for a planned change (what
if) and for a change that already happened (the drift between two snapshots) alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from shared.core.effective import EffectiveLicense
from shared.core.evaluate import Evaluation
from shared.core.findings import ERROR, Finding, Names, user_finding
from shared.core.model import User

CapabilityPlans = Mapping[str, frozenset[str]]
"""capability name -> servicePlanIds (lower case) that provide it."""

MAILBOX: Final = "mailbox"
ONEDRIVE: Final = "onedrive"
DATA_LOSS_RISK: Final = "DataLossRisk"

REMOVE_LICENSES_DOC: Final = (
    "https://learn.microsoft.com/en-us/microsoft-365/admin/manage/remove-licenses-from-users"
)
SHARED_MAILBOX_LICENSE_DOC: Final = (
    "https://learn.microsoft.com/en-us/microsoft-365/admin/email/remove-license-from-shared-mailbox"
)
UNLICENSED_ONEDRIVE_DOC: Final = (
    "https://learn.microsoft.com/en-us/sharepoint/unlicensed-onedrive-accounts"
)

LABELS: Final = {MAILBOX: "Exchange Online mailbox", ONEDRIVE: "OneDrive/SharePoint storage"}

RETENTION: Final = {
    MAILBOX: (
        "Microsoft keeps data tied to a removed license for 30 days, then deletes it and it "
        f"cannot be recovered ({REMOVE_LICENSES_DOC}): restore the license within 30 days of "
        "the change"
    ),
    ONEDRIVE: (
        "the OneDrive is kept while the user account exists, but unlicensed OneDrive accounts "
        "are handled per Microsoft's unlicensed OneDrive accounts policy: Microsoft archives "
        "accounts left unlicensed (after 93 days at the time of writing) and may delete them; "
        f"check the current policy at {UNLICENSED_ONEDRIVE_DOC}"
    ),
}
RETENTION_DAYS: Final = timedelta(days=30)
ONEDRIVE_ARCHIVED_AFTER: Final = timedelta(days=93)
"""Unlicensed OneDrive accounts are archived after this long (`RETENTION[ONEDRIVE]`)."""
LOSS_OPEN_FOR: Final = {MAILBOX: RETENTION_DAYS, ONEDRIVE: ONEDRIVE_ARCHIVED_AFTER}
"""How long a loss stays a risk the license can still undo: the mailbox's data is deleted after
30 days, the OneDrive is archived after 93 (not deleted at 30). Others: `RETENTION_DAYS`."""
_DEFAULT_RETENTION: Final = (
    f"data tied to a removed license is kept for 30 days ({REMOVE_LICENSES_DOC})"
)


@dataclass(frozen=True, slots=True)
class CapabilityGrant:
    """One enabled plan that provides a capability, and the paths that enable it.

    `group_ids` holds the group of each granting path, None for a direct assignment.
    """

    sku_id: str
    plan_id: str
    group_ids: tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class CapabilityLoss:
    """A user who held `capability` before (through `before`) and holds none of its plans after."""

    user_id: str
    capability: str
    before: tuple[CapabilityGrant, ...]
    seen_at: datetime | None = None
    """When License Guard first saw the loss (the service records it); None for a planned
    change or a drift between snapshots."""
    applied: bool = False
    """Entra had already applied the change when the loss was seen (Graph no longer showed the
    capability; only the record of an earlier read did): it happened before `seen_at`."""

    @property
    def group_ids(self) -> tuple[str, ...]:
        """Groups whose paths granted the capability before, in first-seen order."""
        ids = (g for grant in self.before for g in grant.group_ids if g is not None)
        return tuple(dict.fromkeys(ids))

    @property
    def had_direct(self) -> bool:
        return any(g is None for grant in self.before for g in grant.group_ids)


def capability_grants(
    licenses: Iterable[EffectiveLicense], plan_ids: frozenset[str]
) -> tuple[CapabilityGrant, ...]:
    """Every enabled plan among `plan_ids`, per SKU, with the paths that enable it."""
    grants = []
    for lic in licenses:
        for plan_id in sorted(lic.enabled_plans):
            if plan_id.lower() in plan_ids:
                paths = tuple(p.group_id for p in lic.paths if plan_id in p.enabled_plans)
                grants.append(CapabilityGrant(lic.sku_id, plan_id, paths))
    return tuple(grants)


def user_capability_losses(
    user_id: str,
    before: Iterable[EffectiveLicense],
    after: Iterable[EffectiveLicense],
    capabilities: CapabilityPlans,
) -> tuple[CapabilityLoss, ...]:
    """The capabilities one user held before and holds through no path after."""
    before, after = tuple(before), tuple(after)
    losses = []
    for capability, plan_ids in capabilities.items():
        had = capability_grants(before, plan_ids)
        if had and not capability_grants(after, plan_ids):
            losses.append(CapabilityLoss(user_id, capability, had))
    return tuple(losses)


def capability_losses(
    before: Mapping[str, Iterable[EffectiveLicense]],
    after: Mapping[str, Iterable[EffectiveLicense]],
    capabilities: CapabilityPlans,
) -> dict[str, tuple[CapabilityLoss, ...]]:
    """Losses per user id, for users present on both sides (a deleted user is another story)."""
    found = {}
    for user_id, licenses in before.items():
        if user_id in after:
            losses = user_capability_losses(user_id, licenses, after[user_id], capabilities)
            if losses:
                found[user_id] = losses
    return found


def evaluation_losses(
    before: Evaluation, after: Evaluation, capabilities: CapabilityPlans
) -> dict[str, tuple[CapabilityLoss, ...]]:
    """`capability_losses` between two evaluations (of the same tenant before and after)."""
    return capability_losses(
        {r.user.id: r.licenses for r in before.users},
        {r.user.id: r.licenses for r in after.users},
        capabilities,
    )


def data_loss_finding(
    user: User,
    losses: Iterable[CapabilityLoss],
    names: Names,
    labels: Mapping[str, str] | None = None,
) -> Finding:
    """One DataLossRisk finding for a user, naming each lost capability, its deadline and fix.

    `names` should describe the tenant *before* the change: it names the plans and groups that
    granted the capability then.
    """
    losses = tuple(losses)
    labels = {**LABELS, **(labels or {})}
    parts, plans, deadlines = [], [], []
    for loss in losses:
        label = labels.get(loss.capability, loss.capability)
        granted = "; ".join(_grant_text(grant, names) for grant in loss.before)
        parts.append(f"{label} (had: {granted})")
        plans += [names.plans(g.sku_id, [g.plan_id])[0] for g in loss.before]
        deadlines.append(
            f"{label}: {RETENTION.get(loss.capability, _DEFAULT_RETENTION)}"
            + (
                _restore_by(loss.seen_at, applied=loss.applied)
                if loss.capability != ONEDRIVE and loss.seen_at
                else ""
            )
        )
    restore = _restore_text(losses, names)
    first = losses[0].before[0] if losses and losses[0].before else None
    return user_finding(
        DATA_LOSS_RISK,
        ERROR,
        user,
        None,
        message=(
            f"{user.display_name} would no longer hold {', '.join(parts)} through any path. "
            + " ".join(d[0].upper() + d[1:] + "." for d in deadlines)
        ),
        remedy=restore,
        plans=tuple(dict.fromkeys(plans)),
        evidence=tuple(f"capability={loss.capability}" for loss in losses)
        + ((f"sku={first.sku_id}",) if first else ()),
    )


def _restore_by(seen_at: datetime, *, applied: bool = False) -> str:
    """The end of the 30 days, counted from when the loss was seen, as an instant in UTC to the
    minute (seconds dropped: never later): a date alone reads as the end of that day in the
    admin's zone, up to a day too late. Seen while Graph still showed the capability, Entra
    removes it then or later: that end is the deadline. Seen after Entra `applied` the change,
    the 30 days began earlier, by as long as the change went unseen (a missed notification:
    up to the nightly scan): that end is later than the deadline, and the text says so."""
    seen = seen_at.astimezone(UTC)
    end, when = f"{seen + RETENTION_DAYS:%Y-%m-%d %H:%M} UTC", f"{seen:%Y-%m-%d %H:%M} UTC"
    if not applied:
        return f"; restore it by {end} (the loss was seen {when})"
    return (
        f"; restore it well before {end}: Entra had already applied the change when the loss "
        f"was seen ({when}), so the 30 days started earlier (the user's 'Change user license' "
        "entry in the Entra audit log has the time)"
    )


def _grant_text(grant: CapabilityGrant, names: Names) -> str:
    plan = names.plans(grant.sku_id, [grant.plan_id])[0]
    via = ", ".join("direct" if g is None else names.group(g) for g in grant.group_ids)
    return f"{plan} in {names.product(grant.sku_id)} via {via}"


def _restore_text(losses: tuple[CapabilityLoss, ...], names: Names) -> str:
    groups = dict.fromkeys(g for loss in losses for g in loss.group_ids)
    direct = any(loss.had_direct for loss in losses)
    restore = []
    if groups:
        listed = ", ".join(names.group(g) for g in groups)
        restore.append(
            f"add the user back to {listed}, or assign the product there again with the plan "
            "enabled (whichever changed)"
        )
    if direct:
        restore.append("re-assign the direct license (Microsoft 365 admin center > Users)")
    shared = any(loss.capability == MAILBOX for loss in losses)
    return (
        "Before making the change, give the user another path to the same capability (another "
        "licensing group, or a license with an equivalent plan), or leave the user out of it. "
        "If it already happened, restore the license before the deadline: "
        + "; or ".join(restore)
        + ". To keep a leaver's mail without a license, convert the mailbox to a shared mailbox "
        "before the license is removed." + (SHARED_MAILBOX_NOTE if shared else "")
    )


SHARED_MAILBOX_NOTE: Final = (
    " If this account is a shared mailbox, it needs no license and loses nothing, unless it "
    "holds more than 50 GB, has an archive or is on litigation hold: then it needs Exchange "
    f"Online Plan 2 ({SHARED_MAILBOX_LICENSE_DOC})."
)
