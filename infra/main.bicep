// Entra License Guard on Azure Functions Flex Consumption: `azd up` provisions this, then deploys
// the app (see azure.yaml). Structure after Microsoft's azd Flex Consumption Python quickstart
// (Azure-Samples/functions-quickstart-python-http-azd), with plain Microsoft.* resources.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the resource group and tags every resource.')
param environmentName string

@minLength(1)
@description('Azure region for every resource (one that offers Flex Consumption).')
param location string

@description('Object id of the person running azd (AZURE_PRINCIPAL_ID). Gets Key Vault Secrets Officer (to rotate the clientState) and queue/table data roles (to read poison queues and findings). Empty: none.')
param principalId string = ''

@description('Kind of principalId: User, Group or ServicePrincipal.')
@allowed(['User', 'Group', 'ServicePrincipal'])
param principalType string = 'User'

@description('Memory per instance, MB (Flex: 512, 2048 or 4096).')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Upper bound on instances (Flex: 40 at least). The Graph write budget is guarded by the app itself (REPROCESS_RATE_PER_MIN), not by this.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Always-ready instances for the HTTP function group: Graph needs an answer within 3 s, even after idle time. Billed continuously (see docs/operations.md); 0 turns it off.')
@minValue(0)
param httpAlwaysReadyInstances int = 1

@description('GRAPH_BASE_URL: the Microsoft Graph cloud of the tenant, with its API version: global, US Government L4 (GCC High), L5 (DoD) or China (21Vianet).')
@allowed(['https://graph.microsoft.com/v1.0', 'https://graph.microsoft.us/v1.0', 'https://dod-graph.microsoft.us/v1.0', 'https://microsoftgraph.chinacloudapi.cn/v1.0'])
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('observe (report only) or act (may reprocess). Starts in observe; see docs/operations.md before changing.')
@allowed(['observe', 'act'])
param licenseGuardMode string = 'observe'

@description('ACT_GROUP_ALLOWLIST: group ids that act mode may write for (a list: commas or semicolons; one line through azd, see docs/operations.md); empty: all groups.')
param actGroupAllowlist string = ''

@description('The kill switch: true stops every write to the tenant.')
param writesDisabled bool = false

@description('Reprocess calls per minute, tenant-wide.')
@minValue(1)
param reprocessRatePerMin int = 10

@description('Reprocess calls per day, tenant-wide.')
@minValue(1)
param reprocessDailyCap int = 1000

@description('Six-field NCRONTAB schedules, UTC.')
param schedules object = {
  subscriptionKeeper: '0 0 */6 * * *' // every 6 hours; renews 48 h before expiry
  syncWatch: '0 */5 * * * *' // every 5 minutes
  recheckErrors: '0 */15 * * * *' // every 15 minutes
  poisonWatch: '0 */30 * * * *' // every 30 minutes
  reconcile: '0 0 2-4 * * *' // nightly from 02:00 UTC; 03:00 and 04:00 resume a run cut short
}

// Alerts (README "Alerts", shared/platform/settings.py). Empty alertSender: no mail, everything else runs.
// Each is an azd variable of the app setting's name: `azd env set ALERT_SENDER ...`, then
// `azd provision` (infra/main.parameters.json; docs/operations.md "Enable alert mail").
@description('ALERT_SENDER: the one mailbox alerts are sent from (needs Mail.ReadWrite and Mail.Send scoped to it). Empty: alerts off.')
param alertSender string = ''

@description('ALERT_RECIPIENTS: addresses in verified domains (a list: commas or semicolons; one line through azd, see docs/operations.md); required with alertSender.')
param alertRecipients string = ''

@description('ALERT_DIGEST_SCHEDULE: six-field NCRONTAB (UTC) of the digest mail.')
param alertDigestSchedule string = '0 0 * * * *'

@description('ALERT_EXCLUDE_SKUS: SKU ids whose findings are not mailed (a list: commas or semicolons; one line through azd, see docs/operations.md).')
param alertExcludeSkus string = ''

@description('ALERT_EXCLUDE_GROUPS: group ids whose findings are not mailed (a list: commas or semicolons; one line through azd, see docs/operations.md).')
param alertExcludeGroups string = ''

@description('ALERT_EXCLUDE_USERS: user ids or UPNs whose findings are not mailed (a list: commas or semicolons; one line through azd, see docs/operations.md).')
param alertExcludeUsers string = ''

@description('ALERT_GRACE_MINUTES: an error or warning is mailed once it is this old. At most 100 years (52560000), as the app accepts.')
@minValue(0)
@maxValue(52560000)
param alertGraceMinutes int = 30

@description('SWAP_GRACE_DAYS: a conflict during a SKU swap waits this long before it is mailed. At most 100 years (36500), as the app accepts.')
@minValue(0)
@maxValue(36500)
param swapGraceDays int = 3

@description('MASS_LOSS_THRESHOLD: more users than this losing a data capability within an hour is one mass-loss alert.')
@minValue(1)
param massLossThreshold int = 10

@description('BASELINE: empty (default), off, reset or reset-<label> (shared/platform/settings.py).')
param baseline string = ''

@description('ALERT_CHANNELS: JSON list of {type, urlSecretName, minSeverity} (docs/alert-channels.md: through azd on one line, its quotes escaped); the URLs live in Key Vault. Empty: mail only.')
param alertChannels string = ''

@description('SKU_PRICES: PART=PRICE items (a list: commas or semicolons; one line through azd, see docs/operations.md), the monthly price per seat for the report page cost columns. Empty: no costs.')
param skuPrices string = ''

@description('Write the initial secrets to Key Vault (the clientState pair, placeholder notification URLs). The postprovision hook sets the azd variable SEED_CLIENT_STATE=false after the first provision so later runs keep the secrets (and the subscription) as they are.')
param seedClientState bool = true

@secure()
@description('Initial Graph clientState: generated on each deployment, used only while seedClientState is true. Never put a literal here.')
param initialClientState string = newGuid() // checkov:skip=CKV_AZURE_131: newGuid() is generated per deployment, not a hardcoded value

@description('Write the initial on-prem sync function key to Key Vault (onprem-sync-key). The postprovision hook sets SEED_ONPREM_SYNC_KEY=false after the first provision; rotate it as docs/operations.md says.')
param seedOnpremSyncKey bool = true

@secure()
@description('Initial on-prem sync function key: generated, used only while seedOnpremSyncKey is true. Never put a literal here.')
param initialOnpremSyncKey string = '${newGuid()}${newGuid()}' // checkov:skip=CKV_AZURE_131: newGuid() is generated per deployment, not a hardcoded value

@description('True once the code is deployed (the hook sets SYNC_FUNCTION_DEPLOYED): a function key can only be set on a function that exists.')
param syncFunctionDeployed bool = false

@description('Optional: object id of the Azure Arc-enabled sync server (or a certificate app) that may put SyncCompleted on the sync-completed queue with Entra ID instead of calling the HTTPS endpoint. Empty: none.')
param onpremSenderPrincipalId string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = 'func-lg-${resourceToken}'
var keyVaultName = 'kv-${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-lg-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
    seedClientState: seedClientState
    initialClientState: initialClientState
    seedOnpremSyncKey: seedOnpremSyncKey
    initialOnpremSyncKey: initialOnpremSyncKey
  }
}

// Read at deployment time only, to hand the on-prem sync key to api.bicep as a secure param.
resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
  scope: rg
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    identityPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
    onpremSenderPrincipalId: onpremSenderPrincipalId
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    keyVaultUri: keyVault.outputs.uri
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    httpAlwaysReadyInstances: httpAlwaysReadyInstances
    graphBaseUrl: graphBaseUrl
    licenseGuardMode: licenseGuardMode
    actGroupAllowlist: actGroupAllowlist
    writesDisabled: writesDisabled
    reprocessRatePerMin: reprocessRatePerMin
    reprocessDailyCap: reprocessDailyCap
    schedules: schedules
    alertSender: alertSender
    alertRecipients: alertRecipients
    alertDigestSchedule: alertDigestSchedule
    alertExcludeSkus: alertExcludeSkus
    alertExcludeGroups: alertExcludeGroups
    alertExcludeUsers: alertExcludeUsers
    alertGraceMinutes: alertGraceMinutes
    swapGraceDays: swapGraceDays
    massLossThreshold: massLossThreshold
    baseline: baseline
    alertChannels: alertChannels
    skuPrices: skuPrices
    syncFunctionDeployed: syncFunctionDeployed
    onpremSyncKey: vault.getSecret('onprem-sync-key')
  }
  dependsOn: [rbac, keyVault]
}

// Read by azd (saved in the environment) and by infra/scripts/*.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output AZURE_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output SERVICE_API_NAME string = api.outputs.name
