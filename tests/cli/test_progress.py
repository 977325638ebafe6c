"""Progress on standard error: totals, rate and ETA; a line every 10 s when not a terminal."""

from __future__ import annotations

import io

from shared.cli.progress import Progress


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_redirected_output_gets_one_plain_line_per_ten_seconds() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(False, stream, clock=clock)

    for second in range(0, 31):
        clock.now = float(second)
        progress("users", second * 100, 3000)

    lines = stream.getvalue().splitlines()
    assert lines == [
        "users: 0/3000, 0%",
        "users: 1000/3000, 33%, 100/s, ETA 20s",
        "users: 2000/3000, 66%, 100/s, ETA 10s",
        "users: 3000/3000, 100%, 100/s",
    ]


def test_without_a_total_the_line_shows_the_count_and_rate() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(False, stream, clock=clock)
    progress("users", 0, None)
    clock.now = 12.0

    progress("users", 2400, None)

    assert stream.getvalue().splitlines()[-1] == "users: 2400, 200/s"


def test_a_terminal_gets_one_line_redrawn_with_the_eta() -> None:
    stream, clock = Terminal(), Clock()
    progress = Progress(False, stream, clock=clock)
    progress("groups", 0, 120)
    clock.now = 2.0

    progress("groups", 60, 120)
    progress.close()

    out = stream.getvalue()
    assert "\rgroups: 60/120, 50%, 30/s, ETA 2s" in out
    assert out.endswith("\n")


def test_quiet_writes_nothing() -> None:
    stream = io.StringIO()
    progress = Progress(True, stream)

    progress("users", 10, 100)
    progress.close()

    assert stream.getvalue() == ""


def test_no_rate_is_shown_before_a_second_has_passed() -> None:
    stream, clock = io.StringIO(), Clock()
    progress = Progress(False, stream, clock=clock)
    progress("groups", 0, 60)
    clock.now = 0.01

    progress("groups", 60, 60)

    assert stream.getvalue().splitlines() == ["groups: 0/60, 0%", "groups: 60/60, 100%"]


def test_a_total_given_once_is_kept_for_the_phase() -> None:
    """The scan announces the users total (`users: 0/N`) before the phase; the pages then
    report only what is done."""
    stream, clock = io.StringIO(), Clock()
    progress = Progress(False, stream, clock=clock)
    progress("users", 0, 3000)
    clock.now = 30.0

    progress("users", 3000, None)

    assert stream.getvalue().splitlines() == ["users: 0/3000, 0%", "users: 3000/3000, 100%, 100/s"]


def test_a_count_below_what_came_grows_with_the_users_done() -> None:
    """Graph's count is eventually consistent: users created since do not show 104%."""
    stream, clock = io.StringIO(), Clock()
    progress = Progress(False, stream, clock=clock)
    progress("users", 0, 100)

    progress("users", 104, None)

    assert stream.getvalue().splitlines()[-1] == "users: 104/104, 100%"


def test_a_total_is_kept_per_phase() -> None:
    stream = io.StringIO()
    progress = Progress(False, stream, interval=0.0, clock=Clock())
    progress("users", 0, 50)

    progress("groups", 3, None)

    assert stream.getvalue().splitlines()[-1] == "groups: 3"
