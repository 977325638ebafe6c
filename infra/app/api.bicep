// The function app on Flex Consumption (FC1, Linux, Python 3.11) and EVERY app setting the code
// reads (shared/settings.py Settings.setting_names(); tests/infra checks the two agree).
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
param licenseGuardMode string
param actGroupAllowlist string
param writesDisabled bool
param reprocessRatePerMin int
param reprocessDailyCap int
param schedules object

// NOTIFICATION_URL and LIFECYCLE_NOTIFICATION_URL carry the function key, which exists only once
// the app does: infra/scripts/postprovision.* replace this placeholder after every provision.
// Settings needs an absolute URL, and Graph cannot validate this one, so until the hook ran the
// keeper fails loudly instead of creating a subscription nobody receives.
var notificationUrlPlaceholder = 'https://set-by-postprovision.invalid/api/graph'

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
    name: 'appsettings'
    properties: {
      // Host and app storage, identity-based (the account has shared keys off).
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identityClientId
      AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
      AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
      AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
      // Telemetry, Entra-authenticated with the identity.
      APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
      // Graph: the identity's token (DefaultAzureCredential reads AZURE_CLIENT_ID).
      AZURE_CLIENT_ID: identityClientId
      TENANT_ID: tenant().tenantId
      GRAPH_BASE_URL: 'https://graph.microsoft.com/v1.0'
      NOTIFICATION_URL: '${notificationUrlPlaceholder}/notifications'
      LIFECYCLE_NOTIFICATION_URL: '${notificationUrlPlaceholder}/lifecycle'
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
      // Alerts (README "Alerts"; docs/operations.md scopes Mail.Send to the sender mailbox).
      // Empty ALERT_SENDER disables mail; set sender and recipients (verified domains only).
      ALERT_SENDER: ''
      ALERT_RECIPIENTS: ''
      ALERT_DIGEST_SCHEDULE: '0 0 * * * *'
      ALERT_EXCLUDE_SKUS: ''
      ALERT_EXCLUDE_GROUPS: ''
      ALERT_EXCLUDE_USERS: ''
      ALERT_GRACE_MINUTES: '30'
      SWAP_GRACE_DAYS: '3'
      MASS_LOSS_THRESHOLD: '10'
      BASELINE: ''
      // Alert channels besides mail (docs/alert-channels.md): ALERT_CHANNELS names the settings
      // below; each is a Key Vault reference (create the secret to use it: az keyvault secret set).
      ALERT_CHANNELS: ''
      ALERT_TEAMS_URL: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/alert-teams-url/)'
      ALERT_SLACK_URL: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/alert-slack-url/)'
      ALERT_WEBHOOK_URL: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/alert-webhook-url/)'
      ALERT_WEBHOOK_SECRET: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/alert-webhook-secret/)'
      // Report page cost columns: PART=PRICE,... monthly per seat (empty: no costs shown).
      SKU_PRICES: ''
    }
  }
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
