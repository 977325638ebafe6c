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

The script runs later than the snapshot was taken, and may be run again after a partial run: each
removal first reads the user's licenseAssignmentStates and removes only while the direct path and
every covering group path are as the snapshot showed them (group paths Active without error, the
same plans disabled). A direct assignment already gone is skipped (Graph refuses to remove one
that is only inherited, which would stop the script); a user whose paths changed is kept.

Both act in the snapshot's tenant only (the .ps1 signs in to it, the .sh stops when az is
signed in to another) and have a dry run: the .ps1 is an advanced script (-WhatIf, -Confirm
through ShouldProcess), the .sh takes --dry-run and refuses any other argument.
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
from shared.render.migration import not_yet

GLOBAL_GRAPH = "graph.microsoft.com"
CLOUDS = {
    GLOBAL_GRAPH: ("Global", "AzureCloud"),
    "graph.microsoft.us": ("USGov", "AzureUSGovernment"),
    "dod-graph.microsoft.us": ("USGovDoD", "AzureUSGovernment"),
    "microsoftgraph.chinacloudapi.cn": ("China", "AzureChinaCloud"),
}
"""Each Microsoft Graph host (https://learn.microsoft.com/graph/deployments): its
Connect-MgGraph -Environment (Get-MgEnvironment's names) and its `az cloud set --name`."""
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
"""Used with fullmatch: `$` would let a final line break through."""
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
    paths: tuple[tuple[str | None, frozenset[str]], ...] = ()
    """The paths a removal is checked against when the script runs: (group id, None for the
    direct path; the disabled plans the snapshot shows)."""


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
            why = not_yet(tenant, item.user_id, item.sku_id, item.unhealthy_group_ids)
            refusals.append(Removal(item.user_id, item.sku_id, f"not yet: {_text(why)}"))
            continue
        held = licenses.get(item.user_id, ())
        lost = user_capability_losses(
            item.user_id, held, _without_direct(held, item.sku_id), capabilities
        )
        paths = _snapshot_paths(tenant, item.user_id, item.sku_id, item.group_ids)
        ids = [item.user_id, item.sku_id, *(i for g, plans in paths for i in (g or "", *plans))]
        if lost or not all(_GUID.fullmatch(i) for i in ids if i):
            what = ", ".join(loss.capability for loss in lost) or "an id that is not a GUID"
            refusals.append(Removal(item.user_id, item.sku_id, f"would lose {what}"))
            continue
        removals.append(
            Removal(
                item.user_id,
                item.sku_id,
                f"every plan of {product(item.sku_id)} also comes from "
                f"{groups(item.group_ids)} (Active, no error)",
                paths,
            )
        )
    for part in plan.partly_covered:
        sku = tenant.skus[part.sku_id]
        plans = ", ".join(sorted(_text(sku.plan_name(p)) for p in part.plans))
        refusals.append(
            Removal(part.user_id, part.sku_id, f"would lose plans only it enables: {plans}")
        )
    return removals, refusals


def _snapshot_paths(
    tenant: Tenant, user_id: str, sku_id: str, group_ids: tuple[str | None, ...]
) -> tuple[tuple[str | None, frozenset[str]], ...]:
    """The direct path and the covering group paths of the user's SKU, as Graph's states show
    them in the snapshot: what the script checks are still there before it removes."""
    states = [s for s in tenant.users[user_id].states if s.sku_id == sku_id]
    wanted = (None, *(g for g in group_ids if g is not None))
    return tuple(
        (group_id, next(s.disabled_plans for s in states if s.assigned_by_group == group_id))
        for group_id in dict.fromkeys(wanted)
    )


def _who(tenant: Tenant, user_id: str) -> str:
    user = tenant.users.get(user_id)
    return _text(f"{user.display_name} <{user.user_principal_name}>") if user else user_id


def render_script(
    kind: str,
    plan: MigrationPlan,
    tenant: Tenant,
    catalog: Catalog,
    capabilities: CapabilityPlans,
    graph_host: str = GLOBAL_GRAPH,
) -> str:
    """The script for the tenant's cloud, `graph_host` (one of `CLOUDS`)."""
    removals, refusals = sort_removals(plan, tenant, catalog, capabilities)
    return "\n".join(_lines(kind, removals, refusals, tenant, graph_host)) + "\n"


_PS_HEAD = r"""[CmdletBinding(SupportsShouldProcess = $true)]
param()
$ErrorActionPreference = 'Stop'"""
_PS_SCOPES = "-Scopes 'LicenseAssignment.ReadWrite.All', 'User.Read.All' -NoWelcome"

_PS_FUNCTIONS = r"""
# True when the plans Graph shows disabled are exactly the ones the snapshot showed.
function Test-SamePlans($Have, [string[]]$Want) {
    $plans = @($Have | Where-Object { $_ })
    $missing = @($Want | Where-Object { $plans -notcontains $_ })
    return $plans.Count -eq $Want.Count -and $missing.Count -eq 0
}

# Removes the user's direct SKU only while it and each covering group path are as the
# snapshot showed them (group paths Active without error, the same plans disabled).
function Remove-CoveredDirectLicense {
    [CmdletBinding(SupportsShouldProcess = $true)]
    param([string]$UserId, [string]$SkuId, [string[]]$DirectDisabled, [hashtable]$GroupDisabled)
    try {
        $user = Get-MgUser -UserId $UserId -Property 'licenseAssignmentStates'
    } catch {
        Write-Warning "kept direct $SkuId of ${UserId}: could not read the user: $_"
        return
    }
    $states = @($user.LicenseAssignmentStates | Where-Object { $_.SkuId -eq $SkuId })
    $direct = @($states | Where-Object { -not $_.AssignedByGroup })
    if ($direct.Count -eq 0) {
        Write-Host "skipped ${UserId}: no direct $SkuId left (already removed)"
        return
    }
    $same = Test-SamePlans ($direct[0].DisabledPlans) $DirectDisabled
    foreach ($groupId in $GroupDisabled.Keys) {
        $path = @($states | Where-Object {
            $_.AssignedByGroup -eq $groupId -and $_.State -eq 'Active' -and
            (-not $_.Error -or $_.Error -eq 'None')
        })
        $same = $same -and $path.Count -gt 0 -and
            (Test-SamePlans ($path[0].DisabledPlans) $GroupDisabled[$groupId])
    }
    if (-not $same) {
        Write-Warning ("kept direct $SkuId of ${UserId}: its paths changed since the " +
            'snapshot; take a new snapshot and generate the script again')
        return
    }
    if (-not $PSCmdlet.ShouldProcess("user $UserId", "remove the direct license $SkuId")) {
        return
    }
    Set-MgUserLicense -UserId $UserId -AddLicenses @() -RemoveLicenses @($SkuId) | Out-Null
    Write-Host "removed direct $SkuId of $UserId"
}"""

_SH_HEAD = """set -eu
case "$*" in
  '') DRY_RUN= ;;
  --dry-run) DRY_RUN=1 ;;
  *) echo "usage: sh ${{0##*/}} [--dry-run] (--dry-run: read every user, remove nothing)" >&2
     exit 2 ;;
esac
GRAPH_RESOURCE='https://{host}'
GRAPH_USERS='https://{host}/v1.0/users'"""

_SH_TENANT = """TENANT='{tenant}'
signed_in=$(az account show --query tenantId --output tsv)
if [ "$signed_in" != "$TENANT" ]; then
  echo "az is signed in to tenant $signed_in, not $TENANT (the snapshot's): \\
az login --tenant $TENANT --allow-no-subscriptions" >&2
  exit 1
fi"""

_SH_FUNCTIONS = r"""
# remove_covered_direct USER SKU PATHS: removes USER's direct SKU only while PATHS, a
# JMESPath test of the user's states of SKU, holds: the direct path and each covering group
# path as the snapshot showed them (group paths Active without error, same plans disabled).
remove_covered_direct() {
  verdict=$(az rest --method GET --output tsv --resource "$GRAPH_RESOURCE" \
    --uri "$GRAPH_USERS/$1?\$select=licenseAssignmentStates" \
    --query "licenseAssignmentStates[?skuId=='$2'] | \
(!([?!assignedByGroup]) && 'gone') || ($3 && 'remove') || 'keep'") || verdict=unread
  case $verdict in
    gone) echo "skipped $1: no direct $2 left (already removed)" ;;
    remove)
      if [ -n "$DRY_RUN" ]; then
        echo "would remove direct $2 of $1 (--dry-run)"
        return
      fi
      az rest --method POST --uri "$GRAPH_USERS/$1/assignLicense" \
        --resource "$GRAPH_RESOURCE" \
        --headers 'Content-Type=application/json' \
        --body "{\"addLicenses\":[],\"removeLicenses\":[\"$2\"]}" > /dev/null
      echo "removed direct $2 of $1" ;;
    unread) echo "kept direct $2 of $1: could not read the user" >&2 ;;
    *) echo "kept direct $2 of $1: its paths changed since the snapshot; take a new \
snapshot and generate the script again" >&2 ;;
  esac
}"""


def _ps_list(values: frozenset[str]) -> str:
    return "@(" + ", ".join(f"'{v}'" for v in sorted(values)) + ")"


def _ps_removal(removal: Removal) -> str:
    direct = next(plans for group_id, plans in removal.paths if group_id is None)
    groups = "; ".join(f"'{g}' = {_ps_list(p)}" for g, p in removal.paths if g is not None)
    return (
        f"Remove-CoveredDirectLicense -UserId '{removal.user_id}' -SkuId '{removal.sku_id}' "
        f"-DirectDisabled {_ps_list(direct)} -GroupDisabled @{{ {groups} }}"
    )


def _sh_removal(removal: Removal) -> str:
    """The call with its JMESPath test: one filter per path, all non-empty."""

    def path(group_id: str | None, plans: frozenset[str]) -> str:
        who = (
            "!assignedByGroup"
            if group_id is None
            else (f"assignedByGroup=='{group_id}' && state=='Active' && (!error || error=='None')")
        )
        same = (
            "sort(disabledPlans)==[" + ",".join(f"'{p}'" for p in sorted(plans)) + "]"
            if plans
            else "!disabledPlans"
        )
        return f"[?{who} && {same}]"

    test = " && ".join(path(g, p) for g, p in removal.paths)
    return f"remove_covered_direct '{removal.user_id}' '{removal.sku_id}' \"({test})\""


def _head(kind: str, tenant_id: str | None, graph_host: str) -> Iterator[str]:
    """Settings and the sign-in, in the tenant's cloud and, when its id is known, in the
    snapshot's tenant: an admin of several tenants is often signed in to another
    (Connect-MgGraph's default is the account's home tenant; az rest uses the tenant `az login`
    chose), where every read fails."""
    environment = CLOUDS[graph_host][0]
    if kind == "ps1":
        yield from _PS_HEAD.splitlines()
        cloud = f"-Environment {environment} " if graph_host != GLOBAL_GRAPH else ""
        tenant = f"-TenantId '{tenant_id}' " if tenant_id else ""
        yield f"Connect-MgGraph {cloud}{tenant}{_PS_SCOPES}"
        return
    yield from _SH_HEAD.format(host=graph_host).splitlines()
    if tenant_id:
        yield from _SH_TENANT.format(tenant=tenant_id).splitlines()


def _lines(
    kind: str, removals: list[Removal], refusals: list[Removal], tenant: Tenant, graph_host: str
) -> Iterator[str]:
    org = tenant.organization
    if kind == "sh":
        yield "#!/bin/sh"
    yield "# Entra License Guard: remove direct license assignments that group paths cover."
    yield f"# Tenant: {_text(org.display_name) if org else '(organization not in snapshot)'}"
    yield f"# {len(removals)} removal(s), {len(refusals)} refused (listed at the end, not removed)."
    yield "# REVIEW BEFORE RUNNING. Run a small batch first, check the users in the admin center,"
    yield "# then the rest (Microsoft's migration guidance). Needs LicenseAssignment.ReadWrite.All"
    yield "# and User.Read.All. Each removal is made only while the user's paths are as the"
    yield "# snapshot showed them; one already made is skipped, so the script can be run again."
    if kind == "ps1":
        yield "# Dry run: .\\script.ps1 -WhatIf (reads every user, removes nothing); -Confirm asks"
        yield "# before each removal."
    else:
        yield "# Dry run: sh script.sh --dry-run (reads every user, removes nothing)."
        if graph_host != GLOBAL_GRAPH:
            az_cloud = CLOUDS[graph_host][1]
            yield f"# Cloud: {graph_host}: run 'az cloud set --name {az_cloud}' before az login."
    yield ""
    yield from _head(kind, org.id if org and _GUID.fullmatch(org.id) else None, graph_host)
    yield ""
    yield from (_PS_FUNCTIONS if kind == "ps1" else _SH_FUNCTIONS).splitlines()[1:]
    for removal in removals:
        sku = tenant.skus[removal.sku_id]
        yield ""
        yield f"# {_who(tenant, removal.user_id)}: remove direct {_text(sku.part_number)}"
        yield f"#   because {removal.reason}"
        yield _ps_removal(removal) if kind == "ps1" else _sh_removal(removal)
    if refusals:
        yield ""
        yield "# REFUSED (not removed):"
        for refusal in refusals:
            sku = tenant.skus[refusal.sku_id]
            yield (
                f"#   {_who(tenant, refusal.user_id)}: direct {_text(sku.part_number)}: "
                f"{refusal.reason}"
            )
