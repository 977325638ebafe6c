"""Readable names for what the ledger holds as ids (users, groups, products, the tenant), as an
alert mail and the channels show them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from shared.adapters.snapshot import GraphTranslator
from shared.catalog.products import catalog
from shared.core.alerting import LedgerRow
from shared.render.mail import MAX_NAMED_USERS, MailNames, UserName
from shared.service.alerts.ledger import Key
from shared.service.services import Services
from shared.service.stores import LicensedGroups, ServiceState
from shared.service.user_reads import read_user_records


async def tenant_name(svc: Services) -> str:
    cached = svc.caches.tenant_name
    if cached is not None:
        return cached
    organization = GraphTranslator().organization(await svc.directory.organization())
    name = (organization.display_name if organization else "") or svc.settings.tenant_id
    svc.caches.tenant_name = name
    return name


async def mail_names(svc: Services, rows: Sequence[LedgerRow]) -> MailNames:
    """Display names and UPNs of the users the mail names (at most 20 per line), group names
    and friendly product names. A digest's new and resolved findings of one group x SKU x
    code are two lines, and findings with different fixes a line each: each names its own 20."""
    per_line: dict[tuple[Key, bool, str], list[str]] = {}
    for row in rows:
        line = ((row.group_id, row.sku_id, row.code), row.is_open, row.remedy)
        ids = per_line.setdefault(line, [])
        for uid in (row.user_id, *row.user_ids):
            if uid and uid not in ids and len(ids) < MAX_NAMED_USERS:
                ids.append(uid)
    wanted = sorted({u for ids in per_line.values() for u in ids})
    users = await read_user_records(svc, wanted)
    configs = LicensedGroups(svc.tables.deltalinks).configs()
    missing = sorted({g for r in rows if (g := r.group_id) and g not in configs and _object_id(g)})
    if missing:
        configs |= await svc.directory.group_configs(missing)
    return MailNames(
        tenant_name=await tenant_name(svc),
        users={uid: UserName(u.display_name, u.user_principal_name) for uid, u in users.items()},
        groups={gid: c.display_name or gid for gid, c in configs.items()},
        products=product_names(svc),
    )


def _object_id(value: str) -> bool:
    """A directory object id (a GUID): what Graph can be asked for. A PoisonedMessage keeps
    its message's digest where a group id would be; GET /groups/{digest} is a 400 that would
    fail the whole alert."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def product_names(svc: Services) -> dict[str, str]:
    skus, _ = ServiceState(svc.tables.servicestate).skus()
    names = catalog()
    out = {}
    for sku in skus.values():
        part = sku.part_number
        friendly = names.product(sku.id, part)
        out[sku.id] = f"{friendly} ({part})" if friendly != part else part
    return out
