"""A local HTTP receiver for the alert channels: records every POST (path, headers, body);
paths starting with /fail answer 500 with Retry-After: 0. Real HTTP over loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class Receiver:
    """A local HTTP receiver: records every POST; paths starting /fail answer 500."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append((self.path, dict(self.headers), body))
                status = 500 if self.path.startswith("/fail") else 202
                self.send_response(status)
                self.send_header("Content-Length", "0")
                if status == 500:
                    self.send_header("Retry-After", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def to(self, path: str) -> list[tuple[str, dict[str, str], bytes]]:
        return [p for p in self.posts if p[0] == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    yield r
    r.server.shutdown()
    r.server.server_close()
