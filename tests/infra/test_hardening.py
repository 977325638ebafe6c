"""The templates' hardening, checked as text next to checkov (`make checkov`): what checkov cannot
see (conditional resources, role scopes) or what we want to keep even if a check changes."""

from __future__ import annotations

import re

import pytest

from shared.ports.blobs import REPORTS_CONTAINER
from shared.ports.queues import QUEUE_NAMES, poison_name
from tests.infra.bicep import INFRA, ROOT, after, read, resources, string_list, top_level_keys
from tests.infra.test_infra_crosscheck import app_settings

READER_ROLES = {
    "19e7f393-937e-4f77-808e-94535e297925": "Storage Queue Data Reader",
    "76199698-9eea-4c19-bc75-cec21354c6b6": "Storage Table Data Reader",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
}
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"


def body(text: str, symbol: str) -> str:
    """The `{...}` of resource `symbol` (top-level or nested)."""
    return after(text, rf"^\s*resource\s+{symbol}\s+'[^']+'\s*=(?:\s*\[)?(?:[^{{]*?)")


def test_the_function_app_allows_tls_12_and_up_https_only_http2_and_no_ftp() -> None:
    api = read("app/api.bicep")
    site = body(api, "functionApp")
    config = top_level_keys(after(site, r"^\s*siteConfig\s*:"))

    assert re.search(r"^\s*httpsOnly:\s*true\s*$", site, re.M)
    assert config == {
        "minTlsVersion": "'1.2'",
        "scmMinTlsVersion": "'1.2'",
        "ftpsState": "'Disabled'",
        "http20Enabled": "true",
    }


@pytest.mark.parametrize("name", ["ftp", "scm"])
def test_basic_auth_publishing_is_off(name: str) -> None:
    api = read("app/api.bicep")
    policies = [
        text[: text.find("\n}")]
        for kind, text in resources(api).values()
        if kind.startswith("Microsoft.Web/sites/basicPublishingCredentialsPolicies@")
    ]
    matching = [p for p in policies if re.search(rf"^\s*name:\s*'{name}'\s*$", p, re.M)]

    assert len(matching) == 1, f"no basicPublishingCredentialsPolicies '{name}'"
    assert re.search(r"^\s*parent:\s*functionApp\s*$", matching[0], re.M)
    assert re.search(r"^\s*allow:\s*false\s*$", matching[0], re.M)


def test_key_vault_keeps_deleted_secrets_recoverable_and_unpurgeable() -> None:
    vault = top_level_keys(after(body(read("app/keyvault.bicep"), "vault"), r"^\s*properties\s*:"))

    assert vault["enableRbacAuthorization"] == "true"
    assert vault["enableSoftDelete"] == "true"
    assert vault["enablePurgeProtection"] == "true"
    assert int(vault["softDeleteRetentionInDays"]) >= 7


def test_every_secret_has_a_content_type() -> None:
    """checkov's CKV_AZURE_114 cannot read conditional resources, so this is the real check."""
    text = read("app/keyvault.bicep")
    secrets = {
        symbol: after(rest, r"^\s*properties\s*:")
        for symbol, (kind, rest) in resources(text).items()
        if kind.startswith("Microsoft.KeyVault/vaults/secrets@")
    }

    assert set(secrets) == {
        "clientState",
        "clientStatePrevious",
        "notificationUrl",
        "lifecycleNotificationUrl",
        "onpremSyncKey",
    }
    for symbol, properties in secrets.items():
        assert re.search(r"^\s*contentType:\s*'[^']{8,}'\s*$", properties, re.M), symbol


def test_no_app_setting_holds_a_function_key() -> None:
    for name, expression in app_settings().items():
        assert "code=" not in expression, name
    for name in ("NOTIFICATION_URL", "LIFECYCLE_NOTIFICATION_URL"):
        assert app_settings()[name].startswith("'@Microsoft.KeyVault(")


def test_storage_takes_tls_12_https_and_identities_only() -> None:
    storage = top_level_keys(
        after(body(read("app/storage.bicep"), "storage"), r"^\s*properties\s*:")
    )

    assert storage["minimumTlsVersion"] == "'TLS1_2'"
    assert storage["supportsHttpsTrafficOnly"] == "true"
    assert storage["allowSharedKeyAccess"] == "false"
    assert storage["allowBlobPublicAccess"] == "false"


def _operator_assignments(rbac: str) -> dict[str, tuple[str, str]]:
    """Role assignment symbol -> (role id, scope symbol) for those given to userPrincipalId."""
    roles = dict(re.findall(r"^var\s+(\w+)\s*=\s*'([0-9a-f-]{36})'", rbac, re.M))
    found = {}
    for symbol, (kind, rest) in resources(rbac).items():
        block = rest[: rest.find("\n}")]
        if kind.startswith("Microsoft.Authorization/roleAssignments@") and re.search(
            r"principalId:\s*userPrincipalId", block
        ):
            role = re.search(r"roleDefinitions',\s*(\w+)\)", block)
            scope = re.search(r"^\s*scope:\s*(\w+)", block, re.M)
            assert role, symbol
            assert scope, symbol
            found[symbol] = (roles[role.group(1)], scope.group(1))
    return found


def test_the_operator_only_reads_poison_queues_findings_and_reports() -> None:
    rbac = read("app/rbac.bicep")
    assignments = _operator_assignments(rbac)
    scopes = {scope: role for role, scope in assignments.values()}

    assert string_list(after(rbac, r"^var\s+operatorPoisonQueues\s*=")) == [
        poison_name(q) for q in QUEUE_NAMES
    ]
    assert re.search(r"^var\s+operatorTable\s*=\s*'findings'", rbac, re.M)
    assert re.search(rf"^var\s+operatorContainer\s*=\s*'{REPORTS_CONTAINER}'", rbac, re.M)
    assert READER_ROLES[scopes["poisonQueues"]] == "Storage Queue Data Reader"
    assert READER_ROLES[scopes["findingsTable"]] == "Storage Table Data Reader"
    assert READER_ROLES[scopes["reportsContainer"]] == "Storage Blob Data Reader"
    # writes: only Key Vault Secrets Officer on the vault (rotation, the hook's notification URLs)
    writers = {s: r for s, r in scopes.items() if r not in READER_ROLES}
    assert writers == {"vault": KEY_VAULT_SECRETS_OFFICER}
    assert "storage" not in scopes  # nothing at account scope


def test_every_checkov_skip_names_a_check_and_gives_a_reason() -> None:
    skips = []
    for path in sorted(INFRA.rglob("*.bicep")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "checkov:skip" in line:
                match = re.search(r"//\s*checkov:skip=(CKV2?_AZURE_\d+):\s*(.+)$", line)
                assert match, f"{path.name}: {line.strip()}"
                assert len(match.group(2).split()) >= 6, f"{path.name}: reason too short"
                skips.append(match.group(1))
    assert skips  # the templates do skip some; each one is reviewed in its line


def test_make_test_runs_checkov_on_the_templates_from_its_own_lock() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    lock = (ROOT / "requirements-checkov.txt").read_text(encoding="utf-8")

    assert re.search(r"^lint:.*\bcheckov\b", makefile, re.M)
    # `test` runs `lint` as a prerequisite or from its recipe (beside pytest, with make -j2)
    assert re.search(r"^test:.*(?:\n\t.*)*\blint\b", makefile, re.M)
    assert "checkov -d infra --framework bicep" in makefile
    assert re.search(r"^checkov==\d+\.\d+\.\d+$", lock, re.M)
    pins = [line for line in lock.splitlines() if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[^=\s]+", pin) for pin in pins), pins
