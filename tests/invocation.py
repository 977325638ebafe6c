"""The `context` the Functions host passes a handler, for calling handlers as the host does."""

from __future__ import annotations

import functools
from typing import Any

import azure.functions as func
from azure.functions.decorators.function_app import Function


@functools.cache
def indexed_functions() -> dict[str, Function]:
    """`function_app.app`'s functions by name, as the host indexes them (once per process:
    `FunctionApp.get_functions` refuses a second call)."""
    import function_app
    from devhost.index import app_functions

    return {f.get_function_name(): f for f in app_functions(function_app.app)}


class InvocationContext(func.Context):
    """An invocation id and the function's name; the rest is unused by our handlers."""

    def __init__(self, function_name: str, invocation_id: str = "inv-test") -> None:
        self._function_name = function_name
        self._invocation_id = invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return "."

    @property
    def thread_local_storage(self) -> Any:
        return None

    @property
    def trace_context(self) -> Any:
        return None

    @property
    def retry_context(self) -> Any:
        return None
