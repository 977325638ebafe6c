"""The on-premises sync server says a sync cycle completed: over HTTPS, or on the queue."""

from __future__ import annotations

from typing import TYPE_CHECKING

import azure.functions as func
import orjson

from functions.decoding import decode_as
from functions.running import run_on_message
from shared.platform.logging import bind_invocation
from shared.ports.messages import SyncCompleted
from shared.ports.queues import SYNC_COMPLETED

if TYPE_CHECKING:
    from shared.service.services import Services

bp = func.Blueprint()


def _json(status: int, body: dict[str, str]) -> func.HttpResponse:
    return func.HttpResponse(orjson.dumps(body), status_code=status, mimetype="application/json")


@bp.route(route="directory/sync-completed", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def sync_completed_http(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    bind_invocation(context)  # its own function key (onprem-sync-key); 202 once queued
    from azure.core.exceptions import AzureError  # noqa: PLC0415 - on first use (not at cold start)

    from shared.bootstrap import services  # noqa: PLC0415
    from shared.service.intake.directory_sync import SyncRejected, accept_sync_completed  # noqa: PLC0415

    try:
        msg = accept_sync_completed(services(), req.get_body(), req.headers.get("content-type"))
    except SyncRejected as rejected:
        return _json(rejected.status, {"error": rejected.code, "message": str(rejected)})
    except AzureError:  # storage unreachable: nothing was queued, the sender retries
        return _json(503, {"error": "unavailable", "message": "could not queue; retry later"})
    return _json(202, {"status": "accepted", "correlationId": msg.correlation_id})


@bp.queue_trigger(arg_name="msg", queue_name=SYNC_COMPLETED, connection="AzureWebJobsStorage")
def sync_completed(msg: func.QueueMessage, context: func.Context) -> None:
    bind_invocation(context)
    from shared.service.watch import on_sync_completed  # noqa: PLC0415 - on first use

    async def record(services: Services, message: SyncCompleted) -> None:
        on_sync_completed(services, message)  # storage only: the thread's own loop, as any job

    # as every queue's: a failure is logged (`queue.message_failed`) under the correlation id
    run_on_message(lambda: decode_as(msg, SyncCompleted), record)
