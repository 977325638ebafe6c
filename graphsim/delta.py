"""GET /groups/delta: replays the state's change log between two sequence numbers.

Tokens are self-describing (base64url JSON: round kind, sequence numbers, cursor, the baked-in
$select/$filter, the sync generation and the simulated issue time), so no per-client snapshot
is kept. Three token failures, as Graph has them (delta-query-overview, "Token duration" and
"Synchronization reset"):

- older than deltaTokenLifetimeDays (7): 400 `syncStateNotFound`, "The delta token is expired";
- not one graphsim issued (undecodable, or ahead of the change log): 400 `resyncRequired`;
- issued before a synchronization reset (`/_sim/delta/reset`, or a tenant reset): 410 Gone with
  a `Location` holding the same query with an empty `$deltatoken=`, to restart from.

An empty `$deltatoken=` starts a full round (what the reset's Location asks for).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from .change_log import ADDED, DELETED, PROPS, REMOVED, RESTORED
from .errors import GraphError, bad_request, unsupported_query
from .odata import decode_token, encode_token
from .schema import GROUP_PROPERTIES, check_select
from .state import SimState

Obj = dict[str, Any]
MAX_IDS = 50
_ID_EQ = re.compile(r"\(?\s*id\s+eq\s+'([0-9a-fA-F-]{36})'\s*\)?", re.I)
HIDDEN = {"members", "hasMembersWithLicenseErrors"}


def _parse_ids(text: str) -> list[str]:
    parts = re.split(r"\s+or\s+", text.strip(), flags=re.I)
    ids: list[str] = []
    for part in parts:
        m = _ID_EQ.fullmatch(part.strip())
        if not m:
            raise unsupported_query()
        ids.append(m.group(1).lower())
    if len(ids) > MAX_IDS:
        raise bad_request(
            f"The number of ids in the filter clause ({len(ids)}) exceeds the limit of {MAX_IDS}."
        )
    return ids


def _restart_url(base_url: str, token: Obj | None) -> str:
    params: dict[str, str] = {}
    if token and token.get("sel"):
        params["$select"] = ",".join(token["sel"])
    if token and token.get("ids"):
        params["$filter"] = " or ".join(f"id eq '{i}'" for i in token["ids"])
    params["$deltatoken"] = ""
    return f"{base_url}/groups/delta?{urlencode(params)}"


def _gone(base_url: str, token: Obj | None) -> GraphError:
    """Synchronization reset: 410 Gone, restart from the Location (an empty-token URL)."""
    return GraphError(
        410,
        "resyncRequired",
        "The sync state was reset. Synchronize again from the URL in the Location header.",
        headers={"Location": _restart_url(base_url, token)},
    )


def _expired() -> GraphError:
    return GraphError(
        400,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be "
        "synchronized again.",
    )


def _unknown() -> GraphError:
    return GraphError(
        400,
        "resyncRequired",
        "The delta token is not valid. Synchronize again without a delta token.",
    )


class DeltaEngine:
    """Builds delta pages from the change log; page size in objects + member entries."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    @property
    def page_budget(self) -> int:
        return int(self.state.x.get("deltaPageSize", 1000))

    def _epoch(self) -> int:
        return int(self.state.clock.now().timestamp())

    def handle(self, base_url: str, params: Mapping[str, str]) -> Obj:
        lowered = {k.lower().lstrip("$"): v for k, v in params.items()}
        for unsupported in ("expand", "orderby", "top", "search"):
            if unsupported in lowered:
                raise unsupported_query()
        if "skiptoken" in lowered:
            token = self._token(base_url, lowered["skiptoken"])
            return self._page(base_url, token)
        if "deltatoken" in lowered:
            raw = lowered["deltatoken"]
            if raw == "":
                sel, ids = self._options(lowered)
                start = {"k": "i", "to": self.state.seq, "c": "", "m": 0, "sel": sel, "ids": ids}
                return self._page(base_url, start)
            if raw.lower() == "latest":
                sel, ids = self._options(lowered)
                return self._finish(base_url, [], sel, ids, self.state.seq)
            token = self._token(base_url, raw)
            if token.get("k") != "d":
                raise _unknown()
            start = {
                "k": "c",
                "from": token["s"],
                "to": self.state.seq,
                "c": "",
                "m": 0,
                "sel": token.get("sel"),
                "ids": token.get("ids"),
            }
            return self._page(base_url, start)
        sel, ids = self._options(lowered)
        start = {"k": "i", "to": self.state.seq, "c": "", "m": 0, "sel": sel, "ids": ids}
        return self._page(base_url, start)

    def _options(self, lowered: Mapping[str, str]) -> tuple[list[str] | None, list[str] | None]:
        sel_raw = lowered.get("select")
        sel = [s.strip() for s in sel_raw.split(",") if s.strip()] if sel_raw else None
        check_select(tuple(sel or ()), "group", GROUP_PROPERTIES)
        ids = _parse_ids(lowered["filter"]) if lowered.get("filter") else None
        return sel, ids

    def _token(self, base_url: str, raw: str) -> Obj:
        token = decode_token(raw)
        if token is None or "g" not in token:
            raise _unknown()
        issued = datetime.fromtimestamp(int(token.get("t", 0)), UTC)
        if self.state.clock.now() - issued > self.state.delta_lifetime:
            raise _expired()
        if token["g"] != self.state.delta_generation:
            raise _gone(base_url, token)
        if int(token.get("to", token.get("s", 0))) > self.state.seq:
            raise _unknown()
        return token

    # ------------------------------------------------------------------ pages
    def _props(self, group: Obj, sel: list[str] | None) -> Obj:
        if sel is None:
            out = {k: v for k, v in group.items() if k not in HIDDEN and not k.startswith("_")}
        else:
            out = {"id": group["id"]}
            for key in sel:
                if key not in HIDDEN and key in group:
                    out[key] = group[key]
        return out

    def _page(self, base_url: str, tok: Obj) -> Obj:
        sel: list[str] | None = tok.get("sel")
        ids: list[str] | None = tok.get("ids")
        with_members = sel is None or "members" in sel
        wanted = set(ids) if ids else None
        budget = self.page_budget
        cursor: str = tok.get("c", "")
        resume_offset = int(tok.get("m", 0))
        value: list[Obj] = []
        if tok["k"] == "i":
            plan = self._initial_plan(wanted, with_members)
        else:
            plan = self._incremental_plan(
                int(tok["from"]), int(tok["to"]), wanted, with_members, sel
            )
        for gid, build in plan:
            if gid < cursor:
                continue
            start = resume_offset if gid == cursor else 0
            if budget <= 0:
                return self._next(base_url, tok, value, gid, start)
            obj, members = build(sel)
            if members and start >= len(members):
                continue  # members left since a page stopped inside the list: it was all sent
            budget -= 1
            if members:
                take = min(budget, len(members) - start)
                if take <= 0:
                    return self._next(base_url, tok, value, gid, start)
                obj["members@delta"] = members[start : start + take]
                budget -= take
                value.append(obj)
                if start + take < len(members):
                    return self._next(base_url, tok, value, gid, start + take)
            else:
                value.append(obj)
        return self._finish(base_url, value, sel, ids, int(tok["to"]))

    def _initial_plan(self, wanted: set[str] | None, with_members: bool) -> list[Any]:
        groups = self.state.groups
        plan: list[Any] = []
        for gid in sorted(groups):
            if wanted is None or gid.lower() in wanted:
                plan.append((gid, self._initial_entry(groups[gid], with_members)))
        return plan

    def _initial_entry(self, group: Obj, with_members: bool) -> Any:
        def build(sel: list[str] | None) -> tuple[Obj, list[Obj] | None]:
            obj = self._props(group, sel)
            if not with_members:
                return obj, None
            return obj, [{"@odata.type": m["@odata.type"], "id": m["id"]} for m in group["members"]]

        return build

    def _incremental_plan(
        self,
        start: int,
        end: int,
        wanted: set[str] | None,
        with_members: bool,
        sel: list[str] | None = None,
    ) -> list[Any]:
        agg: dict[str, Obj] = {}
        for gid, kind, mid, mtype in self.state.log[start:end]:
            if wanted is not None and gid.lower() not in wanted:
                continue
            rec = agg.setdefault(
                gid, {"props": False, "removed": None, "restored": False, "members": {}}
            )
            if kind == PROPS:
                # a change to a property the query did not select does not show up
                rec["props"] = rec["props"] or sel is None or mid is None or mid in sel
            elif kind == DELETED:
                rec["removed"] = mid
            elif kind == RESTORED:  # back with its properties and every membership
                rec.update(removed=None, restored=True, props=True)
            elif kind in (ADDED, REMOVED) and mid is not None:
                rec["members"][mid] = (mtype, kind == ADDED)
        plan: list[Any] = []
        for gid in sorted(agg):
            rec = agg[gid]
            if rec["removed"] is None and gid not in self.state.groups:
                continue
            if (
                rec["removed"] is None
                and not rec["props"]
                and not (with_members and rec["members"])
            ):
                continue
            plan.append((gid, self._change_entry(gid, rec, with_members)))
        return plan

    def _change_entry(self, gid: str, rec: Obj, with_members: bool) -> Any:
        def build(sel: list[str] | None) -> tuple[Obj, list[Obj] | None]:
            if rec["removed"] is not None:
                return {"id": gid, "@removed": {"reason": rec["removed"]}}, None
            obj = self._props(self.state.groups[gid], sel)
            if not with_members:
                return obj, None
            changes = dict(rec["members"])
            if rec["restored"]:
                for m in self.state.groups[gid]["members"]:
                    changes[m["id"]] = (m["@odata.type"], True)
            entries = [
                {"@odata.type": t, "id": m}
                if added
                else {"@odata.type": t, "id": m, "@removed": {"reason": "deleted"}}
                for m, (t, added) in changes.items()
            ]
            return obj, entries

        return build

    def _context(self, base_url: str, sel: list[str] | None) -> str:
        props = [s for s in sel or [] if s not in HIDDEN]
        suffix = f"({','.join(props)})" if props else ""
        return f"{base_url}/$metadata#groups{suffix}"

    def _next(self, base_url: str, tok: Obj, value: list[Obj], gid: str, offset: int) -> Obj:
        nxt = dict(tok, c=gid, m=offset, g=self.state.delta_generation, t=self._epoch())
        return {
            "@odata.context": self._context(base_url, tok.get("sel")),
            "@odata.nextLink": f"{base_url}/groups/delta?$skiptoken={encode_token(nxt)}",
            "value": value,
        }

    def _finish(
        self,
        base_url: str,
        value: list[Obj],
        sel: list[str] | None,
        ids: list[str] | None,
        seq: int,
    ) -> Obj:
        tok = {
            "k": "d",
            "s": seq,
            "sel": sel,
            "ids": ids,
            "g": self.state.delta_generation,
            "t": self._epoch(),
        }
        return {
            "@odata.context": self._context(base_url, sel),
            "@odata.deltaLink": f"{base_url}/groups/delta?$deltatoken={encode_token(tok)}",
            "value": value,
        }
