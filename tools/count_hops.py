"""Count the frames from the change-notification webhook to the reprocess call (issue #11's proof).

Runs the four functions on that way as the host would, with in-memory services (as
tests/functions/test_handlers.py does): `graph_notifications` → `group_changes` →
`recompute_users` → `reprocess_user`. At each boundary call (a queue send, Graph's
reprocessLicenseAssignment) it records the project's frames on the stack, from the handler
down to the caller of the port. Hops are those frames summed over the four handlers; files are
the distinct files they are in. Run from the repo root: `python tools/count_hops.py`.
"""

from __future__ import annotations

import os
import sys
from types import FrameType
from typing import Any

sys.path.insert(0, os.getcwd())

from shared.bootstrap import use
from shared.ports.messages import RecomputeUsers
from shared.ports.queues import GROUPS_CHANGED, RECOMPUTE_USERS, REPROCESS_USER
from tests.demo_tenant import E3_BASE, EMS, IRVIN
from tests.functions import test_handlers as handlers
from tests.service.world import body, build_world, notification

ROOT = os.getcwd() + os.sep
OURS = ("functions" + os.sep, "shared" + os.sep, "function_app.py")
FAKES = {"InMemoryQueue", "FakeDirectory"}
BOUNDARY = {"send", "put_raw", "reprocess_license_assignment"}
Chain = list[tuple[str, str]]


def _ours(frame: FrameType) -> bool:
    path = frame.f_code.co_filename
    return (
        path.startswith(ROOT)
        and path[len(ROOT) :].startswith(OURS)
        and frame.f_code.co_qualname.split(".")[0] not in FAKES
    )


def _chains_of(name: str, arg: object) -> list[Chain]:
    """The project's frames above every boundary call while the named function runs."""
    chains: list[Chain] = []

    def profile(frame: FrameType, event: str, _: Any) -> None:
        code = frame.f_code
        if event != "call" or code.co_name not in BOUNDARY:
            return
        if code.co_qualname.split(".")[0] not in FAKES:
            return
        chain: Chain = []
        caller = frame.f_back
        while caller is not None:  # a coroutine's frames lead back through the event loop
            if _ours(caller):
                chain.append((caller.f_code.co_filename[len(ROOT) :], caller.f_code.co_qualname))
            caller = caller.f_back
        chains.append(chain[::-1])

    sys.setprofile(profile)
    try:
        handlers.call(name, arg)
    finally:
        sys.setprofile(None)
    return chains


def main() -> None:
    world = build_world(LICENSE_GUARD_MODE="act")
    use(world.svc)
    try:
        [ems] = [s for s in world.directory.skus if s["skuId"] == EMS]
        ems["prepaidUnits"]["enabled"] = ems["consumedUnits"] + 1  # a seat frees up: reprocess
        world.subscribe()
        longest: dict[str, Chain] = {}
        notified = handlers.post("graph/notifications", body(notification(E3_BASE)))
        longest["graph_notifications"] = max(_chains_of("graph_notifications", notified), key=len)
        [sweep] = world.messages(GROUPS_CHANGED)
        longest["group_changes"] = max(_chains_of("group_changes", handlers.queued(sweep)), key=len)
        world.messages(RECOMPUTE_USERS)
        recompute = RecomputeUsers(user_ids=(IRVIN,), reason="hops", correlation_id="hops")
        chains = _chains_of("recompute_users", handlers.queued(recompute))
        longest["recompute_users"] = max(chains, key=len)
        [reprocess] = world.messages(REPROCESS_USER)
        longest["reprocess_user"] = max(
            _chains_of("reprocess_user", handlers.queued(reprocess)), key=len
        )
        if world.directory.reprocessed != [IRVIN]:
            raise SystemExit(f"the way did not end in a reprocess: {world.directory.reprocessed}")
    finally:
        use(None)
    files: set[str] = set()
    for name, chain in longest.items():
        print(f"{name}: {len(chain)} hops")
        for path, function in chain:
            print(f"    {path}:{function}")
        files |= {path for path, _ in chain}
    total = sum(len(chain) for chain in longest.values())
    print(f"total: {total} hops over {len(longest)} functions, {len(files)} files")


if __name__ == "__main__":
    main()
