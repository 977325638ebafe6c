"""Transport-free request/response records shared by the HTTP layer, handlers and $batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from .errors import GraphError


@dataclass
class Req:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str
    app_id: str
    in_batch: bool = False
    roles: frozenset[str] | None = None
    """The token's app roles (its `roles` claim); None: a token that does not say."""

    def json(self) -> Any:
        if not self.body:
            return {}
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise GraphError(
                400,
                "BadRequest",
                "Unable to read JSON request payload. Please ensure Content-Type "
                "header is set and payload is of valid JSON format.",
            ) from None


@dataclass
class Resp:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    counted_as: str | None = None
    """The counters' status when it differs from the answer's (e.g. "200+applyReset": done,
    then the answer was lost)."""

    def encoded(self) -> bytes:
        if self.raw is not None:
            return self.raw
        if self.body is None:
            return b""
        return orjson.dumps(self.body)
