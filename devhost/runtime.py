"""The state every trigger kind shares: the invocation log and counters, storage connections
and queue message encoding, and running one function with its queue outputs. `DevHost`
(devhost.host) builds it; the trigger mixins (HTTP, queues, timers, admin) work on it."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from azure.core.exceptions import ResourceExistsError

from devhost.config import DevHostError, HostOptions, MissingSettingError
from devhost.index import FunctionSpec, QueueOutput
from devhost.invocation import (
    Invocation,
    InvocationContext,
    OutputValue,
    error_text,
    now,
    queue_payloads,
)

if TYPE_CHECKING:
    # imported by the first queue client (in a worker thread, see `QueueTriggers._poll`): the
    # HTTP routes answer first, as on a cold Functions host, which does not load the Storage
    # SDK into the Python worker
    from azure.storage.queue import QueueClient

log = logging.getLogger("devhost")
_T = TypeVar("_T")


class HostRuntime:
    """Shared state and the invocation machinery; see the module doc."""

    settings: dict[str, str]
    _lookup: Mapping[str, str]
    options: HostOptions
    functions: dict[str, FunctionSpec]
    _connections: dict[str, str]
    host: str
    port: int
    function_key: str
    master_key: str
    function_keys: dict[str, str]
    poll_interval: float
    max_poll_interval: float
    shutdown_grace: float
    threads: int
    _state: threading.Lock
    _invocations: list[Invocation]
    _counters: dict[str, Counter[str]]
    _started_count: int
    _ended_count: int
    _receiving: int
    _retry_due: float
    _thread: threading.Thread | None
    _loop: asyncio.AbstractEventLoop | None
    _executor: ThreadPoolExecutor | None
    _stop_event: asyncio.Event | None
    _ready: threading.Event
    _startup_error: BaseException | None
    _wake: dict[tuple[str, str], asyncio.Event]
    _tasks: set[asyncio.Task[Any]]
    _created_queues: set[tuple[str, str]]

    @property
    def base_url(self) -> str:
        if not self._ready.is_set():
            raise RuntimeError("the devhost is not started")
        return f"http://{self.host}:{self.port}"

    # ---------------------------------------------------------------- storage
    def _connection_string(self, setting: str, where: str) -> str:
        if setting not in self._connections:
            value = self._lookup.get(setting)
            if value is None:
                if any(k.startswith(f"{setting}__") for k in self._lookup):
                    raise DevHostError(
                        f"{where}: connection {setting!r} is identity-based ({setting}__*); "
                        "devhost needs a connection string (e.g. Azurite's)"
                    )
                raise MissingSettingError(setting, f"{where} connection")
            self._connections[setting] = value
        return self._connections[setting]

    def _client(self, connection: str, queue: str) -> QueueClient:
        from azure.storage.queue import QueueClient  # noqa: PLC0415 - see the imports

        return QueueClient.from_connection_string(self._connections[connection], queue)

    def _encode(self, payload: bytes) -> str:
        if self.options.queues.message_encoding == "base64":
            return base64.b64encode(payload).decode("ascii")
        return payload.decode("utf-8")

    def _decode(self, content: str) -> bytes:
        if self.options.queues.message_encoding == "base64":
            try:
                return base64.b64decode(content.encode("ascii"), validate=True)
            except (binascii.Error, UnicodeEncodeError):
                raise ValueError(
                    "the message is not Base64 (host.json queues.messageEncoding is base64); "
                    "send it with TextBase64EncodePolicy"
                ) from None
        return content.encode("utf-8")

    # ---------------------------------------------------------------- bookkeeping
    def _begin(self, spec: FunctionSpec, **details: Any) -> Invocation:
        record = Invocation(uuid.uuid4().hex, spec.name, spec.trigger_kind, now(), **details)
        with self._state:
            self._started_count += 1
            self._invocations.append(record)
        extra = "".join(f", {k}={v}" for k, v in details.items() if v is not None)
        log.info(
            "Executing '%s' (trigger=%s, id=%s%s)", spec.name, record.trigger, record.id, extra
        )
        return record

    def _end(self, record: Invocation, error: BaseException | None = None, **extra: Any) -> None:
        with self._state:
            record.ended = now()
            record.outcome = "failed" if error is not None else "succeeded"
            record.error = None if error is None else error_text(error)
            for key, value in extra.items():
                setattr(record, key, value)
            counter = self._counters[record.function]
            counter[record.outcome] += 1
            if record.poisoned:
                counter["poisoned"] += 1
            self._ended_count += 1
        ms = (record.ended - record.started).total_seconds() * 1000
        if error is None:
            log.info("Executed '%s' (Succeeded, id=%s, %.0f ms)", record.function, record.id, ms)
        else:
            poison = " -> moved to poison queue" if record.poisoned else ""
            log.info(
                "Executed '%s' (Failed, id=%s, %.0f ms): %s%s",
                record.function,
                record.id,
                ms,
                record.error,
                poison,
            )

    @property
    def invocations(self) -> list[Invocation]:
        """A copy of the invocation log, oldest first."""
        with self._state:
            return list(self._invocations)

    def invocations_of(self, name: str) -> list[Invocation]:
        return [i for i in self.invocations if i.function == name]

    @property
    def counters(self) -> dict[str, dict[str, int]]:
        """Per function: succeeded, failed and poisoned counts."""
        with self._state:
            return {
                name: {k: c[k] for k in ("succeeded", "failed", "poisoned")}
                for name, c in self._counters.items()
            }

    @property
    def in_flight(self) -> int:
        with self._state:
            return self._started_count - self._ended_count

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---------------------------------------------------------------- invoking
    async def _call(self, spec: FunctionSpec, trigger_value: Any, record: Invocation) -> Any:
        """Run the user function; on success flush its queue outputs. Raises on failure."""
        outs = {o.arg_name: OutputValue() for o in spec.outputs if o.arg_name != "$return"}
        kwargs: dict[str, Any] = {spec.trigger_arg: trigger_value, **outs}
        if spec.accepts_context:
            kwargs["context"] = InvocationContext(spec.name, record.id)
        if spec.is_async:
            result = await spec.func(**kwargs)
        else:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                self._executor, functools.partial(spec.func, **kwargs)
            )
        for out in spec.outputs:
            value = result if out.arg_name == "$return" else outs[out.arg_name].get()
            await self._send(out, queue_payloads(value, f"{spec.name} output {out.arg_name!r}"))
        return result

    async def _send(self, out: QueueOutput, payloads: list[bytes]) -> None:
        if not payloads:
            return
        messages = [self._encode(p) for p in payloads]
        key = (out.connection, out.queue_name)

        def send() -> None:
            client = self._client(out.connection, out.queue_name)
            if key not in self._created_queues:
                with contextlib.suppress(ResourceExistsError):
                    client.create_queue()
                self._created_queues.add(key)
            for message in messages:
                client.send_message(message)

        await asyncio.to_thread(send)
        wake = self._wake.get(key)  # like the host's SharedQueueWatcher: poll it now
        if wake is not None:
            wake.set()

    def _on_loop(self, coro: Coroutine[Any, Any, _T], timeout: float) -> _T:
        loop = self._loop
        if loop is None or not self._ready.is_set():
            coro.close()
            raise RuntimeError("the devhost is not started")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)
