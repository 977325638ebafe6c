"""`AsyncTokenView`: a synchronous azure-identity credential seen as an `AsyncTokenCredential`.

The composition root makes one credential per worker when Graph and storage sign in as the same
identity (`shared.bootstrap.worker_credentials`). The storage clients are synchronous and call
it directly; Graph's client (kiota) awaits `get_token`. Through this view both share one token
cache: one managed-identity call per scope and expiry, not one per client. The token request
blocks (an HTTP call to the identity endpoint, or `az` on a laptop), so it runs in a worker
thread (`asyncio.to_thread`), never on the event loop; one request at a time per view, so a burst
of Graph calls on a cold cache makes one identity call and the rest read the cache.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

from azure.core.credentials import AccessToken, TokenCredential


class AsyncTokenView:
    """An `AsyncTokenCredential` over the synchronous `credential` (which it does not copy).

    Closing the view closes `credential`; whoever made the credential decides whether to
    (the composition root never does: a worker's services live as long as the worker)."""

    def __init__(self, credential: TokenCredential) -> None:
        self.credential = credential
        self._lock = threading.Lock()

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        """The credential's token for `scopes`, asked for in a worker thread."""
        options = dict(kwargs, claims=claims, tenant_id=tenant_id, enable_cae=enable_cae)
        return await asyncio.to_thread(self._get_token, scopes, options)

    def _get_token(self, scopes: tuple[str, ...], options: dict[str, Any]) -> AccessToken:
        with self._lock:
            return self.credential.get_token(*scopes, **options)

    async def close(self) -> None:
        close = getattr(self.credential, "close", None)
        if close is not None:
            await asyncio.to_thread(close)

    async def __aenter__(self) -> AsyncTokenView:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def async_credential(credential: Any) -> Any:
    """`credential` as Graph's client awaits it: an async credential as it is, a synchronous
    one through an `AsyncTokenView` (so its token request never blocks the event loop)."""
    if credential is None or isinstance(credential, AsyncTokenView):
        return credential
    if inspect.iscoroutinefunction(credential.get_token):
        return credential
    return AsyncTokenView(credential)
