"""infra/scripts/postprovision.sh run as azd runs it, with `az` and `azd` stand-ins on PATH that
answer from (and write to) a JSON file: the function keys, the app's host and the Key Vault
secrets. What the hook leaves in Key Vault is what the app's NOTIFICATION_URL and
LIFECYCLE_NOTIFICATION_URL references resolve to."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "infra" / "scripts" / "postprovision.sh"
HOST = "func-lg.azurewebsites.net"

STAND_IN = """#!{python}
import json, sys
state_file = {state!r}
state = json.load(open(state_file))
args = sys.argv[1:]
state["calls"].append([{tool!r}, *args])

def option(name):
    return args[args.index(name) + 1] if name in args else None

def value(name):
    # an argument's value as az reads it: `@-` is standard input, `@FILE` a file's text (a
    # trailing newline dropped), anything else itself
    given = option(name)
    if given == "@-":
        text = sys.stdin.read()
    elif given and given.startswith("@"):
        text = open(given[1:], encoding="utf-8").read()
    else:
        return given
    state["calls"][-1].append(name + "<-" + text)
    return text.rstrip("\\n")

out = ""
if args[:2] == ["functionapp", "show"]:
    out = state["host"]
elif args[:4] == ["functionapp", "function", "keys", "list"]:
    out = state["functionKeys"].get(option("--function-name"), "")
elif args[:3] == ["keyvault", "secret", "show"]:
    out = state["secrets"].get(option("-n"), "")
elif args[:3] == ["keyvault", "secret", "set"]:
    state["secrets"][option("-n")] = value("--value")
elif args[:4] == ["functionapp", "function", "keys", "set"]:
    state.setdefault("keysSet", {{}})[option("--key-name")] = value("--key-value")
elif args[:3] == ["functionapp", "keys", "list"]:
    out = state.get("masterKey", "")
if args[0:1] != ["functionapp"] and args[0:1] != ["keyvault"] and "@-" in args:  # curl -H @-
    state["calls"][-1].append("stdin:" + sys.stdin.read())
json.dump(state, open(state_file, "w"))
print(out)
"""


def run_hook(
    tmp_path: Path,
    state: dict[str, object],
    *,
    kick_keeper: bool = False,
    sync_function_deployed: bool = True,
) -> dict[str, object]:
    """Run the hook with `az`/`azd`/`curl` stand-ins; the state they leave."""
    state_file = tmp_path / "state.json"
    state_file.write_text(json.dumps({**state, "calls": []}), encoding="utf-8")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("az", "azd", "curl"):
        script = bin_dir / tool
        script.write_text(
            STAND_IN.format(python=sys.executable, state=str(state_file), tool=tool),
            encoding="utf-8",
        )
        script.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "AZURE_RESOURCE_GROUP": "rg-lg",
        "AZURE_FUNCTION_APP_NAME": "func-lg",
        "AZURE_KEY_VAULT_NAME": "kv-lg",
        "SYNC_FUNCTION_DEPLOYED": "true" if sync_function_deployed else "false",
        "KICK_KEEPER": "true" if kick_keeper else "false",
    }
    done = subprocess.run(["sh", str(HOOK)], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(state_file.read_text(encoding="utf-8"))
    return result


def test_a_rotated_lifecycle_key_reaches_the_lifecycle_url(tmp_path: Path) -> None:
    """operations.md: after a function key is rotated, the hook writes the new URLs. Only
    graph_lifecycle's key changed here: the notification URL is current, the lifecycle URL
    still carries the old key, which no longer opens the function."""
    notification_url = f"https://{HOST}/api/graph/notifications?code=notify-key"
    state = run_hook(
        tmp_path,
        {
            "host": HOST,
            "functionKeys": {"graph_notifications": "notify-key", "graph_lifecycle": "new-key"},
            "secrets": {
                "notification-url": notification_url,
                "lifecycle-notification-url": f"https://{HOST}/api/graph/lifecycle?code=old-key",
            },
        },
    )

    secrets = state["secrets"]
    assert isinstance(secrets, dict)
    assert secrets["notification-url"] == notification_url
    assert secrets["lifecycle-notification-url"] == (
        f"https://{HOST}/api/graph/lifecycle?code=new-key"
    )
    calls = state["calls"]
    assert isinstance(calls, list)
    assert [c for c in calls if c[1:3] == ["functionapp", "restart"]]  # the references resolve anew


def test_current_urls_are_left_alone(tmp_path: Path) -> None:
    urls = {
        "notification-url": f"https://{HOST}/api/graph/notifications?code=notify-key",
        "lifecycle-notification-url": f"https://{HOST}/api/graph/lifecycle?code=life-key",
    }
    state = run_hook(
        tmp_path,
        {
            "host": HOST,
            "functionKeys": {"graph_notifications": "notify-key", "graph_lifecycle": "life-key"},
            "secrets": dict(urls),
        },
    )

    calls = state["calls"]
    assert isinstance(calls, list)
    assert state["secrets"] == urls
    assert not [c for c in calls if c[1:4] == ["keyvault", "secret", "set"]]
    assert not [c for c in calls if c[1:3] == ["functionapp", "restart"]]


def test_the_master_key_is_not_on_curls_command_line(tmp_path: Path) -> None:
    """The hook starts subscription_keeper with the master key: passed as `-H "x-functions-key:
    $master"` it stood in curl's argv, which any user of the operator's machine can read in
    the process list while the call runs. curl reads that header from standard input."""
    state = run_hook(
        tmp_path,
        {
            "host": HOST,
            "functionKeys": {"graph_notifications": "notify-key", "graph_lifecycle": "life-key"},
            "secrets": {},
            "masterKey": "the-master-key",
        },
        kick_keeper=True,
    )

    calls = state["calls"]
    assert isinstance(calls, list)
    [curl] = [c for c in calls if c[0] == "curl"]
    assert f"https://{HOST}/admin/functions/subscription_keeper" in curl
    assert not [arg for arg in curl[1:-1] if "the-master-key" in arg]
    assert curl[-1] == "stdin:x-functions-key: the-master-key\n"


def test_no_secret_stands_on_a_command_line(tmp_path: Path) -> None:
    """The notification URLs carry their function keys, and onprem-sync-key opens the on-prem
    endpoint: passed as `--value`/`--key-value` they stood in az's argv, which any user of the
    operator's machine can read in the process list while az runs. az reads them from
    standard input (`@-`) instead."""
    keys = {"graph_notifications": "notify-key-1f3a", "graph_lifecycle": "life-key-9c2e"}
    state = run_hook(
        tmp_path,
        {
            "host": HOST,
            "functionKeys": keys,
            "secrets": {"onprem-sync-key": "sync-key-77d0"},
            "masterKey": "master-key-5b1c",
        },
        kick_keeper=True,
        sync_function_deployed=False,
    )

    secrets = state["secrets"]
    assert isinstance(secrets, dict)
    assert (
        secrets["notification-url"]
        == f"https://{HOST}/api/graph/notifications?code=notify-key-1f3a"
    )
    assert secrets["lifecycle-notification-url"] == (
        f"https://{HOST}/api/graph/lifecycle?code=life-key-9c2e"
    )
    assert state["keysSet"] == {"onprem-sync-key": "sync-key-77d0"}
    calls = state["calls"]
    assert isinstance(calls, list)
    argv = [arg for call in calls for arg in call if "<-" not in arg and "stdin:" not in arg]
    for secret in ("notify-key-1f3a", "life-key-9c2e", "sync-key-77d0", "master-key-5b1c"):
        assert not [arg for arg in argv if secret in arg], secret
