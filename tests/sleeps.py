"""A sleep for code that waits (retries, Retry-After, backoff): the test sees every wait it was
asked for and none of them takes time."""

from __future__ import annotations

import asyncio


class Sleeps:
    """Records how long it was asked to wait, yields to the event loop once and returns."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        await asyncio.sleep(0)
