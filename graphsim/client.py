"""SimClient: a small synchronous wrapper over graphsim's /_sim control API."""

from __future__ import annotations

from typing import Any

import httpx

Obj = dict[str, Any]


class SimClient:
    """Drive a running graphsim. `base_url` may be the server root or its Graph base (/v1.0)."""

    def __init__(self, base_url: str, http: httpx.Client | None = None) -> None:
        root = base_url.rstrip("/")
        if root.endswith("/v1.0"):
            root = root[: -len("/v1.0")]
        self.root = root
        self.graph_url = root + "/v1.0"
        self._own = http is None
        self.http = http or httpx.Client(timeout=60)

    def close(self) -> None:
        if self._own:
            self.http.close()

    def __enter__(self) -> SimClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Obj | None = None) -> Any:
        resp = self.http.request(method, f"{self.root}/_sim{path}", json=body)
        if resp.status_code >= 400:
            raise RuntimeError(f"graphsim control {method} {path}: {resp.status_code} {resp.text}")
        return resp.json()

    # membership and licensing
    def add_member(self, group_id: str, member_id: str, *, force: bool = False) -> Obj:
        """Add directly, or queue an on-prem change if the group is synced (unless force)."""
        result: Obj = self._call(
            "POST", f"/groups/{group_id}/members", {"id": member_id, "force": force}
        )
        return result

    def remove_member(self, group_id: str, member_id: str, *, force: bool = False) -> Obj:
        result: Obj = self._call(
            "DELETE", f"/groups/{group_id}/members/{member_id}", {"force": force}
        )
        return result

    def set_group_licenses(
        self, group_id: str, add: list[Obj] | None = None, remove: list[str] | None = None
    ) -> Obj:
        body = {"addLicenses": add or [], "removeLicenses": remove or []}
        result: Obj = self._call("PUT", f"/groups/{group_id}/licenses", body)
        return result

    def replace_group_licenses(self, group_id: str, assigned: list[Obj]) -> Obj:
        result: Obj = self._call(
            "PUT", f"/groups/{group_id}/licenses", {"assignedLicenses": assigned}
        )
        return result

    def delete_group(
        self, group_id: str, *, permanent: bool | None = True, change_type: str | None = None
    ) -> Obj:
        """permanent None: soft-delete Microsoft 365 groups only, as Entra does; change_type:
        the notification's changeType ("deleted" by default; Graph has sent "updated")."""
        body: Obj = {"permanent": permanent}
        if change_type:
            body["changeType"] = change_type
        result: Obj = self._call("DELETE", f"/groups/{group_id}", body)
        return result

    def restore_group(self, group_id: str) -> Obj:
        """Restore a soft-deleted group (within 30 days) with its memberships."""
        result: Obj = self._call("POST", f"/groups/{group_id}/restore")
        return result

    def set_prepaid_units(self, sku_id: str, **units: int) -> Obj:
        result: Obj = self._call("PUT", f"/skus/{sku_id}/prepaidUnits", units)
        return result

    def set_usage_location(self, user_id: str, location: str | None) -> Obj:
        result: Obj = self._call(
            "PUT", f"/users/{user_id}/usageLocation", {"usageLocation": location}
        )
        return result

    def set_duplicate_proxy(self, user_id: str, duplicate: bool = True) -> Obj:
        result: Obj = self._call(
            "PUT", f"/users/{user_id}/duplicateProxy", {"duplicate": duplicate}
        )
        return result

    def set_protected(self, user_id: str, protected: bool = True) -> Obj:
        """Put the user in (or out of) a restricted management administrative unit."""
        result: Obj = self._call("PUT", f"/users/{user_id}/protected", {"protected": protected})
        return result

    def queue_onprem_change(self, op: str, group_id: str, user_id: str) -> Obj:
        result: Obj = self._call(
            "POST", "/onprem", {"op": op, "groupId": group_id, "userId": user_id}
        )
        return result

    def reset_delta_sync(self) -> Obj:
        """Synchronization reset: delta links handed out so far answer 410 Gone."""
        result: Obj = self._call("POST", "/delta/reset")
        return result

    def sync_cycle(self) -> Obj:
        result: Obj = self._call("POST", "/sync")
        return result

    # time, faults, throttling, notifications
    def now(self) -> str:
        return str(self._call("GET", "/clock")["now"])

    def advance_clock(
        self, *, seconds: float = 0, minutes: float = 0, hours: float = 0, days: float = 0
    ) -> str:
        body = {"seconds": seconds, "minutes": minutes, "hours": hours, "days": days}
        return str(self._call("POST", "/clock", body)["now"])

    def set_faults(self, **cfg: Any) -> Obj:
        """rate429, rate503, resetRate, applyResetRate, apply503Rate, writesOnly, next (the next
        requests' faults, in order), emptyFirstPages (route templates whose first page answers
        no items and a nextLink), stuckPages / endlessPages / cyclingPages (route templates whose
        pages asked by a nextLink answer no items and a nextLink that never ends: to itself, to
        a new URL each time, or to two URLs in turn), latencyMs, latencyRate, retryAfter, seed."""
        result: Obj = self._call("PUT", "/faults", cfg)
        return result

    def remove_subscription(self, subscription_id: str) -> Obj:
        """Graph drops the subscription and sends `subscriptionRemoved` to its lifecycle URL."""
        result: Obj = self._call("POST", f"/subscriptions/{subscription_id}/remove")
        return result

    def set_throttle(self, **cfg: Any) -> Obj:
        """enabled, budget, writeBudget, windowSeconds, writeWindowSeconds, reportsBudget,
        reportsWindowSeconds (the audit log's own limit), clock ('real'|'sim')."""
        result: Obj = self._call("PUT", "/throttle", cfg)
        return result

    def set_notifications(self, **cfg: Any) -> Obj:
        """enabled, dropRate, duplicateRate, maxAttempts, backoffSeconds, lifecycleLeadMinutes,
        seed."""
        result: Obj = self._call("PUT", "/notifications", cfg)
        return result

    def enable_notifications(self, enabled: bool = True) -> Obj:
        return self.set_notifications(enabled=enabled)

    # observation
    def outbox(self) -> list[Obj]:
        result: list[Obj] = self._call("GET", "/outbox")["value"]
        return result

    def clear_outbox(self) -> None:
        self._call("DELETE", "/outbox")

    def counters(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = self._call("GET", "/counters")
        return result

    def clear_counters(self) -> None:
        self._call("DELETE", "/counters")

    def deliveries(self) -> list[Obj]:
        result: list[Obj] = self._call("GET", "/deliveries")["value"]
        return result

    def status(self) -> Obj:
        result: Obj = self._call("GET", "/status")
        return result

    def drain(self, *, settle: bool = False, timeout: float = 30) -> Obj:
        """Wait for notification deliveries; settle=True also runs licensing processing to the end
        by advancing the simulated clock."""
        result: Obj = self._call("POST", "/drain", {"settle": settle, "timeout": timeout})
        return result

    def reset(self) -> None:
        self._call("POST", "/reset")
