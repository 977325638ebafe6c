"""A small function app for the devhost tests: every trigger kind devhost runs, via a Blueprint.

Queue names and the timer schedule are `%SETTING%` references, so each test picks its own
queues (the Azurite instance is shared by the session) and schedule.
"""

from __future__ import annotations

import asyncio
import json
import threading

import azure.functions as func
import httpx
from azure.functions.timer import TimerRequest

bp = func.Blueprint()
STORAGE = "AzureWebJobsStorage"

# What the functions saw, for tests to inspect (tests clear them).
lock = threading.Lock()
failed_attempts: list[tuple[str, int | None]] = []
timer_runs: list[bool] = []


@bp.route(route="echo/{name}", methods=["GET", "POST"])  # auth: the app's FUNCTION level
def echo(req: func.HttpRequest) -> func.HttpResponse:
    payload = {
        "method": req.method,
        "name": req.route_params.get("name"),
        "params": dict(req.params),
        "body": req.get_body().decode("utf-8"),
        "header": req.headers.get("x-sample"),
    }
    return func.HttpResponse(json.dumps(payload), status_code=200, mimetype="application/json")


@bp.route(route="relay", methods=["GET"])
def relay(req: func.HttpRequest) -> func.HttpResponse:
    """Calls another endpoint of the same host (its URL in `?target=`) and wraps the answer."""
    response = httpx.get(req.params["target"], timeout=10)
    return func.HttpResponse(
        f"relayed {response.status_code}: {response.text}",
        status_code=200,
        headers={"X-Relay": "1"},
    )


@bp.route(route="slow", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(float(req.params.get("seconds", "0.5")))
    return func.HttpResponse("done", status_code=201)


@bp.route(route="secret", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
def secret(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("admin only")


@bp.route(route="broken", auth_level=func.AuthLevel.ANONYMOUS)
def broken(req: func.HttpRequest) -> func.HttpResponse:
    raise ValueError("broken on purpose")


@bp.queue_trigger(arg_name="msg", queue_name="%SAMPLE_IN_QUEUE%", connection=STORAGE)
@bp.queue_output(arg_name="out", queue_name="%SAMPLE_OUT_QUEUE%", connection=STORAGE)
def shout(msg: func.QueueMessage, out: func.Out[list[str]]) -> None:
    text = msg.get_body().decode("utf-8")
    out.set([text.upper(), f"dequeue_count={msg.dequeue_count}"])


@bp.queue_trigger(
    arg_name="msg", queue_name="%SAMPLE_FAIL_QUEUE%", connection="AzureWebJobsStorage"
)
@bp.queue_output(arg_name="out", queue_name="%SAMPLE_OUT_QUEUE%", connection=STORAGE)
def always_fails(msg: func.QueueMessage, out: func.Out[str]) -> None:
    with lock:
        failed_attempts.append((msg.get_body().decode("utf-8"), msg.dequeue_count))
    out.set("must never be sent: the invocation fails")
    raise RuntimeError(f"always fails (attempt {msg.dequeue_count})")


@bp.timer_trigger(arg_name="timer", schedule="%SAMPLE_SCHEDULE%")
def tick(timer: TimerRequest) -> None:
    with lock:
        timer_runs.append(timer.past_due)


app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(bp)
