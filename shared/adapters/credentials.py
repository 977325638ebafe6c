"""The credentials the service signs in to Azure with, made from its settings: storage's
(None on a connection string) and a managed identity's (locally: `az login`).

Made only when asked for, never at import time. Which credential a worker shares between Graph
and storage is the composition root's choice (`shared.bootstrap.worker_credentials`).
"""

from __future__ import annotations

from azure.core.credentials import TokenCredential

from shared.platform.settings import Settings, StorageConnection


def storage_credential(settings: Settings) -> TokenCredential | None:
    """The one credential all storage clients share in identity mode; None with a connection
    string. The only place it is made: one token cache, one managed-identity call per expiry.

    ``AzureWebJobsStorage__clientId`` (with ``__credential=managedidentity``) picks the
    user-assigned identity; elsewhere `DefaultAzureCredential` finds `az login` or the
    environment. It is synchronous like the storage clients; Graph shares it through an
    `AsyncTokenView` when it signs in as the same identity (`shared.bootstrap.worker_credentials`).
    """
    return storage_connection_credential(settings.storage_connection)


def storage_connection_credential(storage: StorageConnection) -> TokenCredential | None:
    """`storage_credential` for a bare StorageConnection (preflight checks storage without
    the other settings)."""
    if storage.connection_string:
        return None
    return identity_credential(storage.managed_identity_client_id)


def identity_credential(client_id: str | None) -> TokenCredential:
    """A synchronous `DefaultAzureCredential` signing in as the managed identity `client_id`
    (None: the default identity), or locally as `az login` and the other developer credentials."""
    # imported and created only when asked for: never a credential at import time
    from azure.identity import DefaultAzureCredential  # noqa: PLC0415

    return DefaultAzureCredential(managed_identity_client_id=client_id)
