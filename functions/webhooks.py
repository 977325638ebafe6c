"""HTTP: Graph's change and lifecycle notifications (the function key rides in the URL).

The service (storage, Graph) is imported on the first notification, not at load: the
validation handshake, the first request of every subscription, must answer within seconds of
a cold start. Both handlers are synchronous (the host's thread pool), as every handler is: the
change notifications only enqueue (a sync queue send, with `intake_services`: no Graph client
is built for them), lifecycle events (on either route) also call Graph, on the thread's own
loop (`functions.running`).
"""

from __future__ import annotations

from collections.abc import Callable

import azure.functions as func

from functions.running import run_job
from shared.platform.logging import bind_invocation
from shared.service.intake.webhook_protocol import (
    MalformedNotification,
    NotificationDeferred,
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
    notification's rejection (413 when too large, else 400), or 503 when it must wait (Graph
    delivers it again)."""
    if (handshake := _handshake(req)) is not None:
        return handshake
    try:
        accept(req.get_body())
    except (MalformedNotification, NotificationTooLarge) as exc:
        status = 413 if isinstance(exc, NotificationTooLarge) else 400
        return func.HttpResponse(str(exc), status_code=status, mimetype="text/plain")
    except NotificationDeferred as exc:
        return func.HttpResponse(
            str(exc),
            status_code=503,
            mimetype="text/plain",
            headers={"Retry-After": str(exc.retry_after_seconds)},
        )
    return func.HttpResponse(status_code=202)


def _accept_changes(body: bytes) -> None:
    """Change notifications only enqueue: the sync queue send, no event loop. Lifecycle events
    come here too when the subscription's lifecycle URL is this one (Graph allows it): they are
    acted on as the lifecycle route does, after the changes are queued."""
    from shared.bootstrap import intake_services  # noqa: PLC0415 - on first use (cold start)
    from shared.service.intake.notifications import (  # noqa: PLC0415
        accept_change_notifications,
        act_on_lifecycle_events,
    )

    # No Graph client for the changes (storage only); lifecycle events get theirs in run_job.
    vetted = accept_change_notifications(intake_services(), body).vetted
    if vetted.lifecycle:
        run_job(lambda svc: act_on_lifecycle_events(svc, vetted))


def _accept_lifecycle(body: bytes) -> None:
    """Lifecycle events also call Graph: on the thread's own loop. Change notifications
    posted here (one URL for both, this one) are queued as on the change route."""
    from shared.service.intake.notifications import accept_lifecycle_notifications  # noqa: PLC0415

    run_job(lambda services: accept_lifecycle_notifications(services, body))


@bp.route(route="graph/notifications", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def graph_notifications(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    bind_invocation(context)
    return _answer(req, _accept_changes)


@bp.route(route="graph/lifecycle", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def graph_lifecycle(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    bind_invocation(context)
    return _answer(req, _accept_lifecycle)
