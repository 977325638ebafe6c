"""`license-guard report html`: from a snapshot, from a live scan of graphsim on loopback (the
same numbers as from that scan's snapshot), with history from a directory or from the reports
container in Azurite; bad input exits 2 with one line."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from devhost.azurite import DEV_KEY, AzuriteEndpoints
from devhost.stack import GRAPH_TOKEN, load_tenant
from graphsim.server import serve_in_thread
from shared.adapters.blobs import blobs_for
from shared.cli.main import main
from shared.render.history import history_name
from tests.demo_tenant import DEMO
from tests.render.page import Page


@pytest.fixture(scope="module")
def graph() -> Iterator[str]:
    with serve_in_thread(load_tenant(), token=GRAPH_TOKEN) as url:
        yield url


def live(graph: str, *args: str) -> list[str]:
    return [*args, "--graph-base-url", graph, "--token", GRAPH_TOKEN, "--quiet"]


def headline(path: Path) -> dict[str, str]:
    page = Page(path.read_text(encoding="utf-8"))
    tiles = {t["data-health"]: t["data-value"] for t in page.with_attr("li", "data-health")}
    codes = {r["data-code"] for r in page.with_attr("tr", "data-code")}
    [body] = page.all("body")
    return {**tiles, "codes": ",".join(sorted(codes)), "users": body["data-users-scanned"]}


def test_a_snapshot_renders_to_one_file_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"

    status = main(["report", "html", "--snapshot", str(DEMO), "--out", str(out)])

    assert status == 0
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert capsys.readouterr().out.startswith(f"{out}: ")
    assert headline(out)["users"] == "23"


def test_a_live_scan_gives_the_numbers_of_its_own_snapshot(graph: str, tmp_path: Path) -> None:
    snapshot, from_file, from_live = (tmp_path / n for n in ("t.json", "a.html", "b.html"))
    assert main(live(graph, "snapshot", "--out", str(snapshot))) == 0

    assert main(["report", "html", "--snapshot", str(snapshot), "--out", str(from_file)]) == 0
    assert main(live(graph, "report", "html", "--live", "--out", str(from_live))) == 0

    assert headline(from_live) == headline(from_file)
    assert headline(from_live)["users"] == str(len(load_tenant()["users"]))


def test_history_from_a_directory_draws_the_trend(tmp_path: Path) -> None:
    history = tmp_path / "history"
    (history / "2026-11-30").mkdir(parents=True)
    for date, n in (("2026-11-29", 4), ("2026-11-30", 6)):
        doc = {"date": date, "findings_by_code": {"CountViolation": n}, "seat_forecast": []}
        (history / ("2026-11-30" if n == 6 else "") / f"{date}.json").write_text(json.dumps(doc))
    out = tmp_path / "r.html"

    status = main(
        ["report", "html", "--snapshot", str(DEMO), "--history", str(history), "--out", str(out)]
    )

    assert status == 0

    lines = Page(out.read_text()).with_attr("polyline", "data-series")
    assert {"data-series": "CountViolation", "data-values": "4,6"}.items() <= next(
        p for p in lines if p["data-series"] == "CountViolation"
    ).items()


def test_history_from_a_downloaded_nightly_folder_skips_its_other_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "nightly" / "2026-11-30" / "run-1"
    run.mkdir(parents=True)
    summary = {"date": "2026-11-30", "findings_by_code": {"CountViolation": 6}, "seat_forecast": []}
    (run / "summary.json").write_text(json.dumps(summary))
    (run / "config.json").write_text(json.dumps({"groups": [], "subscribedSkus": []}))
    (run / "migration.json").write_text(json.dumps({"removalCandidates": []}))
    out = tmp_path / "r.html"

    status = main(
        ["report", "html", "--snapshot", str(DEMO), "--history", str(tmp_path / "nightly"),
         "--out", str(out)]
    )  # fmt: skip

    assert status == 0
    [note] = [line for line in capsys.readouterr().err.splitlines() if "--history" in line]
    assert "note: --history: skipped 2 JSON file(s)" in note
    lines = Page(out.read_text()).with_attr("polyline", "data-series")
    assert any(p["data-series"] == "CountViolation" for p in lines)


def test_history_from_the_reports_container(
    azurite: AzuriteEndpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AzureWebJobsStorage", azurite.connection_string)
    blobs = blobs_for(azurite.connection_string)
    record = {"date": "2026-11-28", "findings_by_code": {"Other": 5}, "seat_forecast": []}
    blobs.put(history_name("2026-11-28"), orjson.dumps(record), content_type="application/json")
    out = tmp_path / "r.html"

    status = main(["report", "html", "--snapshot", str(DEMO), "--from-storage", "--out", str(out)])

    assert status == 0

    html = out.read_text()
    assert "changes are counted since the night of " in html
    assert any(p["data-series"] == "Other" for p in Page(html).with_attr("polyline", "data-series"))


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--history", "{tmp}/nope"], {}, "is not a directory"),
        (["--history", "{tmp}/bad"], {}, "'date' must be YYYY-MM-DD"),
        ([], {"SKU_PRICES": "EMS=ten"}, "SKU_PRICES: 'EMS=ten' is not PRODUCT=PRICE"),
        (["--rows-per-code", "0"], {}, "--rows-per-code must be at least 1"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    args: list[str],
    env: dict[str, str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "s.json").write_text('{"date": "yesterday", "findings_by_code": {}}')
    (tmp_path / "bad" / "config.json").write_text('{"groups": []}')  # none is a summary
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "r.html"

    status = main(
        ["report", "html", "--snapshot", str(DEMO), "--out", str(out)]
        + [a.replace("{tmp}", str(tmp_path)) for a in args]
    )
    err = capsys.readouterr().err

    assert status == 2
    assert message in err
    assert [line for line in err.splitlines() if "error:" in line] == [
        next(line for line in err.splitlines() if message in line)
    ]
    assert not out.exists()


def test_from_storage_without_storage_settings_is_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)

    status = main(
        ["report", "html", "--snapshot", str(DEMO), "--from-storage", "--out", str(tmp_path / "r")]
    )

    assert status == 2
    assert "--from-storage needs AzureWebJobsStorage" in capsys.readouterr().err


def test_the_storage_and_prices_come_from_local_settings_json_like_every_live_command(
    azurite: AzuriteEndpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    monkeypatch.delenv("SKU_PRICES", raising=False)
    values = {"AzureWebJobsStorage": azurite.connection_string, "SKU_PRICES": "EMS=10.6"}
    (tmp_path / "local.settings.json").write_text(json.dumps({"Values": values}))
    monkeypatch.chdir(tmp_path)
    blobs = blobs_for(azurite.connection_string)
    record = {"date": "2026-11-27", "findings_by_code": {"Other": 3}, "seat_forecast": []}
    blobs.put(history_name("2026-11-27"), orjson.dumps(record), content_type="application/json")

    assert (
        main(["report", "html", "--snapshot", str(DEMO), "--from-storage", "--out", "r.html"]) == 0
    )

    html = (tmp_path / "r.html").read_text()
    assert "changes are counted since the night of " in html
    assert "monthly cost from SKU_PRICES" in html


def test_storage_that_refuses_is_one_line_and_exit_2(
    azurite: AzuriteEndpoints,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """As a sign-in without Storage Blob Data Reader on the reports container is refused."""
    wrong_key = azurite.connection_string.replace(DEV_KEY, "A" * (len(DEV_KEY) - 2) + "==")
    monkeypatch.setenv("AzureWebJobsStorage", wrong_key)
    out = tmp_path / "r.html"

    status = main(["report", "html", "--snapshot", str(DEMO), "--from-storage", "--out", str(out)])
    err = capsys.readouterr().err.splitlines()

    assert status == 2
    assert len(err) == 1
    assert err[0].startswith("license-guard: error: storage: ")
    assert not out.exists()


def test_storage_that_cannot_be_reached_is_one_line_and_exit_2_within_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not ~80 s of the blob SDK's default retries: the endpoint is named at once."""
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    blob = f"http://127.0.0.1:{port}/devstoreaccount1"
    monkeypatch.setenv(
        "AzureWebJobsStorage",
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
        f"BlobEndpoint={blob};",
    )
    out = tmp_path / "r.html"
    start = time.monotonic()

    status = main(["report", "html", "--snapshot", str(DEMO), "--from-storage", "--out", str(out)])
    err = capsys.readouterr().err.splitlines()

    assert status == 2
    assert time.monotonic() - start < 10
    assert len(err) == 1
    assert err[0].startswith("license-guard: error: storage: ")
    assert f"port={port}" in err[0] or f":{port}" in err[0]
    assert "Connection refused" in err[0]
    assert not out.exists()


def test_an_out_path_that_cannot_be_written_is_named_before_the_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A live scan of a large tenant takes minutes: the admin learns of a mistyped --out
    directory first, not after it (here no Graph answers: the scan would fail otherwise)."""
    out = tmp_path / "no-such-dir" / "report.html"
    nobody = "http://127.0.0.1:9/v1.0"  # discard port: nothing listens

    status = main(live(nobody, "report", "html", "--live", "--out", str(out)))

    assert status == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"license-guard: error: {out}: No such file or directory"
    )


def test_a_one_user_snapshot_says_1_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = json.loads(DEMO.read_text())
    document["users"] = document["users"][:1]
    snapshot, out = tmp_path / "one.json", tmp_path / "report.html"
    snapshot.write_text(json.dumps(document))

    assert main(["report", "html", "--snapshot", str(snapshot), "--out", str(out)]) == 0
    assert capsys.readouterr().out.rstrip().endswith(" bytes, 1 user")
