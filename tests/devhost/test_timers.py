"""Timer triggers: on demand (admin API and Python API), on schedule, and run_on_startup."""

from __future__ import annotations

import time

import azure.functions as func
import httpx
import pytest
from azure.functions.timer import TimerRequest

from tests.devhost import sample_app
from tests.devhost.conftest import HostFactory


def test_admin_endpoint_fires_a_timer_with_the_master_key(make_host: HostFactory) -> None:
    host = make_host()
    url = f"{host.base_url}/admin/functions/tick"
    assert httpx.post(url, json={"input": ""}).status_code == 401
    denied = httpx.post(url, json={"input": ""}, headers={"x-functions-key": host.function_key})
    assert denied.status_code == 401
    assert sample_app.timer_runs == []

    accepted = httpx.post(url, json={"input": ""}, headers={"x-functions-key": host.master_key})
    assert accepted.status_code == 202
    host.wait_idle(timeout=10)
    assert sample_app.timer_runs == [False]
    (record,) = host.invocations_of("tick")
    assert (record.trigger, record.outcome, record.past_due) == ("timer", "succeeded", False)


def test_admin_endpoint_rejects_unknown_and_http_functions(make_host: HostFactory) -> None:
    host = make_host()
    key = {"code": host.master_key}
    assert httpx.post(f"{host.base_url}/admin/functions/nope", params=key).status_code == 404
    assert httpx.post(f"{host.base_url}/admin/functions/echo", params=key).status_code == 400
    status = httpx.get(f"{host.base_url}/admin/host/status", params=key)
    assert status.json()["state"] == "Running"


def test_fire_timer_runs_it_now_and_returns_the_invocation(make_host: HostFactory) -> None:
    host = make_host()
    record = host.fire_timer("tick")
    assert record.outcome == "succeeded"
    assert record.ended is not None
    assert sample_app.timer_runs == [False]
    with pytest.raises(KeyError):
        host.fire_timer("echo")


def test_timer_fires_on_its_schedule(make_host: HostFactory) -> None:
    host = make_host(extra_settings={"SAMPLE_SCHEDULE": "* * * * * *"})
    deadline = time.monotonic() + 5
    while len(sample_app.timer_runs) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sample_app.timer_runs[:2] == [False, False]
    first, second = host.invocations_of("tick")[:2]
    # fired on whole seconds, one second apart
    assert round((second.started - first.started).total_seconds()) == 1
    assert first.started.microsecond < 300_000


def test_timer_failures_are_logged(make_host: HostFactory) -> None:
    app = func.FunctionApp()

    @app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *")
    def failing_timer(timer: TimerRequest) -> None:
        raise OSError("disk on fire")

    host = make_host(app=app)
    record = host.fire_timer("failing_timer")
    assert record.outcome == "failed"
    assert record.error == "OSError: disk on fire"
    assert host.counters["failing_timer"]["failed"] == 1


def test_run_on_startup_fires_once_at_start(make_host: HostFactory) -> None:
    app = func.FunctionApp()
    runs: list[bool] = []

    @app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *", run_on_startup=True)
    def at_start(timer: TimerRequest) -> None:
        runs.append(timer.past_due)

    host = make_host(app=app)
    host.wait_idle(timeout=5)  # the startup run is in flight from start() on
    assert runs == [False]
    assert len(host.invocations_of("at_start")) == 1
