// The function app on Flex Consumption (FC1, Linux, Python 3.11) and EVERY app setting the code
// reads (shared/platform/settings.py Settings.setting_names(); tests/infra checks the two agree).
// Not set on purpose: FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION and
// WEBSITE_RUN_FROM_PACKAGE (deprecated on Flex: the runtime comes from functionAppConfig), and
// GRAPH_STATIC_TOKEN (graphsim only; Settings refuses it for a non-loopback GRAPH_BASE_URL).
param name string
param planName string
param location string
param tags object = {}
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsConnectionString string
param keyVaultUri string
param instanceMemoryMB int
param maximumInstanceCount int
param httpAlwaysReadyInstances int
param graphBaseUrl string
param licenseGuardMode string
param actGroupAllowlist string
param writesDisabled bool
param reprocessRatePerMin int
param reprocessDailyCap int
param schedules object
param alertSender string
param alertRecipients string
param alertDigestSchedule string
param alertExcludeSkus string
param alertExcludeGroups string
param alertExcludeUsers string
param alertGraceMinutes int
param swapGraceDays int
param massLossThreshold int
param baseline string
param alertChannels string
param skuPrices string

@description('True once the code is deployed: the function must exist before it can have a key.')
param syncFunctionDeployed bool

@secure()
@description('The on-prem sync endpoint\'s function key, from Key Vault (onprem-sync-key).')
param onpremSyncKey string

var httpAlwaysReady = [
  {
    name: 'http'
    instanceCount: httpAlwaysReadyInstances
  }
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption (FC1) plan; a lost zone costs at most a delay: Graph retries notifications and the nightly reconciliation catches up
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: Graph's change notifications present no client certificate; the webhooks check the function key and the clientState instead
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales out on demand; the HTTP group keeps one always-ready instance (httpAlwaysReadyInstances)
  // checkov:skip=CKV_AZURE_213: Flex Consumption has no App Service health-check path; failures surface through the poison watch and the dead-man switch (docs/operations.md)
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        // HTTP functions scale as one group ('http'); one instance kept warm so the webhook
        // answers Graph within 3 s after idle periods. Billed as a baseline (docs/operations.md).
        alwaysReady: httpAlwaysReadyInstances > 0 ? httpAlwaysReady : []
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }

  resource appSettings 'config' = {
    // checkov:skip=CKV_AZURE_222: Microsoft Graph must reach the two webhooks from the internet, so public network access stays on (function key + clientState guard them)
    // checkov:skip=CKV_AZURE_13: App Service Authentication would reject Graph, which cannot sign in; the webhooks authenticate by function key and clientState
    // checkov:skip=CKV_AZURE_63: checkov reads this 'appsettings' config as site config; HTTP logs are App Service (Windows) web-server logs, the app logs to Application Insights
    // checkov:skip=CKV_AZURE_65: same: detailed error pages are an App Service web-server feature; errors go to Application Insights
    // checkov:skip=CKV_AZURE_66: same: failed request tracing is an IIS feature; requests and failures go to Application Insights
    // checkov:skip=CKV_AZURE_80: no .NET: the app is Python 3.11 (functionAppConfig.runtime)
    // checkov:skip=CKV_AZURE_88: Flex Consumption deploys from a blob container and has no Azure Files content share
    name: 'appsettings'
    properties: {
      // Host and app storage, identity-based (the account has shared keys off).
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identityClientId
      AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
      AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
      AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
      // Telemetry, Entra-authenticated with the identity. The app exports its own logs
      // (shared/platform/telemetry.py), so the worker's exporter stays off and host.json keeps the
      // host from forwarding them a second time (docs/operations.md "Telemetry").
      APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
      PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'false'
      // The Python worker's thread pool: every handler is synchronous (functions/running.py), so
      // one thread per message of a batch (host.json's queues.batchSize, 16). The queue host
      // fetches the next batch when newBatchThreshold (batchSize/2, 8) remain, so it runs up to
      // 24 messages of a queue function at once: 16 on a thread, 8 wait for one inside the worker
      // (docs/performance.md "No blocking on the event loop").
      PYTHON_THREADPOOL_THREAD_COUNT: '16'
      // Graph: the identity's token (DefaultAzureCredential reads AZURE_CLIENT_ID).
      AZURE_CLIENT_ID: identityClientId
      TENANT_ID: tenant().tenantId
      GRAPH_BASE_URL: graphBaseUrl // the tenant's cloud (main.bicep graphBaseUrl)
      // The notification URLs carry a function key (?code=...), so they live in Key Vault:
      // seeded with a placeholder (keyvault.bicep), set by infra/scripts/postprovision.*.
      NOTIFICATION_URL: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/notification-url/)'
      LIFECYCLE_NOTIFICATION_URL: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/lifecycle-notification-url/)'
      CLIENT_STATE: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/client-state/)'
      CLIENT_STATE_PREVIOUS: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/client-state-previous/)'
      // Safety: observe until an operator decides otherwise (docs/operations.md).
      LICENSE_GUARD_MODE: licenseGuardMode
      ACT_GROUP_ALLOWLIST: actGroupAllowlist
      WRITES_DISABLED: writesDisabled ? 'true' : 'false'
      REPROCESS_RATE_PER_MIN: string(reprocessRatePerMin)
      REPROCESS_DAILY_CAP: string(reprocessDailyCap)
      // Dead-man switch: sweeps finding changes no notification announced for this long.
      NOTIFICATION_SILENCE_MINUTES: '360'
      // Timers: six-field NCRONTAB, UTC.
      SUBSCRIPTION_KEEPER_SCHEDULE: schedules.subscriptionKeeper
      SYNC_WATCH_SCHEDULE: schedules.syncWatch
      RECHECK_ERRORS_SCHEDULE: schedules.recheckErrors
      POISON_WATCH_SCHEDULE: schedules.poisonWatch
      // The nightly reconciliation; a run cut short resumes at the next firing (same date).
      RECONCILE_SCHEDULE: schedules.reconcile
      REPORT_RETENTION_DAYS: '30'
      // Resolved findings kept this long (a resolution a digest still owes: until reported).
      FINDINGS_RETENTION_DAYS: '90'
      // Alerts: azd parameters (docs/operations.md "Enable alert mail"; Mail.ReadWrite + Mail.Send scoped to the
      // sender mailbox). Empty ALERT_SENDER disables mail; recipients in verified domains only.
      ALERT_SENDER: alertSender
      ALERT_RECIPIENTS: alertRecipients
      ALERT_DIGEST_SCHEDULE: alertDigestSchedule
      ALERT_EXCLUDE_SKUS: alertExcludeSkus
      ALERT_EXCLUDE_GROUPS: alertExcludeGroups
      ALERT_EXCLUDE_USERS: alertExcludeUsers
      ALERT_GRACE_MINUTES: string(alertGraceMinutes)
      SWAP_GRACE_DAYS: string(swapGraceDays)
      MASS_LOSS_THRESHOLD: string(massLossThreshold)
      BASELINE: baseline
      // Alert channels besides mail (docs/alert-channels.md): ALERT_CHANNELS names the settings
      // below; each is a Key Vault reference (create the secret to use it: az keyvault secret set).
      ALERT_CHANNELS: alertChannels
      ALERT_TEAMS_URL: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/alert-teams-url/)'
      ALERT_SLACK_URL: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/alert-slack-url/)'
      ALERT_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/alert-webhook-url/)'
      ALERT_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/alert-webhook-secret/)'
      // Report page cost columns: PART=PRICE,... monthly per seat (empty: no costs shown).
      SKU_PRICES: skuPrices
    }
  }
}

// POST /api/directory/sync-completed (functions/directory_sync.py) with its own named key, so the
// sync server holds a key that opens that endpoint only. The value comes from Key Vault and is
// never an app setting. `properties.value` is what ARM accepts for this type
// (Azure/bicep-types-az#1357); the key can only be set on a deployed function
// (Azure/azure-rest-api-specs#13424), hence syncFunctionDeployed (set by the hook).
resource syncCompletedHttp 'Microsoft.Web/sites/functions@2024-04-01' existing = {
  parent: functionApp
  name: 'sync_completed_http'
}

resource onpremSyncFunctionKey 'Microsoft.Web/sites/functions/keys@2024-04-01' = if (syncFunctionDeployed) {
  parent: syncCompletedHttp
  name: 'onprem-sync-key'
  properties: {
    value: onpremSyncKey
  }
}

// Deployment and the SCM site use Entra ID only: no FTP or SCM user/password publishing.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
