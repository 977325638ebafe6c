"""`make demo`'s alert-channel receiver: a local HTTP server standing in for a Teams Workflows
webhook and a generic webhook. Everything posted is written to out/demo-teams.json and
out/demo-webhook.json (a list, oldest first), with the webhook's signature checked against
the demo's shared secret as any receiver checks it (docs/alert-channels.md: `sha256=<hex>`,
the HMAC-SHA256 of the exact body)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SECRET = "demo-webhook-secret-NOT-A-SECRET"  # noqa: S105 - the demo's, loopback only
FILES = {"/teams": "demo-teams.json", "/webhook": "demo-webhook.json"}
DIGEST_HEADER = "X-License-Guard-Digest"
SIGNATURE_HEADER = "X-License-Guard-Signature"


def signature_valid(secret: str, body: bytes, header: str) -> bool:
    """The receiver's check of the webhook's signature header (constant-time)."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


@dataclass
class DemoChannels:
    settings: dict[str, str]
    out: Path
    posts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def written(self) -> list[Path]:
        return [self.out / FILES[p] for p in FILES if self.posts.get(p)]


@contextmanager
def demo_channels(out: Path) -> Iterator[DemoChannels]:
    out.mkdir(exist_ok=True)
    for name in FILES.values():
        (out / name).unlink(missing_ok=True)
    lock = threading.Lock()
    channels = DemoChannels({}, out)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            path = self.path if self.path in FILES else ""
            self.send_response(202 if path else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            if not path:
                return
            entry: dict[str, Any] = {
                "digestId": self.headers.get(DIGEST_HEADER),
                "payload": json.loads(body),
            }
            if path == "/webhook":
                entry["signatureValid"] = signature_valid(
                    SECRET, body, self.headers.get(SIGNATURE_HEADER) or ""
                )
            with lock:
                channels.posts.setdefault(path, []).append(entry)
                (out / FILES[path]).write_text(
                    json.dumps(channels.posts[path], indent=2, ensure_ascii=False) + "\n",
                    encoding="utf-8",
                )

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    channels.settings.update(
        {
            "ALERT_CHANNELS": json.dumps(
                [
                    {"type": "teams", "urlSecretName": "ALERT_TEAMS_URL", "minSeverity": "info"},
                    {
                        "type": "webhook",
                        "urlSecretName": "ALERT_WEBHOOK_URL",
                        "signingSecretName": "ALERT_WEBHOOK_SECRET",
                        "minSeverity": "info",
                    },
                ]
            ),
            "ALERT_TEAMS_URL": base + "/teams",
            "ALERT_WEBHOOK_URL": base + "/webhook",
            "ALERT_WEBHOOK_SECRET": SECRET,
        }
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield channels
    finally:
        server.shutdown()
        server.server_close()
