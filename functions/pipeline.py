"""Queue workers: group changes → recompute users → reprocess one user."""

from __future__ import annotations

import azure.functions as func

from functions.decoding import decode_as
from functions.running import run_on_message
from shared.platform.logging import bind_invocation
from shared.ports.messages import DeltaSweep, GroupsChanged, RecomputeUsers, ReprocessUser
from shared.ports.queues import GROUPS_CHANGED, RECOMPUTE_USERS, REPROCESS_USER

bp = func.Blueprint()
STORAGE = "AzureWebJobsStorage"


@bp.queue_trigger(arg_name="msg", queue_name=GROUPS_CHANGED, connection=STORAGE)
def group_changes(msg: func.QueueMessage, context: func.Context) -> None:
    bind_invocation(context)
    from shared.service.groups import handle_group_changes  # noqa: PLC0415 - on first use

    run_on_message(lambda: decode_as(msg, GroupsChanged, DeltaSweep), handle_group_changes)


@bp.queue_trigger(arg_name="msg", queue_name=RECOMPUTE_USERS, connection=STORAGE)
def recompute_users(msg: func.QueueMessage, context: func.Context) -> None:
    bind_invocation(context)
    from shared.service.users import recompute_users as recompute  # noqa: PLC0415 - on first use

    run_on_message(lambda: decode_as(msg, RecomputeUsers), recompute)


@bp.queue_trigger(arg_name="msg", queue_name=REPROCESS_USER, connection=STORAGE)
def reprocess_user(msg: func.QueueMessage, context: func.Context) -> None:
    bind_invocation(context)
    from shared.service.reprocessing import reprocess_user as reprocess  # noqa: PLC0415 - on first use

    run_on_message(lambda: decode_as(msg, ReprocessUser), reprocess)
