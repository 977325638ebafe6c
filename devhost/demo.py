"""`make demo`: the whole service, live, on the bundled Contoso tenant.

Starts Azurite (storage), graphsim (Microsoft Graph + Entra licensing, tenant
`graphsim/tenants/contoso.json`) and the dev host running the real `function_app.app` in
`act` mode, all on free loopback ports. Then it plays a short scenario, firing the timers on
demand, and prints what the service saw and did, step by step (from the dev host's invocation
log, graphsim's deliveries and request counters, the service's structured log events and the
findings table), and a summary. Everything is stopped on exit, also on Ctrl-C.

    python -m devhost.demo [--verbose]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx

from devhost.azurite import Azurite
from devhost.host import DevHost, Invocation

ROOT = Path(__file__).resolve().parent.parent
TENANT_FILE = ROOT / "graphsim" / "tenants" / "contoso.json"
GRAPH_TOKEN = "local-graphsim-token-NOT-A-SECRET"  # noqa: S105 - graphsim's, loopback only
CLIENT_STATE = "demo-client-state-NOT-A-SECRET"
NEVER = "0 0 0 1 1 *"  # 00:00 on January 1st: timers are fired on demand
SERVICE_LOGGERS = ("shared", "functions")
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# The Contoso objects the scenario touches (ids from tools/make_demo_snapshot.py).
BASE_GROUP = "Licensing_Office365_E3_Base"
TEAMS_GROUP = "Licensing_Office365_E3_Teams"
EMS_GROUP = "Licensing_Office365_EMS_E3"
M365_GROUP = "Contoso Marketing Team"
EMS_SKU = "efccb6f7-5641-4e0e-bd10-b4976e1bf68e"
OUT = ROOT / "out"
# Alert mail in the demo: from and to contoso.com (graphsim's verified domain); no baseline
# (no reconciliation runs in the demo) and no grace, so the digest reports what the scenario
# left open.
DEMO_ALERTS = {
    "ALERT_SENDER": "megan.bowen@contoso.com",
    "ALERT_RECIPIENTS": "it-licensing@contoso.com",
    "ALERT_GRACE_MINUTES": "0",
    "BASELINE": "off",
}


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
    }


# --------------------------------------------------------------------------- log capture


class EventCapture(logging.Handler):
    """Keeps the service's structlog events (JSON lines) in memory, oldest first."""

    def __init__(self, prefixes: tuple[str, ...] = SERVICE_LOGGERS) -> None:
        super().__init__(logging.INFO)
        self.prefixes = prefixes
        self._events: list[dict[str, Any]] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(self.prefixes):
            return
        try:
            event = json.loads(self.format(record))
        except (ValueError, TypeError):
            event = {"event": record.getMessage(), "level": record.levelname.lower()}
        if isinstance(event, dict):
            event.setdefault("logger", record.name)
            with self._guard:
                self._events.append(event)

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._guard:
            return list(self._events)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == name]

    def clear(self) -> None:
        with self._guard:
            self._events.clear()


@contextlib.contextmanager
def captured_service_logs() -> Iterator[EventCapture]:
    """Route the service's structured logs to an `EventCapture` (and nowhere else) for the
    duration: the root logger gets only the capture handler, Azure SDK chatter is muted."""
    from shared.platform.logging import configure_logging  # noqa: PLC0415 - after the env is set

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    quiet = {name: logging.getLogger(name) for name in ("azure", "httpx", "uvicorn")}
    quiet_levels = {name: lg.level for name, lg in quiet.items()}
    capture = EventCapture()
    for handler in saved[0]:
        root.removeHandler(handler)
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    for lg in quiet.values():
        lg.setLevel(logging.WARNING)
    configure_logging([capture])
    try:
        yield capture
    finally:
        root.removeHandler(capture)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        for name, lg in quiet.items():
            lg.setLevel(quiet_levels[name])


# --------------------------------------------------------------------------- the stack


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
) -> Iterator[Stack]:
    """Start what is missing (Azurite unless `storage` is given, graphsim, the DevHost) and
    stop it all on exit. The service's cached `Services` is dropped before and after, so each
    stack builds its own from these settings."""
    from graphsim.server import serve_in_thread  # noqa: PLC0415
    from shared import bootstrap  # noqa: PLC0415

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
        bootstrap.use(None)
        stack.callback(bootstrap.use, None)
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


def settle(host: DevHost, sim: Any, timeout: float = 60.0, *, recheck: bool = True) -> None:
    """Let graphsim deliver its notifications and the host drain its queues, then let Entra's
    licensing finish, until both are quiet (a host run may change the tenant, and so on).

    graphsim processes group licensing minutes after a change, as Entra does: the service
    first sees the groups QueuedForProcessing (and waits), then graphsim's simulated clock is
    advanced until processing is complete. Nothing tells the service that processing ended:
    its hourly `recheck_errors` timer picks that up, so with `recheck` it is fired whenever
    graphsim had processing to finish. The recomputes the service schedules for later ("the
    group is still processing: look again in 15 minutes") are left queued."""
    for _ in range(5):
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


# --------------------------------------------------------------------------- reading results


def open_findings(storage: str) -> dict[str, dict[str, Any]]:
    """Open findings in the findings table, by finding key."""
    from shared.adapters.tables import tables_for  # noqa: PLC0415

    table = tables_for(storage).findings
    return {
        str(e.fields.get("key") or e.row_key): dict(e.fields)
        for e in table.query_all()
        if not e.fields.get("resolvedAt")
    }


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


# --------------------------------------------------------------------------- the timeline


def _short(cid: object) -> str:
    return str(cid)[:8] if cid else "--------"


@dataclass
class Mark:
    invocations: int
    events: int
    deliveries: int
    requests: Counter[str]
    findings: dict[str, dict[str, Any]]
    started: float


class Timeline:
    """Prints, per step, what happened since the previous step."""

    def __init__(self, stack: Stack, capture: EventCapture, sim: Any, out: TextIO) -> None:
        self.stack = stack
        self.capture = capture
        self.sim = sim
        self.out = out
        self.t0 = time.monotonic()
        self.number = 0
        self.mark = self._mark()

    def _mark(self) -> Mark:
        return Mark(
            invocations=len(self.stack.host.invocations),
            events=len(self.capture.events),
            deliveries=len(self.sim.deliveries()),
            requests=graph_requests(self.sim.counters()),
            findings=open_findings(self.stack.storage),
            started=time.monotonic(),
        )

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def step(self, title: str) -> None:
        self.number += 1
        self.mark = self._mark()
        self.say(f"\n{self.number}. {title}")

    def note(self, text: str) -> None:
        self.say(f"     {text}")

    def settle(self) -> None:
        settle(self.stack.host, self.sim)

    def report(self) -> None:
        """Print what happened since `step()`."""
        mark = self.mark
        invocations = self.stack.host.invocations[mark.invocations :]
        events = self.capture.events[mark.events :]
        deliveries = self.sim.deliveries()[mark.deliveries :]
        lines: list[tuple[float, str]] = []
        for inv in invocations:
            text = self._invocation(inv)
            if text:
                lines.append((inv.started.timestamp(), text))
        for event in events:
            text = self._event(event)
            if text:
                lines.append((_event_time(event), text))
        lines.sort(key=lambda item: item[0])
        for line in _deliveries(deliveries):
            self.note(line)
        for _, text in lines:
            self.note(text)
        now = graph_requests(self.sim.counters())
        delta = now - mark.requests
        if delta:
            calls = ", ".join(f"{k} ×{n}" for k, n in sorted(delta.items()))
            self.note(f"Graph   {calls}")
        self._findings(mark.findings, open_findings(self.stack.storage))

    def _invocation(self, inv: Invocation) -> str | None:
        ok = "ok" if inv.outcome == "succeeded" else inv.outcome.upper()
        ms = f"{inv.duration.total_seconds() * 1000:.0f} ms" if inv.duration else ""
        if inv.trigger == "http":
            return f"host    {inv.function} (HTTP {inv.status_code}) {ms}"
        if inv.trigger == "timer":
            return f"host    {inv.function} (timer) {ok} {ms}"
        if inv.outcome != "succeeded":
            poison = " -> poison queue" if inv.poisoned else ""
            return (
                f"host    {inv.function} (queue, try {inv.dequeue_count}) {ok}: {inv.error}{poison}"
            )
        return None

    def _event(self, e: dict[str, Any]) -> str | None:
        name = str(e.get("event"))
        cid = _short(e.get("correlation_id"))
        n = self.stack.name
        text: str | None
        match name:
            case "notification.accepted":
                text = f"notification for {e['groups']} group(s) accepted -> groups-changed"
            case "security.notification_rejected":
                text = f"notification REJECTED: {e.get('reason')}"
            case "subscription.created":
                text = f"subscription {_short(e.get('subscription_id'))} created -> DeltaSweep"
            case "subscription.renewed" | "subscription.reauthorized":
                text = f"{name} {_short(e.get('subscription_id'))}"
            case "groups.changed":
                text = (
                    f"delta: partitions {e.get('partitions')}, +{e.get('joined')} "
                    f"-{e.get('left')} members, {e.get('ignored')} unlicensed group(s) "
                    f"ignored -> {e.get('users')} user(s) to recompute"
                )
                if e.get("resynced"):
                    text += f" (full resync of {e['resynced']})"
            case "delta.resync":
                text = f"delta token expired: partition {e.get('partition')} read in full"
            case "users.recomputed":
                text = (
                    f"recomputed {e.get('users')} user(s): {e.get('new_findings')} new, "
                    f"{e.get('resolved')} resolved finding(s), "
                    f"{e.get('reprocess_queued')} reprocess(es) queued"
                )
            case "reprocess.queued":
                text = f"reprocess queued: {n(e.get('user_id'))} - {e.get('because')}"
            case "reprocess.would_queue":
                text = f"would reprocess {n(e.get('user_id'))} ({e.get('blocked_by')})"
            case "reprocess.called":
                text = f"POST reprocessLicenseAssignment {n(e.get('user_id'))}: done"
            case "reprocess.duplicate" | "reprocess.blocked" | "reprocess.braked":
                text = f"{name}: {n(e.get('user_id'))}"
            case "reprocess.throttled":
                text = f"reprocess throttled (429): {n(e.get('user_id'))}, retry later"
            case "reprocess.group_alert":
                text = (
                    f"group alert: {n(e.get('group_id'))} {e.get('code')} ({e.get('users')} users)"
                )
            case "errors.rechecked":
                text = (
                    f"errors re-check: {e.get('groups_with_errors')} group(s) with license "
                    f"errors -> {e.get('users')} user(s) to recompute"
                )
            case "sync.completed":
                text = f"directory sync completed at {e.get('completed_at')} -> DeltaSweep"
            case "alerts.sent":
                text = f"mail sent ({e.get('channel')}): {e.get('subject')}"
            case "alerts.digest_nothing_new":
                text = "digest: nothing new, no mail"
            case "poison.watched":
                text = f"poison watch: {e.get('new_findings')} new finding(s)"
            case _:
                level = e.get("level")
                text = f"{name} ({level})" if level in ("warning", "error", "critical") else None
        if text is None:
            return None
        return f"service [{cid}] " + GUID.sub(lambda m: self.stack.name(m.group(0)), text)

    def _findings(
        self, before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
    ) -> None:
        opened = [after[k] for k in sorted(after.keys() - before.keys())]
        closed = [before[k] for k in sorted(before.keys() - after.keys())]
        for verb, items in (("opened", opened), ("resolved", closed)):
            if not items:
                continue
            if len(items) > 4:
                codes = Counter(str(f.get("code")) for f in items)
                listed = ", ".join(f"{c} ×{k}" for c, k in sorted(codes.items()))
                self.note(f"findings {verb}: {listed}")
                continue
            for f in items:
                self.note(f"finding {verb}: {f.get('code')} {self._subject(f)}")

    def _subject(self, finding: Mapping[str, Any]) -> str:
        subject = str(finding.get("key", "")).split("|")[0]
        sku = finding.get("skuId")
        where = f" ({self.stack.name(str(sku))})" if sku else ""
        return f"{self.stack.name(subject)}{where}"


def _event_time(event: Mapping[str, Any]) -> float:
    from datetime import datetime  # noqa: PLC0415

    stamp = event.get("timestamp")
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _deliveries(entries: list[dict[str, Any]]) -> list[str]:
    lines = []
    for d in entries:
        outcome = d.get("outcome")
        target = "lifecycle" if "lifecycle" in str(d.get("url")) else "notifications"
        if outcome == "validated":
            lines.append(f"graphsim validation handshake with /api/graph/{target}: ok")
        elif outcome == "delivered":
            kinds = ",".join(d.get("kinds") or [])
            count, status = d.get("count"), d.get("status")
            lines.append(f"graphsim delivered {count} {kinds} notification(s) -> HTTP {status}")
        elif outcome in ("dropped", "duplicated", "failed", "discarded", "disabled"):
            lines.append(f"graphsim notification {outcome}")
    return lines


# --------------------------------------------------------------------------- the scenario


def play(stack: Stack, capture: EventCapture, out: TextIO) -> dict[str, Any]:
    from graphsim.client import SimClient  # noqa: PLC0415

    sim = SimClient(stack.graph_url)
    try:
        return _play(stack, capture, sim, out)
    finally:
        sim.close()


def _play(stack: Stack, capture: EventCapture, sim: Any, out: TextIO) -> dict[str, Any]:
    t = Timeline(stack, capture, sim, out)
    host = stack.host
    base, teams, ems = (stack.id_of(g) for g in (BASE_GROUP, TEAMS_GROUP, EMS_GROUP))
    m365 = stack.id_of(M365_GROUP)
    lynne, adele, grady = (stack.id_of(u) for u in ("Lynne Robbins", "Adele Vance", "Grady Archie"))

    t.step("subscription_keeper: subscribe to /groups (graphsim checks the webhook first)")
    host.fire_timer("subscription_keeper")
    t.settle()
    t.report()

    t.step(f"On-premises: Lynne Robbins joins {BASE_GROUP}; Entra Connect syncs")
    sim.queue_onprem_change("add", base, lynne)
    sim.sync_cycle()
    t.settle()
    t.report()
    t.note(f"graphsim: Lynne Robbins, Office 365 E3: {user_state(stack, lynne, _e3(stack))}")

    sku = next(s for s in stack.tenant["subscribedSkus"] if s["skuId"] == EMS_SKU)
    t.step(
        f"EMS is full ({sku['prepaidUnits']['enabled']} of {sku['prepaidUnits']['enabled']} seats"
        f" used); Adele Vance is added to {EMS_GROUP}"
    )
    sim.add_member(ems, adele)
    t.settle()
    t.report()
    t.note(f"graphsim: Adele Vance, EMS: {user_state(stack, adele, EMS_SKU)}")

    waiting = _count_violations(stack)
    enabled = int(sku["prepaidUnits"]["enabled"]) + len(waiting)
    t.step(f"{len(waiting)} EMS seats bought (now {enabled}); recheck_errors runs")
    sim.set_prepaid_units(EMS_SKU, enabled=enabled)
    host.fire_timer("recheck_errors")
    t.settle()
    t.report()
    for user_id in waiting:
        t.note(f"graphsim: {stack.name(user_id)}, EMS: {user_state(stack, user_id, EMS_SKU)}")

    t.step("recheck_errors again (an hour later): the reprocessed users are read back")
    host.fire_timer("recheck_errors")
    t.settle()
    t.report()

    t.step(f"Someone joins the Teams group '{M365_GROUP}' (no licenses)")
    sim.add_member(m365, lynne)
    t.settle()
    t.report()

    t.step(
        f"Notifications get lost; Grady Archie leaves {TEAMS_GROUP} on-premises, sync runs, "
        "sync_watch notices"
    )
    sim.set_notifications(dropRate=1.0)
    sim.queue_onprem_change("remove", teams, grady)
    sim.sync_cycle()
    t.settle()
    sim.set_notifications(dropRate=0.0)
    host.fire_timer("sync_watch")
    t.settle()
    t.report()

    _digest(t, sim)
    summary = _summary(stack, capture, sim)  # the service's own figures, before our scan
    _report_page(t)
    return summary


def _report_page(t: Timeline) -> None:
    from devhost.report_page import write_demo_report  # noqa: PLC0415

    t.step("report html --live: the licensing health page and its screenshot")
    html, png = write_demo_report(t.stack.graph_url, GRAPH_TOKEN, OUT)
    t.note(f"wrote {html.relative_to(ROOT)} ({html.stat().st_size:,} bytes)")
    t.note(f"wrote {png.relative_to(ROOT)}" if png else "no Chromium installed: no screenshot")


def _digest(t: Timeline, sim: Any) -> None:
    t.step("alert_digest: one email with what is open (graphsim's outbox)")
    t.stack.host.fire_timer("alert_digest")
    t.settle()
    t.report()
    for path in write_digest(sim.outbox()):
        t.note(f"wrote {path.relative_to(ROOT)}")


def write_digest(outbox: list[dict[str, Any]], out: Path = OUT) -> list[Path]:
    """The last digest in graphsim's outbox as out/demo-digest.eml and .html."""
    from email.message import EmailMessage  # noqa: PLC0415

    digests = [
        m
        for m in outbox
        if any(
            h.get("name") == "x-license-guard-digest" and str(h.get("value")).startswith("digest-")
            for h in m.get("internetMessageHeaders") or ()
        )
    ]
    if not digests:
        return []
    mail = digests[-1]
    message = EmailMessage()
    message["Subject"] = str(mail.get("subject"))
    message["From"] = str(mail.get("from"))
    message["To"] = ", ".join(mail.get("toRecipients") or [])
    for header in mail.get("internetMessageHeaders") or ():
        message[str(header["name"])] = str(header["value"])
    message.set_content(str(mail.get("body")), subtype="html")
    out.mkdir(exist_ok=True)
    eml, html = out / "demo-digest.eml", out / "demo-digest.html"
    # a draft sent as MIME is kept as sent (multipart/alternative: text and HTML)
    eml.write_bytes(str(mail["mime"]).encode() if mail.get("mime") else bytes(message))
    html.write_text(str(mail.get("body")), encoding="utf-8")
    return [eml, html]


def _e3(stack: Stack) -> str:
    skus = stack.tenant["subscribedSkus"]
    return next(str(s["skuId"]) for s in skus if s["skuPartNumber"] == "ENTERPRISEPACK")


def _count_violations(stack: Stack) -> list[str]:
    return sorted(
        {
            str(f.get("key")).split("|")[0]
            for f in open_findings(stack.storage).values()
            if f.get("code") == "CountViolation"
        }
    )


def _summary(stack: Stack, capture: EventCapture, sim: Any) -> dict[str, Any]:
    deliveries = sim.deliveries()
    requests = graph_requests(sim.counters())
    findings = Counter(str(f.get("code")) for f in open_findings(stack.storage).values())
    invocations = Counter(i.function for i in stack.host.invocations)
    failed = sum(1 for i in stack.host.invocations if i.outcome != "succeeded")
    return {
        "deliveries": Counter(str(d.get("outcome")) for d in deliveries),
        "graph_requests": requests,
        "reprocess_calls": requests.get("POST /users/{id}/reprocessLicenseAssignment", 0),
        "open_findings": findings,
        "invocations": invocations,
        "failed_invocations": failed,
        "events": len(capture.events),
    }


def print_summary(summary: Mapping[str, Any], out: TextIO) -> None:
    def line(text: str) -> None:
        print(text, file=out)

    line("\nSummary")
    deliveries = summary["deliveries"]
    line(
        "  notifications   "
        + ", ".join(f"{k} {n}" for k, n in sorted(deliveries.items()))
        + "  (graphsim deliveries)"
    )
    line(
        "  invocations     "
        + ", ".join(f"{k} {n}" for k, n in sorted(summary["invocations"].items()))
        + f"  ({summary['failed_invocations']} failed)"
    )
    line("  Graph requests")
    for key, n in sorted(summary["graph_requests"].items(), key=lambda kv: (-kv[1], kv[0])):
        line(f"    {n:4d}  {key}")
    line(f"  reprocess calls {summary['reprocess_calls']}")
    line(
        "  open findings   "
        + ", ".join(f"{k} {n}" for k, n in sorted(summary["open_findings"].items()))
    )


# --------------------------------------------------------------------------- entry point


def preflight(stack: Stack, out: TextIO) -> int:
    """`license-guard preflight` against the stack, as after `azd up` and the grant script: a
    token graphsim issues with the roles the grant gives (read, reprocess, mail)."""
    from devhost.provision import provision_storage  # noqa: PLC0415
    from shared.adapters.graph_permissions import ALERTS, READ, REPROCESS, grant  # noqa: PLC0415
    from shared.cli.preflight import run_preflight  # noqa: PLC0415

    provision_storage(stack.storage)  # what `azd provision` creates in Azure
    claims = {"appid": "license-guard-demo", "tid": stack.settings["TENANT_ID"]}
    issued = httpx.post(
        stack.graph_url.replace("/v1.0", "/_sim/token"),
        json={"claims": claims | {"roles": grant([READ, REPROCESS, ALERTS])}},
        timeout=10,
    )
    env = dict(stack.settings) | {"GRAPH_STATIC_TOKEN": issued.json()["access_token"]}
    print("\n$ license-guard preflight", file=out)
    flags = argparse.Namespace(graph_base_url=None, token=None, mode=None)
    status = run_preflight(flags, env=env, out=out)
    # the summary counts the service's Graph requests, not preflight's probes
    httpx.delete(stack.graph_url.replace("/v1.0", "/_sim/counters"), timeout=10)
    return status


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m devhost.demo", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="also print the host's log lines")
    args = parser.parse_args(argv)
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    devhost_log = logging.getLogger("devhost")
    quiet: Callable[[], None] = lambda: None  # noqa: E731
    if not args.verbose:
        null = logging.NullHandler()
        devhost_log.addHandler(null)
        devhost_log.propagate = False
        quiet = lambda: devhost_log.removeHandler(null)  # noqa: E731
    started = time.monotonic()
    try:
        tenant = load_tenant()
        print(
            "Entra License Guard, live: Azurite + graphsim (Contoso) + the function app", file=out
        )
        from devhost.channel_receiver import demo_channels  # noqa: PLC0415

        with (
            captured_service_logs() as capture,
            demo_channels(OUT) as channels,
            running_stack(tenant, extra_settings=DEMO_ALERTS | channels.settings) as stack,
        ):
            print(
                f"  storage  Azurite   {stack.storage.split('QueueEndpoint=')[1].split(';')[0]}\n"
                f"  graph    graphsim  {stack.graph_url}\n"
                f"  host     devhost   {stack.host.base_url} "
                f"({len(stack.host.functions)} functions, mode act)",
                file=out,
            )
            preflight(stack, out)
            summary = play(stack, capture, out)
            for path in channels.written:
                print(f"\nAlert channel posts (local receiver): wrote {path}", file=out)
        print_summary(summary, out)
        print(f"\nDone in {time.monotonic() - started:.1f} s; everything stopped.", file=out)
        return 0
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted; everything stopped\n")
        return 130
    finally:
        quiet()
        devhost_log.propagate = True
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
