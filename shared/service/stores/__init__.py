"""The service's state, each kind in its table, behind one small repository per kind.

* `licensed_groups`: `LicensedGroups` and its delta `Partition`s (table `deltalinks`).
* `group_members`: `GroupMembers`, member sets of licensed groups (table `groupmembers`).
* `findings_ledger`: `FindingsLedger`, one entity per open or resolved finding (`findings`).
* `reprocess_ledger`: `ReprocessLedger`, reprocess attempts, causes and claims
  (`reprocessledger`).
* `service_state`: `ServiceState`, caches and watermarks (`servicestate`).

The names are re-exported here, so `from shared.service.stores import FindingsLedger` works.
"""

from shared.service.stores.findings_ledger import (
    STORED_USER_IDS,
    FindingsLedger,
    LedgerChange,
    stored_user_ids,
)
from shared.service.stores.group_members import GroupMembers
from shared.service.stores.licensed_groups import GROUP_PK, PARTITION_PK, LicensedGroups, Partition
from shared.service.stores.reprocess_ledger import (
    ATTEMPTED,
    CALLING,
    DONE,
    GONE,
    OBSERVED,
    QUEUED,
    REFUSED,
    REFUSED_RETRY,
    REQUEST,
    STALE_CLAIM,
    Claim,
    ReprocessLedger,
    cause_token,
)
from shared.service.stores.service_state import ServiceState

__all__ = [
    "ATTEMPTED",
    "CALLING",
    "DONE",
    "GONE",
    "GROUP_PK",
    "OBSERVED",
    "PARTITION_PK",
    "QUEUED",
    "REFUSED",
    "REFUSED_RETRY",
    "REQUEST",
    "STALE_CLAIM",
    "STORED_USER_IDS",
    "Claim",
    "FindingsLedger",
    "GroupMembers",
    "LedgerChange",
    "LicensedGroups",
    "Partition",
    "ReprocessLedger",
    "ServiceState",
    "cause_token",
    "stored_user_ids",
]
