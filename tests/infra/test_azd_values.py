"""The `azd env set NAME VALUE` commands the docs give, through azd as it reads them.

azd's Bicep provider (Azure/azure-dev, cli/azd/pkg/infra/provisioning/bicep/bicep_provider.go,
`loadParameters`) puts each variable into infra/main.parameters.json as plain text
(`envsubst.Eval`, github.com/drone/envsubst), then parses the result as JSON (`json.Unmarshal`):
nothing is escaped. A value holding a bare `"` (any JSON, so ALERT_CHANNELS) or a line break
ends the JSON string early, and `azd provision` stops with "error unmarshalling Bicep template
parameters". `azd_parameters` does the same substitution, so every documented command is tried
here as azd would read it, and then as the app would read the setting.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest

from shared.platform.settings import Settings
from tests.infra.bicep import INFRA, ROOT
from tests.infra.test_infra_crosscheck import sample_env

DOCS = ("README.md", "docs/operations.md", "docs/alert-channels.md")
_AZD_SET = re.compile(r"azd env set (\w+) (.*)$")
_VARIABLE = re.compile(r"\$\{(\w+)(?:=([^}]*))?\}")


def azd_parameters(azd_env: dict[str, str]) -> dict[str, Any]:
    """infra/main.parameters.json's values as azd reads them with these variables set
    (drone/envsubst: `${NAME}`, `${NAME=default}`; an empty value takes the default)."""
    template = (INFRA / "main.parameters.json").read_text(encoding="utf-8")
    text = _VARIABLE.sub(lambda m: azd_env.get(m.group(1)) or m.group(2) or "", template)
    return {name: p["value"] for name, p in json.loads(text)["parameters"].items()}


def documented_azd_values() -> list[tuple[str, str, str]]:
    """(doc, NAME, VALUE) for each concrete `azd env set` command line in the docs (placeholders
    left out), VALUE as `sh` hands it to azd."""
    found = []
    for doc in DOCS:
        for line in (ROOT / doc).read_text(encoding="utf-8").splitlines():
            match = _AZD_SET.match(line.strip())
            if not match:
                continue
            words = shlex.split(match.group(2), comments=True)
            value = words[0] if words else ""
            if "<" not in value and "&&" not in words:
                found.append((doc, match.group(1), value))
    return found


def parameter_of(variable: str) -> str:
    """The main.bicep parameter fed by azd variable `variable`."""
    template = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    for name, parameter in template["parameters"].items():
        if re.fullmatch(rf"\$\{{{variable}(=[^}}]*)?\}}", str(parameter["value"])):
            return str(name)
    raise AssertionError(f"main.parameters.json reads no ${{{variable}}}")


@pytest.mark.parametrize(("doc", "name", "value"), documented_azd_values())
def test_each_documented_azd_value_reaches_the_app_setting_intact(
    doc: str, name: str, value: str
) -> None:
    if name == "AZURE_LOCATION":  # azd's own (the deployment's region), not a setting
        return
    try:
        parameters = azd_parameters({name: value})
    except json.JSONDecodeError as error:
        pytest.fail(f"{doc}: azd env set {name} {value!r}: azd cannot read the parameters: {error}")
    unescaped = json.loads(f'"{value}"')  # what the parameter holds once azd parsed the JSON
    assert str(parameters[parameter_of(name)]) == unescaped, (doc, name)
    if name in Settings.setting_names():
        env = sample_env() | {"ALERT_RECIPIENTS": "ops@contoso.com", name: unescaped}
        Settings.from_env(env)  # SettingsError names the setting the value breaks


def test_the_docs_show_alert_channels_set_through_azd_as_azd_can_read_it() -> None:
    channels = [(doc, v) for doc, name, v in documented_azd_values() if name == "ALERT_CHANNELS"]
    assert {doc for doc, _ in channels} >= {"docs/operations.md", "docs/alert-channels.md"}
    for doc, value in channels:
        setting = azd_parameters({"ALERT_CHANNELS": value})["alertChannels"]
        parsed = Settings.from_env(sample_env() | {"ALERT_CHANNELS": setting}).alert_channels
        assert [c.url_setting for c in parsed] == ["ALERT_TEAMS_URL"], doc


@pytest.mark.parametrize("value", ['[{"type": "teams"}]', "a@contoso.com\nb@contoso.com"])
def test_a_bare_quote_or_a_line_break_is_what_azd_cannot_read(value: str) -> None:
    """Why the docs escape quotes and keep lists on one line (the substitution as azd does it)."""
    with pytest.raises(json.JSONDecodeError):
        azd_parameters({"ALERT_CHANNELS": value})
