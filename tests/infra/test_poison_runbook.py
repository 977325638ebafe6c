"""docs/operations.md "Poison queues": the roles it tells an operator to take for the occasion
must allow what the runbook asks, taking a poisoned message off its `-poison` queue and putting
it back on the queue it came from. Data actions of the built-in roles, from Microsoft's
"Azure built-in roles for Storage" (learn.microsoft.com/azure/role-based-access-control/
built-in-roles/storage), `Microsoft.Storage/storageAccounts/queueServices/queues/messages/...`."""

from __future__ import annotations

import re

from shared.ports.queues import QUEUE_NAMES, poison_name
from tests.infra.bicep import ROOT

MESSAGE_ACTIONS = {
    "Storage Queue Data Reader": {"read"},
    "Storage Queue Data Message Sender": {"add/action"},
    "Storage Queue Data Message Processor": {"read", "process/action"},
    "Storage Queue Data Contributor": {"read", "add/action", "process/action", "write", "delete"},
}
"""What each role may do to a queue's messages (process/action: receive, then delete)."""


def runbook_grants() -> dict[str, set[str]]:
    """Queue name -> the message actions the runbook's `az role assignment create`s give."""
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Poison queues") : doc.index("## Writes refused")]
    grants: dict[str, set[str]] = {}
    for role, scope in re.findall(r'--role "([^"]+)" --scope "([^"]+)"', section):
        queue = scope.rsplit("/", 1)[-1]
        grants.setdefault(queue, set()).update(MESSAGE_ACTIONS[role])
    return grants


def test_the_runbook_roles_take_a_message_off_its_poison_queue_and_put_it_back() -> None:
    grants = runbook_grants()
    queues = [q for q in QUEUE_NAMES if poison_name(q) in grants]
    assert queues, f"no role on a -poison queue named in the runbook: {grants}"
    queue = queues[0]
    assert "process/action" in grants[poison_name(queue)]  # receive, then delete
    assert "add/action" in grants.get(queue, set()), f"re-queueing needs add on {queue}"
