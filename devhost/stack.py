"""A whole local stack in one process: Azurite, graphsim (a tenant) and the dev host running
`function_app.app` by its bindings, wired to each other; plus what a scenario reads back from
outside the service (graphsim's view of a user, the findings table in storage).

The demo (devhost.demo) plays its scenario on it; tests and benchmarks start it through
`tests/e2e/harness.py`, which also drops the app's process-wide services between stacks.
Nothing here imports the service: it is driven over HTTP, queues and timers only.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from devhost.azurite import Azurite
from devhost.host import DevHost

ROOT = Path(__file__).resolve().parent.parent
TENANT_FILE = ROOT / "graphsim" / "tenants" / "contoso.json"
GRAPH_TOKEN = "local-graphsim-token-NOT-A-SECRET"  # noqa: S105 - graphsim's, loopback only
CLIENT_STATE = "demo-client-state-NOT-A-SECRET"
NEVER = "0 0 0 1 1 *"  # 00:00 on January 1st: timers are fired on demand
FINDINGS_TABLE = "findings"  # the service's table contract (infra/app/storage.bicep tableNames)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def load_tenant(path: Path = TENANT_FILE) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a tenant is a JSON object")
    return data


def service_settings(
    *,
    storage: str,
    graph_url: str,
    tenant_id: str,
    host_port: int,
    function_key: str,
    mode: str = "act",
    token: str = GRAPH_TOKEN,
) -> dict[str, str]:
    """App settings for `function_app.app` on a DevHost at `host_port` with `function_key`
    (so the webhook URLs are known before the host starts) against graphsim and Azurite."""
    base = f"http://127.0.0.1:{host_port}/api"
    return {
        "AzureWebJobsStorage": storage,
        "GRAPH_BASE_URL": graph_url,
        "GRAPH_STATIC_TOKEN": token,
        "TENANT_ID": tenant_id,
        "NOTIFICATION_URL": f"{base}/graph/notifications?code={function_key}",
        "LIFECYCLE_NOTIFICATION_URL": f"{base}/graph/lifecycle?code={function_key}",
        "CLIENT_STATE": CLIENT_STATE,
        "LICENSE_GUARD_MODE": mode,
        "WRITES_DISABLED": "false",
        "REPROCESS_RATE_PER_MIN": "60",
        "REPROCESS_DAILY_CAP": "1000",
        "SUBSCRIPTION_KEEPER_SCHEDULE": NEVER,
        "SYNC_WATCH_SCHEDULE": NEVER,
        "RECHECK_ERRORS_SCHEDULE": NEVER,
        "POISON_WATCH_SCHEDULE": NEVER,
        "RECONCILE_SCHEDULE": NEVER,
        "ALERT_DIGEST_SCHEDULE": NEVER,
        # as infra/app/api.bicep: a thread per message of host.json's queues.batchSize
        "PYTHON_THREADPOOL_THREAD_COUNT": "16",
    }


@dataclass
class Stack:
    """Azurite + graphsim + DevHost(function_app.app), wired together."""

    storage: str
    graph_url: str
    host: DevHost
    settings: dict[str, str]
    tenant: dict[str, Any]
    names: dict[str, str] = field(default_factory=dict)

    def name(self, object_id: str | None) -> str:
        if not object_id:
            return "-"
        return self.names.get(object_id, object_id[:8])

    def id_of(self, display_name: str) -> str:
        for object_id, name in self.names.items():
            if name == display_name:
                return object_id
        raise KeyError(display_name)


def object_names(tenant: Mapping[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    for kind in ("users", "groups"):
        for obj in tenant.get(kind) or ():
            names[str(obj["id"])] = str(obj.get("displayName") or obj["id"])
    for sku in tenant.get("subscribedSkus") or ():
        names[str(sku["skuId"])] = str(sku.get("skuPartNumber") or sku["skuId"])
    return names


_STACK_HOSTS: list[DevHost] = []
"""Hosts of the stacks open in this process (a stack's host may be stopped before its exit)."""


@contextlib.contextmanager
def running_stack(
    tenant: dict[str, Any],
    *,
    storage: str | None = None,
    mode: str = "act",
    extra_settings: Mapping[str, str] | None = None,
    poll_interval: float = 0.05,
    host_json: Mapping[str, Any] | None = None,
    function_keys: Mapping[str, str] | None = None,
    reset_app: Callable[[], None] | None = None,
) -> Iterator[Stack]:
    """Start what is missing (Azurite unless `storage` is given, graphsim, the DevHost) and
    stop it all on exit. `reset_app` is called before the host starts and after the stack
    stops: in a process that runs several stacks (tests, benchmarks) it drops what the app
    caches process-wide, so each stack's app builds its services from its own settings (as a
    fresh Functions worker would); a single run such as the demo needs none."""
    from graphsim.server import serve_in_thread  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        if storage is None:
            storage = stack.enter_context(Azurite()).connection_string
        graph_url = stack.enter_context(serve_in_thread(tenant, token=GRAPH_TOKEN))
        organization = (tenant.get("organization") or [{}])[0]
        port = free_port()
        key = "demo-function-key"
        settings = service_settings(
            storage=storage,
            graph_url=graph_url,
            tenant_id=str(organization.get("id")),
            host_port=port,
            function_key=key,
            mode=mode,
        ) | dict(extra_settings or {})
        import function_app  # noqa: PLC0415 - imported late: its import builds the app

        if any(earlier.running for earlier in _STACK_HOSTS):
            raise RuntimeError(
                "another stack's dev host is still running in this process: stop it first "
                "(the function app's Services, settings and loop-bound Graph client are "
                "process-wide, one host and one event loop at a time, as in Azure)"
            )
        if reset_app is not None:
            reset_app()
            stack.callback(reset_app)
        host = DevHost(
            function_app.app,
            settings,
            port=port,
            function_key=key,
            function_keys=function_keys,
            poll_interval=poll_interval,
            host_json=host_json,
            host_json_path=ROOT / "host.json",
            shutdown_grace=2.0,
        )
        host.start()
        _STACK_HOSTS.append(host)
        stack.callback(_STACK_HOSTS.remove, host)
        stack.callback(host.stop)
        for function, setting in (
            ("graph_notifications", "NOTIFICATION_URL"),
            ("graph_lifecycle", "LIFECYCLE_NOTIFICATION_URL"),
        ):
            if host.url_for(function) != settings[setting]:
                raise RuntimeError(f"{setting} does not match the dev host's URL")
        yield Stack(storage, graph_url, host, settings, tenant, object_names(tenant))


def settle(
    host: DevHost, sim: Any, timeout: float = 60.0, *, recheck: bool = True, rounds: int = 5
) -> None:
    """Let graphsim deliver its notifications and the host drain its queues, then let Entra's
    licensing finish, until both are quiet (a host run may change the tenant, and so on).

    graphsim processes group licensing minutes after a change, as Entra does: the service
    first sees the groups QueuedForProcessing (and waits), then graphsim's simulated clock is
    advanced until processing is complete. Nothing tells the service that processing ended:
    its hourly `recheck_errors` timer picks that up, so with `recheck` it is fired whenever
    graphsim had processing to finish. The recomputes the service schedules for later ("the
    group is still processing: look again in 15 minutes") are left queued. Still busy after
    `rounds`: RuntimeError, so a check never compares a state the service has not finished."""
    status: dict[str, Any] = {}
    for _ in range(rounds):
        sim.drain()
        host.wait_idle(timeout=timeout, scheduled_ok=True)
        processing = bool(sim.status().get("pendingJobs"))
        sim.drain(settle=True)
        host.wait_idle(timeout=timeout, scheduled_ok=True)
        if processing and recheck:
            host.fire_timer("recheck_errors")
            host.wait_idle(timeout=timeout, scheduled_ok=True)
        status = sim.status()
        if not status.get("pendingNotifications") and not status.get("deliveriesInFlight"):
            return
    raise RuntimeError(
        f"not quiet after {rounds} rounds: {status.get('pendingNotifications')} notification(s)"
        f" pending, {status.get('deliveriesInFlight')} delivery(ies) in flight"
    )


def open_findings(storage: str) -> dict[str, dict[str, Any]]:
    """Open findings in the findings table, by finding key (read with the Tables SDK, as any
    storage client would: entity properties without the keys and the timestamp)."""
    from azure.core.exceptions import ResourceNotFoundError  # noqa: PLC0415
    from azure.data.tables import TableClient  # noqa: PLC0415

    table = TableClient.from_connection_string(storage, table_name=FINDINGS_TABLE)
    try:
        entities = [_fields(e) | {"RowKey": e["RowKey"]} for e in table.list_entities()]
    except ResourceNotFoundError:
        return {}
    finally:
        table.close()
    return {
        str(e.get("key") or e["RowKey"]): {k: v for k, v in e.items() if k != "RowKey"}
        for e in entities
        if not e.get("resolvedAt")
    }


def _fields(entity: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey", "Timestamp") or value is None:
            continue
        value = getattr(value, "value", value)  # EntityProperty (Int64) -> its value
        if isinstance(value, datetime):  # TablesEntityDatetime -> plain datetime in UTC
            utc = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
            value = datetime.combine(utc.date(), utc.time(), tzinfo=UTC)
        fields[name] = value
    return fields


def graph_requests(counters: Mapping[str, Mapping[str, int]]) -> Counter[str]:
    """graphsim's counters as `METHOD /template` -> requests (any status)."""
    return Counter({k: sum(v.values()) for k, v in counters.items()})


def user_state(stack: Stack, user_id: str, sku_id: str) -> str:
    """What Graph says about one user's license: Active, Error (CountViolation), ..."""
    resp = httpx.get(
        f"{stack.graph_url}/users/{user_id}",
        params={"$select": "id,licenseAssignmentStates"},
        headers={"Authorization": f"Bearer {GRAPH_TOKEN}"},
        timeout=10,
    )
    resp.raise_for_status()
    states = [s for s in resp.json().get("licenseAssignmentStates") or [] if s["skuId"] == sku_id]
    if not states:
        return "none"
    return ", ".join(s["state"] + (f" ({s['error']})" if s.get("error") else "") for s in states)
