"""One read's walk through a collection's pages, one `users_page` / `group_members_page` call
at a time: the nextLinks it followed, so a cycle (A -> B -> A) stops at the repeated link.

Each call only checks that a page does not name itself; a server whose pages link round in a
longer cycle (a stuck skiptoken: microsoftgraph/microsoft-graph-docs-contrib#7849) kept a
scan reading, and the nightly settling and counting the same users again, until the process
was killed or its time budget ran out (then the next firing resumed inside the cycle). The
links one read holds are as many as its pages (about 1,000 for a million users).
"""

from __future__ import annotations

from shared.ports.directory import DirectoryError


def next_link_repeated() -> DirectoryError:
    """Graph sent a nextLink this read followed before: 502, retried later, not followed."""
    return DirectoryError(
        502,
        "NextLinkRepeated",
        "Graph sent a nextLink it had sent before (the same page again): paging stopped",
    )


class FollowedLinks:
    """The nextLinks one read of a collection has followed (or is about to)."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def follow(self, link: str | None) -> str | None:
        """`link`, noted as followed; `next_link_repeated` raised when it was before."""
        if link is None:
            return None
        if link in self._seen:
            raise next_link_repeated()
        self._seen.add(link)
        return link
