"""A GRAPH_BASE_URL that answers 200 with something other than JSON (a proxy's sign-in page,
a web server at the wrong URL): the live commands exit 2 with one line naming it, no
traceback, and preflight fails its Graph checks instead of passing them on the status alone."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.cli.main import EXIT_BAD_INPUT, main
from shared.cli.preflight import run_preflight
from tests.loopback import QuietHandler, serving

PAGE = b"<html><body>Sign in to continue to the proxy</body></html>"


class SignInPage(QuietHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server calls it by this name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def do_POST(self) -> None:  # noqa: N802 - likewise
        self.do_GET()


@pytest.fixture
def proxy() -> Iterator[str]:
    with serving(SignInPage, poll_interval=0.05) as url:
        yield f"{url}/v1.0"


def test_a_snapshot_of_a_url_answering_html_exits_2_with_one_line(
    proxy: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tenant.json"
    status = main(["snapshot", "--quiet", "--out", str(out), "--graph-base-url", proxy,
                   "--token", "t"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()

    assert status == EXIT_BAD_INPUT
    assert len(err) == 1, err
    assert err[0].startswith("license-guard: error: cannot read the tenant: Graph 502")
    assert "not JSON" in err[0]
    assert "an HTML page" in err[0]
    assert not out.exists()


def test_preflight_does_not_pass_graph_reads_answered_with_html(proxy: str) -> None:
    args = argparse.Namespace(graph_base_url=proxy, token="t", mode="observe")
    out = io.StringIO()
    status = run_preflight(args, env={}, out=out)
    lines = [line for line in out.getvalue().splitlines() if "Graph User.Read.All" in line]

    assert status == 1
    assert lines
    assert lines[0].lstrip().startswith("✗"), lines[0]
    assert "not JSON" in lines[0]
