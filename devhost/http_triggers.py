"""HTTP triggers: route matching, the host's key levels (anonymous, function, admin), the
request and response conversion, and the URLs a function answers at."""

from __future__ import annotations

import hmac
from typing import Any

import azure.functions as func
from starlette.requests import Request
from starlette.responses import Response

from devhost.index import FunctionSpec
from devhost.runtime import HostRuntime


def _to_response(result: Any, where: str) -> Response:
    if isinstance(result, func.HttpResponse):
        headers = dict(result.headers.items())
        if not any(k.lower() == "content-type" for k in headers):
            mimetype = result.mimetype or "text/plain"
            textual = mimetype.startswith("text/") or mimetype.endswith("json")
            charset = f"; charset={result.charset}" if textual and result.charset else ""
            headers["Content-Type"] = mimetype + charset
        return Response(result.get_body(), status_code=result.status_code, headers=headers)
    if isinstance(result, str | bytes):
        return Response(result, status_code=200, media_type="text/plain")
    raise TypeError(f"{where} returned {type(result).__name__}; return a func.HttpResponse")


class HttpTriggers(HostRuntime):
    """Serves the app's HTTP functions (mixed into `DevHost`)."""

    def _presented_key(self, request: Request) -> str:
        return request.headers.get("x-functions-key") or request.query_params.get("code") or ""

    def _authorized(self, request: Request, level: str, function: str | None = None) -> bool:
        if level == "ANONYMOUS":
            return True
        key = self._presented_key(request).encode()
        master = hmac.compare_digest(key, self.master_key.encode())
        if level == "ADMIN":
            return master
        own = self.function_keys.get(function or "")
        if own is not None and hmac.compare_digest(key, own.encode()):
            return True
        return master or hmac.compare_digest(key, self.function_key.encode())

    def _http_candidates(self, path: str) -> list[tuple[FunctionSpec, dict[str, str]]]:
        found = []
        for spec in self.functions.values():
            if spec.route is None:
                continue
            params = spec.route.match(path)
            if params is not None:
                found.append((spec, params))
        found.sort(key=lambda item: -item[0].route.literal_segments if item[0].route else 0)
        return found

    async def _http(self, request: Request) -> Response:
        method = request.method.upper()
        match = next(
            ((s, p) for s, p in self._http_candidates(request.url.path) if method in s.methods),
            None,
        )
        if match is None:  # the host answers 404 for an unknown route or a method it doesn't map
            return Response(status_code=404)
        spec, route_params = match
        if not self._authorized(request, spec.auth_level, spec.name):
            return Response(status_code=401)
        body = await request.body()
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        http_request = func.HttpRequest(
            method=method,
            url=str(request.url),
            headers=headers,
            params=dict(request.query_params),
            route_params=route_params,
            body=body,
        )
        record = self._begin(spec)
        try:
            result = await self._call(spec, http_request, record)
            response = _to_response(result, f"function {spec.name!r}")
        except Exception as error:
            self._end(record, error, status_code=500)
            return Response(status_code=500)
        self._end(record, status_code=response.status_code)
        return response

    def url_for(self, function_name: str, **route_params: str) -> str:
        """The full URL of an HTTP function (route values filled in, `?code=` when keyed)."""
        spec = self.functions.get(function_name)
        if spec is None or spec.route is None:
            raise KeyError(f"{function_name!r} is not an HTTP function of this app")
        url = self.base_url + spec.route.fill(self.options.route_prefix, route_params)
        if spec.auth_level == "ANONYMOUS":
            return url
        key = self.master_key if spec.auth_level == "ADMIN" else self.function_key
        return f"{url}?code={key}"

    def _display_url(self, spec: FunctionSpec) -> str:
        template = spec.route.template.strip("/") if spec.route else ""
        path = "/".join(p for p in (self.options.route_prefix, template) if p)
        key = {"ANONYMOUS": None, "ADMIN": self.master_key}.get(spec.auth_level, self.function_key)
        return f"{self.base_url}/{path}" + (f"?code={key}" if key else "")
