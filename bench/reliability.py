"""`make reliability`: nothing lost, nothing doubled - one table, each line pass/fail.

* chaos: the e2e scenario (subscription, a sync that moves a seat and takes a mailbox, seats
  bought, re-check, alerts) on the real stack (DevHost + Azurite + graphsim over HTTP) with 10 %
  mixed Graph faults (429, 503, reset before the handler; apply-then-reset, apply-then-503
  after it) under 3 seeds, against the fault-free run: findings equal, reprocess calls exactly
  once per user (graphsim's audit log), mails 0 duplicate and 0 lost.
* crash points: every declared crash point (tests/reliability/harness.py) crashed once, the
  work delivered again, the end state compared with the clean run's.
* fuzz: `bench/reliability_fuzz.py`'s `run()` (generated webhook bodies through the real host).
* soak: 90 simulated days with the keeper and lifecycle events (bench/reliability_soak.py).
* reconcile twice: a second (forced) run of the same date makes no Graph write, mails nothing
  and sends no message, after a first run that did make Graph writes and mail.

Exits non-zero when a line fails. Run: `make reliability` or `python bench/reliability.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from devhost.azurite import Azurite, wipe_storage  # noqa: E402
from graphsim.client import SimClient  # noqa: E402
from tests.e2e.harness import GRAPH_TOKEN, Stack, load_tenant, open_findings, running_stack, settle  # noqa: E402

E3 = "6fd2c87f-b296-42f0-b197-1e91e994b900"
EMS = "efccb6f7-5641-4e0e-bd10-b4976e1bf68e"
BASE = "3fba3687-b188-5d3f-abfd-25fd068d74b0"
LYNNE = "b24b2b9d-888c-5e29-aa8a-e1c16f386e32"
ALANNAH = "ff707b75-7458-5566-aced-898961454deb"
MIXED_FAULTS = {
    "rate429": 0.02,
    "rate503": 0.02,
    "resetRate": 0.02,
    "applyResetRate": 0.02,
    "apply503Rate": 0.02,
    "retryAfter": 1,
}
NO_FAULTS = dict.fromkeys(("rate429", "rate503", "resetRate", "applyResetRate", "apply503Rate"), 0)
ALERTS = {"ALERT_SENDER": "megan.bowen@contoso.com", "ALERT_RECIPIENTS": "it@contoso.com"}


@dataclass
class Line:
    name: str
    figures: str
    target: str
    ok: bool


# --------------------------------------------------------------------------- the stack


def host_json(visibility: str = "00:00:00.200") -> dict[str, Any]:
    document = json.loads((ROOT / "host.json").read_text())
    document["extensions"]["queues"]["visibilityTimeout"] = visibility
    return dict(document)


def fire(stack: Stack, name: str, attempts: int = 6) -> int:
    """Fire a timer until a run succeeds (a failed run is finished by the next firing)."""
    for attempt in range(1, attempts + 1):
        if stack.host.fire_timer(name, timeout=120).outcome == "succeeded":
            return attempt
    raise RuntimeError(f"{name} failed {attempts} times in a row")


def graph_get(stack: Stack, path: str) -> dict[str, Any]:
    for _ in range(30):
        with contextlib.suppress(httpx.TransportError):
            resp = httpx.get(
                stack.graph_url + path,
                headers={"Authorization": f"Bearer {GRAPH_TOKEN}"},
                timeout=10,
            )
            if resp.status_code not in (429, 503):
                resp.raise_for_status()
                body: dict[str, Any] = resp.json()
                return body
        time.sleep(0.05)
    raise RuntimeError(f"GET {path} kept failing")


def mail_ids(sim: SimClient) -> Counter[str]:
    ids: Counter[str] = Counter()
    for entry in sim.outbox():
        for header in entry.get("internetMessageHeaders") or ():
            if header.get("name") == "x-license-guard-digest":
                ids[str(header.get("value"))] += 1
    return ids


def reprocessed_users(stack: Stack) -> Counter[str]:
    """Reprocess calls Graph carried out, per user: the audit log (answers lost or not)."""
    audits = graph_get(stack, "/auditLogs/directoryAudits")["value"]
    return Counter(
        str(t["id"])
        for a in audits
        if a["activityDisplayName"] == "Change user license"
        and (a.get("initiatedBy") or {}).get("app")
        for t in a.get("targetResources") or ()
        if t.get("type") == "User" or t.get("userPrincipalName")
    )


# --------------------------------------------------------------------------- chaos


def play(stack: Stack, sim: SimClient, faults: dict[str, Any] | None) -> dict[str, Any]:
    if faults:
        sim.set_faults(**faults)
    fire(stack, "subscription_keeper")
    settle(stack.host, sim)
    sku = next(s for s in graph_get(stack, "/subscribedSkus")["value"] if s["skuId"] == E3)
    sim.set_prepaid_units(E3, enabled=int(sku["consumedUnits"]))  # E3 full
    sim.queue_onprem_change("add", BASE, LYNNE)  # joins: CountViolation
    sim.queue_onprem_change("remove", BASE, ALANNAH)  # leaves: a seat, and her mailbox
    sim.sync_cycle()
    settle(stack.host, sim)
    sim.set_prepaid_units(EMS, enabled=10)
    fire(stack, "recheck_errors")
    settle(stack.host, sim)
    fire(stack, "tenant_alerts")
    fire(stack, "alert_digest")
    settle(stack.host, sim)
    sim.set_faults(**NO_FAULTS)
    fire(stack, "tenant_alerts")  # the next runs of the 10-minute timers, faults over
    fire(stack, "recheck_errors")
    settle(stack.host, sim)
    mails = mail_ids(sim)
    return {
        "findings": sorted(open_findings(stack.storage)),
        "reprocessed": reprocessed_users(stack),
        "mails": mails,
        "mailKinds": Counter(i.split("-")[0] for i in mails),
        "failedRuns": sum(1 for i in stack.host.invocations if i.outcome != "succeeded"),
        "faults": sum(
            n
            for by_status in sim.counters().values()
            for status, n in by_status.items()
            if status in ("429", "503", "-1") or "+" in status
        ),
    }


def chaos(storage: str, seeds: tuple[int, ...], dump: str | None = None) -> Line:
    settings = ALERTS | {"BASELINE": "off"}
    runs = []
    for seed in (None, *seeds):
        wipe_storage(storage, containers=True)
        with (
            running_stack(
                load_tenant(),  # graphsim changes the tenant it is given: a fresh one per run
                storage=storage,
                host_json=host_json(),
                extra_settings=settings,
            ) as stack,
            SimClient(stack.graph_url) as sim,
        ):
            faults = None if seed is None else MIXED_FAULTS | {"seed": seed}
            runs.append(play(stack, sim, faults))
    if dump:
        Path(dump).write_text(json.dumps(runs, indent=1, default=str))
    return chaos_line(runs[0], runs[1:])


def chaos_line(calm: dict[str, Any], stormy: list[dict[str, Any]]) -> Line:
    """The chaos verdict: every stormy run ends as the calm one, and the comparison is not
    vacuous: the calm run found, reprocessed and mailed something, and every stormy run had
    faults injected (a run without any compares the calm run with itself)."""
    equal = sum(r["findings"] == calm["findings"] for r in stormy)
    once = sum(
        set(r["reprocessed"]) == set(calm["reprocessed"])
        and all(n == 1 for n in r["reprocessed"].values())
        for r in stormy
    )
    duplicates = sum(n - 1 for r in stormy for n in r["mails"].values())
    lost = sum(
        max(0, calm["mailKinds"][k] - r["mailKinds"][k]) for r in stormy for k in calm["mailKinds"]
    )
    faultless = sum(1 for r in stormy if r["faults"] == 0)
    work = bool(calm["findings"]) and bool(calm["reprocessed"]) and bool(calm["mails"])
    ok = (
        bool(stormy)
        and work
        and faultless == 0
        and equal == len(stormy)
        and once == len(stormy)
        and duplicates == 0
        and lost == 0
        and all(n == 1 for n in calm["reprocessed"].values())
    )
    figures = (
        f"{len(stormy)} seeds, {sum(r['faults'] for r in stormy)} faults injected"
        + (f" ({faultless} seeds none)" if faultless else "")
        + f"; findings equal {equal}/{len(stormy)} ({len(calm['findings'])} open); "
        f"reprocess once/user {once}/{len(stormy)} "
        f"({len(calm['reprocessed'])} users); mails {sum(calm['mails'].values())}/run, "
        f"{duplicates} duplicate, {lost} lost"
    )
    target = (
        "faults in every seed; findings, reprocesses, mails > 0, all equal, once, 0 dup, 0 lost"
    )
    return Line("chaos (10% mixed faults)", figures, target, ok)


# --------------------------------------------------------------------------- crash points


def crash_points() -> Line:
    from shared.service.crashpoints import DECLARED  # noqa: PLC0415
    from tests.reliability.harness import build_host, end_state, run_scenario  # noqa: PLC0415

    def run(point: str | None) -> tuple[dict[str, Any], bool]:
        host = build_host(point)
        asyncio.run(run_scenario(host))
        return end_state(host), host.recorder.crashed

    clean, _ = run(None)
    differences, resends, missed = [], 0, []
    for point in sorted(DECLARED):
        state, crashed = run(point)
        if not crashed:
            missed.append(point)
        resends += state["mailResends"]  # also a difference: the clean run resends nothing
        if state != clean:
            differences.append(point)
    figures = (
        f"{len(DECLARED)} points x redelivery: {len(differences)} differences"
        + (f" ({', '.join(differences)})" if differences else "")
        + f"; {resends} mail resends"
        + (f"; never reached: {', '.join(missed)}" if missed else "")
    )
    ok = not differences and not missed and resends == 0
    return Line("crash points", figures, "0 differences", ok)


# --------------------------------------------------------------------------- fuzz


FUZZ_TARGET = "0 x 5xx, 0 forged, 0 lost, 0 handshake mismatches, <= 1 log line/body, p99 < 3 s"


def fuzz(count: int) -> Line:
    path = ROOT / "bench" / "reliability_fuzz.py"
    if not path.exists():
        return Line(
            "fuzz", "fuzz: not available (bench/reliability_fuzz.py missing)", FUZZ_TARGET, False
        )
    spec = importlib.util.spec_from_file_location("reliability_fuzz", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    run: Callable[..., dict[str, float]] = module.run
    # main() disables logging for the table's sake; the fuzz counts the service's log lines
    # (at most one per request) and its latency includes writing them, as in production
    logging.disable(logging.NOTSET)
    try:
        result = run(count=count, seed=0)
    finally:
        logging.disable(logging.CRITICAL)
    return fuzz_line(result, module.failures)


def fuzz_line(r: dict[str, float], failures: Callable[[dict[str, float]], list[str]]) -> Line:
    """The fuzz verdict: the fuzz script's own limits (`failures`: 5xx, forged enqueued,
    genuine lost, validation tokens not echoed, a log line per request at most) and the p99,
    on a run that sent something and whose log lines were counted (none counted: logging was
    off, as `make reliability` had it, and the limit checked nothing)."""
    ok = r["requests"] > 0 and r["log_lines"] > 0 and not failures(r) and r["p99_ms"] < 3000
    figures = (
        f"{int(r['requests'])} bodies: {int(r['status_5xx'])} x 5xx, "
        f"{int(r['forged_enqueued'])} forged enqueued, {int(r['genuine_lost'])} genuine lost, "
        f"{int(r['handshake_mismatch'])} handshake mismatches, {int(r['log_lines'])} log lines, "
        f"p99 {r['p99_ms']:.0f} ms"
    )
    return Line("fuzz", figures, FUZZ_TARGET, ok)


# --------------------------------------------------------------------------- reconcile twice


def reconcile_twice() -> Line:
    from shared.service.reconcile.nightly import reconcile_nightly  # noqa: PLC0415
    from shared.service.reconcile.run_state import Options  # noqa: PLC0415
    from tests.reliability.harness import build_host  # noqa: PLC0415

    host = build_host()

    async def both() -> tuple[list[Any], list[Any], str]:
        await host.fire(lambda: reconcile_nightly(host.svc, host.blobs, Options()))
        await host.drain()  # the reprocesses it queued, and their follow-ups
        mark = len(host.trace)
        second = await reconcile_nightly(host.svc, host.blobs, Options(force=True))
        await host.drain()
        return host.trace[:mark], host.trace[mark:], second.status

    return twice_line(*asyncio.run(both()))


MAILS = (("graph", "sendMail"), ("graph", "sendDraft"))


def twice_line(first: list[Any], second: list[Any], status: str) -> Line:
    """The second run of the same date: no Graph write, no mail, no message, and done. Not
    vacuous: the first run must have made Graph writes and sent a mail itself (a first run
    that did nothing, on a world or settings that give it nothing to do, has nothing to
    repeat)."""

    def effects(trace: list[Any]) -> tuple[int, int, int]:
        writes = sum(1 for kind, _ in trace if kind == "graph")
        mails = sum(1 for e in trace if e in MAILS)
        sends = sum(1 for kind, _ in trace if kind == "send")
        return writes, mails, sends

    (first_writes, first_mails, _), (writes, mails, sends) = effects(first), effects(second)
    ok = (
        first_writes > 0
        and first_mails > 0
        and writes == 0
        and mails == 0
        and sends == 0
        and status == "done"
    )
    figures = (
        f"first run {first_writes} Graph writes, {first_mails} mails; second run ({status}): "
        f"{writes} Graph writes, {mails} mails, {sends} messages"
    )
    return Line("reconcile twice", figures, "first run acted; second 0 writes, 0 mails", ok)


# --------------------------------------------------------------------------- the table


def print_table(lines: list[Line]) -> None:
    width = max(len(line.name) for line in lines)
    print()
    print(f"{'check'.ljust(width)}  result")
    print("-" * (width + 2 + 100))
    for line in lines:
        verdict = "pass" if line.ok else "FAIL"
        print(f"{line.name.ljust(width)}  {line.figures}  [target: {line.target}]  {verdict}")


CHECKS = ("chaos", "crash", "fuzz", "soak", "reconcile")
"""The lines; `--only` takes these names (an unknown one used to run nothing and crash on the
empty table)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--fuzz-count", type=int, default=10_000)
    parser.add_argument("--soak-days", type=int, default=90)
    parser.add_argument("--only", nargs="*", default=None, choices=CHECKS, help=" ".join(CHECKS))
    parser.add_argument("--dump", default=None, help="write the chaos runs' outcomes here (JSON)")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the service's (and graphsim's) logs: the table is it
    wanted = set(args.only or CHECKS)
    started = time.monotonic()
    with (
        open(os.devnull, "w") as quiet,
        contextlib.redirect_stdout(quiet),
        contextlib.redirect_stderr(quiet),
    ):
        lines = run_checks(wanted, args)
    print_table(lines)
    print(f"({time.monotonic() - started:.0f} s)")
    return 0 if lines and all(line.ok for line in lines) else 1


def run_checks(wanted: set[str], args: argparse.Namespace) -> list[Line]:
    lines: list[Line] = []
    if "crash" in wanted:
        lines.append(crash_points())
    if "reconcile" in wanted:
        lines.append(reconcile_twice())
    if wanted & {"chaos", "soak", "fuzz"}:
        with Azurite() as azurite:
            if "chaos" in wanted:
                lines.append(chaos(azurite.connection_string, tuple(args.seeds), args.dump))
            if "soak" in wanted:
                from reliability_soak import soak  # noqa: PLC0415 - beside this script

                wipe_storage(azurite.connection_string, containers=True)
                lines.append(Line(*soak(azurite.connection_string, args.soak_days)))
    if "fuzz" in wanted:
        lines.append(fuzz(args.fuzz_count))
    return lines


if __name__ == "__main__":
    sys.exit(main())
