// Key Vault (RBAC mode) for the app's secrets, read through Key Vault references in its app
// settings, resolved with its managed identity: the Graph clientState (CLIENT_STATE,
// CLIENT_STATE_PREVIOUS; both start with the same generated value: "no rotation in progress") and
// the notification URLs (NOTIFICATION_URL, LIFECYCLE_NOTIFICATION_URL), which carry a function key.
// Rotation is described in docs/operations.md.
param name string
param location string
param tags object = {}
param seedClientState bool

@secure()
param initialClientState string

@description('Write the initial on-prem sync function key (onprem-sync-key) once; later runs keep it.')
param seedOnpremSyncKey bool

@secure()
param initialOnpremSyncKey string
// The notification URLs until infra/scripts/postprovision.* writes the real ones (with the
// function key, which exists only once the code is deployed). Settings needs an absolute URL and
// Graph cannot validate this one, so until the hook ran the keeper fails loudly instead of
// creating a subscription nobody receives.
var notificationUrlPlaceholder = 'https://set-by-postprovision.invalid/api/graph'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Flex Consumption cannot resolve Key Vault references in a network-restricted vault (no VNet here); access is RBAC only
  // checkov:skip=CKV_AZURE_189: same: the app's Key Vault references need the public endpoint; every read needs an Entra role on the vault
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    // vault.getSecret('onprem-sync-key') in main.bicep hands the key to the function key
    // resource at deployment time (the deployer needs Microsoft.KeyVault/vaults/deploy/action).
    enabledForTemplateDeployment: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    // A deleted vault (and its secrets) can be recovered for 7 days and not purged before.
    enablePurgeProtection: true
    // Flex Consumption cannot resolve references to a network-restricted vault.
    publicNetworkAccess: 'Enabled'
  }
}

resource clientState 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (seedClientState) {
  // checkov:skip=CKV_AZURE_41: no expiry: the app reads it through a Key Vault reference and an expired secret would stop the webhook; rotation is by hand (docs/operations.md)
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional (if) resource (tests/infra checks it)
  parent: vault
  name: 'client-state'
  properties: {
    value: initialClientState
    contentType: 'Graph subscription clientState'
  }
}

resource clientStatePrevious 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (seedClientState) {
  // checkov:skip=CKV_AZURE_41: no expiry: the app reads it through a Key Vault reference and an expired secret would stop the webhook; rotation is by hand (docs/operations.md)
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional (if) resource (tests/infra checks it)
  parent: vault
  name: 'client-state-previous'
  properties: {
    value: initialClientState
    contentType: 'previous Graph subscription clientState (accepted during a rotation)'
  }
}

// The on-prem sync endpoint's function key (POST /api/directory/sync-completed). The vault is the
// source of truth: api.bicep installs it as the function's key "onprem-sync-key", the sync
// server keeps a copy (docs/operations.md "On-premises sync trigger"). Never an app setting.
resource onpremSyncKey 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (seedOnpremSyncKey) {
  // checkov:skip=CKV_AZURE_41: no expiry: an expired key would stop the on-prem trigger; rotation is by hand (docs/operations.md)
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional (if) resource (tests/infra checks it)
  parent: vault
  name: 'onprem-sync-key'
  properties: {
    value: initialOnpremSyncKey
    contentType: 'Azure Functions key of sync_completed_http (x-functions-key)'
  }
}

resource notificationUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (seedClientState) {
  // checkov:skip=CKV_AZURE_41: no expiry: the app reads it through a Key Vault reference and an expired secret would stop the webhook; rotation is by hand (docs/operations.md)
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional (if) resource (tests/infra checks it)
  parent: vault
  name: 'notification-url'
  properties: {
    value: '${notificationUrlPlaceholder}/notifications'
    contentType: 'Graph change-notification URL with the function key (set by postprovision)'
  }
}

resource lifecycleNotificationUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (seedClientState) {
  // checkov:skip=CKV_AZURE_41: no expiry: the app reads it through a Key Vault reference and an expired secret would stop the webhook; rotation is by hand (docs/operations.md)
  // checkov:skip=CKV_AZURE_114: contentType is set below; checkov does not read the properties of a conditional (if) resource (tests/infra checks it)
  parent: vault
  name: 'lifecycle-notification-url'
  properties: {
    value: '${notificationUrlPlaceholder}/lifecycle'
    contentType: 'Graph lifecycle-notification URL with the function key (set by postprovision)'
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
