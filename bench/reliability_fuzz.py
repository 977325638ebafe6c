"""Fuzz the webhooks through the real HTTP host: never a 5xx, nothing forged queued, nothing lost.

The `make reliability` fuzz line. `function_app.app` runs on the DevHost (uvicorn on loopback,
function-key auth, the host's request handling) over Azurite; every queue and timer function is
switched off with the host's own `AzureWebJobs.<name>.Disabled` settings, so what the webhook
enqueued stays on `groups-changed` to be counted. Graph is an unreachable loopback port: the
webhook must never need it.

A seeded generator (`random.Random`, one stream per request, so a run is the same whatever
the thread interleaving) builds the bodies: random bytes, about 1 MB of forged items (and just
over 1 MB), deeply nested JSON, wrong types, unicode (including escaped lone surrogates), GUID
look-alikes (trailing newline, braces, full-width digits, ...) in otherwise valid envelopes,
valid envelopes with a bad clientState, foreign tenants and subscriptions, bodies mixing
genuine and forged items, batches of 2,000 genuine group ids, validation handshakes with odd
tokens, and forged lifecycle notifications. Forged items only ever name ids from a "forged"
namespace, genuine items from a "genuine" one; afterwards every message on `groups-changed` is
read back.

Figures: requests, status_5xx, forged_enqueued (forged ids found on the queue), genuine_lost
(genuine ids not found), handshake_mismatch, p99_ms (client-side latency), log_lines (service
log records: one summary per request at most, not one per item), seconds.
Run: `python bench/reliability_fuzz.py [--count N] [--seed S]`; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fuzz_bodies import SUBSCRIPTION, TENANT, Generated, body_for, plan  # noqa: E402
from devhost.azurite import Azurite  # noqa: E402
from devhost.event_log import SERVICE_LOGGERS  # noqa: E402
from devhost.host import DevHost  # noqa: E402
from devhost.index import HTTP, app_functions  # noqa: E402
from devhost.stack import free_port, service_settings  # noqa: E402

WORKERS = 6
FAIL_IF_OVER = {"status_5xx": 0, "forged_enqueued": 0, "genuine_lost": 0, "handshake_mismatch": 0}


@dataclass
class Outcome:
    status: int
    ms: float
    generated: Generated
    handshake_ok: bool = True


# --------------------------------------------------------------------------- the stack


class _CountingHandler(logging.Handler):
    """Counts the service's log records (configure_logging puts its JSON formatter on it)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines = 0
        self.lock_ = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(SERVICE_LOGGERS):
            with self.lock_:
                self.lines += 1


@contextlib.contextmanager
def _stack() -> Iterator[tuple[DevHost, str]]:
    import function_app  # noqa: PLC0415 - its import builds the app
    from shared import bootstrap  # noqa: PLC0415
    from shared.adapters.tables import tables_for  # noqa: PLC0415
    from shared.service.subscriptions import SUBSCRIPTION_PK  # noqa: PLC0415

    with contextlib.ExitStack() as exits:
        storage = exits.enter_context(Azurite()).connection_string
        port, key = free_port(), "fuzz-function-key"
        settings = service_settings(
            storage=storage, graph_url="http://127.0.0.1:9", tenant_id=TENANT,
            host_port=port, function_key=key,
        )  # fmt: skip
        for function in app_functions(function_app.app):
            bindings = orjson.loads(function.get_function_json())["bindings"]
            if not any(b.get("type") == HTTP for b in bindings):
                settings[f"AzureWebJobs.{function.get_function_name()}.Disabled"] = "true"
        tables_for(storage).subscriptions.upsert(
            SUBSCRIPTION_PK, SUBSCRIPTION, {"resource": "/groups", "expiration": "2099-01-01"}
        )
        bootstrap.use(None)
        exits.callback(bootstrap.use, None)
        devhost_log = logging.getLogger("devhost")  # no line per invocation on stderr
        devhost_log.addHandler(logging.NullHandler())
        devhost_log.propagate = False
        host = DevHost(function_app.app, settings, port=port, function_key=key,
                       host_json_path=ROOT / "host.json", shutdown_grace=2.0)  # fmt: skip
        host.start()
        exits.callback(host.stop)
        yield host, storage


def _enqueued(storage: str) -> tuple[list[str], int]:
    """Every group id on `groups-changed` (the queue is drained), and the message count."""
    from shared.adapters.queues import queues_for  # noqa: PLC0415
    from shared.ports.messages import GroupsChanged  # noqa: PLC0415

    queue = queues_for(storage).groups_changed
    ids: list[str] = []
    messages = 0
    while batch := queue.receive(32, visibility_timeout=300):
        for received in batch:
            messages += 1
            if isinstance(received.message, GroupsChanged):
                ids.extend(received.message.group_ids)
            queue.delete(received)
    return ids, messages


# --------------------------------------------------------------------------- run


def run(count: int = 10_000, seed: int = 0) -> dict[str, float]:
    """Send `count` generated requests through the host; the figures named in the docstring."""
    requests = plan(count, seed)
    counter = _CountingHandler()
    root = logging.getLogger()
    root.addHandler(counter)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    started = time.perf_counter()
    try:
        with _stack() as (host, storage):
            urls = {"n": host.url_for("graph_notifications"), "l": host.url_for("graph_lifecycle")}
            limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
            with httpx.Client(timeout=60, limits=limits) as client:

                def send(spec: tuple[str, int]) -> Outcome:
                    kind, item_seed = spec
                    generated = body_for(kind, random.Random(item_seed))
                    token = generated.token
                    url = httpx.URL(urls[generated.endpoint])  # keeps ?code=, the function key
                    if token is not None:
                        url = url.copy_merge_params({"validationToken": token})
                    t0 = time.perf_counter()
                    resp = client.post(url, content=generated.body)
                    ms = (time.perf_counter() - t0) * 1000
                    ok = token is None or (resp.status_code == 200 and resp.text == token[:1024])
                    generated.body = b""  # keep memory flat
                    return Outcome(resp.status_code, ms, generated, ok)

                with ThreadPoolExecutor(WORKERS) as pool:
                    outcomes = list(pool.map(send, requests, chunksize=8))
            host.wait_idle(timeout=30)
            enqueued, messages = _enqueued(storage)
    finally:
        root.removeHandler(counter)
    seconds = time.perf_counter() - started
    genuine = {g for o in outcomes for g in o.generated.genuine}
    forged = {g for o in outcomes for g in o.generated.forged}
    neutral = {g for o in outcomes for g in o.generated.neutral} | {SUBSCRIPTION, TENANT}
    found = set(enqueued)
    unexpected = found - genuine - neutral
    latencies = sorted(o.ms for o in outcomes)
    statuses = Counter(o.status for o in outcomes)
    return {
        "requests": float(len(outcomes)),
        "status_5xx": float(sum(n for s, n in statuses.items() if s >= 500)),
        "status_2xx": float(sum(n for s, n in statuses.items() if 200 <= s < 300)),
        "status_4xx": float(sum(n for s, n in statuses.items() if 400 <= s < 500)),
        "forged_enqueued": float(len(found & forged) + len(unexpected - forged)),
        "genuine_lost": float(len(genuine - found)),
        "genuine_ids": float(len(genuine)),
        "messages": float(messages),
        "handshake_mismatch": float(sum(not o.handshake_ok for o in outcomes)),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "max_ms": latencies[-1],
        "log_lines": float(counter.lines),
        "seconds": seconds,
    }


def failures(result: dict[str, float]) -> list[str]:
    """The limits broken: FAIL_IF_OVER, and more service log lines than requests (one summary
    per request at most: a line per item would be thousands for a batch of 2,000)."""
    broken = [f"{k}={result[k]:g}" for k, limit in FAIL_IF_OVER.items() if result[k] > limit]
    if result["log_lines"] > result["requests"]:
        broken.append(f"log_lines={result['log_lines']:g} > requests={result['requests']:g}")
    return broken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    result = run(args.count, args.seed)
    failed = failures(result)
    print(
        f"fuzz      {result['requests']:>6.0f} bodies (seed {args.seed}): "
        f"5xx {result['status_5xx']:.0f}, forged enqueued {result['forged_enqueued']:.0f}, "
        f"genuine lost {result['genuine_lost']:.0f}/{result['genuine_ids']:.0f}, "
        f"handshake mismatches {result['handshake_mismatch']:.0f}, "
        f"p99 {result['p99_ms']:.0f} ms, log lines {result['log_lines']:.0f}, "
        f"{result['seconds']:.0f} s  "
        + ("PASS" if not failed else "FAIL (" + ", ".join(failed) + ")")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
