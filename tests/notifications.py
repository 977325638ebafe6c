"""One Graph change notification for a group, as Graph posts it: shared by tests and the benches
so the body they post is built in one place."""

from __future__ import annotations


def group_notification(
    group_id: str, *, subscription_id: str, client_state: str, tenant_id: str, expires: str
) -> dict[str, object]:
    """A genuine `updated` item for `Groups/{group_id}` on the given subscription."""
    return {
        "subscriptionId": subscription_id,
        "clientState": client_state,
        "changeType": "updated",
        "resource": f"Groups/{group_id}",
        "resourceData": {
            "@odata.type": "#Microsoft.Graph.Group",
            "@odata.id": f"Groups/{group_id}",
            "id": group_id,
        },
        "subscriptionExpirationDateTime": expires,
        "tenantId": tenant_id,
    }
