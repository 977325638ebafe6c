"""The `Directory` port: every Microsoft Graph read and write the service makes, as one protocol.

The service layer depends on this protocol only. Two implementations pass one contract test
suite: `shared.adapters.graph.GraphDirectory` (msgraph-sdk over HTTP, against Graph or graphsim)
and `shared.fakes.directory.FakeDirectory` (in memory, for fast service-layer tests).

Group reads are typed: a delta round (`DeltaRound`, `GroupDelta`) and a group's licensing
configuration (`GroupConfig`, read with `group_configs`/`licensed_group_configs`; both
implementations translate with `GroupConfig.from_graph`, which keeps the object Graph returned
as `graph_document` for export only: a snapshot file holds Graph's own shapes); so are audit
entries (`AuditEntry`, in `shared.ports.audit_entries`).
The bulk reads of users, SKUs and the organization cross the port as Graph's own JSON
(dicts, camelCase), because raw JSON is what bulk reads can afford (the SDK's typed models
cost seconds per 999-user page) and the snapshot parser
(`shared.adapters.snapshot.GraphTranslator`) turns it into the core's types as soon as the
service has read it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.core.graph_values import processing_state
from shared.core.model import LicenseAssignment
from shared.ports.audit_entries import AuditEntry

JSON = dict[str, Any]

_ADDRESS = re.compile(r"[^\s'\"<>(),;:@]+@[^\s'\"<>(),;:]+")
"""A mail address or UPN inside an error message."""

DELTA_FILTER_LIMIT = 50
"""Graph accepts at most 50 `id eq` clauses in a /groups/delta $filter."""

USER_SELECT = (
    "id,userPrincipalName,displayName,usageLocation,accountEnabled,userType,"
    "onPremisesSyncEnabled,assignedLicenses,licenseAssignmentStates"
)
GROUP_SELECT = (
    "id,displayName,assignedLicenses,licenseProcessingState,onPremisesSyncEnabled,"
    "securityEnabled,groupTypes,membershipRule"
)


def delta_filter_ids(group_ids: Sequence[str]) -> tuple[str, ...]:
    """The ids a first delta round filters on, duplicates dropped, in order; raises ValueError
    for none or more than DELTA_FILTER_LIMIT (the port's contract, kept by both directories)."""
    ids = tuple(dict.fromkeys(group_ids))
    if not ids or len(ids) > DELTA_FILTER_LIMIT:
        raise ValueError(f"group_delta takes 1 to {DELTA_FILTER_LIMIT} group ids")
    return ids


class DirectoryError(Exception):
    """A Graph call failed in a way the caller cannot fix by retrying at once."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        # Graph's own 429 text is "Please retry again later."; how long it asked for is in
        # the Retry-After header only, so the text an admin reads says it.
        wait = f" (Graph asked to wait {retry_after:g} s)" if retry_after is not None else ""
        super().__init__(f"Graph {status} {code}: {message}{wait}")
        self.status = status
        self.code = code
        self.retry_after = retry_after

    @property
    def loggable(self) -> str:
        """The error as the logs may hold it: Graph names a user in some messages ("The
        requested user 'x@contoso.com' is invalid"), and the logs carry ids only."""
        return _ADDRESS.sub("<address>", str(self))

    @property
    def is_transient(self) -> bool:
        """Throttling and server errors: retry later (after `retry_after` when Graph gave one)."""
        return self.status == 429 or self.status >= 500


class DeltaTokenExpired(DirectoryError):
    """The delta token cannot be used: expired (400 syncStateNotFound), unknown (400
    resyncRequired) or invalidated by a synchronization reset (410 Gone, whose Location is the
    same query with an empty token). Each means: resync in full."""


@dataclass(frozen=True, slots=True)
class GroupDelta:
    """What one delta round says about one group (merged across pages)."""

    group_id: str
    added: frozenset[str] = frozenset()
    """User ids that joined (on an initial round: all current user members)."""
    removed: frozenset[str] = frozenset()
    """User ids that left."""
    licenses: tuple[LicenseAssignment, ...] | None = None
    """The group's assignedLicenses when the round carries them (None: not said)."""
    display_name: str | None = None
    """The group's displayName when the round carries it."""
    deleted: bool = False
    nested_added: frozenset[str] = frozenset()
    """Group ids that became members (nested groups; on an initial round: all of them)."""
    nested_removed: frozenset[str] = frozenset()
    """Group ids that stopped being members."""


def licenses_from_graph(value: object) -> tuple[LicenseAssignment, ...]:
    """Graph's `assignedLicenses` ([{skuId, disabledPlans}]) as the core's assignments."""
    if not isinstance(value, list):
        return ()
    return tuple(
        LicenseAssignment(str(lic.get("skuId")), frozenset(lic.get("disabledPlans") or ()))
        for lic in value
        if isinstance(lic, dict)
    )


def licenses_to_graph(licenses: Sequence[LicenseAssignment]) -> list[JSON]:
    """The assignments in Graph's `assignedLicenses` form (disabled plans sorted)."""
    return [{"skuId": a.sku_id, "disabledPlans": sorted(a.disabled_plans)} for a in licenses]


@dataclass(frozen=True, slots=True)
class GroupConfig:
    """A group's licensing configuration: the GROUP_SELECT fields, typed.

    What the group jobs keep per licensed group (`LicensedGroups` stores it in Graph's form,
    which `from_graph`/`to_graph` translate; other readers of the store parse that form)."""

    id: str
    display_name: str | None = None
    licenses: tuple[LicenseAssignment, ...] = ()
    processing_state: str | None = None
    on_premises_sync_enabled: bool | None = None
    security_enabled: bool | None = None
    group_types: tuple[str, ...] = ()
    membership_rule: str | None = None
    graph_document: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    """The group object `from_graph` read (not copied), for exports that write Graph's own
    shapes (a live snapshot, `config.json`); decisions use the typed fields, never this."""

    @property
    def licensed(self) -> bool:
        return bool(self.licenses)

    @property
    def license_set(self) -> frozenset[LicenseAssignment]:
        """The assignments, order aside: what a license change compares."""
        return frozenset(self.licenses)

    @classmethod
    def from_graph(cls, obj: Mapping[str, Any]) -> GroupConfig:
        sync, security = obj.get("onPremisesSyncEnabled"), obj.get("securityEnabled")
        return cls(
            id=str(obj["id"]),
            display_name=str(obj["displayName"]) if obj.get("displayName") else None,
            licenses=licenses_from_graph(obj.get("assignedLicenses")),
            processing_state=processing_state(obj.get("licenseProcessingState")),
            on_premises_sync_enabled=sync if isinstance(sync, bool) else None,
            security_enabled=security if isinstance(security, bool) else None,
            group_types=tuple(str(t) for t in obj.get("groupTypes") or ()),
            membership_rule=str(obj["membershipRule"]) if obj.get("membershipRule") else None,
            graph_document=obj,
        )

    def graph_form(self) -> Mapping[str, Any]:
        """The group as Graph returned it when it was read from Graph, else `to_graph()`."""
        return self.graph_document if self.graph_document is not None else self.to_graph()

    def to_graph(self) -> JSON:
        state = self.processing_state
        return {
            "id": self.id,
            "displayName": self.display_name,
            "assignedLicenses": licenses_to_graph(self.licenses),
            "licenseProcessingState": {"state": state} if state is not None else None,
            "onPremisesSyncEnabled": self.on_premises_sync_enabled,
            "securityEnabled": self.security_enabled,
            "groupTypes": list(self.group_types),
            "membershipRule": self.membership_rule,
        }


def group_configs_by_id(groups: Iterable[Mapping[str, Any]]) -> dict[str, GroupConfig]:
    """Graph group objects (GROUP_SELECT fields) as typed configs, by id: how both Directory
    implementations answer `group_configs`/`licensed_group_configs`."""
    configs = (GroupConfig.from_graph(group) for group in groups)
    return {config.id: config for config in configs}


@dataclass(frozen=True, slots=True)
class DeltaRound:
    groups: Mapping[str, GroupDelta]
    delta_link: str
    initial: bool
    """True when the round started without a token: `added` lists every member."""


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    resource: str
    change_type: str
    notification_url: str
    lifecycle_notification_url: str | None
    expiration: str
    """ISO 8601 UTC, as Graph returns expirationDateTime."""


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    """A new change-notification subscription, as `create_subscription` asks Graph for it."""

    resource: str
    change_type: str
    notification_url: str
    lifecycle_notification_url: str
    client_state: str
    expiration: str
    """ISO 8601 UTC, when Graph should end it (Graph allows at most 41,760 minutes ahead)."""


class Directory(Protocol):
    """Microsoft Graph, as the service uses it. All methods may raise `DirectoryError`."""

    async def licensed_group_configs(self) -> list[GroupConfig]:
        """Every group with licenses (`$filter=assignedLicenses/any()`, GROUP_SELECT fields),
        typed, in the order Graph lists them."""
        ...

    async def group_configs(self, group_ids: Sequence[str]) -> dict[str, GroupConfig]:
        """The named groups (GROUP_SELECT fields), typed; unknown ids are absent."""
        ...

    async def group_member_ids(self, group_id: str) -> list[str]:
        """Direct user members of a group, all pages."""
        ...

    async def group_delta(self, group_ids: Sequence[str], delta_link: str | None) -> DeltaRound:
        """One full delta round (all pages) over at most 50 groups, members selected.

        Raises `DeltaTokenExpired` when `delta_link` is no longer valid.
        """
        ...

    async def users_by_id(self, user_ids: Sequence[str]) -> dict[str, JSON]:
        """The named users (USER_SELECT fields), batched; unknown ids are absent."""
        ...

    async def member_of(self, user_ids: Sequence[str]) -> dict[str, list[str]]:
        """For each user, the ids of the groups it is a direct member of (batched)."""
        ...

    async def subscribed_skus(self) -> list[JSON]: ...

    async def organization(self) -> JSON | None: ...

    async def groups_with_license_errors(self) -> list[str]:
        """Ids of groups with `hasMembersWithLicenseErrors eq true`."""
        ...

    async def members_with_license_errors(self, group_id: str) -> list[str]: ...

    async def reprocess_license_assignment(self, user_id: str) -> bool:
        """POST /users/{id}/reprocessLicenseAssignment; False when the user no longer exists."""
        ...

    async def app_roles(self) -> frozenset[str] | None:
        """The application permissions (app roles) the app's own Graph token carries; None
        when that is not known (a static token, a user's token)."""
        ...

    async def user_count(self) -> int:
        """How many users the tenant has (`GET /users/$count`, `ConsistencyLevel: eventual`):
        the total a scan's progress shows. Eventually consistent, so only an estimate."""
        ...

    async def users_page(
        self, next_link: str | None, *, select: str = USER_SELECT
    ) -> tuple[list[JSON], str | None]:
        """One page of ALL users (`$top=999`, `$select`): the page and the next link (None at
        the end). Pass None to start. Page by page so a long scan can checkpoint the link."""
        ...

    async def group_members_page(
        self, group_id: str, next_link: str | None, *, nested: list[str] | None = None
    ) -> tuple[list[str], str | None]:
        """One page (`$top=999`) of a group's direct user member ids, and the next link.
        Group members on the page (nested groups) are appended to `nested` when given."""
        ...

    async def directory_audits(
        self, since: str, activities: Sequence[str] = ()
    ) -> list[AuditEntry]:
        """Directory audit entries (`/auditLogs/directoryAudits`) with `activityDateTime ge
        since`, optionally only these `activityDisplayName`s, all pages, newest first."""
        ...

    async def send_mail(
        self, sender: str, message: JSON, *, save_to_sent_items: bool = False
    ) -> None:
        """POST /users/{sender}/sendMail with Graph's `message` object (202, no body)."""
        ...

    async def find_draft(self, sender: str, internet_message_id: str) -> str | None:
        """The id of a draft in the sender's Drafts whose `internetMessageId` is this one
        (`GET /users/{sender}/mailFolders/drafts/messages?$filter=...`), or None."""
        ...

    async def create_draft(self, sender: str, mime: bytes) -> str:
        """POST /users/{sender}/messages with the MIME message (base64, `text/plain`): a
        draft in the sender's Drafts (201); its id."""
        ...

    async def send_draft(self, sender: str, draft_id: str) -> bool:
        """POST /users/{sender}/messages/{id}/send (202): True. False when the draft is no
        longer in the mailbox (404 `ErrorItemNotFound`: it was sent already)."""
        ...

    async def delete_draft(self, sender: str, draft_id: str) -> bool:
        """DELETE /users/{sender}/messages/{id} (204, `Mail.ReadWrite`): True. False when it is
        no longer there (404 `ErrorItemNotFound`: sent or deleted before)."""
        ...

    async def subscriptions(self) -> list[Subscription]: ...

    async def subscription(self, subscription_id: str) -> Subscription | None:
        """GET /subscriptions/{id}; None when Graph no longer has it (404)."""
        ...

    async def create_subscription(self, request: SubscriptionRequest) -> Subscription:
        """POST /subscriptions (201): the subscription Graph made."""
        ...

    async def renew_subscription(self, subscription_id: str, expiration: str) -> Subscription: ...

    async def reauthorize_subscription(self, subscription_id: str) -> None: ...

    async def delete_subscription(self, subscription_id: str) -> None: ...
