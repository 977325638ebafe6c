"""`LicensedGroups`: the licensed groups and their delta partitions (table `deltalinks`).

The licensed groups (their configuration: `configs()`/`save_config()` take and give the typed
`GroupConfig`, kept in the table in Graph's form) and the fixed delta partitions of at most 50
of them, each with its delta link. Partitions are written with optimistic concurrency, so
two workers never overwrite each other's link or each other's newly placed groups.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Final

from shared.ports.directory import DELTA_FILTER_LIMIT, GroupConfig
from shared.ports.tables import (
    AlreadyExists,
    ConcurrencyConflict,
    EntityStore,
    json_field,
    parse_json_field,
)

GROUP_PK = "group"
PARTITION_PK = "partition"
ASSIGN_ATTEMPTS: Final = 10
"""Placements in a row another worker's write may overtake before `assign` gives up (each
one it loses is a placement that succeeded)."""


@dataclass(frozen=True, slots=True)
class Partition:
    index: int
    group_ids: tuple[str, ...]
    delta_link: str | None
    etag: str

    @property
    def row_key(self) -> str:
        return f"{self.index:04d}"


class LicensedGroups:
    """Licensed groups and the delta partitions that cover them (table `deltalinks`)."""

    def __init__(self, table: EntityStore) -> None:
        self._table = table

    def configs(self) -> dict[str, GroupConfig]:
        """The licensed groups, by id. Rows written before the store was typed (a group as
        Graph returned it) are in the same form, so they load too."""
        return {
            e.row_key: GroupConfig.from_graph(parse_json_field(str(e.fields["json"])))
            for e in self._table.query(GROUP_PK)
            if e.fields.get("licensed", True)
        }

    def save_config(self, config: GroupConfig) -> None:
        """Store a group's configuration (in Graph's form, `GroupConfig.to_graph`); licensed
        when it has licenses."""
        document = json_field(config.to_graph())
        self._table.upsert(GROUP_PK, config.id, {"json": document, "licensed": config.licensed})

    def save_processing_state(self, group_id: str, state: str | None) -> bool:
        """Store a group's fresh processing state over its row as it is now (its licenses are
        the group changes' to store: a row read before theirs must not overwrite it), written
        only if nobody wrote the row since it was read (its ETag), else read again. False when
        the group is not stored (a group forgotten meanwhile is not brought back) or the row
        kept changing under `ASSIGN_ATTEMPTS` reads."""
        for _ in range(ASSIGN_ATTEMPTS):
            entity = self._table.get(GROUP_PK, group_id)
            if entity is None:
                return False
            config = GroupConfig.from_graph(parse_json_field(str(entity.fields["json"])))
            fields = {
                "json": json_field(replace(config, processing_state=state).to_graph()),
                "licensed": entity.fields.get("licensed", config.licensed),
            }
            try:
                self._table.update(GROUP_PK, group_id, fields, etag=entity.etag)
            except ConcurrencyConflict:
                continue
            return True
        return False

    def forget_group(self, group_id: str) -> None:
        self._table.delete(GROUP_PK, group_id)

    def partitions(self) -> list[Partition]:
        return [
            Partition(
                int(e.row_key),
                tuple(parse_json_field(str(e.fields["groupIds"]))),
                str(e.fields.get("deltaLink") or "") or None,
                e.etag,
            )
            for e in self._table.query(PARTITION_PK)
        ]

    def assign(self, group_ids: Iterable[str]) -> list[Partition]:
        """Give each new group a place in a partition; return the partitions that changed.

        A group joins the first partition with room (one a deleted or unlicensed group left,
        `release`, or the last; its filter changes, so its delta link is reset and its next
        round is a full one), else starts a new partition. Groups
        already placed stay where they are: one group's arrival never resets the others'.
        Two workers may place groups at once: a partition is written only if nobody wrote it
        since it was read (its ETag; a new one only if nobody created it), else the
        partitions are read again and what is still unplaced is placed.
        """
        wanted = set(group_ids)
        written: dict[int, Partition] = {}
        for _ in range(ASSIGN_ATTEMPTS):
            try:
                self._place(wanted, written)
            except (ConcurrencyConflict, AlreadyExists):
                continue
            return list(written.values())
        raise ConcurrencyConflict(
            f"{self._table.name}: partitions changed under {ASSIGN_ATTEMPTS} placements in a row"
        )

    def _place(self, wanted: set[str], written: dict[int, Partition]) -> None:
        """One placement from one read of the partitions, each write conditional on it; every
        partition written goes into `written`."""
        partitions = self.partitions()
        placed = {g for p in partitions for g in p.group_ids}
        new = sorted(wanted - placed)
        changed: dict[int, list[str]] = {}
        slots = list(partitions)
        for group_id in new:
            target = next(
                (p for p in slots if len(changed.get(p.index, p.group_ids)) < DELTA_FILTER_LIMIT),
                None,
            )
            if target is None:
                target = Partition(max((p.index for p in slots), default=-1) + 1, (), None, "")
                slots.append(target)
            changed.setdefault(target.index, list(target.group_ids)).append(group_id)
        etags = {p.index: p.etag for p in partitions}
        for index, ids in changed.items():
            fields = {"groupIds": json_field(ids), "deltaLink": ""}
            row_key = f"{index:04d}"
            if index in etags:
                etag = self._table.update(PARTITION_PK, row_key, fields, etag=etags[index])
            else:
                etag = self._table.insert(PARTITION_PK, row_key, fields)
            written[index] = Partition(index, tuple(ids), None, etag)

    def release(self, group_ids: Iterable[str]) -> list[str]:
        """Take groups out of their partitions (each write conditional on the partition's
        ETag, read again on a conflict); returns those taken out. A partition keeps its delta
        link: the link's filter still names them, and a round's news of a group no longer in
        the partition is not read. Their slots are `assign`'s to fill."""
        wanted = set(group_ids)
        released: list[str] = []
        for _ in range(ASSIGN_ATTEMPTS):
            try:
                for partition in self.partitions():
                    out = [g for g in partition.group_ids if g in wanted]
                    if not out:
                        continue
                    kept = [g for g in partition.group_ids if g not in wanted]
                    fields = {"groupIds": json_field(kept), "deltaLink": partition.delta_link or ""}
                    self._table.update(PARTITION_PK, partition.row_key, fields, etag=partition.etag)
                    released.extend(out)
            except ConcurrencyConflict:
                continue
            return released
        raise ConcurrencyConflict(
            f"{self._table.name}: partitions changed under {ASSIGN_ATTEMPTS} releases in a row"
        )

    def unlicensed_ids(self) -> set[str]:
        """The groups stored as unlicensed (their licenses were removed)."""
        return {
            e.row_key for e in self._table.query(GROUP_PK) if not e.fields.get("licensed", True)
        }

    def forget_unlicensed(self, group_id: str, first: Callable[[], object]) -> bool:
        """Run `first` (forget what is kept of the group), then delete the group's row, if it
        is stored as unlicensed (or not at all) and nobody wrote it since this read (its ETag).
        False, with `first` not run or the row kept, when it is licensed now or was written
        meanwhile."""
        entity = self._table.get(GROUP_PK, group_id)
        if entity is not None and entity.fields.get("licensed", True):
            return False
        first()
        if entity is None:
            return True
        try:
            self._table.delete(GROUP_PK, group_id, etag=entity.etag)
        except ConcurrencyConflict:
            return False
        return True

    def claim(self, partition: Partition) -> Partition | None:
        """Rewrite the partition as read, on condition that nobody wrote it since (its ETag):
        the partition with its new ETag, to save the round's next link with; None when another
        worker wrote it first (moved its link, placed or released groups, or claimed it to save
        a round of its own), so that this round, from a link no longer current, is not saved.
        A worker that read it before this claim cannot save a round from it any more."""
        fields = {
            "groupIds": json_field(list(partition.group_ids)),
            "deltaLink": partition.delta_link or "",
        }
        try:
            etag = self._table.update(PARTITION_PK, partition.row_key, fields, etag=partition.etag)
        except ConcurrencyConflict:
            return None
        return replace(partition, etag=etag)

    def save_delta_link(self, partition: Partition, delta_link: str) -> bool:
        """Store the partition's next link unless another worker moved it first."""
        fields = {"groupIds": json_field(list(partition.group_ids)), "deltaLink": delta_link}
        try:
            self._table.update(PARTITION_PK, partition.row_key, fields, etag=partition.etag)
        except ConcurrencyConflict:
            return False
        return True
