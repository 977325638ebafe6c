"""The finish's clean-up of capability records and reprocess ledgers whose users no page held:
gone from the tenant.

The nightly finds a user gone only while a finding of theirs is open (`unseen_users`); a
deleted user with none kept their data-loss capability record (`servicestate`, partition
`capabilities`) and their reprocess ledger rows (`reprocessledger`, their partition) forever,
as did every user deleted before this clean-up existed. The users phase reads every user of
the tenant, and each page's part (`users.jsonl`) stays with the run until it is done: at the
finish, a record (or ledger partition) whose user id no part names belongs to a user gone.

Safety: nothing is concluded unless the run holds a part for every page it counted (a restart
of the users phase drops parts and counts together); a user Graph still knows by id (paging is
by position: a deletion moves a user onto a page already read) is left alone; and the record
is forgotten as `forget_gone_user` (and `forget_gone_ledger`) does, so a record written from a
read later than the run's (a user created or restored since) stands. Idempotent: a finish
redone after a crash finds the same parts (pruned only after DONE) and records already
forgotten. Memory: the record ids, struck off page by page.
"""

from __future__ import annotations

import orjson
import structlog

from shared.service.dataloss import CAPABILITIES_PK
from shared.service.gone_capabilities import forget_gone_ledger, forget_gone_user
from shared.service.reconcile.run_state import Scan
from shared.service.stores.reprocess_ledger import ReprocessLedger

log = structlog.get_logger(__name__)


async def forget_unseen_records(scan: Scan) -> int:
    """Forget the capability records and reprocess ledgers of users no page of this run held
    and Graph no longer knows; returns how many users that was (see the module docstring)."""
    svc, run = scan.svc, scan.run
    unseen = {e.row_key for e in svc.tables.servicestate.query(CAPABILITIES_PK)}
    unseen |= ReprocessLedger(svc.tables.reprocessledger).users()
    if not unseen:
        return 0
    parts = scan.page_names("users.jsonl")
    if len(parts) != run.counters.pages:
        log.warning("reconcile.records_not_checked", run_id=run.run_id,
                    parts=len(parts), pages=run.counters.pages)  # fmt: skip
        return 0
    for name in parts:
        raw = scan.blobs.get(name)
        if raw is None:
            log.warning("reconcile.records_not_checked", run_id=run.run_id, missing=name)
            return 0
        for line in raw.splitlines():
            if line.strip():
                unseen.discard(_user_id(line))
    if not unseen:
        return 0
    known = await svc.directory.users_by_id(sorted(unseen))
    gone = sorted(unseen - set(known))
    read_at = run.groups_read_at or run.started_at
    for user_id in gone:
        forget_gone_user(svc, user_id, read_at=read_at)
        forget_gone_ledger(svc, user_id, read_at=read_at)
    if gone:
        log.info("reconcile.gone_records_forgotten", run_id=run.run_id, users=len(gone))
    return len(gone)


_ID_PREFIX = b'{"id":"'


def _user_id(line: bytes) -> str:
    """A part line's user id: the first key the page writer puts (`write_parts`), read without
    parsing the user's whole entry (licenses, findings) at 100k lines; any other line parsed."""
    if line.startswith(_ID_PREFIX) and (end := line.find(b'"', len(_ID_PREFIX))) > 0:
        return line[len(_ID_PREFIX) : end].decode()
    return str(orjson.loads(line)["id"])
