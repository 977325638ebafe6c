"""Reads the functions, triggers and bindings from the function app object (its decorators).

Everything comes from `app.get_functions()` and each function's `get_function_json()`:
nothing about routes, queues or schedules is configured a second time here.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from devhost.config import DevHostError, resolve
from devhost.ncrontab import CronError, CronSchedule

HTTP, QUEUE, TIMER = "httpTrigger", "queueTrigger", "timerTrigger"
ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
_QUEUE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
_ROUTE_PARAM = re.compile(
    r"\{(?P<star>\*)?(?P<name>[A-Za-z_]\w*)(?P<constraint>(?::[^{}?]+)*)(?P<opt>\?)?\}"
)
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"(?i:true|false)",
    "guid": r"[0-9A-Fa-f]{8}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{4}-?[0-9A-Fa-f]{12}",
    "alpha": r"[A-Za-z]+",
    "double": r"-?\d+(?:\.\d+)?",
    "float": r"-?\d+(?:\.\d+)?",
    "decimal": r"-?\d+(?:\.\d+)?",
}


def validate_queue_name(name: str, where: str) -> str:
    if not _QUEUE_NAME.fullmatch(name):
        raise DevHostError(
            f"{where}: {name!r} is not a valid queue name "
            "(3-63 lowercase letters, digits and single hyphens)"
        )
    return name


@dataclass(frozen=True)
class Route:
    """An HTTP route template (`items/{id:int}`, `{*rest}`, `x/{opt?}`) compiled to a regex."""

    template: str
    pattern: re.Pattern[str]
    literal_segments: int

    @classmethod
    def compile(cls, template: str, prefix: str) -> Route:
        full = "/".join(p for p in (prefix.strip("/"), template.strip("/")) if p)
        regex = ""
        position = 0
        for match in _ROUTE_PARAM.finditer(full):
            literal = full[position : match.start()]
            name = match["name"]
            constraints = [c for c in match["constraint"].split(":") if c]
            body = r"[^/]+"
            for constraint in constraints:
                key = constraint.split("(")[0].lower()
                if key in _CONSTRAINTS:
                    body = _CONSTRAINTS[key]
                elif key.startswith("regex"):
                    body = constraint[len("regex(") : -1]
            if match["star"]:
                body = r".*"
            group = f"(?P<{name}>{body})"
            if match["opt"] or match["star"]:
                if literal.endswith("/"):
                    regex += re.escape(literal[:-1]) + f"(?:/{group})?"
                else:
                    regex += re.escape(literal) + f"{group}?"
            else:
                regex += re.escape(literal) + group
            position = match.end()
        regex += re.escape(full[position:])
        literals = sum(1 for seg in full.split("/") if seg and "{" not in seg)
        return cls(template, re.compile(f"/{regex}/?", re.IGNORECASE), literals)

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        if not found:
            return None
        return {k: v for k, v in found.groupdict().items() if v is not None}

    def fill(self, prefix: str, params: Mapping[str, str]) -> str:
        def sub(match: re.Match[str]) -> str:
            name = match["name"]
            if name in params:
                return str(params[name])
            if match["opt"] or match["star"]:
                return ""
            raise DevHostError(f"route {self.template!r} needs a value for {{{name}}}")

        path = _ROUTE_PARAM.sub(sub, self.template.strip("/"))
        path = re.sub(r"/+", "/", path).strip("/")
        return "/" + "/".join(p for p in (prefix.strip("/"), path) if p)


@dataclass(frozen=True)
class QueueOutput:
    arg_name: str  # "$return" for the return value
    queue_name: str
    connection: str


@dataclass
class FunctionSpec:
    """One function of the app, its trigger resolved against the app settings."""

    name: str
    trigger: str
    trigger_arg: str
    func: Callable[..., Any]
    binding_json: dict[str, Any]
    is_async: bool
    accepts_context: bool
    outputs: list[QueueOutput] = field(default_factory=list)
    # HTTP
    route: Route | None = None
    methods: tuple[str, ...] = ()
    auth_level: str = "FUNCTION"
    # queue
    queue_name: str = ""
    connection: str = ""
    # timer
    schedule: CronSchedule | None = None
    run_on_startup: bool = False

    @property
    def trigger_kind(self) -> str:
        return {HTTP: "http", QUEUE: "queue", TIMER: "timer"}[self.trigger]


def _connection(binding: Mapping[str, Any]) -> str:
    return str(binding.get("connection") or "AzureWebJobsStorage")


def app_functions(app: Any) -> list[Any]:
    """`app.get_functions()`, without its one-shot side effect.

    The library records indexed names in `app.functions_bindings` and raises "does not have a
    unique function name" on a second call; the worker indexes once per process, but tests and
    several DevHosts index the same app again. The duplicate check still runs, on a clean slate.
    """
    has_state = hasattr(app, "functions_bindings")
    saved = getattr(app, "functions_bindings", None)
    if has_state:
        app.functions_bindings = {}
    try:
        return list(app.get_functions())
    finally:
        if has_state:
            app.functions_bindings = saved


def is_disabled(function_name: str, settings: Mapping[str, str]) -> bool:
    """The host's `AzureWebJobs.<name>.Disabled` app setting: the function never runs (an HTTP
    route answers 404), as in https://learn.microsoft.com/azure/azure-functions/disable-function."""
    value = settings.get(f"AzureWebJobs.{function_name}.Disabled", "")
    return value.strip().lower() in ("true", "1")


def index_app(
    app: Any, settings: Mapping[str, str], route_prefix: str, default_auth: str = "FUNCTION"
) -> list[FunctionSpec]:
    """The app's functions as specs; unsupported bindings and missing settings fail clearly."""
    specs: list[FunctionSpec] = []
    for function in (
        f for f in app_functions(app) if not is_disabled(f.get_function_name(), settings)
    ):
        name = function.get_function_name()
        document = json.loads(function.get_function_json())
        bindings: list[dict[str, Any]] = document.get("bindings", [])
        triggers = [b for b in bindings if str(b.get("type", "")).endswith("Trigger")]
        if len(triggers) != 1:
            raise DevHostError(f"function {name!r} must have exactly one trigger")
        trigger = triggers[0]
        kind = str(trigger["type"])
        if kind not in {HTTP, QUEUE, TIMER}:
            raise DevHostError(
                f"function {name!r}: devhost runs httpTrigger, queueTrigger and timerTrigger "
                f"functions; {kind!r} is not supported"
            )
        user_func = function.get_user_function()
        parameters = inspect.signature(user_func).parameters
        spec = FunctionSpec(
            name=name,
            trigger=kind,
            trigger_arg=str(trigger["name"]),
            func=user_func,
            binding_json=document,
            is_async=inspect.iscoroutinefunction(user_func),
            accepts_context="context" in parameters,
        )
        bound = {spec.trigger_arg}
        for binding in bindings:
            if binding is trigger:
                continue
            btype, arg = str(binding.get("type")), str(binding.get("name"))
            if btype == "http" and kind == HTTP:
                continue
            if btype == "queue" and str(binding.get("direction", "")).upper() == "OUT":
                where = f"function {name!r} output {arg!r}"
                queue = resolve(str(binding["queueName"]), settings, where)
                validate_queue_name(queue, where)
                spec.outputs.append(QueueOutput(arg, queue, _connection(binding)))
                bound.add(arg)
                continue
            raise DevHostError(
                f"function {name!r}: binding {arg!r} of type {btype!r} is not supported by devhost"
            )
        missing = [
            p.name
            for p in parameters.values()
            if p.name not in bound
            and p.name != "context"
            and p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
        if missing:
            raise DevHostError(f"function {name!r}: parameters {missing} have no binding")
        where = f"function {name!r} trigger"
        if kind == HTTP:
            route_text = str(trigger.get("route") or name)
            spec.route = Route.compile(resolve(route_text, settings, where), route_prefix)
            methods = trigger.get("methods")
            spec.methods = tuple(str(m).upper() for m in methods) if methods else ALL_METHODS
            spec.auth_level = str(trigger.get("authLevel") or default_auth).upper()
        elif kind == QUEUE:
            spec.queue_name = validate_queue_name(
                resolve(str(trigger["queueName"]), settings, where), where
            )
            spec.connection = _connection(trigger)
        else:
            expression = resolve(str(trigger["schedule"]), settings, where)
            try:
                spec.schedule = CronSchedule.parse(expression)
            except CronError as error:
                raise DevHostError(f"{where}: {error}") from None
            spec.run_on_startup = bool(trigger.get("runOnStartup", False))
        specs.append(spec)
    return specs
