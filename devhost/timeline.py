"""The demo's narration: per scenario step, what the host ran, what the service logged,
what graphsim delivered and was asked, and which findings opened or closed."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from devhost.event_log import EventCapture
from devhost.invocation import Invocation
from devhost.stack import Stack, graph_requests, open_findings, settle

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


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
