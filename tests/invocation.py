"""The `context` the Functions host passes a handler, for calling handlers as the host does."""

from __future__ import annotations

import functools

import azure.functions as func
from azure.functions.decorators.function_app import Function

from devhost.host import InvocationContext


@functools.cache
def indexed_functions() -> dict[str, Function]:
    """`function_app.app`'s functions by name, as the host indexes them (once per process:
    `FunctionApp.get_functions` refuses a second call)."""
    import function_app
    from devhost.index import app_functions

    return {f.get_function_name(): f for f in app_functions(function_app.app)}


def invocation_context(function_name: str, invocation_id: str = "inv-test") -> func.Context:
    """The context devhost passes, so tests call handlers exactly as the local host does."""
    return InvocationContext(function_name, invocation_id)
