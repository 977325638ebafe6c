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

output name string = vault.name
output uri string = vault.properties.vaultUri
