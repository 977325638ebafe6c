"""Writes Graph refuses: a 401/403 on the app's reprocess pauses its reprocesses and is one
tenant-level finding, instead of one refused call (and five host retries) per user.

A 401 or 403 on `reprocessLicenseAssignment` does not go away by retrying: the managed identity
lacks the write permission (never granted, or consent revoked) or its token is refused. So the
worker records the call's causes as refused (a recompute queues them again after
`REFUSED_RETRY`), opens `WritesRefused` (subject `service:reprocess`, alerted at once by the
tenant alerts) and pauses the app's reprocesses for `REFUSAL_PAUSE`, shared through storage
(`servicestate`, row `reprocess-refused`): messages meanwhile wait on the queue like braked
ones, and cost no call. When the pause is over, the first message probes with one call while
the others wait `PROBE_LEASE` for its answer: refused again, another pause; accepted, the pause
ends, the finding resolves and the waiting messages call.

A 403 while the app's own token carries the permission (`Directory.app_roles`) is about that
one user, not the app: Graph protects some users from tenant-wide application permissions (a
member of a restricted management administrative unit: "If you assign Microsoft Graph
application permissions to the application, those permissions won't apply because it's
restricted", Microsoft Learn, admin-units-restricted-management; a privileged user app-only
writes may not change). Then nothing pauses: the causes are recorded as refused as above and
the user's own finding `ReprocessRefused` (subject the user) says how to reprocess by hand.
The recompute leaves it open while the user still has a finding a reprocess would fix
(`kept_by_recompute`); an accepted reprocess of the user resolves it. A 401 (the token itself
refused), or a 403 with the permission missing from the token or roles unknown, pauses.

Only the app's own calls: an admin's `license-guard reprocess` calls with the admin's sign-in,
whose rights say nothing about the app's (`reprocess_user(by_app=False)`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from shared.adapters.graph_permissions import PERMISSION_SETS, REPROCESS, holds_set
from shared.core.findings import WARNING, Finding, service_finding
from shared.core.reprocess import REPROCESSABLE
from shared.ports.directory import DirectoryError
from shared.ports.tables import ConcurrencyConflict
from shared.service.services import Services
from shared.service.stores import REFUSED_RETRY, FindingsLedger, ServiceState

WRITES_REFUSED: Final = "WritesRefused"
REPROCESS_REFUSED: Final = "ReprocessRefused"
REFUSED_STATUSES: Final = frozenset({401, 403})
REFUSAL: Final = "reprocess-refused"
REFUSAL_PAUSE: Final = timedelta(hours=1)
"""After a refusal, the app's reprocesses wait this long; then one call tries again."""
PROBE_LEASE: Final = timedelta(minutes=1)
"""While one call probes after a pause, the others wait this long for its answer."""
SUBJECT: Final = "service:reprocess"
KEY: Final = f"{SUBJECT}|-|{WRITES_REFUSED}|-"


@dataclass(frozen=True, slots=True)
class RefusalGate:
    """Whether the app may call now: `wait` seconds first (paused), or `probe` (this call is
    the one that tries again after a pause)."""

    wait: float = 0.0
    probe: bool = False


def refusal_gate(svc: Services, now: datetime) -> RefusalGate:
    """Open when no refusal is recorded; after one, closed until the pause ends, then open to
    one call (the probe) at a time."""
    state = ServiceState(svc.tables.servicestate)
    for _ in range(8):
        entity = state.get(REFUSAL)
        until = entity.fields.get("until") if entity else None
        if entity is None or not isinstance(until, datetime):
            return RefusalGate()
        if now < until:
            return RefusalGate(wait=(until - now).total_seconds())
        fields = dict(entity.fields) | {"until": now + PROBE_LEASE}
        try:
            state.put(REFUSAL, fields, etag=entity.etag)
        except ConcurrencyConflict:
            continue  # another call took the probe
        return RefusalGate(probe=True)
    return RefusalGate(wait=1.0)


def record_refusal(svc: Services, refused: DirectoryError, now: datetime) -> None:
    """Pause the app's reprocesses for `REFUSAL_PAUSE` and keep `WritesRefused` open (one
    alert while it stays open)."""
    ServiceState(svc.tables.servicestate).put(
        REFUSAL, {"until": now + REFUSAL_PAUSE, "refusedAt": now, "status": refused.status}
    )
    finding = writes_refused(refused, now)
    FindingsLedger(svc.tables.findings).set_one(SUBJECT, KEY, finding, now=now, run_id="reprocess")


def end_refusal(svc: Services, now: datetime) -> None:
    """The probe's call was accepted: the pause ends and `WritesRefused` is resolved."""
    state = ServiceState(svc.tables.servicestate)
    entity = state.get(REFUSAL)
    if entity is not None:
        with contextlib.suppress(ConcurrencyConflict):  # a new refusal since: it stands
            state.put(REFUSAL, dict(entity.fields) | {"until": None}, etag=entity.etag)
    FindingsLedger(svc.tables.findings).set_one(SUBJECT, KEY, None, now=now, run_id="reprocess")


def writes_refused(refused: DirectoryError, now: datetime) -> Finding:
    """The tenant-level finding: what was refused, the permission the write needs, the fix."""
    permission = ", ".join(sorted(PERMISSION_SETS[REPROCESS]))
    return service_finding(
        WRITES_REFUSED,
        "reprocess",
        message=(
            f"Microsoft Graph refused License Guard's reprocessLicenseAssignment call at "
            f"{now:%Y-%m-%d %H:%M} UTC ({refused}): the app's managed identity lacks the "
            f"application permission {permission} (never granted, or consent revoked), or its "
            "token is refused. Reprocesses are paused: one call tries again every "
            f"{REFUSAL_PAUSE.total_seconds() / 60:.0f} min, and users whose reprocess was "
            f"refused are queued again {REFUSED_RETRY.total_seconds() / 3600:.0f} h later."
        ),
        remedy=(
            f"Grant {permission} to the managed identity (an admin, once: "
            "infra/scripts/grant-graph-permissions.sh --principal-id ID --enable-reprocess), "
            "then check it with license-guard preflight --principal-id ID --mode act (ID: azd "
            "env get-value AZURE_IDENTITY_PRINCIPAL_ID); a new role reaches the identity's "
            "tokens after a while. If License Guard should not write, set LICENSE_GUARD_MODE "
            "to observe."
        ),
    )


async def refused_for_user(svc: Services, refused: DirectoryError) -> bool:
    """A 403 although the app's token carries the reprocess permission: Graph refuses this
    user, not the app. Unknown roles count as missing (the tenant-wide pause, as before)."""
    if refused.status != 403:
        return False
    roles = await svc.directory.app_roles()
    return roles is not None and holds_set(roles, REPROCESS)


def user_refusal_key(user_id: str) -> str:
    return f"{user_id}|-|{REPROCESS_REFUSED}|-"


def record_user_refusal(
    svc: Services, user_id: str, refused: DirectoryError, now: datetime
) -> None:
    """Keep the user's `ReprocessRefused` open; nothing pauses."""
    finding = reprocess_refused(user_id, refused, now)
    FindingsLedger(svc.tables.findings).set_one(
        user_id, user_refusal_key(user_id), finding, now=now, run_id="reprocess"
    )


def accepted(svc: Services, user_id: str, now: datetime, *, probe: bool) -> None:
    """The user's reprocess was accepted: its `ReprocessRefused` (if open) is resolved, and
    after a pause (`probe`) the app's reprocesses go on."""
    FindingsLedger(svc.tables.findings).set_one(
        user_id, user_refusal_key(user_id), None, now=now, run_id="reprocess"
    )
    if probe:
        end_refusal(svc, now)


def kept_by_recompute(findings: Iterable[Finding]) -> tuple[str, ...]:
    """The codes a recompute leaves open although it did not find them: `ReprocessRefused`
    while the user still has a finding a reprocess would fix (fixed by hand: resolved)."""
    return (REPROCESS_REFUSED,) if any(f.code in REPROCESSABLE for f in findings) else ()


def reprocess_refused(user_id: str, refused: DirectoryError, now: datetime) -> Finding:
    """The user-level finding: Graph protects this user from the app's permission; the fix."""
    permission = ", ".join(sorted(PERMISSION_SETS[REPROCESS]))
    return Finding(
        REPROCESS_REFUSED,
        WARNING,
        user_id,
        None,
        None,
        message=(
            f"Microsoft Graph refused License Guard's reprocessLicenseAssignment for this user "
            f"at {now:%Y-%m-%d %H:%M} UTC ({refused}) although the app holds {permission}: "
            "the user is out of reach of tenant-wide application permissions, as a member of "
            "a restricted management administrative unit or a privileged user. Other users' "
            "reprocesses go on; this user's is tried again "
            f"{REFUSED_RETRY.total_seconds() / 3600:.0f} h later."
        ),
        remedy=(
            "An admin allowed to manage the user reprocesses by hand (Microsoft 365 admin "
            "center > Billing > Licenses > the product > Groups > the user's licensing group: "
            "select the user, then Reprocess; or Invoke-MgLicenseUser -UserId <the user's id> "
            "in Microsoft Graph PowerShell), or assigns License Guard's "
            "managed identity a role that manages licenses (License Administrator) at the "
            "restricted administrative unit's scope, which application permissions never reach."
        ),
    )
