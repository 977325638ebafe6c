"""The validation handshake over real HTTP: the host decodes the query once, we echo that.

Graph sends `POST <notificationUrl>?validationToken=<URL-encoded token>` and accepts only a
200 whose `text/plain` body is exactly the decoded token (https://learn.microsoft.com/graph/
change-notifications-delivery-webhooks, "Notification endpoint validation"). The app runs on
the DevHost with every non-HTTP function disabled (no storage needed for a handshake).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

import function_app
from devhost.host import DevHost
from devhost.index import app_functions
from shared.bootstrap import use

KEY = "handshake-test-key"


@pytest.fixture(scope="module")
def host() -> Iterator[DevHost]:
    disabled = {
        f"AzureWebJobs.{f.get_function_name()}.Disabled": "true"
        for f in app_functions(function_app.app)
        if not any(
            b["type"] == "httpTrigger" for b in json.loads(f.get_function_json())["bindings"]
        )
    }
    use(None)
    with DevHost(function_app.app, disabled, function_key=KEY, host_json={}) as running:
        yield running
    use(None)


@pytest.mark.parametrize("function", ["graph_notifications", "graph_lifecycle"])
@pytest.mark.parametrize(
    "token",
    [
        "Validation: Testing client application reachability",
        "a%2Bb",  # a literal %2B: decoding twice would make it "+"
        "a+b c",  # a literal plus and a space
        "100% sure %zz %",
        "日本 😀 <script>",
    ],
)
def test_the_decoded_token_is_echoed_exactly_once_decoded(
    host: DevHost, function: str, token: str
) -> None:
    query = f"code={KEY}&validationToken={quote(token, safe='')}"
    url = host.url_for(function).split("?")[0] + "?" + query

    resp = httpx.post(url, content=b"", timeout=10)

    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.content.decode("utf-8") == token


def test_a_plus_in_the_raw_query_is_a_space(host: DevHost) -> None:
    """Form encoding: `+` in a query means a space, `%2B` a plus (what Graph's encoder does)."""
    url = host.url_for("graph_notifications").split("?")[0]

    resp = httpx.post(f"{url}?code={KEY}&validationToken=a+b%2Bc%252B", content=b"", timeout=10)

    assert resp.content == b"a b+c%2B"
