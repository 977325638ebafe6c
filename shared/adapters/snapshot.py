"""Tenant snapshots: one JSON file of Graph's own shapes, parsed into the core's value types.

A snapshot is `{"subscribedSkus": [...], "groups": [... each with "members"], "users": [...],
"organization": [...]}` exactly as `GET` returns those resources (camelCase); unknown fields are
ignored. Bad input raises `SnapshotError` with one line naming the object and the field, so
the CLI can print it without a traceback. Things Graph itself tolerates (a member id with no
user: soft-deleted users keep their memberships for 30 days) are warnings, not errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.adapters.graph_objects import ObjectParser, object_id
from shared.adapters.lone_surrogates import may_hold_lone_surrogates, without_lone_surrogates
from shared.adapters.snapshot_fields import SnapshotError
from shared.core.model import Group, Organization, Sku, Tenant, User

__all__ = ["GraphTranslator", "LoadedSnapshot", "SnapshotError", "load_snapshot", "parse_snapshot"]

REQUIRED_COLLECTIONS = ("subscribedSkus", "groups", "users")


@dataclass(frozen=True, slots=True)
class LoadedSnapshot:
    tenant: Tenant
    warnings: tuple[str, ...]


def load_snapshot(path: str | Path) -> LoadedSnapshot:
    """Read and parse a snapshot file.

    The stdlib parser is used on purpose: orjson parses a 193 MB snapshot in two thirds of the
    CPU time but peaks at 1252 MiB against 876 MiB (docs/performance.md), over the 1 GB target.
    The encoding is found by the BOM, as for local.settings.json: Windows tools save a snapshot
    the admin edited with one (UTF-8), Windows PowerShell's `snapshot > tenant.json` in UTF-16.
    """
    try:
        text = _text_of(path)  # the bytes not kept, the text only while parsed (peak memory)
        surrogates = may_hold_lone_surrogates(text)
        data = json.loads(text)
        del text
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read the snapshot ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"{path}: not valid JSON ({exc})") from None
    data, notes = without_lone_surrogates(data) if surrogates else (data, ())
    loaded = parse_snapshot(data, consume=True, complete=True)
    return LoadedSnapshot(loaded.tenant, notes + loaded.warnings)


def _text_of(path: str | Path) -> str:
    """The file's text, its encoding found by its BOM (UTF-8 without one), as json does."""
    with open(path, "rb") as handle:
        raw = handle.read()
    return raw.decode(json.detect_encoding(raw))


def parse_snapshot(data: Any, *, consume: bool = False, complete: bool = False) -> LoadedSnapshot:
    """Parse a snapshot document; with `consume`, user entries are released as they are parsed.

    `complete`: the document claims to be the whole tenant (a snapshot file), so a licensed
    group must list its members. The service's partial documents (a page of users and the
    groups they are in) leave `members` out.
    """
    if not isinstance(data, dict):
        raise SnapshotError("snapshot: the top level must be a JSON object")
    for key in REQUIRED_COLLECTIONS:
        if key not in data:
            raise SnapshotError(f"snapshot: missing required key '{key}'")
        if not isinstance(data[key], list):
            raise SnapshotError(f"snapshot: '{key}' must be a list")
    parser = ObjectParser(complete=complete)
    skus = {s.id: s for s in (parser.sku(i, o) for i, o in enumerate(data["subscribedSkus"]))}
    users = {}
    raw_users = data["users"]
    for index, obj in enumerate(raw_users):
        user = parser.user(index, obj, skus)
        users[user.id] = user
        if consume:
            raw_users[index] = None  # release the JSON as we go: lowers peak memory a lot
    raw_groups = data["groups"]
    group_ids = {object_id(o) for o in raw_groups if isinstance(o, dict)}
    groups = {
        g.id: g
        for g in (parser.group(i, o, skus, users, group_ids) for i, o in enumerate(raw_groups))
    }
    organization = parser.organization(data.get("organization"))
    return LoadedSnapshot(Tenant(skus, groups, users, organization), tuple(parser.warnings))


class GraphTranslator:
    """Graph objects to the core's values, one object at a time: the service's reads (a page of
    users, the groups they are in) become a `Tenant` without building a snapshot document.
    Bad input raises `SnapshotError` as a snapshot would; repeated values are shared."""

    def __init__(self) -> None:
        self._parser = ObjectParser()

    def skus(self, objects: Iterable[Any]) -> dict[str, Sku]:
        return {s.id: s for s in (self._parser.sku(i, o) for i, o in enumerate(objects))}

    def users(self, objects: Iterable[Any], skus: Mapping[str, Sku]) -> dict[str, User]:
        users = (self._parser.user(i, o, skus) for i, o in enumerate(objects))
        return {u.id: u for u in users}

    def groups(
        self, objects: Iterable[Any], skus: Mapping[str, Sku], members: Mapping[str, Sequence[str]]
    ) -> dict[str, Group]:
        """The groups, each with `members[group id]` as its user members (users already read)."""
        groups = (
            self._parser.group(
                i, o, skus, {}, set(), members.get((isinstance(o, dict) and object_id(o)) or "", ())
            )
            for i, o in enumerate(objects)
        )
        return {g.id: g for g in groups}

    def organization(self, value: Any) -> Organization | None:
        return self._parser.organization(value)
