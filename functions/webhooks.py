"""HTTP: Graph's change and lifecycle notifications (the function key rides in the URL); and
the queue worker that acts on the lifecycle events.

The service (storage) is imported on the first notification, not at load: the validation
handshake, the first request of every subscription, must answer within seconds of a cold
start. Both routes only vet and enqueue (a sync queue send, with `intake_services`: no Graph
client is built for them) and answer 202: change notifications go to `groups-changed`,
lifecycle events (on either route: Graph lets one URL serve both) to `subscription-lifecycle`.
Graph asks for the answer first and the work after; acting on a lifecycle event calls Graph (a
re-created subscription makes Graph call our validation endpoint back before it answers), so
`subscription_lifecycle`, a queue worker, does that.
"""

from __future__ import annotations

from collections.abc import Callable

import azure.functions as func

from functions.decoding import decode_as
from functions.running import run_on_message
from shared.platform.logging import bind_invocation
from shared.ports.messages import LifecycleEvent
from shared.ports.queues import SUBSCRIPTION_LIFECYCLE
from shared.service.intake.webhook_protocol import (
    MalformedNotification,
    NotificationTooLarge,
    validation_response_text,
)

bp = func.Blueprint()


def _handshake(req: func.HttpRequest) -> func.HttpResponse | None:
    """Graph validates each URL by POSTing ?validationToken=…: echo it, as plain text, fast."""
    token = req.params.get("validationToken")
    if token is None:
        return None
    return func.HttpResponse(
        validation_response_text(token),
        mimetype="text/plain",
        headers={"X-Content-Type-Options": "nosniff"},  # never rendered as HTML by a browser
    )


def _answer(req: func.HttpRequest, accept: Callable[[bytes], object]) -> func.HttpResponse:
    """Both routes' answer: the validation handshake, else `accept(body)` and 202, or the
    notification's rejection (413 when too large, else 400)."""
    if (handshake := _handshake(req)) is not None:
        return handshake
    try:
        accept(req.get_body())
    except (MalformedNotification, NotificationTooLarge) as exc:
        status = 413 if isinstance(exc, NotificationTooLarge) else 400
        return func.HttpResponse(str(exc), status_code=status, mimetype="text/plain")
    return func.HttpResponse(status_code=202)


def _accept(body: bytes) -> None:
    """Either route: vet, enqueue the changes and the lifecycle events; no Graph call."""
    from shared.bootstrap import intake_services  # noqa: PLC0415 - on first use (cold start)
    from shared.service.intake.notifications import accept_change_notifications  # noqa: PLC0415

    accept_change_notifications(intake_services(), body)


@bp.route(route="graph/notifications", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def graph_notifications(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    bind_invocation(context)
    return _answer(req, _accept)


@bp.route(route="graph/lifecycle", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def graph_lifecycle(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    bind_invocation(context)
    return _answer(req, _accept)


@bp.queue_trigger(
    arg_name="msg", queue_name=SUBSCRIPTION_LIFECYCLE, connection="AzureWebJobsStorage"
)
def subscription_lifecycle(msg: func.QueueMessage, context: func.Context) -> None:
    bind_invocation(context)
    from shared.service.subscriptions import on_lifecycle_event  # noqa: PLC0415 - on first use

    run_on_message(lambda: decode_as(msg, LifecycleEvent), on_lifecycle_event)
