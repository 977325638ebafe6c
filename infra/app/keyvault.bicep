// Key Vault (RBAC mode) for the Graph clientState. The app reads it through Key Vault references
// in its app settings (CLIENT_STATE, CLIENT_STATE_PREVIOUS), resolved with its managed identity.
// Both secrets start with the same generated value: "no rotation in progress". Rotation is
// described in docs/operations.md.
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

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
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
    // Flex Consumption cannot resolve references to a network-restricted vault.
    publicNetworkAccess: 'Enabled'
  }
}

resource clientState 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (seedClientState) {
  parent: vault
  name: 'client-state'
  properties: {
    value: initialClientState
    contentType: 'Graph subscription clientState'
  }
}

resource clientStatePrevious 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (seedClientState) {
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
  parent: vault
  name: 'onprem-sync-key'
  properties: {
    value: initialOnpremSyncKey
    contentType: 'Azure Functions key of sync_completed_http (x-functions-key)'
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
