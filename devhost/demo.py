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
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx

from devhost.event_log import EventCapture, captured_service_logs
from devhost.stack import (
    GRAPH_TOKEN,
    ROOT,
    Stack,
    graph_requests,
    load_tenant,
    open_findings,
    running_stack,
    user_state,
)
from devhost.timeline import Timeline

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


def run_module(module: str, *args: str, env: Mapping[str, str]) -> str:
    """Run one of the project's command lines (`python -m module args`) as an operator would,
    with `env` as its environment on top of ours; its output (stdout, then stderr)."""
    done = subprocess.run(  # noqa: S603 - our own arguments
        [sys.executable, "-m", module, *args],
        env=dict(os.environ) | dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode not in (0, 1):  # 1: a check failed, reported in the output
        raise RuntimeError(f"python -m {module} {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout + done.stderr


def preflight(stack: Stack, out: TextIO) -> None:
    """`license-guard preflight` against the stack once the scenario ran, as an admin checks a
    deployment that is running (its keeper has subscribed, its queues drained): a token
    graphsim issues with the roles the grant script gives (read, reprocess, mail; from
    `python -m shared.cli.permissions`, the script's own generator). Run before the keeper's
    first firing it would rightly say "NOT ready": no subscription yet."""
    grant = run_module(
        "shared.cli.permissions", "--format", "json", "--enable-reprocess", "--enable-mail", env={}
    )
    roles = [role["name"] for role in json.loads(grant)["roles"]]
    claims = {"appid": "license-guard-demo", "tid": stack.settings["TENANT_ID"]}
    issued = httpx.post(
        stack.graph_url.replace("/v1.0", "/_sim/token"),
        json={"claims": claims | {"roles": roles}},
        timeout=10,
    )
    env = dict(stack.settings) | {"GRAPH_STATIC_TOKEN": issued.json()["access_token"]}
    print("\n$ license-guard preflight", file=out)
    print(run_module("shared", "preflight", env=env), end="", file=out, flush=True)


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
            from devhost.provision import provision_storage  # noqa: PLC0415

            provision_storage(stack.storage)  # what `azd provision` creates in Azure
            summary = play(stack, capture, out)
            preflight(stack, out)
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
