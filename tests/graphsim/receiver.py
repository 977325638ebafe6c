"""A loopback webhook receiver in a thread: answers Graph's validation handshake and records
notification POSTs, with switchable misbehaviour (wrong echo, error status, slowness)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.loopback import serving


class Receiver:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.validations: list[str] = []
        self.queries: list[dict[str, list[str]]] = []
        self.mode = "ok"  # ok | wrong-echo | raw-echo | status-500 | html
        self.fail_next = 0  # answer 500 to this many notification POSTs
        self.delay = 0.0
        self.lock = threading.Lock()
        self.url = ""

    def notifications(self) -> list[dict[str, Any]]:
        with self.lock:
            return [n for p in self.posts for n in p["value"]]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.notifications()
            if len(got) >= count:
                return got
            time.sleep(0.01)
        return self.notifications()


@contextmanager
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            query = parse_qs(urlsplit(self.path).query)
            with rec.lock:
                rec.queries.append(query)
            if "validationToken" in query:
                token = query["validationToken"][0]
                with rec.lock:
                    rec.validations.append(token)
                if rec.mode == "status-500":
                    self._answer(500, "text/plain", b"no")
                elif rec.mode == "wrong-echo":
                    self._answer(200, "text/plain", b"not-the-token")
                elif rec.mode == "raw-echo":  # the token as sent, not URL-decoded
                    raw = urlsplit(self.path).query.split("validationToken=", 1)[1]
                    self._answer(200, "text/plain", raw.split("&", 1)[0].encode())
                elif rec.mode == "html":
                    self._answer(200, "text/html", token.encode())
                else:
                    self._answer(200, "text/plain; charset=utf-8", token.encode())
                return
            if rec.delay:
                time.sleep(rec.delay)
            with rec.lock:
                failing = rec.fail_next > 0
                if failing:
                    rec.fail_next -= 1
                else:
                    rec.posts.append(json.loads(body))
            self._answer(500 if failing else 202, "text/plain", b"")

        def _answer(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with serving(Handler, poll_interval=0.05) as base_url:
        rec.url = f"{base_url}/api/notify?code=secret-key"
        yield rec
