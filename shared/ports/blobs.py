"""The `BlobStore` port: named byte blobs for reports, in one private container.

Blob names are paths such as ``nightly/2024-05-01/summary.json``; `list` and
`delete_older_than` work on a name prefix, so a prefix per report kind gives each its own retention.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import IO, Final, Protocol

REPORTS_CONTAINER: Final = "reports"


class BlobStore(Protocol):
    """Named byte blobs in one container. Names are case-sensitive paths."""

    def put(self, name: str, data: bytes, *, content_type: str) -> None:
        """Create or overwrite `name` with `data`, stored with this Content-Type."""
        ...

    def put_file(self, name: str, handle: IO[bytes], *, content_type: str) -> None:
        """Create or overwrite `name` from an open file, streamed from its current position
        (a nightly report can be larger than the worker should hold in memory)."""
        ...

    def get(self, name: str) -> bytes | None:
        """The blob's bytes, or None when there is no such blob."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Names starting with `prefix`, sorted."""
        ...

    def delete(self, name: str) -> None:
        """Delete `name`; a blob that does not exist counts as deleted."""
        ...

    def delete_older_than(self, prefix: str, cutoff: datetime) -> int:
        """Delete blobs under `prefix` last modified before `cutoff` (aware, or naive UTC);
        returns how many were deleted (retention)."""
        ...


def aware_utc(dt: datetime) -> datetime:
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)
