"""GET /users/delta: users created or changed since a token (graphsim's user change log).

Shapes as https://learn.microsoft.com/en-us/graph/api/user-delta documents them: without
$select, each user carries the default properties (businessPhones, displayName, givenName,
jobTitle, mail, mobilePhone, officeLocation, preferredLanguage, surname, userPrincipalName, id);
with $select, `id` plus the selected ones. Pages of `deltaPageSize` users with
`@odata.nextLink` ($skiptoken), the last with `@odata.deltaLink` ($deltatoken); `$deltatoken=
latest` gives only a link. Later rounds list each changed user once (its current state).
Token errors as for groups: expired 400 syncStateNotFound, unknown 400 resyncRequired, reset
410 Gone with an empty-token Location. graphsim never deletes users, so no `@removed` entries.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from .errors import GraphError, unsupported_query
from .graph_views import USER_DEFAULT
from .odata import decode_token, encode_token, project
from .state import SimState

Obj = dict[str, Any]


class UsersDelta:
    def __init__(self, state: SimState) -> None:
        self.state = state

    def handle(self, base_url: str, params: Mapping[str, str]) -> Obj:
        lowered = {k.lower().lstrip("$"): v for k, v in params.items()}
        for unsupported in ("expand", "orderby", "top", "search", "filter"):
            if unsupported in lowered:
                raise unsupported_query()
        if "skiptoken" in lowered:
            return self._page(base_url, self._token(base_url, lowered["skiptoken"]))
        sel_raw = lowered.get("select")
        sel = [s.strip() for s in sel_raw.split(",") if s.strip()] if sel_raw else None
        raw = lowered.get("deltatoken")
        if raw is None or raw == "":
            return self._page(base_url, {"m": "i", "pos": 0, "to": self._seq(), "sel": sel})
        if raw.lower() == "latest":
            return self._page(base_url, {"m": "l", "pos": 0, "to": self._seq(), "sel": sel})
        token = self._token(base_url, raw)
        if token.get("k") != "d":
            raise _unknown()
        start = {"m": "c", "from": token["s"], "pos": 0, "to": self._seq(), "sel": token.get("sel")}
        return self._page(base_url, start)

    def _ids(self, tok: Obj) -> list[str]:
        """The users of a round: all (initial), none (latest), or those changed in between."""
        if tok["m"] == "i":
            return self.state.user_order
        if tok["m"] == "c":
            return list(dict.fromkeys(self.state.user_log[int(tok["from"]) : int(tok["to"])]))
        return []

    def _seq(self) -> int:
        return len(self.state.user_log)

    def _token(self, base_url: str, raw: str) -> Obj:
        token = decode_token(raw)
        if token is None or "g" not in token or token.get("r") != "users":
            raise _unknown()
        issued = datetime.fromtimestamp(int(token.get("t", 0)), UTC)
        if self.state.clock.now() - issued > self.state.delta_lifetime:
            raise GraphError(
                400,
                "syncStateNotFound",
                "The sync state generation is not found. The delta token is expired and data "
                "must be synchronized again.",
            )
        if token["g"] != self.state.delta_generation:
            params: dict[str, str] = {}
            if token.get("sel"):
                params["$select"] = ",".join(token["sel"])
            params["$deltatoken"] = ""
            raise GraphError(
                410,
                "resyncRequired",
                "The sync state was reset. Synchronize again from the URL in the Location header.",
                headers={"Location": f"{base_url}/users/delta?{urlencode(params)}"},
            )
        if int(token.get("to", token.get("s", 0))) > self._seq():
            raise _unknown()
        return token

    def _page(self, base_url: str, tok: Obj) -> Obj:
        sel: list[str] | None = tok.get("sel")
        ids = self._ids(tok)
        pos = int(tok["pos"])
        size = int(self.state.x.get("deltaPageSize", 1000))
        chunk = ids[pos : pos + size]
        keys = tuple(sel) if sel is not None else None
        value = [
            project(self.state.users[uid], keys, USER_DEFAULT)
            for uid in chunk
            if uid in self.state.users
        ]
        suffix = f"({','.join(sel)})" if sel else ""
        body: Obj = {"@odata.context": f"{base_url}/$metadata#users{suffix}", "value": value}
        stamp = {"g": self.state.delta_generation, "t": int(self.state.clock.now().timestamp())}
        if pos + size < len(ids):
            nxt = dict(tok, pos=pos + size, k="c", r="users", **stamp)
            body["@odata.nextLink"] = f"{base_url}/users/delta?$skiptoken={encode_token(nxt)}"
        else:
            done = {"k": "d", "s": tok["to"], "sel": sel, "r": "users", **stamp}
            body["@odata.deltaLink"] = f"{base_url}/users/delta?$deltatoken={encode_token(done)}"
        return body


def _unknown() -> GraphError:
    return GraphError(
        400, "resyncRequired", "The delta token is not valid. Synchronize again without a token."
    )
