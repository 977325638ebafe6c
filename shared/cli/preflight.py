"""`license-guard preflight`: is this deployment ready to run? A checklist, each item harmless.

Reads the app's settings from the environment (the Function App's, or exported by the admin)
and checks, in order:

1. a token for Graph (the identity `DefaultAzureCredential` signs in as, or `--token`), showing
   who it is from the token's claims (decoded, not verified: the service does not validate its
   own tokens, Graph does);
2. each Graph permission `graph_permissions` says the mode needs: reads by a `$top=1` GET,
   `Mail.ReadWrite` by reading the sender's Drafts (`GET .../mailFolders/drafts/messages?$top=1`),
   `Mail.Send` by the sender mailbox existing (`GET /users/{ALERT_SENDER}`) and, like the writes
   (`User.ReadWrite.All`), the token's `roles` claim since no send or write is harmless (no
   `roles` claim: failed for an app token, which then holds no app role; not checked for a
   user's or a static token);
3. read access to every queue, table and container `infra/app/storage.bicep` creates (skipped
   when no storage is configured), and no message left in a -poison queue; then, from the same
   storage (`shared.cli.preflight_state`), that the subscription keeper has a Graph
   change-notification subscription that Graph had live and that is not about to expire, and
   that no work queue's backlog is past `--max-queue-messages` or its oldest message past
   `--max-queue-age` minutes;
4. the clientState secret (present, 16-128 characters);
5. that both notification URLs answer Graph's validation handshake (a POST with
   `?validationToken=...` must echo the token as text/plain within 10 seconds).

Exit status: 0 every check passed (skipped ones aside), 1 some failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import IO, Any

import httpx
from azure.core.exceptions import ClientAuthenticationError

from shared.adapters.arm_roles import ARM_BY_GRAPH_HOST, storage_account_scope
from shared.adapters.graph_auth import (
    GraphEndpointError,
    credential_error,
    default_credential,
    graph_endpoint,
)
from shared.adapters.graph_token import token_claims
from shared.bootstrap import graph_probe
from shared.cli.live_runner import LiveError
from shared.cli.preflight_checks import (
    FAIL,
    PASS,
    SKIP,
    Check,
    Target,
    client_state_check,
    graph_checks,
    identity_check,
    storage_checks,
    url_check,
)
from shared.cli.preflight_grants import identity_grant_checks, storage_role_checks
from shared.cli.preflight_state import running_state_checks
from shared.platform.setting_values import parse_guid
from shared.platform.settings import DEFAULT_GRAPH_BASE_URL, MODES, StorageConnection
from shared.render.terminal_text import printable_lines

EXIT_OK = 0
EXIT_FAILED = 1
KEY_VAULT_SECRETS = {
    "CLIENT_STATE": "client-state",
    "NOTIFICATION_URL": "notification-url",
    "LIFECYCLE_NOTIFICATION_URL": "lifecycle-notification-url",
}
"""The app settings that are Key Vault references (infra/app/api.bicep) and their secrets."""


def in_key_vault(setting: str) -> Check:
    """A setting an admin's environment lacks because the app reads it from Key Vault."""
    return Check(
        SKIP,
        setting,
        f"not set here: the app reads it from Key Vault secret {KEY_VAULT_SECRETS[setting]} "
        "(README 'Deploy' step 3 exports it)",
    )


def target_from(env: Mapping[str, str], args: argparse.Namespace) -> Target:
    """The settings preflight needs; LiveError (exit 2) for a value that cannot be used."""

    def get(name: str) -> str | None:
        return (env.get(name) or "").strip() or None

    base = args.graph_base_url or get("GRAPH_BASE_URL") or DEFAULT_GRAPH_BASE_URL
    try:
        endpoint = graph_endpoint(base)
    except GraphEndpointError as exc:
        raise LiveError(str(exc)) from None
    mode = (args.mode or get("LICENSE_GUARD_MODE") or "observe").lower()
    if mode not in MODES:
        raise LiveError(f"LICENSE_GUARD_MODE: {mode!r} is not one of {', '.join(MODES)}")
    storage: StorageConnection | None = None
    problem = None
    try:
        storage = StorageConnection.from_env(env)
    except LookupError:
        pass
    except ValueError as exc:
        problem = str(exc)
    principal = principal_id(args)
    return Target(
        endpoint=endpoint,
        static_token=args.token or get("GRAPH_STATIC_TOKEN"),
        mode=mode,
        tenant_id=get("TENANT_ID"),
        alert_sender=get("ALERT_SENDER"),
        storage=storage,
        storage_problem=problem,
        client_state=env.get("CLIENT_STATE"),
        notification_urls={
            name: get(name) for name in ("NOTIFICATION_URL", "LIFECYCLE_NOTIFICATION_URL")
        },
        principal_id=principal,
        storage_scope=storage_scope(env) if principal else None,
        arm_url=get("ARM_BASE_URL") or ARM_BY_GRAPH_HOST.get(endpoint.host),
        **backlog_limits(args),
    )


def backlog_limits(args: argparse.Namespace) -> dict[str, Any]:
    """`--max-queue-age` and `--max-queue-messages`, where given; LiveError below 1."""
    limits: dict[str, Any] = {}
    minutes = getattr(args, "max_queue_age", None)
    messages = getattr(args, "max_queue_messages", None)
    if minutes is not None:
        if minutes < 1:
            raise LiveError("--max-queue-age must be at least 1 (minutes)")
        limits["max_queue_age"] = timedelta(minutes=minutes)
    if messages is not None:
        if messages < 1:
            raise LiveError("--max-queue-messages must be at least 1")
        limits["max_queue_messages"] = messages
    return limits


def storage_scope(env: Mapping[str, str]) -> str | None:
    """The storage account's resource id from the azd values, when they name it."""
    parts = [
        (env.get(name) or "").strip()
        for name in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_STORAGE_ACCOUNT_NAME")
    ]
    return storage_account_scope(*parts) if all(parts) else None


def principal_id(args: argparse.Namespace) -> str | None:
    """`--principal-id` as a GUID; LiveError (exit 2) for anything else."""
    text = (getattr(args, "principal_id", None) or "").strip()
    if not text:
        return None
    try:
        return parse_guid(text)
    except ValueError as exc:
        raise LiveError(f"--principal-id: {exc}") from None


# --------------------------------------------------------------------------- running


async def run_checks(target: Target, credential: Any = None) -> list[Check]:
    """Every check, in checklist order. `credential` defaults to DefaultAzureCredential
    (AZURE_CLIENT_ID) unless a static token is given."""
    checks: list[Check] = []
    owned = credential is None and target.static_token is None
    if owned:
        credential = default_credential(os.environ)
    try:
        token = target.static_token
        if token is None:
            try:
                token = (await credential.get_token(target.endpoint.scope)).token
            except ClientAuthenticationError as exc:
                error = credential_error(exc)
                checks.append(
                    Check(
                        FAIL,
                        "token",
                        str(error).split(": ", 1)[-1],
                        "in Azure: AZURE_CLIENT_ID; on a laptop: az login",
                    )
                )
        if token is not None:
            claims = token_claims(token)
            checks += identity_check(claims, target)
            roles = claims.get("roles") if claims else None
            probe = graph_probe(
                target.endpoint.base_url, static_token=target.static_token, credential=credential
            )
            try:
                if target.principal_id:
                    checks += await identity_grant_checks(target, target.principal_id, probe)
                else:
                    checks += await graph_checks(
                        target,
                        probe,
                        roles if isinstance(roles, list) else None,
                        app_only=claims is not None and "scp" not in claims,  # no user's scopes
                    )
            finally:
                await probe.aclose()  # its HTTP connections
        else:
            checks.append(Check(SKIP, "Graph permissions", "not checked: no token"))
        if target.principal_id:
            checks += await storage_role_checks(target, target.principal_id, credential)
    finally:
        if owned and credential is not None:
            await credential.close()
    if not target.principal_id:
        checks += await asyncio.to_thread(storage_checks, target)
        checks += await asyncio.to_thread(running_state_checks, target)
    if target.principal_id and target.client_state is None:
        checks.append(in_key_vault("CLIENT_STATE"))
    else:
        checks.append(client_state_check(target.client_state))
    async with httpx.AsyncClient(timeout=10.0) as http_client:
        for name, url in target.notification_urls.items():
            if target.principal_id and not url:
                checks.append(in_key_vault(name))
            else:
                checks.append(await url_check(name, url, http_client))
    return checks


def render(target: Target, checks: list[Check], out: IO[str]) -> None:
    sets = ", ".join(target.permission_sets)
    lines = [
        f"license-guard preflight: {target.endpoint.base_url} ({target.endpoint.cloud}), "
        f"mode {target.mode}, permission sets: {sets}"
    ]
    width = max(len(c.name) for c in checks)
    for check in checks:
        lines.append(f"  {check.mark} {check.name:<{width}}  {check.detail}")
        if check.fix and check.mark == FAIL:
            lines.append(f"      fix: {check.fix}")
    failed = sum(c.mark == FAIL for c in checks)
    passed = sum(c.mark == PASS for c in checks)
    skipped = len(checks) - failed - passed
    verdict = "ready" if not failed else "NOT ready"
    lines.append(f"{verdict}: {passed} passed, {failed} failed, {skipped} skipped")
    out.write(printable_lines(lines) + "\n")


def run_preflight(
    args: argparse.Namespace,
    credential: Any = None,
    env: Mapping[str, str] | None = None,
    out: IO[str] | None = None,
) -> int:
    """The command: settings from `env` (default: the environment), the checklist on `out`."""
    target = target_from(os.environ if env is None else env, args)
    checks = asyncio.run(run_checks(target, credential))
    stream = out or sys.stdout
    render(target, checks, stream)
    stream.flush()
    return EXIT_FAILED if any(c.mark == FAIL for c in checks) else EXIT_OK
