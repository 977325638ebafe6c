"""HTTP triggers through the devhost: keys, routes, methods, concurrency and errors."""

from __future__ import annotations

import concurrent.futures
from urllib.parse import quote

import azure.functions as func
import httpx
import pytest

from tests.devhost.conftest import HostFactory


def test_function_level_requires_a_key(make_host: HostFactory) -> None:
    host = make_host()
    url = f"{host.base_url}/api/echo/ann"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, params={"code": "wrong"}).status_code == 401
    assert httpx.get(url, params={"code": host.function_key}).status_code == 200
    assert httpx.get(url, headers={"x-functions-key": host.function_key}).status_code == 200
    assert httpx.get(url, headers={"x-functions-key": host.master_key}).status_code == 200


def test_configured_function_key_is_used(make_host: HostFactory) -> None:
    host = make_host(function_key="local-key-123")
    assert host.function_key == "local-key-123"
    url = f"{host.base_url}/api/echo/x"
    assert httpx.get(url, params={"code": "local-key-123"}).status_code == 200


def test_a_function_level_key_opens_that_function_only(make_host: HostFactory) -> None:
    host = make_host(function_keys={"echo": "echo-only-key"})

    echo = f"{host.base_url}/api/echo/x"
    assert httpx.get(echo, headers={"x-functions-key": "echo-only-key"}).status_code == 200
    assert httpx.get(echo, params={"code": host.function_key}).status_code == 200  # host key too
    relay = f"{host.base_url}/api/relay"
    assert httpx.get(relay, headers={"x-functions-key": "echo-only-key"}).status_code == 401
    assert (
        httpx.get(f"{host.base_url}/api/secret", params={"code": "echo-only-key"}).status_code
        == 401
    )


def test_a_function_key_for_an_unknown_function_is_refused(make_host: HostFactory) -> None:
    with pytest.raises(ValueError, match="'ehco' is not a function of this app"):
        make_host(function_keys={"ehco": "k"})


def test_admin_level_needs_the_master_key(make_host: HostFactory) -> None:
    host = make_host()
    url = f"{host.base_url}/api/secret"
    assert httpx.get(url, params={"code": host.function_key}).status_code == 401
    response = httpx.get(url, params={"code": host.master_key})
    assert (response.status_code, response.text) == (200, "admin only")
    assert host.url_for("secret").endswith(f"?code={host.master_key}")


def test_anonymous_needs_no_key(make_host: HostFactory) -> None:
    host = make_host()
    assert host.url_for("slow") == f"{host.base_url}/api/slow"
    response = httpx.get(host.url_for("slow"), params={"seconds": "0"})
    assert (response.status_code, response.text) == (201, "done")


def test_request_reaches_the_function_intact(make_host: HostFactory) -> None:
    host = make_host()
    url = host.url_for("echo", name="bob")
    assert url == f"{host.base_url}/api/echo/bob?code={host.function_key}"
    response = httpx.post(url + "&a=1", content=b"payload", headers={"X-Sample": "hi"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    assert data["method"] == "POST"
    assert data["name"] == "bob"
    assert data["params"]["a"] == "1"
    assert data["body"] == "payload"
    assert data["header"] == "hi"


def test_methods_and_routes_are_honoured(make_host: HostFactory) -> None:
    host = make_host()
    key = {"code": host.function_key}
    assert httpx.put(f"{host.base_url}/api/echo/x", params=key).status_code == 404
    assert httpx.delete(f"{host.base_url}/api/echo/x", params=key).status_code == 404
    assert httpx.get(f"{host.base_url}/api/nowhere", params=key).status_code == 404
    assert httpx.get(f"{host.base_url}/echo/x", params=key).status_code == 404  # no prefix
    # a function without `methods` takes every method
    assert httpx.patch(f"{host.base_url}/api/broken").status_code == 500


def test_route_prefix_comes_from_host_json(make_host: HostFactory) -> None:
    host = make_host(host_json={"extensions": {"http": {"routePrefix": "v1"}}})
    assert host.url_for("slow") == f"{host.base_url}/v1/slow"
    assert httpx.get(f"{host.base_url}/v1/slow", params={"seconds": "0"}).status_code == 201
    assert httpx.get(f"{host.base_url}/api/slow", params={"seconds": "0"}).status_code == 404


def test_a_function_can_call_the_host_while_in_flight(make_host: HostFactory) -> None:
    """`relay` (sync) calls `slow` on the same host and blocks until it answers."""
    host = make_host()
    target = host.url_for("slow") + "?seconds=0.2"
    response = httpx.get(f"{host.url_for('relay')}&target={quote(target)}", timeout=15)
    assert response.status_code == 200
    assert response.text == "relayed 201: done"
    assert response.headers["x-relay"] == "1"
    relay, slow = host.invocations_of("relay")[0], host.invocations_of("slow")[0]
    assert relay.started < slow.started
    assert slow.ended is not None
    assert relay.ended is not None
    assert slow.ended <= relay.ended


def test_requests_run_concurrently(make_host: HostFactory) -> None:
    host = make_host()
    url = host.url_for("slow")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(lambda _: httpx.get(url, params={"seconds": "0.8"}).status_code, range(8))
        )
    assert codes == [201] * 8
    # Overlap from the host's own records, not wall-clock time (the machine may be busy).
    runs = host.invocations_of("slow")
    assert all(run.ended is not None for run in runs)
    running_at = [sum(o.started <= r.started < o.ended for o in runs if o.ended) for r in runs]
    assert max(running_at) >= 3, f"at most {max(running_at)} of 8 invocations ran at once"


def test_exceptions_become_500_and_are_logged(make_host: HostFactory) -> None:
    host = make_host()
    response = httpx.get(host.url_for("broken"))
    assert response.status_code == 500
    (record,) = host.invocations_of("broken")
    assert record.outcome == "failed"
    assert record.error == "ValueError: broken on purpose"
    assert record.status_code == 500
    assert host.counters["broken"] == {"succeeded": 0, "failed": 1, "poisoned": 0}


def test_invocation_log_and_counters(make_host: HostFactory) -> None:
    host = make_host()
    for _ in range(3):
        assert httpx.get(host.url_for("echo", name="n")).status_code == 200
    records = host.invocations_of("echo")
    assert [r.outcome for r in records] == ["succeeded"] * 3
    assert all(r.trigger == "http" and r.status_code == 200 for r in records)
    assert all(r.ended is not None and r.ended >= r.started for r in records)
    assert host.counters["echo"]["succeeded"] == 3
    assert host.in_flight == 0


def test_unknown_functions_have_no_url(make_host: HostFactory) -> None:
    host = make_host()
    with pytest.raises(KeyError):
        host.url_for("tick")


def test_context_parameter_is_supplied(make_host: HostFactory) -> None:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="ctx")
    def with_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
        return func.HttpResponse(f"{context.function_name} {context.invocation_id}")

    host = make_host(app=app)
    name, invocation_id = httpx.get(host.url_for("with_context")).text.split()
    assert name == "with_context"
    assert invocation_id == host.invocations_of("with_context")[0].id
