"""Directory audit entries as they cross the `Directory` port (`Directory.audit_entries`):
`AuditEntry` and its `AuditTarget`s, translated from Graph's `directoryAudit` JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.core.audit import audit_actor


@dataclass(frozen=True, slots=True)
class AuditTarget:
    """One of a directory audit entry's `targetResources`."""

    id: str
    type: str | None = None
    display_name: str | None = None
    user_principal_name: str | None = None

    @property
    def label(self) -> str:
        """How a mail names it: display name, else UPN, else id."""
        return self.display_name or self.user_principal_name or self.id


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A directory audit entry (`directoryAudit`): what was done, when, to what, by whom."""

    id: str
    activity: str
    """`activityDisplayName` ("Set group license", "Change user license"...)."""
    when: str
    """`activityDateTime` as Graph wrote it."""
    category: str | None = None
    targets: tuple[AuditTarget, ...] = ()
    actor: str | None = None
    """Who did it (`shared.core.audit.audit_actor`: a UPN, an app, or Entra Connect sync)."""
    app_id: str | None = None
    app_name: str | None = None
    by_app: bool = False
    """Initiated by an application (`initiatedBy.app`), whose id and name are above."""

    @property
    def target_ids(self) -> tuple[str, ...]:
        return tuple(t.id for t in self.targets)

    @classmethod
    def from_graph(cls, obj: Mapping[str, Any]) -> AuditEntry:
        app = (obj.get("initiatedBy") or {}).get("app") or {}
        return cls(
            id=str(obj.get("id") or ""),
            activity=str(obj.get("activityDisplayName") or ""),
            when=str(obj.get("activityDateTime") or ""),
            category=obj.get("category"),
            targets=tuple(
                AuditTarget(
                    str(t.get("id") or ""),
                    t.get("type"),
                    t.get("displayName"),
                    t.get("userPrincipalName"),
                )
                for t in obj.get("targetResources") or ()
                if t
            ),
            actor=audit_actor(obj),
            app_id=str(app["appId"]) if app.get("appId") else None,
            app_name=str(app["displayName"]) if app.get("displayName") else None,
            by_app=bool(app),
        )
