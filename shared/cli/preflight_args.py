"""`license-guard preflight`'s arguments; the checks (`shared.cli.preflight`, which loads the Graph
and storage SDKs) are imported only when the command runs, so other commands don't pay for them.
"""

from __future__ import annotations

import argparse

from shared.cli.command import Command
from shared.platform.settings import MODES


def run_preflight_command(args: argparse.Namespace) -> int:
    from shared.cli.preflight import run_preflight  # noqa: PLC0415 - the SDKs only when asked

    return run_preflight(args)


def _preflight_flags(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--mode", choices=MODES, help="check for this mode (default: LICENSE_GUARD_MODE)"
    )
    cmd.add_argument(
        "--principal-id",
        metavar="ID",
        help="as an admin: check the app roles granted to this managed identity (its object id, "
        "azd env get-value AZURE_IDENTITY_PRINCIPAL_ID) instead of the token's own roles",
    )
    cmd.add_argument(
        "--max-queue-age",
        type=int,
        metavar="MINUTES",
        help="fail the queue backlog check when a work queue's oldest waiting message is older "
        "(default 60)",
    )
    cmd.add_argument(
        "--max-queue-messages",
        type=int,
        metavar="N",
        help="fail the queue backlog check when more messages wait on one work queue "
        "(default 10000)",
    )


PREFLIGHT = Command(
    "preflight",
    help="check a deployment is ready: identity, Graph permissions, storage, webhook",
    description=(
        "Sign in as the service would and check, harmlessly: the token's identity, each "
        "Graph permission the mode needs, access to every queue/table/container, the Graph "
        "subscription the keeper keeps, the work queues' backlog, the clientState secret and "
        "that the notification URLs answer Graph's validation. "
        "Settings come from the environment (the app settings)."
    ),
    epilog="exit status: 0 all checks passed, 1 a check failed, 2 bad input",
    run=run_preflight_command,
    flags=_preflight_flags,
    live=True,
)
