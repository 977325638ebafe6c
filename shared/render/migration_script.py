"""`report migration --script ps1|sh`: the direct-assignment removals the migration plan proves
safe, as a script a human reviews and runs.

Only removal candidates that are safe go in: every plan the direct assignment enables is also
enabled by group paths that are Active without error (the RedundantDirectAssignment test), and
the data-loss guard, run again on the user without that direct path, finds no mailbox or
OneDrive lost. Everything else is listed as REFUSED with the reason (plans it would drop,
unhealthy group paths, a capability lost), never removed. Each removal carries its reason as a
comment. PowerShell uses Microsoft Graph PowerShell (`Set-MgUserLicense -RemoveLicenses`); sh
uses `az rest` to POST /users/{id}/assignLicense
(https://learn.microsoft.com/en-us/graph/api/user-assignlicense).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from shared.catalog.products import Catalog
from shared.core.dataloss import CapabilityPlans, user_capability_losses
from shared.core.effective import EffectiveLicense, effective_licenses
from shared.core.migration import MigrationPlan
from shared.core.model import Tenant

GRAPH_USERS = "https://graph.microsoft.com/v1.0/users"
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
SCRIPT_KINDS = ("ps1", "sh")
SCRIPT_ENCODINGS = {"ps1": "utf-8-sig", "sh": "utf-8"}
"""How each script file is written. ps1 with a UTF-8 BOM: Windows PowerShell 5.1 reads a script
without one in the ANSI code page, so a non-ASCII name is garbled, and a byte of one read as a
curly quote (0x91-0x94 in Windows-1252) can end a PowerShell string. sh without: bytes before
`#!` break the shebang."""


@dataclass(frozen=True, slots=True)
class Removal:
    """A direct assignment the plan would remove, and why the script removes it or refuses to."""

    user_id: str
    sku_id: str
    reason: str


def _text(value: str) -> str:
    """A name safe inside a one-line comment: no line breaks or control characters."""
    return _UNPRINTABLE.sub(" ", value)


def _without_direct(licenses: tuple[EffectiveLicense, ...], sku_id: str) -> list[EffectiveLicense]:
    after = []
    for lic in licenses:
        if lic.sku_id != sku_id:
            after.append(lic)
            continue
        paths = lic.group_paths
        if paths:
            enabled = frozenset().union(*(p.enabled_plans for p in paths))
            after.append(EffectiveLicense(lic.sku_id, paths, enabled, lic.disabled_plans))
    return after


def sort_removals(
    plan: MigrationPlan, tenant: Tenant, catalog: Catalog, capabilities: CapabilityPlans
) -> tuple[list[Removal], list[Removal]]:
    """The removals the script makes and the ones it refuses, each with its reason."""
    licenses = effective_licenses(tenant)
    removals: list[Removal] = []
    refusals: list[Removal] = []

    def product(sku_id: str) -> str:
        sku = tenant.skus[sku_id]
        return _text(catalog.product(sku_id, sku.part_number))

    def groups(group_ids: tuple[str | None, ...]) -> str:
        return ", ".join(
            _text(f"'{tenant.groups[g].name}'") if g in tenant.groups else "direct"
            for g in group_ids
            if g is not None
        )

    for item in plan.covered:
        if not item.safe:
            refusals.append(
                Removal(
                    item.user_id,
                    item.sku_id,
                    f"not yet: the group path of {groups(item.unhealthy_group_ids)} is not "
                    "Active without error with every plan the group enables",
                )
            )
            continue
        held = licenses.get(item.user_id, ())
        lost = user_capability_losses(
            item.user_id, held, _without_direct(held, item.sku_id), capabilities
        )
        if lost or not (_GUID.match(item.user_id) and _GUID.match(item.sku_id)):
            what = ", ".join(loss.capability for loss in lost) or "an id that is not a GUID"
            refusals.append(Removal(item.user_id, item.sku_id, f"would lose {what}"))
            continue
        removals.append(
            Removal(
                item.user_id,
                item.sku_id,
                f"every plan of {product(item.sku_id)} also comes from "
                f"{groups(item.group_ids)} (Active, no error)",
            )
        )
    for part in plan.partly_covered:
        sku = tenant.skus[part.sku_id]
        plans = ", ".join(sorted(_text(sku.plan_name(p)) for p in part.plans))
        refusals.append(
            Removal(part.user_id, part.sku_id, f"would lose plans only it enables: {plans}")
        )
    return removals, refusals


def _who(tenant: Tenant, user_id: str) -> str:
    user = tenant.users.get(user_id)
    return _text(f"{user.display_name} <{user.user_principal_name}>") if user else user_id


def render_script(
    kind: str,
    plan: MigrationPlan,
    tenant: Tenant,
    catalog: Catalog,
    capabilities: CapabilityPlans,
) -> str:
    removals, refusals = sort_removals(plan, tenant, catalog, capabilities)
    return "\n".join(_lines(kind, removals, refusals, tenant, catalog)) + "\n"


def _lines(
    kind: str, removals: list[Removal], refusals: list[Removal], tenant: Tenant, catalog: Catalog
) -> Iterator[str]:
    org = tenant.organization
    if kind == "sh":
        yield "#!/bin/sh"
    yield "# Entra License Guard: remove direct license assignments that group paths cover."
    yield f"# Tenant: {_text(org.display_name) if org else '(organization not in snapshot)'}"
    yield f"# {len(removals)} removal(s), {len(refusals)} refused (listed at the end, not removed)."
    yield "# REVIEW BEFORE RUNNING. Run a small batch first, check the users in the admin center,"
    yield "# then the rest (Microsoft's migration guidance). Needs LicenseAssignment.ReadWrite.All."
    yield ""
    if kind == "ps1":
        yield "$ErrorActionPreference = 'Stop'"
        yield "Connect-MgGraph -Scopes 'LicenseAssignment.ReadWrite.All' -NoWelcome"
    else:
        yield "set -eu"
    for removal in removals:
        sku = tenant.skus[removal.sku_id]
        yield ""
        yield f"# {_who(tenant, removal.user_id)}: remove direct {_text(sku.part_number)}"
        yield f"#   because {removal.reason}"
        if kind == "ps1":
            yield (
                f"Set-MgUserLicense -UserId '{removal.user_id}' -AddLicenses @() "
                f"-RemoveLicenses @('{removal.sku_id}') | Out-Null"
            )
        else:
            body = f'{{"addLicenses":[],"removeLicenses":["{removal.sku_id}"]}}'
            yield (
                f"az rest --method POST --uri '{GRAPH_USERS}/{removal.user_id}/assignLicense' "
                f"--headers 'Content-Type=application/json' --body '{body}'"
            )
    if refusals:
        yield ""
        yield "# REFUSED (not removed):"
        for refusal in refusals:
            sku = tenant.skus[refusal.sku_id]
            yield (
                f"#   {_who(tenant, refusal.user_id)}: direct {_text(sku.part_number)}: "
                f"{refusal.reason}"
            )
