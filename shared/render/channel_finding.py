"""A finding as the alert channels report it (the generic webhook lists them), made from the
ledger rows a mail is about, with the names the mail uses."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from shared.core.alerting import LedgerRow


@dataclass(frozen=True, slots=True)
class ChannelFinding:
    key: str
    code: str
    severity: str
    status: str
    """'new', 'resolved' or 'open'."""
    user_id: str | None = None
    user_name: str | None = None
    user_principal_name: str | None = None
    group_id: str | None = None
    group_name: str | None = None
    sku_id: str | None = None
    product: str | None = None
    queue: str | None = None
    """The queue a PoisonedMessage is about (it names no group)."""


class _Names(Protocol):
    @property
    def users(self) -> Mapping[str, object]:
        """The users whose names were read (a mail reads twenty a line; a user deleted
        since is absent)."""
        ...

    def group(self, group_id: str | None) -> str: ...
    def product(self, sku_id: str | None) -> str: ...


def channel_findings(rows: Iterable[LedgerRow], names: _Names, status: str) -> list[ChannelFinding]:
    out = []
    for row in rows:
        user = names.users.get(row.user_id) if row.user_id else None  # not its id as a name
        out.append(
            ChannelFinding(
                key=row.key,
                code=row.code,
                severity=row.severity,
                status=status,
                user_id=row.user_id,
                user_name=getattr(user, "display_name", None),
                user_principal_name=getattr(user, "upn", None) or None,
                group_id=row.named_group_id,
                group_name=names.group(row.named_group_id) if row.named_group_id else None,
                sku_id=row.sku_id,
                product=names.product(row.sku_id) if row.sku_id else None,
                queue=row.queue_name,
            )
        )
    return out
