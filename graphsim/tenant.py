"""The simulated tenant's data and clockwork: directory objects loaded from a snapshot,
lookups, the group change log, the user change log, the audit log, request counters, and the
licensing processor that recomputes users on the simulated clock.

Directory objects are kept as plain Graph-JSON dicts (camelCase, as the snapshot has them) so
responses are projections, not conversions. The writes live in
:mod:`graphsim.membership_changes`, :mod:`graphsim.license_changes` and
:mod:`graphsim.group_lifecycle`; :class:`graphsim.state.SimState` combines them.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import orjson

from .audit import AuditLog, audit_target
from .change_log import DELETED, ChangeEntry
from .clock import SimClock
from .drafts import Drafts
from .errors import invalid_object_id, not_found
from .license_rules import LicensingRules
from .license_status import has_error_from
from .licensing import process_users
from .memberships import USER_TYPE, index_memberships
from .processing import Job, LicenseProcessor

Obj = dict[str, Any]

# Entra's group-based licensing is asynchronous: a change waits in a queue, then members are
# processed at some rate, so a big group takes longer ("usually within minutes"; a seed article
# measured ~30 min for 1,500 users). Defaults: a minute in the queue, then 50 users a minute;
# a tenant's x-graphsim can set either (processingDelaySeconds 0 and processingRatePerMinute
# null: instant, the old behaviour).
DEFAULT_DELAY_SECONDS = 60.0
DEFAULT_RATE_PER_MINUTE = 50.0


class Tenant:
    """Everything graphsim knows about its one tenant, and how it changes over time."""

    def __init__(
        self,
        tenant: Obj,
        clock: SimClock | None = None,
        *,
        tenant_factory: Callable[[], Obj] | None = None,
    ) -> None:
        self.clock = clock or SimClock()
        # reset() needs the tenant as loaded. Big synthetic tenants share plan entries between
        # users and serialise to ~1 GB, so callers holding a way to rebuild pass a factory.
        self._factory = tenant_factory
        self._snapshot = b"" if tenant_factory else orjson.dumps(tenant)
        self.on_group_change: Callable[[str, str], None] = lambda _gid, _ct: None
        self.counters: dict[str, dict[str, int]] = {}
        self.load(tenant)

    def load(self, tenant: Obj) -> None:
        self.users: dict[str, Obj] = {u["id"]: u for u in tenant.get("users", [])}
        self.user_order: list[str] = list(self.users)
        self.upn_index: dict[str, str] = {
            str(u["userPrincipalName"]).lower(): uid
            for uid, u in self.users.items()
            if u.get("userPrincipalName")
        }
        self.groups: dict[str, Obj] = {}
        for group in tenant.get("groups", []):
            group.setdefault("members", [])
            group.setdefault("assignedLicenses", [])
            state = group.get("licenseProcessingState")
            if isinstance(state, str):
                group["licenseProcessingState"] = {"state": state}
            elif state is None:
                group["licenseProcessingState"] = {"state": "ProcessingComplete"}
            self.groups[group["id"]] = group
        self.member_ids: dict[str, set[str]] = {
            gid: {m["id"] for m in g["members"]} for gid, g in self.groups.items()
        }
        self.skus: dict[str, Obj] = {s["skuId"]: s for s in tenant.get("subscribedSkus", [])}
        # Directory roles and administrative units (each with `members`: user ids): what else
        # `/users/{id}/memberOf` lists besides groups (user-list-memberof).
        self.roles_and_units: list[Obj] = [
            {"@odata.type": kind, **obj}
            for key, kind in (
                ("directoryRoles", "#microsoft.graph.directoryRole"),
                ("administrativeUnits", "#microsoft.graph.administrativeUnit"),
            )
            for obj in tenant.get(key, [])
        ]
        self.x: Obj = copy.deepcopy(tenant.get("x-graphsim") or {})
        # service principals by object id, each with the app roles granted to it
        self.service_principals: dict[str, Obj] = {
            sp["id"]: sp for sp in tenant.get("servicePrincipals", [])
        }
        self.organization: list[Obj] = tenant.get("organization") or [self._default_org()]
        self.tenant_id: str = str(self.organization[0].get("id"))
        for sku in self.skus.values():  # the subscribedSku properties a snapshot may lack
            sku.setdefault("id", f"{self.tenant_id}_{sku['skuId']}")
            sku.setdefault("accountId", self.tenant_id)
            sku.setdefault("accountName", str(self.organization[0].get("displayName") or ""))
            sku.setdefault(
                "subscriptionIds",
                [str(uuid.uuid5(uuid.NAMESPACE_URL, f"graphsim/subscription/{sku['skuId']}"))],
            )
        self.rules = LicensingRules.from_config(self.x)
        self.index: dict[str, set[str]] = index_memberships(self.groups)
        synced = set(self.x.get("onPremisesSyncedGroups") or [])
        synced |= {gid for gid, g in self.groups.items() if g.get("onPremisesSyncEnabled")}
        self.synced_groups = synced
        for gid in synced:
            if gid in self.groups:
                self.groups[gid]["onPremisesSyncEnabled"] = True
        self.pending_onprem: list[Obj] = list(self.x.get("pendingOnPremChanges") or [])
        self.generation = uuid.uuid4().hex[:8]
        self.delta_generation = self.generation
        self.log: list[ChangeEntry] = []
        self.deleted_groups: dict[str, str] = {}
        self.soft_deleted: dict[str, Obj] = {}  # restorable groups, with their members
        self.user_log: list[str] = []  # user ids, one per change, for GET /users/delta
        self.audit = AuditLog(self.clock)
        self.subscriptions: dict[str, Obj] = {}
        self.outbox: list[Obj] = []
        self.drafts = Drafts()
        rate = self.x.get("processingRatePerMinute", DEFAULT_RATE_PER_MINUTE)
        self.processor = LicenseProcessor(
            self._process_now,
            self._processing_state,
            rate_per_minute=float(rate) if rate else None,
            delay_seconds=float(self.x.get("processingDelaySeconds", DEFAULT_DELAY_SECONDS) or 0),
        )

    def reset(self) -> None:
        """Back to the tenant as loaded at start (subscriptions, logs and counters cleared)."""
        self.counters = {}
        self.load(self._factory() if self._factory else orjson.loads(self._snapshot))

    def _default_org(self) -> Obj:
        return {
            "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "graphsim.tenant")),
            "displayName": "graphsim tenant",
            "countryLetterCode": self.x.get("tenantCountry", "US") if hasattr(self, "x") else "US",
            "onPremisesSyncEnabled": None,
            "onPremisesLastSyncDateTime": None,
            "verifiedDomains": [],
        }

    @property
    def delta_lifetime(self) -> timedelta:
        return timedelta(days=float(self.x.get("deltaTokenLifetimeDays", 7)))

    @property
    def page_token_lifetime(self) -> timedelta | None:
        """How long a collection's `$skiptoken` stays usable (`pageTokenLifetimeMinutes`; Graph
        documents no figure, so by default forever)."""
        minutes = self.x.get("pageTokenLifetimeMinutes")
        return None if minutes is None else timedelta(minutes=float(minutes))

    @property
    def seq(self) -> int:
        """Sequence number of the latest change-log entry (0 = none yet)."""
        return len(self.log)

    def user(self, key: str) -> Obj:
        user = self.users.get(key)
        if user is None:
            uid = self.upn_index.get(key.lower())
            user = self.users.get(uid) if uid else None
        if user is None:
            raise not_found(key)
        return user

    def group(self, gid: str) -> Obj:
        group = self.groups.get(gid)
        if group is None:
            try:
                uuid.UUID(gid)
            except ValueError:
                raise invalid_object_id(gid) from None
            raise not_found(gid)
        return group

    def member_object(self, mid: str) -> Obj | None:
        if mid in self.users:
            return self.users[mid]
        return self.groups.get(mid)

    def user_member_ids(self, gid: str) -> list[str]:
        return [
            m["id"]
            for m in self.groups[gid]["members"]
            if m.get("@odata.type") == USER_TYPE and m["id"] in self.users
        ]

    def has_license_errors(self, group: Obj) -> bool:
        gid = group["id"]
        for uid in self.member_ids.get(gid, ()):
            user = self.users.get(uid)
            if user is None:
                continue
            if has_error_from(user, gid):
                return True
        return False

    # ----------------------------------------------------------------- change log
    def _changed(
        self,
        gid: str,
        kind: str,
        mid: str | None = None,
        mtype: str | None = None,
        *,
        notify: str | None = None,
    ) -> None:
        self.log.append((gid, kind, mid, mtype))
        self.on_group_change(gid, notify or ("deleted" if kind == DELETED else "updated"))

    # ----------------------------------------------------------------- processing
    def _process_now(self, user_ids: set[str]) -> set[str]:
        changed: set[str] = process_users(
            user_ids,
            self.users,
            self.groups,
            self.skus,
            self.rules,
            self.clock.now(),
            index=self.index,
        )
        self.user_changed(changed)
        return changed

    def user_changed(self, user_ids: Iterable[str]) -> None:
        """Note changed users for GET /users/delta (its change log: one entry per change)."""
        self.user_log.extend(sorted(user_ids))

    def _processing_state(self, gid: str, state: str, job: Job) -> None:
        group = self.groups.get(gid)
        if group is None:
            return
        group["licenseProcessingState"] = {"state": state}
        if state == "ProcessingInProgress":
            self.audit.record(
                "Start applying group based license to users",
                "GroupManagement",
                "gbl",
                [audit_target(group, "Group")],
            )
        elif state == "ProcessingComplete" and job.started:
            members = self.user_member_ids(gid)
            failed = sum(1 for uid in members if has_error_from(self.users.get(uid), gid))
            result = (
                f"Users successfully assigned licenses: {len(members) - failed}, "
                f"Users for whom license assignment failed: {failed}."
            )
            self.audit.record(
                "Finish applying group based license to users",
                "GroupManagement",
                "gbl",
                [
                    audit_target(
                        group,
                        "Group",
                        [{"displayName": "Result", "oldValue": None, "newValue": result}],
                    )
                ],
            )

    def pump(self) -> None:
        """Let simulated time act: licensing progress (lifecycle events are the notifier's)."""
        self.processor.pump(self.clock.now())

    def schedule(self, gid: str | None, user_ids: Iterable[str]) -> None:
        self.processor.schedule(self.clock.now(), gid, user_ids)
        self.pump()

    def count(self, key: str, status: int | str) -> None:
        bucket = self.counters.setdefault(key, {})
        bucket[str(status)] = bucket.get(str(status), 0) + 1
