"""The Bicep templates, azure.yaml and .funcignore agree with the code.

No Bicep compiler can be installed here, so these read the templates as text (tests/infra/bicep.py)
and check what would otherwise fail only in Azure: a setting the code reads but the app lacks, a
queue or table without a data role, a module called with a parameter it does not declare.
`local.settings.json.example` against Settings is checked in tests/adapters/test_settings.py
(test_the_local_settings_example_lists_exactly_the_settings_we_read), not repeated here.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import fields

import pytest

import shared.platform.settings as settings_module
from shared.platform.settings import (
    DEFAULT_GRAPH_BASE_URL,
    STORAGE_SETTING,
    Settings,
    SettingsError,
)
from shared.ports.blobs import REPORTS_CONTAINER
from shared.ports.queues import QUEUE_NAMES, SYNC_COMPLETED, poison_name
from shared.ports.tables import TABLE_NAMES
from tests.infra.bicep import (
    INFRA,
    ROOT,
    after,
    block,
    modules,
    param_decorators,
    params,
    read,
    resources,
    string_list,
    top_level_keys,
)

DOCUMENTED_OPTIONAL = {
    "GRAPH_STATIC_TOKEN": "graphsim only: Settings refuses it unless GRAPH_BASE_URL is loopback",
}
"""Settings the code reads that the Azure app deliberately leaves unset, with the reason."""

IDENTITY_STORAGE = (
    "credential",
    "clientId",
    "blobServiceUri",
    "queueServiceUri",
    "tableServiceUri",
)
DEPRECATED_ON_FLEX = (
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "TZ",
)
ROLE = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
}


ALERT_PARAMS = {
    "ALERT_SENDER": "alertSender",
    "ALERT_RECIPIENTS": "alertRecipients",
    "ALERT_DIGEST_SCHEDULE": "alertDigestSchedule",
    "ALERT_EXCLUDE_SKUS": "alertExcludeSkus",
    "ALERT_EXCLUDE_GROUPS": "alertExcludeGroups",
    "ALERT_EXCLUDE_USERS": "alertExcludeUsers",
    "ALERT_GRACE_MINUTES": "alertGraceMinutes",
    "SWAP_GRACE_DAYS": "swapGraceDays",
    "MASS_LOSS_THRESHOLD": "massLossThreshold",
    "BASELINE": "baseline",
    "ALERT_CHANNELS": "alertChannels",
}
"""The alert settings (platform/settings.py "Alerts") -> the main.bicep parameter behind each."""


def app_settings() -> dict[str, str]:
    """The function app's app settings: name -> Bicep expression."""
    api = read("app/api.bicep")
    config = after(api, r"resource\s+appSettings\s+'config'\s*=")
    assert re.search(r"name:\s*'appsettings'", config)
    return top_level_keys(after(config, r"^\s*properties\s*:"))


def main_param_default(name: str) -> str:
    param = params(read("main.bicep"))[name]
    assert param.default is not None, f"main.bicep param {name} has no default"
    return param.default


def schedule_defaults() -> dict[str, str]:
    main = read("main.bicep")
    body = after(main, r"^param\s+schedules\s+object\s*=")
    return {key: value.strip("'") for key, value in top_level_keys(body).items()}


def seeded_secrets() -> dict[str, str]:
    """Key Vault secret name -> the value keyvault.bicep seeds it with (literal values only)."""
    vault = read("app/keyvault.bicep")
    placeholder = re.search(r"var notificationUrlPlaceholder = '([^']+)'", vault)
    assert placeholder, "keyvault.bicep: notificationUrlPlaceholder"
    seeded = {}
    for _, body in resources(vault).values():
        name = re.search(r"^\s*name:\s*'([\w-]+)'", body, re.M)
        value = re.search(r"^\s*value:\s*'([^']*)'", body, re.M)
        if name and value:
            text = value.group(1).replace("${notificationUrlPlaceholder}", placeholder.group(1))
            seeded[name.group(1)] = text
    return seeded


def sample_env() -> dict[str, str]:
    """The app settings as the app would see them, with sample values for deployment-time
    expressions and Key Vault references resolved, from main.bicep's parameter defaults."""
    guid = "11111111-2222-4333-8444-555555555555"
    interpolations = {
        "identityClientId": guid,
        "storage.properties.primaryEndpoints.blob": "https://st.blob.core.windows.net/",
        "storage.properties.primaryEndpoints.queue": "https://st.queue.core.windows.net/",
        "storage.properties.primaryEndpoints.table": "https://st.table.core.windows.net/",
        "keyVaultUri": "https://kv.vault.azure.net/",
    }
    schedules = schedule_defaults()
    expressions = {
        "applicationInsightsConnectionString": "InstrumentationKey=0;IngestionEndpoint=https://x/",
        "tenant().tenantId": guid,
        "licenseGuardMode": main_param_default("licenseGuardMode").strip("'"),
        "actGroupAllowlist": main_param_default("actGroupAllowlist").strip("'"),
        "writesDisabled ? 'true' : 'false'": main_param_default("writesDisabled"),
        "string(reprocessRatePerMin)": main_param_default("reprocessRatePerMin"),
        "string(reprocessDailyCap)": main_param_default("reprocessDailyCap"),
        **{f"schedules.{key}": value for key, value in schedules.items()},
        **{param: main_param_default(param).strip("'") for param in ALERT_PARAMS.values()},
        **{f"string({param})": main_param_default(param) for param in ALERT_PARAMS.values()},
        "skuPrices": main_param_default("skuPrices").strip("'"),
        "graphBaseUrl": main_param_default("graphBaseUrl").strip("'"),
        **interpolations,
    }
    env = {}
    for name, expression in app_settings().items():
        if expression.startswith("'") and expression.endswith("'"):
            value = re.sub(r"\$\{([^}]+)\}", lambda m: interpolations[m.group(1)], expression[1:-1])
        else:
            assert expression in expressions, f"{name}: add {expression!r} to sample_env()"
            value = expressions[expression]
        if reference := re.fullmatch(
            r"@Microsoft\.KeyVault\(SecretUri=\S+/secrets/([\w-]+)/\)", value
        ):
            value = seeded_secrets().get(reference.group(1)) or str(uuid.uuid4())
        env[name] = value
    return env


# --- app settings against Settings ----------------------------------------------------------


def test_every_setting_the_code_reads_is_an_app_setting_or_documented_optional() -> None:
    defined = set(app_settings())
    for name in Settings.setting_names():
        if name == STORAGE_SETTING:
            assert {f"{name}__{suffix}" for suffix in IDENTITY_STORAGE} <= defined
        elif name in DOCUMENTED_OPTIONAL:
            assert name not in defined, f"{name} is documented as unset in Azure"
        else:
            assert name in defined, f"{name} is read by Settings but missing from api.bicep"
    assert set(DOCUMENTED_OPTIONAL) <= set(Settings.setting_names())


def test_the_app_settings_as_deployed_make_valid_settings_in_observe_mode() -> None:
    settings = Settings.from_env(sample_env())

    assert settings.mode == "observe"
    assert not settings.writes_disabled
    assert settings.graph_base_url == DEFAULT_GRAPH_BASE_URL
    assert settings.graph_static_token is None
    storage = settings.storage_connection
    assert storage.connection_string is None
    assert storage.managed_identity_client_id == sample_env()["AzureWebJobsStorage__clientId"]
    assert storage.queue_service_uri
    assert storage.table_service_uri


KEY_VAULT_SETTINGS = sorted(
    name
    for name, expression in app_settings().items()
    if expression.startswith("'@Microsoft.KeyVault(") and name in Settings.setting_names()
)
"""The settings Settings reads whose app setting is a Key Vault reference (api.bicep)."""


@pytest.mark.parametrize("name", KEY_VAULT_SETTINGS)
def test_a_key_vault_reference_the_platform_could_not_resolve_is_refused(name: str) -> None:
    """App Service hands the app the reference text itself when it cannot read the secret
    (a missing or disabled secret, a role not granted yet). As CLIENT_STATE that text would be
    accepted as the clientState: public (it names the vault), and unlike the secret."""
    env = sample_env() | {
        name: app_settings()[name]
        .strip("'")
        .replace("${keyVaultUri}", "https://kv-lg.vault.azure.net/")
    }

    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)

    assert set(raised.value.invalid) == {name}
    assert "Key Vault reference" in raised.value.invalid[name]


def test_storage_is_identity_based_with_the_user_assigned_identity() -> None:
    settings = app_settings()

    assert settings["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert STORAGE_SETTING not in settings  # no connection string: shared keys are off
    assert "AZURE_CLIENT_ID" in settings  # DefaultAzureCredential picks the identity for Graph


def test_the_client_states_are_key_vault_references_resolved_with_the_identity() -> None:
    settings, vault = app_settings(), read("app/keyvault.bicep")
    secrets = {"CLIENT_STATE": "client-state", "CLIENT_STATE_PREVIOUS": "client-state-previous"}
    for name, secret in secrets.items():
        reference = f"@Microsoft.KeyVault(SecretUri=${{keyVaultUri}}secrets/{secret}/)"
        assert settings[name] == f"'{reference}'"
        assert re.search(rf"name:\s*'{secret}'", vault)
    assert re.search(r"keyVaultReferenceIdentity:\s*identityId", read("app/api.bicep"))
    assert re.search(r"enableRbacAuthorization:\s*true", vault)
    # the initial value is generated, never a literal in the repository
    assert re.search(r"param initialClientState string = newGuid\(\)", read("main.bicep"))
    assert "@secure()" in read("main.bicep")


def test_schedules_are_six_field_ncrontab_at_the_documented_cadence() -> None:
    assert schedule_defaults() == {
        "subscriptionKeeper": "0 0 */6 * * *",
        "syncWatch": "0 */5 * * * *",
        "recheckErrors": "0 */15 * * * *",
        "poisonWatch": "0 */30 * * * *",
        "reconcile": "0 0 2-4 * * *",
    }


def test_the_local_settings_example_runs_the_timers_at_the_deployed_cadence() -> None:
    """`func start` from the example behaves as the deployment does (the example had the errors
    re-check hourly and the poison watch every 10 min, the docs and Bicep 15 and 30)."""
    example = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))
    api = read("app/api.bicep")
    deployed = {
        name: schedule_defaults()[key]
        for name, key in re.findall(r"^\s*(\w+_SCHEDULE): schedules\.(\w+)$", api, re.M)
    }
    assert len(deployed) == 5
    assert {name: example["Values"][name] for name in deployed} == deployed


def test_no_setting_that_flex_consumption_deprecates_or_that_is_local_only() -> None:
    settings = app_settings()
    for name in DEPRECATED_ON_FLEX + tuple(DOCUMENTED_OPTIONAL):
        assert name not in settings
    assert main_param_default("licenseGuardMode") == "'observe'"
    assert main_param_default("graphBaseUrl") == "'https://graph.microsoft.com/v1.0'"
    assert settings["TENANT_ID"] == "tenant().tenantId"


def test_the_graph_cloud_is_an_azd_parameter_limited_to_microsoft_graphs_clouds() -> None:
    """The app reads GRAPH_BASE_URL for every national cloud (graph_auth.NATIONAL_CLOUD_HOSTS),
    but the Bicep wrote the global URL as a literal: a GCC High or 21Vianet tenant could point
    the app at its cloud only in the portal, which the next `azd provision` undid. Now it is
    `azd env set GRAPH_BASE_URL ...`, refused by Azure unless one of those clouds' v1.0."""
    from shared.adapters.graph_auth import NATIONAL_CLOUD_HOSTS

    assert app_settings()["GRAPH_BASE_URL"] == "graphBaseUrl"
    assert main_param_default("graphBaseUrl") == f"'{DEFAULT_GRAPH_BASE_URL}'"
    allowed = param_decorators(read("main.bicep"))["graphBaseUrl"]["allowed"]
    clouds = sorted(re.findall(r"'([^']+)'", allowed))
    assert clouds == sorted(f"https://{host}/v1.0" for host in NATIONAL_CLOUD_HOSTS)
    for url in clouds:
        assert Settings.from_env(sample_env() | {"GRAPH_BASE_URL": url}).graph_base_url == url
    _, passed = modules(read("main.bicep"))["api"]
    assert passed["graphBaseUrl"] == "graphBaseUrl"
    file = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert file["graphBaseUrl"]["value"] == f"${{GRAPH_BASE_URL={DEFAULT_GRAPH_BASE_URL}}}"


def test_the_python_worker_has_a_thread_per_message_a_queue_batch_runs() -> None:
    """Every handler is synchronous (functions/running.py): the worker's thread pool runs them,
    one thread per queue message host.json lets run at once; the dev host's stacks and the local
    settings example say the same."""
    batch = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))["extensions"]["queues"]
    example = json.loads((ROOT / "local.settings.json.example").read_text(encoding="utf-8"))
    stack = (ROOT / "devhost" / "stack.py").read_text(encoding="utf-8")

    threads = batch["batchSize"]
    assert app_settings()["PYTHON_THREADPOOL_THREAD_COUNT"] == f"'{threads}'"
    assert example["Values"]["PYTHON_THREADPOOL_THREAD_COUNT"] == str(threads)
    assert f'"PYTHON_THREADPOOL_THREAD_COUNT": "{threads}"' in stack


def test_the_thread_count_comment_says_how_many_messages_the_host_holds() -> None:
    """The queue host runs up to batchSize + newBatchThreshold (batchSize/2 by default)
    messages of a queue function at once (QueuesOptions); the comment said batchSize (16), which
    hid the 8 that wait inside the worker for a thread."""
    batch = json.loads((ROOT / "host.json").read_text(encoding="utf-8"))["extensions"]["queues"]
    size = batch["batchSize"]
    threshold = batch.get("newBatchThreshold", size // 2)
    bicep = (INFRA / "app" / "api.bicep").read_text(encoding="utf-8")  # with its comments
    head = bicep[: bicep.index("PYTHON_THREADPOOL_THREAD_COUNT:")]
    comment = head[head.rindex("PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY") :]
    assert f"{size + threshold}" in comment
    assert f"{threshold} wait" in comment


def test_telemetry_settings_authenticate_with_the_identity() -> None:
    settings = app_settings()
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in settings
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "'ClientId=${identityClientId};Authorization=AAD'"
    )
    assert re.search(r"DisableLocalAuth:\s*true", read("app/monitoring.bicep"))


def test_notification_urls_are_key_vault_secrets_the_hook_replaces_with_our_routes() -> None:
    """The URLs carry a function key, so they are Key Vault references, seeded with a
    placeholder and written by the hook to Key Vault, never to a plain app setting."""
    env, settings = sample_env(), app_settings()
    assert ".invalid/" in env["NOTIFICATION_URL"]
    assert ".invalid/" in env["LIFECYCLE_NOTIFICATION_URL"]
    secrets = {
        "NOTIFICATION_URL": "notification-url",
        "LIFECYCLE_NOTIFICATION_URL": "lifecycle-notification-url",
    }
    for setting, secret in secrets.items():
        assert (
            settings[setting]
            == f"'@Microsoft.KeyVault(SecretUri=${{keyVaultUri}}secrets/{secret}/)'"
        )
    from tests.invocation import indexed_functions  # here: tools/doctor.py imports this module

    webhooks = (ROOT / "functions" / "webhooks.py").read_text(encoding="utf-8")
    for hook in ("postprovision.sh", "postprovision.ps1"):
        text = (INFRA / "scripts" / hook).read_text(encoding="utf-8")
        for secret, route, function in (
            ("notification-url", "graph/notifications", "graph_notifications"),
            ("lifecycle-notification-url", "graph/lifecycle", "graph_lifecycle"),
        ):
            assert f'route="{route}"' in webhooks
            assert f"def {function}(" in webhooks
            assert f"/api/{route}?code=" in text
            assert re.search(rf"az keyvault secret set --vault-name \S+ -n {secret} ", text)
            assert f"'{function}'" in text or f" {function}\n" in text or f" {function})" in text
        assert "appsettings set" not in text  # no key in a plain app setting
        assert "az functionapp restart" in text  # the references resolve to the new value
        assert "subscription_keeper" in text
        assert "subscription_keeper" in indexed_functions()


# --- the Flex Consumption app -----------------------------------------------------------------


def test_the_function_app_runs_on_flex_consumption_python_311() -> None:
    api = read("app/api.bicep")
    plan = after(api, r"resource\s+plan\s+'Microsoft.Web/serverfarms@[^']+'\s*=")
    assert re.search(r"tier:\s*'FlexConsumption'", plan)
    assert re.search(r"name:\s*'FC1'", plan)
    assert re.search(r"reserved:\s*true", plan)
    config = after(api, r"^\s*functionAppConfig\s*:")
    runtime = after(config, r"^\s*runtime\s*:")
    assert top_level_keys(runtime) == {"name": "'python'", "version": "'3.11'"}
    assert re.search(r"kind:\s*'functionapp,linux'", api)
    assert re.search(r"'azd-service-name':\s*'api'", api)
    deployment = after(config, r"^\s*deployment\s*:")
    assert re.search(r"type:\s*'blobContainer'", deployment)
    assert re.search(r"type:\s*'UserAssignedIdentity'", deployment)
    assert main_param_default("instanceMemoryMB") == "2048"
    assert int(main_param_default("maximumInstanceCount")) >= 40  # Flex's lowest allowed


def test_the_http_group_has_an_always_ready_instance() -> None:
    api = read("app/api.bicep")
    ready = after(api, r"^var\s+httpAlwaysReady\s*=")
    assert top_level_keys(block(ready, 0)) == {
        "name": "'http'",
        "instanceCount": "httpAlwaysReadyInstances",
    }
    assert re.search(r"alwaysReady:\s*httpAlwaysReadyInstances > 0 \? httpAlwaysReady : \[\]", api)
    assert main_param_default("httpAlwaysReadyInstances") == "1"


# --- storage: names and roles -------------------------------------------------------------------


def test_queues_and_tables_created_match_the_code_exactly() -> None:
    storage = read("app/storage.bicep")
    queues = string_list(after(storage, r"^var\s+queueNames\s*="))
    tables = string_list(after(storage, r"^var\s+tableNames\s*="))

    assert sorted(queues) == sorted([*QUEUE_NAMES, *map(poison_name, QUEUE_NAMES)])
    assert sorted(tables) == sorted(TABLE_NAMES)
    assert re.search(r"allowSharedKeyAccess:\s*false", storage)


def test_the_app_blob_containers_are_created_private() -> None:
    storage = read("app/storage.bicep")
    containers = string_list(after(storage, r"^var\s+containerNames\s*="))
    body = after(storage, r"^resource\s+containers\s+'[^']+'\s*=")

    assert containers == [REPORTS_CONTAINER]
    assert resources(storage)["containers"][0].startswith(
        "Microsoft.Storage/storageAccounts/blobServices/containers@"
    )
    assert re.search(r"for\s+containerName\s+in\s+containerNames", body)
    assert re.search(r"publicAccess:\s*'None'", body)


def test_every_queue_and_table_is_covered_by_a_data_role_at_account_scope() -> None:
    rbac = read("app/rbac.bicep")
    kinds = resources(rbac)
    storage_type, _ = kinds["storage"]
    assert storage_type.startswith("Microsoft.Storage/storageAccounts@")
    variables = dict(re.findall(r"^var\s+(\w+)\s*=\s*'([0-9a-f-]{36})'", rbac, re.MULTILINE))
    listed = re.findall(r"^\s*(\w+)\s*$", after(rbac, r"^var\s+appStorageRoles\s*="), re.M)
    app_roles = {variables[name] for name in listed}
    assert {
        ROLE["Storage Blob Data Owner"],
        ROLE["Storage Queue Data Contributor"],  # covers every queue and -poison twin
        ROLE["Storage Table Data Contributor"],  # covers every table
    } <= app_roles
    assignment = after(rbac, r"^resource\s+appStorageAssignments\s+'[^']+'\s*=")
    assert resources(rbac)["appStorageAssignments"][0].startswith(
        "Microsoft.Authorization/roleAssignments@"
    )
    assert re.search(r"for\s+roleId\s+in\s+appStorageRoles", assignment)
    assert re.search(r"^\s*scope:\s*storage\s*$", assignment, re.MULTILINE)  # the account
    assert re.search(r"principalId:\s*identityPrincipalId", assignment)


@pytest.mark.parametrize(
    ("role", "scope"),
    [("Monitoring Metrics Publisher", "applicationInsights"), ("Key Vault Secrets User", "vault")],
)
def test_the_identity_gets_telemetry_and_secret_roles(role: str, scope: str) -> None:
    rbac = read("app/rbac.bicep")
    variables = {v: k for k, v in re.findall(r"^var\s+(\w+)\s*=\s*'([0-9a-f-]{36})'", rbac, re.M)}
    var = variables[ROLE[role]]
    found = [
        body
        for _, body in resources(rbac).values()
        if re.search(rf"roleDefinitions',\s*{var}\)", body[: body.find("\n}")])
        and re.search(rf"^\s*scope:\s*{scope}\s*$", body[: body.find("\n}")], re.M)
        and "identityPrincipalId" in body[: body.find("\n}")]
    ]
    assert found, f"no {role} assignment for the identity on {scope}"


# --- templates hang together --------------------------------------------------------------------


def test_main_is_subscription_scoped_and_creates_the_resource_group() -> None:
    main = read("main.bicep")
    assert re.search(r"^targetScope\s*=\s*'subscription'", main, re.MULTILINE)
    assert re.search(r"^resource\s+rg\s+'Microsoft.Resources/resourceGroups@", main, re.M)


@pytest.mark.parametrize(
    "path", sorted(p.relative_to(INFRA).as_posix() for p in INFRA.rglob("*.bicep"))
)
def test_no_template_declares_a_symbol_twice(path: str) -> None:
    """Bicep refuses a template with one identifier declared twice (BCP028), so `azd up` would
    fail before it deploys anything; outputs have their own namespace."""
    declared = re.findall(r"^(?:param|var|resource|module)\s+(\w+)", read(path), re.MULTILINE)
    twice = sorted({name for name in declared if declared.count(name) > 1})
    assert not twice, f"{path} declares {twice} more than once"


def test_modules_are_called_with_exactly_the_params_they_declare() -> None:
    main = read("main.bicep")
    for symbol, (path, passed) in modules(main).items():
        declared = params(read(path))
        unknown = set(passed) - set(declared)
        assert not unknown, f"{symbol}: unknown params {unknown}"
        required = {name for name, p in declared.items() if p.default is None}
        assert required <= set(passed), f"{symbol}: missing params {required - set(passed)}"


def test_the_parameters_file_matches_main_bicep() -> None:
    file = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))
    declared = params(read("main.bicep"))
    assert set(file["parameters"]) <= set(declared)
    required = {name for name, p in declared.items() if p.default is None}
    assert required <= set(file["parameters"])
    assert "initialClientState" not in file["parameters"]  # generated, never stored


def test_no_literal_secret_or_connection_string_in_the_templates() -> None:
    for path in INFRA.rglob("*.bicep"):
        text = path.read_text(encoding="utf-8")
        assert "AccountKey=" not in text, path
        assert "listKeys(" not in text, path
        assert not re.search(r"value:\s*'[A-Za-z0-9+/=_-]{16,}'", text), path


# --- azure.yaml, host.json, .funcignore --------------------------------------------------------


def test_azure_yaml_names_the_service_and_the_hooks() -> None:
    text = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    service = re.search(r"^services:\n  api:\n((?:    .*\n)+)", text, re.MULTILINE)
    assert service, "azure.yaml needs services: api:"
    lines = {line.strip() for line in service.group(1).splitlines()}
    assert {"project: .", "language: python", "host: function"} <= lines
    hooks = text[text.index("\nhooks:") :]
    for hook in ("postprovision", "postdeploy"):
        assert re.search(rf"^  {hook}:\n", hooks, re.MULTILINE)
    for script in re.findall(r"run:\s*(\S+)", hooks):
        assert (ROOT / script).is_file(), script


def test_host_json_and_the_entry_point_are_at_the_project_root() -> None:
    assert (ROOT / "host.json").is_file()
    assert (ROOT / "function_app.py").is_file()
    assert (ROOT / "requirements.txt").is_file()


def test_funcignore_keeps_development_files_and_infra_out_of_the_package() -> None:
    ignored = set((ROOT / ".funcignore").read_text(encoding="utf-8").split())
    assert {"tests", "graphsim", "devhost", "bench", "tools", "infra", "docs"} <= ignored
    assert not ignored & {"shared", "functions", "function_app.py", "host.json", "requirements.txt"}


def test_funcignore_keeps_every_venv_the_makefile_makes_out_of_the_package() -> None:
    """`azd deploy` zips the project folder: a venv left out of .funcignore ships with it."""
    ignored = set((ROOT / ".funcignore").read_text(encoding="utf-8").split())
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    venvs = set(re.findall(r"^\w*VENV := (\S+)$", makefile, flags=re.MULTILINE))
    assert {".venv", ".venv-checkov", ".venv-prod"} <= venvs
    assert venvs <= ignored


def _ignore_entries(name: str) -> set[str]:
    lines = (ROOT / name).read_text(encoding="utf-8").splitlines()
    return {line.strip().strip("/") for line in lines if line.strip() and line[0] != "#"}


SELF_IGNORING_CACHES = {".import_linter_cache", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
"""Tool caches that carry their own `.gitignore` (`*`): git skips them, a package would not."""


def test_funcignore_keeps_everything_git_ignores_out_of_the_package() -> None:
    """`azd deploy` zips the project folder with .funcignore's exclusions only: the caches
    `make test` leaves (.mypy_cache alone is hundreds of MB), __pycache__, the egg-info of
    `make setup` went into the package and the remote build, although git ignores them."""
    ignored = _ignore_entries(".funcignore")

    missing = sorted((_ignore_entries(".gitignore") | SELF_IGNORING_CACHES) - ignored)
    assert not missing, f".funcignore lacks {missing}"


# --- the on-premises sync trigger's key ---------------------------------------------------------


def _resource(text: str, symbol: str) -> tuple[str, str, str]:
    """(type@version, the text between `=` and the body, the body) of one resource."""
    kind, rest = resources(text)[symbol]
    return kind, rest[: rest.index("{")], block(rest, 0)


def test_the_sync_endpoint_gets_its_own_named_key_from_key_vault() -> None:
    api, main = read("app/api.bicep"), read("main.bicep")
    handler = (ROOT / "functions" / "directory_sync.py").read_text(encoding="utf-8")
    assert 'route="directory/sync-completed"' in handler
    assert "def sync_completed_http(" in handler

    kind, head, body = _resource(api, "syncCompletedHttp")
    assert kind.startswith("Microsoft.Web/sites/functions@")
    assert "existing" in resources_line(api, "syncCompletedHttp")
    assert top_level_keys(body) == {"parent": "functionApp", "name": "'sync_completed_http'"}
    kind, head, body = _resource(api, "onpremSyncFunctionKey")
    assert kind.startswith("Microsoft.Web/sites/functions/keys@")
    assert head.strip() == "if (syncFunctionDeployed)"  # a key needs the deployed function
    assert top_level_keys(body)["parent"] == "syncCompletedHttp"
    assert top_level_keys(body)["name"] == "'onprem-sync-key'"
    assert top_level_keys(after(body, r"^\s*properties\s*:")) == {"value": "onpremSyncKey"}
    assert re.search(r"@secure\(\)\n(@description\(.*\)\n)?param onpremSyncKey string", api)
    _, passed = modules(main)["api"]
    assert passed["onpremSyncKey"] == "vault.getSecret('onprem-sync-key')"
    assert passed["syncFunctionDeployed"] == "syncFunctionDeployed"


def resources_line(text: str, symbol: str) -> str:
    match = re.search(rf"^resource\s+{symbol}\s+.*$", text, re.MULTILINE)
    assert match, symbol
    return match.group(0)


def test_the_sync_key_lives_in_key_vault_generated_never_in_an_app_setting() -> None:
    vault, main = read("app/keyvault.bicep"), read("main.bicep")
    kind, head, body = _resource(vault, "onpremSyncKey")
    assert kind.startswith("Microsoft.KeyVault/vaults/secrets@")
    assert head.strip() == "if (seedOnpremSyncKey)"
    assert top_level_keys(body)["name"] == "'onprem-sync-key'"
    properties = top_level_keys(after(body, r"^\s*properties\s*:"))
    assert properties["value"] == "initialOnpremSyncKey"
    assert properties["contentType"]
    assert re.search(r"enabledForTemplateDeployment:\s*true", vault)  # for getSecret
    generated = r"@secure\(\)\n@description\(.*\)\nparam initialOnpremSyncKey string = '\$\{newGuid"
    assert re.search(generated, main)  # generated on deployment, never a literal
    assert "existing" in resources_line(main, "vault")
    assert not any("onpremSyncKey" in expression for expression in app_settings().values())


def test_the_hooks_install_the_sync_key_once_and_hand_over_to_bicep() -> None:
    file = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert file["seedOnpremSyncKey"]["value"] == "${SEED_ONPREM_SYNC_KEY=true}"
    assert file["syncFunctionDeployed"]["value"] == "${SYNC_FUNCTION_DEPLOYED=false}"
    assert main_param_default("syncFunctionDeployed") == "false"
    for hook in ("postprovision.sh", "postprovision.ps1"):
        text = (INFRA / "scripts" / hook).read_text(encoding="utf-8")
        assert "azd env set SEED_ONPREM_SYNC_KEY false" in text
        assert "azd env set SYNC_FUNCTION_DEPLOYED true" in text
        assert "--function-name sync_completed_http" in text
        assert "--key-name onprem-sync-key" in text
        assert "-n onprem-sync-key" in text  # read from Key Vault, the key's source


def test_the_optional_entra_sender_may_only_send_to_the_sync_queue() -> None:
    rbac = read("app/rbac.bicep")
    variables = dict(re.findall(r"^var\s+(\w+)\s*=\s*'([0-9a-f-]{36})'", rbac, re.MULTILINE))
    assert variables["storageQueueDataMessageSender"] == "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a"
    _, _, queue = _resource(rbac, "syncCompletedQueue")
    assert top_level_keys(queue)["name"] == f"'{SYNC_COMPLETED}'"
    _, head, body = _resource(rbac, "onpremSenderAssignment")
    assert head.strip() == "if (!empty(onpremSenderPrincipalId))"
    assert top_level_keys(body)["scope"] == "syncCompletedQueue"  # not the account
    assert "storageQueueDataMessageSender" in body
    file = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert file["onpremSenderPrincipalId"]["value"] == "${ONPREM_SENDER_PRINCIPAL_ID=}"


# --- alerts: switched on by deployment ----------------------------------------------------------


def test_the_alert_settings_are_exactly_the_ones_settings_documents() -> None:
    names = Settings.setting_names()
    assert set(ALERT_PARAMS) <= set(names)
    assert {n for n in names if n.startswith("ALERT_")} <= set(ALERT_PARAMS)
    documented = settings_module.__doc__ or ""
    assert all(f"``{name}``" in documented for name in ALERT_PARAMS)


def test_every_setting_the_code_reads_is_documented_in_the_settings_module() -> None:
    """operations.md sends operators to the settings module for each setting's meaning."""
    documented = settings_module.__doc__ or ""
    undocumented = [n for n in Settings.setting_names() if f"``{n}``" not in documented]
    assert undocumented == []


@pytest.mark.parametrize(("setting", "param"), ALERT_PARAMS.items())
def test_every_alert_setting_is_an_azd_parameter_not_a_literal(setting: str, param: str) -> None:
    expression = app_settings()[setting]
    assert expression in (param, f"string({param})"), f"{setting} is {expression} in api.bicep"
    api_param = params(read("app/api.bicep"))[param]
    assert api_param.default is None  # main.bicep must pass it
    _, passed = modules(read("main.bicep"))["api"]
    assert passed[param] == param
    declared = params(read("main.bicep"))[param]
    assert declared.type == ("int" if expression.startswith("string(") else "string")
    file = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    default = main_param_default(param).strip("'")
    assert file[param]["value"] == f"${{{setting}={default}}}"  # azd env set <setting> ...


def test_the_alert_parameter_defaults_are_the_code_defaults() -> None:
    env = sample_env()
    deployed = Settings.from_env(env)
    built_in = Settings.from_env({k: v for k, v in env.items() if k not in ALERT_PARAMS})
    for field_name in ("alert_sender", "alert_recipients", "alert_digest_schedule",
                       "alert_exclude_skus", "alert_exclude_groups", "alert_exclude_users",
                       "alert_grace_minutes", "swap_grace_days", "mass_loss_threshold",
                       "baseline", "alert_channels"):  # fmt: skip
        assert getattr(deployed, field_name) == getattr(built_in, field_name), field_name
    assert deployed.alert_sender is None  # mail stays off until someone sets ALERT_SENDER


def test_alert_parameters_set_through_azd_make_valid_settings() -> None:
    env = sample_env() | {
        "ALERT_SENDER": "license-guard@contoso.com",
        "ALERT_RECIPIENTS": "it-licensing@contoso.com, ops@contoso.com",
        "ALERT_GRACE_MINUTES": "45",
        "MASS_LOSS_THRESHOLD": "25",
    }
    settings = Settings.from_env(env)

    assert settings.alert_sender == "license-guard@contoso.com"
    assert settings.alert_recipients == ("it-licensing@contoso.com", "ops@contoso.com")
    assert settings.alert_grace_minutes == 45
    assert settings.mass_loss_threshold == 25


def test_operations_doc_says_how_to_enable_mail_and_set_up_the_sync_server() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    mail = doc[doc.index("## Enable alert mail") : doc.index("## On-premises sync trigger")]
    for step in ("--enable-mail", "New-ManagementRoleAssignment", "New-ApplicationAccessPolicy",
                 "azd provision", "license-guard preflight"):  # fmt: skip
        assert step in mail or step in doc, step
    for setting in ALERT_PARAMS:
        assert setting in doc, setting
    assert "azd env set ALERT_SENDER" in mail
    onprem = doc[doc.index("## On-premises sync trigger") : doc.index("## Restricting")]
    for fact in ("/api/directory/sync-completed", "x-functions-key", "onprem-sync-key",
                 "Export-Clixml", "az functionapp function keys set", "Register-ScheduledTask",
                 "az keyvault secret set"):  # fmt: skip
        assert fact in onprem, fact


def test_operations_doc_lists_every_azd_variable_the_parameters_file_reads() -> None:
    """An admin changes settings with `azd env set NAME` (a portal change is lost on the next
    provision), so the doc's list of those names must hold every one the parameters file reads."""
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    owned = doc[doc.index("### Settings are owned by the Bicep") : doc.index("The timer schedules")]
    text = (INFRA / "main.parameters.json").read_text(encoding="utf-8")
    variables = set(re.findall(r"\$\{(\w+)", text)) - {"AZURE_ENV_NAME", "AZURE_LOCATION"}
    variables -= {"AZURE_PRINCIPAL_ID", "AZURE_PRINCIPAL_TYPE"}  # azd sets these itself

    assert variables, "no azd variables found"
    missing = sorted(name for name in variables if f"`{name}`" not in owned)
    assert not missing, f"docs/operations.md does not list {missing}"


def _accepts(parse: object, value: int) -> bool:
    try:
        parse(str(value))  # type: ignore[operator]
    except ValueError:
        return False
    return True


def _int_params_behind_settings() -> dict[str, str]:
    """App setting -> the main.bicep int parameter it is written from (``string(param)``)."""
    main = params(read("main.bicep"))
    behind = {}
    for setting, expression in app_settings().items():
        match = re.fullmatch(r"string\((\w+)\)", expression.strip())
        if match and match.group(1) in main and main[match.group(1)].type == "int":
            behind[setting] = match.group(1)
    return behind


def test_every_int_parameter_has_the_bounds_the_setting_accepts() -> None:
    """An `azd provision` with a value the app refuses at start (ALERT_GRACE_MINUTES over 100
    years) deployed it anyway, and the app found out only when it started; with @minValue and
    @maxValue equal to what the setting's parser accepts, Azure refuses the value before
    anything is deployed. Bounds are
    read from the parsers themselves: the limit accepted, one past it refused; no @maxValue
    only where the parser takes any size."""
    parsers = {f.metadata["env"]: f.metadata["parse"] for f in fields(Settings)}
    decorators = param_decorators(read("main.bicep"))
    behind = _int_params_behind_settings()

    assert {"ALERT_GRACE_MINUTES", "SWAP_GRACE_DAYS", "REPROCESS_RATE_PER_MIN"} <= set(behind)
    for setting, param in behind.items():
        parse, bounds = parsers[setting], decorators[param]
        assert "minValue" in bounds, f"{param}: no @minValue"
        low = int(bounds["minValue"])
        assert _accepts(parse, low), f"{param}: @minValue({low}) is refused by {setting}"
        assert not _accepts(parse, low - 1), f"{param}: {setting} accepts {low - 1}"
        if "maxValue" in bounds:
            high = int(bounds["maxValue"])
            assert _accepts(parse, high), f"{param}: @maxValue({high}) is refused by {setting}"
            assert not _accepts(parse, high + 1), f"{param}: {setting} accepts {high + 1}"
        else:
            assert _accepts(parse, 2**53), f"{param}: no @maxValue, but {setting} has a limit"
