"""Run azure-functions-doctor on what `azd deploy` ships, and fail on anything unexpected.

    python tools/doctor.py            (make doctor; make lint runs it)

The doctor checks a project directory. Pointed at the repository it also scans tests, graphsim
and devhost (never deployed, see .funcignore) and reads app settings only from
local.settings.json or ARM JSON, not from our Bicep. So this stages the deployable files (the
repository minus .funcignore) in a temporary directory, writes the app settings the Bicep
defines (infra/app/api.bicep, with sample values as in tests/infra) into its
local.settings.json, and runs the full profile for Flex Consumption.

Every check must pass or be skipped, except EXPECTED below, each with its reason; any other
warning or failure fails the target and is printed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.infra.test_infra_crosscheck import sample_env  # noqa: E402

EXPECTED = {
    "check_func_cli": "Core Tools (func) cannot be installed here: it downloads its host binary",
    "check_func_core_tools_version": "same: no Core Tools, so no version to check",
    "check_blueprint_registration": (
        "function_app.py registers each blueprint in a loop (app.register_functions(family.bp)),"
        " which this static check does not follow; devhost and tests/functions load them all"
    ),
    "check_native_dependency_risk": (
        "orjson ships manylinux wheels; the Flex remote build installs them on Linux"
    ),
}


def deployable_files() -> list[Path]:
    patterns = [p for p in (ROOT / ".funcignore").read_text().split() if p]
    git = shutil.which("git") or "git"
    tracked = subprocess.run(  # noqa: S603 - fixed arguments, no user input
        [git, "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    def ignored(path: str) -> bool:
        parts = path.split("/")
        return any(fnmatch.fnmatch(part, p) for p in patterns for part in parts)

    return [ROOT / p for p in tracked if not ignored(p) and (ROOT / p).is_file()]


def main() -> int:
    doctor = Path(sys.executable).parent / "azure-functions-doctor"
    with tempfile.TemporaryDirectory(prefix="doctor-") as tmp:
        stage = Path(tmp)
        for path in deployable_files():
            target = stage / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        settings = {"IsEncrypted": False, "Values": sample_env()}
        (stage / "local.settings.json").write_text(json.dumps(settings, indent=2))
        env = {**os.environ, "VIRTUAL_ENV": str(Path(sys.executable).parents[1])}
        args = ["doctor", "--path", str(stage), "--profile", "full"]
        args += ["--hosting-plan", "flex-consumption", "--format", "json"]
        run = subprocess.run(  # noqa: S603 - our own venv's doctor, fixed arguments
            [str(doctor), *args], capture_output=True, text=True, env=env, check=False
        )
        if not run.stdout.strip():
            print(run.stderr, file=sys.stderr)
            return 1
        report = json.loads(run.stdout)
    items = [item for section in report["results"] for item in section["items"]]
    passed = [i for i in items if i["status"] in ("pass", "skip")]
    expected = [
        i for i in items if i["status"] not in ("pass", "skip") and i["rule_id"] in EXPECTED
    ]
    other = [i for i in items if i["status"] not in ("pass", "skip") and i not in expected]
    version = report["metadata"]["tool_version"]
    print(f"azure-functions-doctor {version}: {len(passed)} passed or skipped")
    for item in expected:
        print(f"  expected {item['status']}: {item['rule_id']} ({EXPECTED[item['rule_id']]})")
    for item in other:
        print(f"  UNEXPECTED {item['status']}: {item['rule_id']}: {item['value']}")
    return 1 if other or run.returncode not in (0, 1) else 0


if __name__ == "__main__":
    raise SystemExit(main())
