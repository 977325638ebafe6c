"""Cold paths import no SDK they do not use: checked in a fresh interpreter, by `sys.modules`.

`license-guard evaluate` reads a file and never talks to Graph or Azure; `import function_app`
runs on every cold start (the webhook's validation handshake included), so the Graph, Storage
and identity SDKs wait until a family first needs them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.demo_tenant import DEMO

ROOT = Path(__file__).resolve().parents[2]
SDKS = (
    "msgraph",
    "msgraph_core",
    "kiota_abstractions",
    "kiota_http",
    "azure.storage",
    "azure.data.tables",
    "azure.identity",
    "azure.monitor",
    "azure.core",
    "jinja2",
)

_PROBE = """
import runpy, sys
sys.argv = {argv!r}
{run}
sdks = {sdks!r}
loaded = sorted(m for m in sys.modules if any(m == s or m.startswith(s + ".") for s in sdks))
print("LOADED", ",".join(loaded))
"""


def _loaded_after(run: str, argv: list[str]) -> list[str]:
    code = _PROBE.format(run=run, argv=argv, sdks=SDKS)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("LOADED"))
    return [m for m in line.removeprefix("LOADED ").split(",") if m]


def test_evaluate_imports_no_graph_or_azure_sdk(tmp_path: Path) -> None:
    out = tmp_path / "evaluation.json"
    argv = ["license-guard", "evaluate", "--snapshot", str(DEMO), "--format", "json"]
    run = f"from shared.cli.main import main\nassert main({[*argv[1:], '--out', str(out)]!r}) == 0"
    assert _loaded_after(run, argv) == []
    assert out.stat().st_size > 1000  # the evaluation did run


def test_evaluate_table_imports_no_graph_or_azure_sdk(tmp_path: Path) -> None:
    out = tmp_path / "evaluation.txt"
    argv = ["license-guard", "evaluate", "--snapshot", str(DEMO), "--out", str(out)]
    run = f"from shared.cli.main import main\nassert main({argv[1:]!r}) == 0"
    assert _loaded_after(run, argv) == []
    assert out.stat().st_size > 100  # the evaluation did run


def test_function_app_import_loads_no_sdk_before_a_family_needs_it() -> None:
    run = "import function_app\nassert function_app.app.get_functions()"
    assert _loaded_after(run, ["function_app"]) == []
