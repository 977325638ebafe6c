"""The checks `license-guard preflight` runs (`shared.cli.preflight`), each harmless.

Graph permissions follow `graph_permissions`: reads by a `$top=1` GET, `Mail.ReadWrite` by
reading the sender's Drafts (`$top=1`: also fails when an application access policy leaves the
sender out of scope), `Mail.Send` by the sender mailbox existing and the token's `roles` claim,
writes from that claim alone (no send or write is harmless). Storage: read access to what
`infra/app/storage.bicep` creates, and no message in a -poison queue. Webhook URLs: Graph's
validation handshake (graph-facts §1.4: POST `?validationToken=...`, echo as text/plain
within 10 s).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError, ResourceNotFoundError

from shared.adapters.graph_auth import GraphEndpoint
from shared.adapters.graph_paths import entity_path
from shared.adapters.graph_permissions import ALERTS, READ, REPROCESS, grant, has_role
from shared.platform.setting_values import is_unresolved_reference
from shared.platform.settings import StorageConnection
from shared.ports.directory import JSON, DirectoryError
from shared.ports.queues import POISON_SUFFIX

PASS, FAIL, SKIP = "✓", "✗", "-"
GRANT_FIX = "grant it with infra/scripts/grant-graph-permissions.sh (.ps1); README 'Deploy'"
FLAG_FOR: Mapping[str, str] = {
    "User.ReadWrite.All": "--enable-reprocess",
    "Mail.Send": "--enable-mail",
    "Mail.ReadWrite": "--enable-mail",
}


def grant_fix(permission: str) -> str:
    flag = FLAG_FOR.get(permission)
    return f"{GRANT_FIX} ({flag})" if flag else GRANT_FIX


MAIL_FIX = (
    "scope it to the sender mailbox with Exchange RBAC for Applications, or grant it "
    "(--enable-mail) with an application access policy (docs/operations.md 'Enable alert mail')"
)
"""Where the mail permissions come from: the recommended Exchange grant is no Entra app role."""


def exchange_scoped(permission: str, detail: str) -> Check:
    """A mail permission that is no Entra app role of the identity. Right for Exchange RBAC for
    Applications (recommended: docs/operations.md), whose grants are neither app role
    assignments nor in the token's `roles` (learn.microsoft.com/graph/auth-limit-mailbox-access)
    and which preflight cannot read: not failed, and never "grant --enable-mail", which would
    undo that scoping."""
    return Check(
        SKIP,
        f"Graph {permission}",
        f"{detail}; no Entra app role: right with Exchange RBAC for Applications, which "
        "preflight cannot read: check it with Test-ServicePrincipalAuthorization -Identity "
        "<client id> -Resource <ALERT_SENDER>; with an application access policy instead, "
        "grant it (--enable-mail)",
    )


READ_PROBES: Mapping[str, str] = {
    "GroupMember.Read.All": "/groups?$top=1&$select=id",
    "Group.Read.All": "/groups?$top=1&$select=id",
    "User.Read.All": "/users?$top=1&$select=id",
    "Organization.Read.All": "/organization?$select=id",
    "AuditLog.Read.All": "/auditLogs/directoryAudits?$top=1",
}
"""A harmless read each read permission allows (graph-facts §7)."""
PROBED = frozenset(READ_PROBES) | {"Mail.ReadWrite"}
"""Permissions a harmless request proves (Mail.ReadWrite: the sender's Drafts read)."""


@dataclass(frozen=True, slots=True)
class Check:
    mark: str
    """PASS, FAIL or SKIP."""
    name: str
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    """What preflight checks, read from the settings and the command line."""

    endpoint: GraphEndpoint
    static_token: str | None
    mode: str
    tenant_id: str | None
    alert_sender: str | None
    storage: StorageConnection | None
    storage_problem: str | None
    client_state: str | None
    notification_urls: Mapping[str, str | None]
    principal_id: str | None = None
    """`--principal-id`: check what this identity was granted, as an admin (preflight_grants)."""
    storage_scope: str | None = None
    """With `principal_id`: the storage account's resource id, from the azd values."""
    arm_url: str | None = None
    """With `principal_id`: Azure Resource Manager for the cloud (`ARM_BASE_URL` overrides)."""
    max_queue_age: timedelta = timedelta(minutes=60)
    """`--max-queue-age`: a message waiting longer on a work queue fails the backlog check."""
    max_queue_messages: int = 10_000
    """`--max-queue-messages`: more waiting on one work queue fails the backlog check."""

    @property
    def permission_sets(self) -> list[str]:
        return [READ] + [REPROCESS] * (self.mode == "act") + [ALERTS] * bool(self.alert_sender)


# --------------------------------------------------------------------------- token


def identity_check(claims: dict[str, Any] | None, target: Target) -> list[Check]:
    """Who the token is (appid/oid/tenant/roles), and that it fits TENANT_ID and the cloud."""
    if claims is None:
        note = "not a JWT (a static token for graphsim?): identity and roles unknown"
        return [Check(PASS, "token", f"acquired; {note}")]
    who = ", ".join(
        f"{label} {claims[key]}"
        for key, label in (("appid", "appid"), ("azp", "azp"), ("oid", "oid"), ("tid", "tenant"))
        if claims.get(key)
    )
    roles = claims.get("roles")
    shown = ", ".join(sorted(roles)) if isinstance(roles, list) and roles else "none"
    minutes = (float(claims.get("exp", 0)) - time.time()) / 60
    checks = [
        Check(
            PASS,
            "token",
            f"{who or 'no identity claims'}; roles: {shown}; expires in {minutes:.0f} min",
        )
    ]
    tid = str(claims.get("tid") or "")
    if target.tenant_id and tid and tid.lower() != target.tenant_id.lower():
        checks.append(
            Check(
                FAIL,
                "tenant",
                f"the token is for tenant {tid}, TENANT_ID is {target.tenant_id}",
                "sign in to the tenant TENANT_ID names",
            )
        )
    aud = str(claims.get("aud") or "")
    wanted = target.endpoint.scope.removesuffix("/.default")
    if aud.startswith("https://") and aud.rstrip("/") != wanted:
        checks.append(
            Check(
                FAIL,
                "audience",
                f"the token is for {aud}, Graph here is {wanted}",
                "set GRAPH_BASE_URL to the cloud the identity lives in",
            )
        )
    return checks


# --------------------------------------------------------------------------- Graph


class Probe(Protocol):
    """A harmless GET against Graph (`shared.bootstrap.graph_probe`)."""

    async def get(self, path: str) -> DirectoryError | None:
        """None on success, else the error Graph (or the transport) gave."""
        ...

    async def read(self, path: str) -> JSON:
        """The JSON object Graph answered; DirectoryError otherwise."""
        ...


async def graph_checks(
    target: Target, probe: Probe, roles: list[str] | None, *, app_only: bool = False
) -> list[Check]:
    """One check per permission the mode needs (shared.adapters.graph_permissions.grant).

    Without a `roles` claim only a probe that answered passes: Mail.Send and the writes are
    proven by no probe (the sender mailbox existing is not Mail.Send), so they fail for an app
    token (`app_only`: claims are present only when they have a value, so no roles claim means
    no app role) and are not checked for a user's or a static token."""
    checks = []
    for name in grant(target.permission_sets):
        label = f"Graph {name}"
        if name == "Mail.Send":
            sender = target.alert_sender or ""
            path = f"{entity_path('users', sender)}?$select=id,mail"  # `$x@y`: Graph's key form
            error = await probe.get(path)
            if error is not None and error.status == 404:
                checks.append(
                    Check(
                        FAIL,
                        label,
                        f"sender mailbox {sender} not found",
                        "set ALERT_SENDER to an existing mailbox in the tenant",
                    )
                )
                continue
            if error is not None:
                checks.append(Check(FAIL, label, f"GET /users/{sender}: {error}", GRANT_FIX))
                continue
            detail = f"sender mailbox {sender} exists"
        elif name == "Mail.ReadWrite":
            sender = target.alert_sender or ""
            path = f"{entity_path('users', sender)}/mailFolders/drafts/messages?$top=1&$select=id"
            error = await probe.get(path)
            if error is not None:
                fix = (
                    "set ALERT_SENDER to an existing mailbox in the tenant"
                    if error.status == 404
                    else MAIL_FIX
                )
                checks.append(Check(FAIL, label, f"GET {path}: {error}", fix))
                continue
            detail = f"sender mailbox {sender}: Drafts readable"
        elif name in READ_PROBES:
            error = await probe.get(READ_PROBES[name])
            if error is not None:
                fix = GRANT_FIX if error.status in (401, 403) else "check GRAPH_BASE_URL"
                checks.append(Check(FAIL, label, f"GET {READ_PROBES[name]}: {error}", fix))
                continue
            detail = f"GET {READ_PROBES[name]}: 200"
        else:
            detail = "a write (not tried): from the token's roles claim"
        app_roles_known = roles is not None or app_only
        if name.startswith("Mail.") and app_roles_known and not has_role(roles or [], name):
            checks.append(exchange_scoped(name, detail))
        elif roles is None and name in PROBED:
            checks.append(Check(PASS, label, f"{detail}; the token has no roles claim"))
        elif roles is None and app_only:
            missing = f"{detail}; NOT granted (an app token without a roles claim has no app role)"
            checks.append(Check(FAIL, label, missing, grant_fix(name)))
        elif roles is None:
            checks.append(Check(SKIP, label, f"{detail}; not proven: the token has no roles claim"))
        elif has_role(roles, name):
            checks.append(Check(PASS, label, f"{detail}; granted (token roles)"))
        else:
            missing = f"{detail}; NOT granted (token roles)"
            checks.append(Check(FAIL, label, missing, grant_fix(name)))
    return checks


# --------------------------------------------------------------------------- storage


def storage_checks(target: Target, credential: TokenCredential | None = None) -> list[Check]:
    """Read access to every queue (and -poison twin), table and container the app uses.

    In identity mode the clients sign in with `credential`, by default the one the service
    itself uses (`shared.adapters.credentials.storage_connection_credential`), closed afterwards."""
    if target.storage_problem:
        return [Check(FAIL, "storage", target.storage_problem, "see docs/operations.md")]
    storage = target.storage
    if storage is None:
        return [Check(SKIP, "storage", "AzureWebJobsStorage is not set: not checked")]
    from shared.bootstrap import storage_probes  # noqa: PLC0415

    with signed_in(storage, credential) as signed:
        return [_storage_check(label, probe) for label, probe in storage_probes(storage, signed)]


@contextmanager
def signed_in(
    storage: StorageConnection, credential: TokenCredential | None
) -> Iterator[TokenCredential | None]:
    """`credential`, by default the one the service itself uses for storage
    (`shared.adapters.credentials.storage_connection_credential`), closed afterwards."""
    if credential is not None:
        yield credential
        return
    from shared.adapters.credentials import storage_connection_credential  # noqa: PLC0415

    owned = storage_connection_credential(storage)
    try:
        yield owned
    finally:
        if owned is not None:
            owned.close()  # type: ignore[attr-defined]


def _storage_check(label: str, probe: Callable[[], Any]) -> Check:
    name = f"storage {label}"
    try:
        found = probe()
    except ResourceNotFoundError:
        return Check(FAIL, name, "does not exist", "`azd provision` creates it (storage.bicep)")
    except ClientAuthenticationError as exc:
        return Check(
            FAIL,
            name,
            f"no access: {first_line(exc)}",
            "give the identity the Storage * Data Contributor role (rbac.bicep)",
        )
    except AzureError as exc:
        status = getattr(exc, "status_code", None)
        fix = (
            "check the role assignments (rbac.bicep)"
            if status == 403
            else ("check AzureWebJobsStorage and the network path to the account")
        )
        return Check(FAIL, name, f"{type(exc).__name__}: {first_line(exc)}", fix)
    poisoned = getattr(found, "approximate_message_count", None) or 0
    if label.endswith(POISON_SUFFIX) and poisoned:
        return Check(
            FAIL,
            name,
            f"readable; {poisoned} message(s) failed every attempt",
            "read them and fix the cause: docs/operations.md 'Poison queues'",
        )
    return Check(PASS, name, "readable")


def first_line(exc: Exception) -> str:
    """The exception's first line, at most 200 characters (the SDK's errors run long)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


# --------------------------------------------------------------------------- secret and URLs


def client_state_check(value: str | None) -> Check:
    fix = "set CLIENT_STATE (a random secret of 16-128 characters, kept in Key Vault)"
    if value is None or not value.strip():
        return Check(FAIL, "CLIENT_STATE", "missing", fix)
    if is_unresolved_reference(value):
        reference = "a Key Vault reference, not the secret (the app refuses it unresolved)"
        where = "run preflight with the secret's value, or fix the secret or the identity's role"
        return Check(FAIL, "CLIENT_STATE", reference, where)
    if not 16 <= len(value) <= 128:
        return Check(FAIL, "CLIENT_STATE", f"{len(value)} characters, Graph takes 16-128", fix)
    return Check(PASS, "CLIENT_STATE", f"present, {len(value)} characters")


async def url_check(name: str, url: str | None, http: httpx.AsyncClient) -> Check:
    """Graph's validation handshake, as Graph sends it: the token, URL-decoded, must come back
    verbatim."""
    if not url:
        return Check(FAIL, name, "missing", f"set {name} to this app's webhook URL")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" and host not in ("127.0.0.1", "localhost", "::1"):
        return Check(
            FAIL,
            name,
            "not https: Graph delivers to https URLs only",
            f"set {name} to the app's https URL",
        )
    # Worded as Graph's own tokens are, spaces and colons included: sent URL-encoded, they
    # come back right only from an endpoint that decodes them (Graph refuses the encoded echo).
    token = (
        "Validation: Testing client application reachability for subscription "
        f"Request-Id: license-guard-preflight-{secrets.token_hex(8)}"
    )
    probe = f"{url}{'&' if parts.query else '?'}validationToken={quote(token, safe='')}"
    shown = f"{parts.scheme}://{parts.netloc}{parts.path}"  # never print the function key
    try:
        resp = await http.post(probe, content=b"", headers={"Content-Type": "text/plain"})
    except httpx.HTTPError as exc:
        return Check(
            FAIL,
            name,
            f"{shown}: unreachable ({type(exc).__name__})",
            "check the URL and that the function app is running",
        )
    ctype = resp.headers.get("content-type", "")
    if resp.status_code == 200 and resp.text == token and not ctype.startswith("text/plain"):
        return Check(
            FAIL,
            name,
            f"{shown}: echoed the token as {ctype or 'no content type'}",
            "Graph needs the token back as text/plain",
        )
    if resp.status_code != 200 or resp.text != token:
        return Check(
            FAIL,
            name,
            f"{shown}: answered {resp.status_code} without the token",
            "the URL must reach the app's webhook function (with its key)",
        )
    return Check(PASS, name, f"{shown}: validation handshake answered")
