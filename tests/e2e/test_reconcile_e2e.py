"""End to end: the nightly reconciliation finds what lost notifications hid.

Two stacks from the same start (graphsim with the Contoso tenant, Azurite, the real
`function_app` on the DevHost, act mode): one with notification delivery on (the event path),
one with it switched off at graphsim (lost notifications), where the nightly timer
(`reconcile_nightly`) is fired instead. The same on-premises change (Lynne joins the Base group
while E3 is full, Alannah leaves it in the same sync cycle) must end in the same findings for
the users it touched and the same reprocess calls at graphsim.
"""

from __future__ import annotations

from typing import Any

import pytest

from graphsim.client import SimClient
from tests.demo_tenant import ALANNAH, ENTERPRISEPACK, LYNNE
from tests.e2e import test_pipeline_e2e as pipeline
from tests.e2e.harness import EventCapture, Stack, open_findings, settle
from tests.e2e.test_pipeline_e2e import (
    StackFactory,
    fill_e3,
    license_states,
    seat_moves_in_one_sync,
    subscribe,
)

# The pipeline tests' fixtures: a fresh stack on the wiped session Azurite, the log capture,
# and the check that no thread outlives a test.
make_stack = pipeline.make_stack
capture = pipeline.capture
no_leftover_threads = pipeline.no_leftover_threads
TOUCHED = (LYNNE, ALANNAH)

pytestmark = pytest.mark.e2e

NIGHTLY = {"BASELINE": "off"}
"""The first reconciliation of a fresh stack would be a baseline (records, queues nothing);
this scenario is about a regular night."""


def touched_findings(stack: Stack) -> set[tuple[str, str]]:
    """(user, code) of open findings about the users the change touched."""
    return {
        (str(f["key"]).split("|")[0], str(f["code"]))
        for f in open_findings(stack.storage).values()
        if str(f["key"]).split("|")[0] in TOUCHED
    }


def reprocessed(capture: EventCapture) -> list[str]:
    """Users reprocessed (Graph called) among those the change touched."""
    return sorted(str(e["user_id"]) for e in _reprocess_done(capture) if e["user_id"] in TOUCHED)


def _reprocess_done(capture: EventCapture) -> list[dict[str, Any]]:
    """Called now, or found called already (an earlier attempt's answer was lost)."""
    return [*capture.named("reprocess.called"), *capture.named("reprocess.verified")]


def start(make_stack: StackFactory, capture: EventCapture) -> tuple[Stack, SimClient]:
    stack, sim = make_stack(mode="act", extra_settings=NIGHTLY)
    subscribe(stack, sim)
    fill_e3(stack, sim)
    sim.clear_counters()
    capture.clear()
    return stack, sim


def event_path(make_stack: StackFactory, capture: EventCapture) -> dict[str, Any]:
    stack, sim = start(make_stack, capture)
    seat_moves_in_one_sync(sim)
    settle(stack.host, sim)  # notified while queued; the hourly recheck sees it processed
    return {
        "findings": touched_findings(stack),
        "reprocessed": reprocessed(capture),
        "lynne": license_states(stack, LYNNE, ENTERPRISEPACK),
    }


def test_reconciliation_finds_what_notifications_missed(
    make_stack: StackFactory, capture: EventCapture
) -> None:
    expected = event_path(make_stack, capture)

    stack, sim = start(make_stack, capture)
    sim.enable_notifications(False)
    seat_moves_in_one_sync(sim)
    settle(stack.host, sim, recheck=False)  # the recheck would find Lynne's error: off here
    missed = touched_findings(stack)
    mark = len(stack.host.invocations)

    run = stack.host.fire_timer("reconcile_nightly", timeout=120)
    settle(stack.host, sim)

    assert expected["reprocessed"] == [LYNNE]
    assert expected["lynne"] == [("Active", None)]
    assert (LYNNE, "CountViolation") not in missed  # nothing told the service
    assert run.outcome == "succeeded", run.error
    assert touched_findings(stack) == expected["findings"]
    assert reprocessed(capture) == expected["reprocessed"]
    assert license_states(stack, LYNNE, ENTERPRISEPACK) == expected["lynne"]
    assert [e for e in capture.named("reconcile.finished") if e.get("baseline")] == []
    # Beyond what the event path would have done: the scan covers every user, so a stale
    # assignment of a user in no licensed group (never in any sweep) is found and acted on too.
    everyone = {str(e["user_id"]) for e in _reprocess_done(capture)}
    assert everyone - set(TOUCHED)
    done = [
        i
        for i in stack.host.invocations[mark:]
        if i.function == "reprocess_user" and i.outcome == "succeeded"
    ]
    assert len(done) == len(everyone)
