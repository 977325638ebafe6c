"""`InMemoryBlobStore`: the `BlobStore` port in memory."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO

from shared.ports.blobs import REPORTS_CONTAINER, aware_utc


class InMemoryBlobStore:
    """`BlobStore` in memory; `now` stamps last-modified times (for retention tests)."""

    def __init__(
        self, container: str = REPORTS_CONTAINER, *, now: Callable[[], datetime] | None = None
    ) -> None:
        self.container = container
        self._now = now or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self.blobs: dict[str, tuple[bytes, str, datetime]] = {}
        """name -> (data, content type, last modified)."""

    def put(self, name: str, data: bytes, *, content_type: str) -> None:
        if not name:
            raise ValueError("a blob needs a name")
        with self._lock:
            self.blobs[name] = (bytes(data), content_type, aware_utc(self._now()))

    def put_file(self, name: str, handle: IO[bytes], *, content_type: str) -> None:
        self.put(name, handle.read(), content_type=content_type)

    def get(self, name: str) -> bytes | None:
        with self._lock:
            found = self.blobs.get(name)
        return found[0] if found else None

    def content_type(self, name: str) -> str | None:
        with self._lock:
            found = self.blobs.get(name)
        return found[1] if found else None

    def list(self, prefix: str = "") -> list[str]:
        with self._lock:
            return sorted(n for n in self.blobs if n.startswith(prefix))

    def delete(self, name: str) -> None:
        with self._lock:
            self.blobs.pop(name, None)

    def delete_older_than(self, prefix: str, cutoff: datetime) -> int:
        limit = aware_utc(cutoff)
        with self._lock:
            old = [n for n, (_, _, t) in self.blobs.items() if n.startswith(prefix) and t < limit]
            for name in old:
                del self.blobs[name]
        return len(old)
