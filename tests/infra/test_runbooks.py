"""docs/operations.md's runbooks against what the Azure side does.

- "Poison queues": the roles it tells an operator to take for the occasion must allow what it
  asks, taking a poisoned message off its `-poison` queue and putting it back on the queue it
  came from. Data actions of the built-in roles, from Microsoft's "Azure built-in roles for
  Storage" (learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage),
  `Microsoft.Storage/storageAccounts/queueServices/queues/messages/...`.
- "On-premises sync trigger": a revoked key must stay revoked through the next `azd provision`,
  which installs the function key from Key Vault.
"""

from __future__ import annotations

import re

from shared.ports.queues import QUEUE_NAMES, poison_name
from tests.infra.bicep import ROOT, modules, read, resources

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


def test_a_revoked_sync_key_stays_revoked_through_the_next_provision() -> None:
    """Each provision (once the code is deployed) sets the function key to the vault's secret,
    so deleting only the function key lasts until then: the revoke must replace the secret."""
    _, passed = modules(read("main.bicep"))["api"]
    assert passed["onpremSyncKey"] == "vault.getSecret('onprem-sync-key')"
    _, key = resources(read("app/api.bicep"))["onpremSyncFunctionKey"]
    assert key.lstrip().startswith("if (syncFunctionDeployed)")
    assert re.search(r"^\s*value:\s*onpremSyncKey\s*$", key, re.M)

    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    section = doc[doc.index("## On-premises sync trigger") : doc.index("### Why the digest")]
    revoke = section[section.index("To revoke") :].split("\n\n", 1)[0]
    assert "az keyvault secret set" in revoke, revoke
    assert "-n onprem-sync-key" in revoke, revoke
