"""Queue: the on-premises sync server says a sync cycle completed."""

from __future__ import annotations

import azure.functions as func

from functions._queue import decode_as
from shared.adapters.queues import SYNC_COMPLETED
from shared.bootstrap import services
from shared.logging import bind_correlation, bind_invocation
from shared.messages import SyncCompleted
from shared.service.watch import on_sync_completed

bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name=SYNC_COMPLETED, connection="AzureWebJobsStorage")
def sync_completed(msg: func.QueueMessage, context: func.Context) -> None:
    bind_invocation(context)
    message = decode_as(msg, SyncCompleted)
    with bind_correlation(message.correlation_id):
        on_sync_completed(services(), message)
