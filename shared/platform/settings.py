"""License Guard's settings: one typed, frozen `Settings`, read once from the environment.

Azure Functions exposes app settings (and ``local.settings.json`` ``Values`` locally) as
environment variables. `Settings.from_env` reads them all at once and raises `SettingsError`
naming *every* missing or invalid setting in one message, so a misconfigured app says
everything that is wrong on its first start. Empty or blank values count as missing. A Key
Vault reference (``@Microsoft.KeyVault(...)``) is invalid: App Service passes the reference text
on when it cannot read the secret, and as ``CLIENT_STATE`` that public text would be accepted.

A *list* (``ACT_GROUP_ALLOWLIST``, ``ALERT_RECIPIENTS``, ``ALERT_EXCLUDE_SKUS``, ``_GROUPS``,
``_USERS``, ``SKU_PRICES``) takes commas, semicolons, spaces or line breaks between its items,
so a list pasted from Outlook (``a@x; b@x``) or an Excel column works; an address as Outlook
copies it, ``Adele Vance <adelev@contoso.com>`` or ``"Vance, Adele" <adelev@contoso.com>``,
is the address (`setting_values.list_items`, for all of them).

Required:

* ``AzureWebJobsStorage``: the storage connection string (``UseDevelopmentStorage=true`` for
  Azurite), or, in Azure, identity-based ``AzureWebJobsStorage__queueServiceUri`` and
  ``__tableServiceUri`` (or ``__accountName``), with ``__credential=managedidentity`` and
  ``__clientId`` for a user-assigned identity.
* ``TENANT_ID``: the Entra tenant (GUID).
* ``NOTIFICATION_URL``, ``LIFECYCLE_NOTIFICATION_URL``: where Graph posts change and lifecycle
  notifications (this app's two webhook endpoints); https (http only for a loopback address).
* ``CLIENT_STATE``: the secret Graph echoes in every notification (16-128 characters).
* ``SUBSCRIPTION_KEEPER_SCHEDULE``, ``SYNC_WATCH_SCHEDULE``, ``RECHECK_ERRORS_SCHEDULE``,
  ``POISON_WATCH_SCHEDULE``, ``RECONCILE_SCHEDULE``: six-field NCRONTAB, UTC, each field
  checked as the host's NCrontab reads it (a value it cannot read unloads that timer). No
  default on purpose: the timer decorators say ``schedule="%SYNC_WATCH_SCHEDULE%"`` and the
  host resolves that from app settings with no fallback, so a missing one stops the function
  from loading. Requiring them here makes that failure loud and early, and keeps one source for
  each schedule.

Optional (default):

* ``REPORT_RETENTION_DAYS`` (30): how long the nightly reports are kept in blob storage.
  This and every other span of time (``..._DAYS``, ``..._MINUTES``) is at most 100 years.
* ``FINDINGS_RETENTION_DAYS`` (90): how long a resolved finding stays in the ``findings``
  table after it resolved (one whose resolution a digest still owes: until reported, at most
  twice as long); the nightly reconciliation deletes the older ones.

* ``GRAPH_BASE_URL`` (``https://graph.microsoft.com/v1.0``).
* ``AZURE_CLIENT_ID`` (none: the default identity): the user-assigned identity that signs in
  to Graph (`DefaultAzureCredential` reads it); its client id is how the reprocess worker
  knows its own calls in the audit log.
* ``GRAPH_STATIC_TOKEN`` (none): a bearer token for graphsim; local use only, refused unless
  ``GRAPH_BASE_URL`` points at a loopback address.
* ``CLIENT_STATE_PREVIOUS`` (none): the old client state, accepted during a rotation.
* ``LICENSE_GUARD_MODE`` (``observe``): ``observe`` reports only; ``act`` may write.
* ``ACT_GROUP_ALLOWLIST`` (empty: all groups): a list of group GUIDs. A value that holds no
  id (``""``, a lone ``;``) is refused, not read as empty.
* ``WRITES_DISABLED`` (false): the kill switch; true/false, 1/0, yes/no, on/off.
* ``REPROCESS_RATE_PER_MIN`` (10), ``REPROCESS_DAILY_CAP`` (1000): positive integers.
* ``NOTIFICATION_SILENCE_MINUTES`` (360): the dead-man switch; a sweep that finds group
  changes when no change notification has come for this long raises ``NotificationsSilent``.

Alerts (optional; see README "Alerts"):

* ``ALERT_SENDER`` (none): the one mailbox alerts are sent from (a draft,
  ``POST /users/{sender}/messages``, then ``.../messages/{id}/send``).
  Unset: alerts are disabled (logged once per worker); everything else runs.
* ``ALERT_RECIPIENTS`` (none): a list of addresses; required when ``ALERT_SENDER`` is set.
  Addresses outside the tenant's verified domains are refused at the first send.
* ``ALERT_DIGEST_SCHEDULE`` (``0 0 * * * *``, hourly): the digest timer. The host resolves
  ``%ALERT_DIGEST_SCHEDULE%`` from app settings with no fallback, so it is set in Bicep and the
  example settings too; without it only ``alert_digest`` fails to load.
* ``ALERT_EXCLUDE_SKUS``, ``ALERT_EXCLUDE_GROUPS`` (GUIDs), ``ALERT_EXCLUDE_USERS`` (ids or
  UPNs), lists: mute alerts for them; findings are still recorded and reported.
* ``ALERT_GRACE_MINUTES`` (30): an error or warning is alerted once it is this old.
* ``SWAP_GRACE_DAYS`` (3): a conflict during a SKU swap (user in both groups) waits this long.
* ``MASS_LOSS_THRESHOLD`` (10): more users than this losing a data capability within an hour
  is one mass-loss alert.
* ``ALERT_CHANNELS`` (none): a JSON list of ``{type, urlSecretName, minSeverity}``: Teams,
  Slack or generic webhook channels besides mail (``shared.platform.channel_config``).
* ``SKU_PRICES`` (none): a list of ``PART=PRICE``, the monthly price per product
  (skuPartNumber or skuId); the report page then shows the monthly cost of seat shortfalls
  and redundant direct assignments.
* ``BASELINE`` (empty): ``off`` skips the first-run baseline (digests report everything open);
  ``reset`` or any ``reset-<label>`` forces one new baseline (each distinct value once).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import urlsplit

from shared.platform.channel_config import Channel, parse_channels
from shared.platform.setting_values import (
    UNRESOLVED_REFERENCE,
    is_loopback_host,
    is_unresolved_reference,
    parse_allowlist,
    parse_baseline,
    parse_bool,
    parse_client_state,
    parse_days,
    parse_email,
    parse_emails,
    parse_group_ids,
    parse_guid,
    parse_minutes,
    parse_ncrontab,
    parse_notification_url,
    parse_positive_days,
    parse_positive_int,
    parse_positive_minutes,
    parse_sku_prices,
    parse_url,
    parse_words,
)

DEFAULT_GRAPH_BASE_URL: Final = "https://graph.microsoft.com/v1.0"
STORAGE_SETTING: Final = "AzureWebJobsStorage"
Mode: TypeAlias = Literal["observe", "act"]
MODES: Final = ("observe", "act")


class SettingsError(ValueError):
    """Settings are missing or invalid; `missing` and `invalid` list every one of them."""

    def __init__(self, missing: tuple[str, ...], invalid: Mapping[str, str]) -> None:
        self.missing = missing
        self.invalid = dict(invalid)
        parts = []
        if missing:
            parts.append("missing required setting(s): " + ", ".join(missing))
        parts.extend(f"{name}: {problem}" for name, problem in self.invalid.items())
        super().__init__("; ".join(parts))


@dataclass(frozen=True, slots=True)
class StorageConnection:
    """Where storage is: a connection string, or (in Azure) service URIs and an identity."""

    connection_string: str | None = field(default=None, repr=False)  # may hold an account key
    queue_service_uri: str | None = None
    table_service_uri: str | None = None
    managed_identity_client_id: str | None = None
    blob_service_uri: str | None = None
    """``<prefix>__blobServiceUri`` (or from ``__accountName``); the blob store needs it."""

    @classmethod
    def from_env(cls, env: Mapping[str, str], prefix: str = STORAGE_SETTING) -> StorageConnection:
        """Read ``<prefix>`` or its identity-based ``<prefix>__*`` form.

        Raises LookupError when none is set, ValueError when the identity form is incomplete.
        """

        def get(suffix: str) -> str | None:
            return (env.get(prefix + suffix) or "").strip() or None

        if conn := get(""):
            return cls(connection_string=conn)
        account = get("__accountName")
        queue = get("__queueServiceUri") or (
            account and f"https://{account}.queue.core.windows.net"
        )
        table = get("__tableServiceUri") or (
            account and f"https://{account}.table.core.windows.net"
        )
        if not (queue or table):
            raise LookupError(prefix)
        if not (queue and table):
            raise ValueError(
                f"identity-based storage needs both {prefix}__queueServiceUri and "
                f"{prefix}__tableServiceUri (or {prefix}__accountName)"
            )
        blob = get("__blobServiceUri") or (account and f"https://{account}.blob.core.windows.net")
        client_id = get("__clientId") if get("__credential") == "managedidentity" else None
        return cls(
            queue_service_uri=queue,
            table_service_uri=table,
            managed_identity_client_id=client_id,
            blob_service_uri=blob,
        )

    def service_uri(self, service: Literal["queue", "table", "blob"]) -> str | None:
        """The queue, table or blob service's URI (identity-based storage)."""
        uris = {
            "queue": self.queue_service_uri,
            "table": self.table_service_uri,
            "blob": self.blob_service_uri,
        }
        return uris[service]


def _without_value(problem: str, value: str) -> str:
    """A secret setting's problem without the value, which the parsers quote: a notification
    URL holds its function key, and the error is logged at every start and printed by the CLI."""
    return problem.replace(repr(value), "the value (not shown: it is secret)").replace(value, "…")


def _mode(text: str) -> str:
    mode = text.lower()
    if mode not in MODES:
        raise ValueError(f"{text!r} is not one of {', '.join(MODES)}")
    return mode


def _setting(
    name: str,
    parse: Callable[[str], Any] = str,
    *,
    default: Any = MISSING,
    factory: Any = MISSING,
    secret: bool = False,
    as_written: bool = False,
) -> Any:
    """A `Settings` field read from environment variable `name`, parsed by `parse`; one with
    neither a `default` nor a `factory` is required. A `secret` one stays out of repr(). An
    `as_written` one is parsed unstripped: the host reads it so (a schedule)."""
    metadata = {"env": name, "parse": parse, "as_written": as_written}
    return field(default=default, default_factory=factory, repr=not secret, metadata=metadata)


def _schedule(name: str) -> Any:
    """A timer's NCRONTAB schedule, checked as the host will read it (`as_written`)."""
    return _setting(name, parse_ncrontab, as_written=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything License Guard reads from app settings; see the module docstring.

    Secrets (client states, the static token, the connection string, the notification URLs
    with their function keys) stay out of repr()."""

    storage_connection: StorageConnection = _setting(STORAGE_SETTING)  # noqa: RUF009 - makes a field
    tenant_id: str = _setting("TENANT_ID", parse_guid)
    notification_url: str = _setting("NOTIFICATION_URL", parse_notification_url, secret=True)
    """Carries the webhook's function key (``?code=``), so it stays out of repr() too."""
    lifecycle_notification_url: str = _setting(
        "LIFECYCLE_NOTIFICATION_URL", parse_notification_url, secret=True
    )
    client_state: str = _setting("CLIENT_STATE", parse_client_state, secret=True)
    subscription_keeper_schedule: str = _setting(
        "SUBSCRIPTION_KEEPER_SCHEDULE", parse_ncrontab, as_written=True
    )
    sync_watch_schedule: str = _schedule("SYNC_WATCH_SCHEDULE")
    recheck_errors_schedule: str = _setting(
        "RECHECK_ERRORS_SCHEDULE", parse_ncrontab, as_written=True
    )
    poison_watch_schedule: str = _schedule("POISON_WATCH_SCHEDULE")
    reconcile_schedule: str = _schedule("RECONCILE_SCHEDULE")
    graph_base_url: str = _setting("GRAPH_BASE_URL", parse_url, default=DEFAULT_GRAPH_BASE_URL)
    graph_static_token: str | None = _setting("GRAPH_STATIC_TOKEN", default=None, secret=True)
    graph_client_id: str | None = _setting("AZURE_CLIENT_ID", default=None)
    """The identity Graph is called as (None: the default identity, id not known here)."""
    client_state_previous: str | None = _setting(
        "CLIENT_STATE_PREVIOUS", parse_client_state, default=None, secret=True
    )
    mode: Mode = _setting("LICENSE_GUARD_MODE", _mode, default="observe")  # noqa: RUF009 - makes a field
    act_group_allowlist: frozenset[str] = _setting(
        "ACT_GROUP_ALLOWLIST", parse_allowlist, default=frozenset()
    )
    writes_disabled: bool = _setting("WRITES_DISABLED", parse_bool, default=False)
    reprocess_rate_per_min: int = _setting("REPROCESS_RATE_PER_MIN", parse_positive_int, default=10)
    reprocess_daily_cap: int = _setting("REPROCESS_DAILY_CAP", parse_positive_int, default=1000)
    notification_silence_minutes: int = _setting(
        "NOTIFICATION_SILENCE_MINUTES", parse_positive_minutes, default=360
    )
    """Dead-man switch: a sweep that finds group changes no notification announced for this
    long means notifications are not arriving."""
    report_retention_days: int = _setting("REPORT_RETENTION_DAYS", parse_positive_days, default=30)
    """Nightly reports older than this are deleted from blob storage."""
    findings_retention_days: int = _setting(
        "FINDINGS_RETENTION_DAYS", parse_positive_days, default=90
    )
    """Resolved findings older than this are deleted from the findings table (nightly)."""
    alert_sender: str | None = _setting("ALERT_SENDER", parse_email, default=None)
    alert_recipients: tuple[str, ...] = _setting("ALERT_RECIPIENTS", parse_emails, default=())
    alert_digest_schedule: str = _setting(
        "ALERT_DIGEST_SCHEDULE", parse_ncrontab, default="0 0 * * * *", as_written=True
    )
    alert_exclude_skus: frozenset[str] = _setting(
        "ALERT_EXCLUDE_SKUS", parse_group_ids, default=frozenset()
    )
    alert_exclude_groups: frozenset[str] = _setting(
        "ALERT_EXCLUDE_GROUPS", parse_group_ids, default=frozenset()
    )
    alert_exclude_users: frozenset[str] = _setting(
        "ALERT_EXCLUDE_USERS", parse_words, default=frozenset()
    )
    alert_grace_minutes: int = _setting("ALERT_GRACE_MINUTES", parse_minutes, default=30)
    swap_grace_days: int = _setting("SWAP_GRACE_DAYS", parse_days, default=3)
    mass_loss_threshold: int = _setting("MASS_LOSS_THRESHOLD", parse_positive_int, default=10)
    baseline: str | None = _setting("BASELINE", parse_baseline, default=None)
    alert_channels: tuple[Channel, ...] = _setting("ALERT_CHANNELS", parse_channels, default=())
    """Teams / Slack / webhook channels besides mail (shared.platform.channel_config)."""
    sku_prices: Mapping[str, float] = _setting("SKU_PRICES", parse_sku_prices, factory=dict)
    """Optional monthly price per product for the report page's cost columns."""

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        """The environment variables Settings reads (identity-based storage variants aside)."""
        return tuple(f.metadata["env"] for f in fields(cls))

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Read and validate every setting; SettingsError lists all that are missing or bad."""
        values: dict[str, Any] = {}
        missing: list[str] = []
        invalid: dict[str, str] = {}
        for f in fields(cls):
            name, parse = f.metadata["env"], f.metadata["parse"]
            try:
                if name == STORAGE_SETTING:
                    values[f.name] = StorageConnection.from_env(env)
                    continue
                text = (env.get(name) or "").strip()
                if is_unresolved_reference(text):
                    invalid[name] = UNRESOLVED_REFERENCE
                elif text:
                    values[f.name] = parse(env[name] if f.metadata["as_written"] else text)
                elif f.default is MISSING and f.default_factory is MISSING:
                    missing.append(name)
            except LookupError:
                missing.append(name)
            except ValueError as error:
                invalid[name] = str(error) if f.repr else _without_value(str(error), text)
        token, base = values.get("graph_static_token"), values.get("graph_base_url")
        if token and not _is_loopback(base or DEFAULT_GRAPH_BASE_URL):
            problem = "is for local use against graphsim; GRAPH_BASE_URL must be a loopback address"
            invalid["GRAPH_STATIC_TOKEN"] = problem
        if values.get("alert_sender") and not values.get("alert_recipients"):
            invalid.setdefault("ALERT_RECIPIENTS", "is required when ALERT_SENDER is set")
        if missing or invalid:
            raise SettingsError(tuple(missing), invalid)
        return cls(**values)

    def write_blocked_reason(self, group_ids: tuple[str, ...] | frozenset[str] = ()) -> str | None:
        """Why a write for a user in these groups is not allowed now, or None if it is.

        Writes happen only in ``act`` mode and never while ``WRITES_DISABLED`` is set. With an
        ``ACT_GROUP_ALLOWLIST`` the user qualifies when ANY of the relevant groups (the groups
        whose licenses the write concerns) is on the list: one allow-listed group is enough to
        act for it, and a user with no relevant group never qualifies. Ids compare as GUIDs
        (case-insensitive).
        """
        if self.writes_disabled:
            return "writes are disabled (WRITES_DISABLED kill switch)"
        if self.mode != "act":
            return f"mode is {self.mode}, writes need act"
        if not self.act_group_allowlist:
            return None
        if any(g.lower() in self.act_group_allowlist for g in group_ids):
            return None
        return "no relevant group is in ACT_GROUP_ALLOWLIST"

    def is_write_allowed(self, group_ids: tuple[str, ...] | frozenset[str] = ()) -> bool:
        """True when a write for a user in these groups may happen (see write_blocked_reason)."""
        return self.write_blocked_reason(group_ids) is None


def _is_loopback(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")
