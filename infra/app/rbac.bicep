// Role assignments. The app's identity gets data roles at the storage ACCOUNT scope, which covers
// every queue (and its -poison twin), table and blob container the app uses; Key Vault Secrets
// User on the vault; Monitoring Metrics Publisher on Application Insights (Entra-authenticated
// telemetry). The operator (userPrincipalId) gets Reader roles on what they read and Key Vault
// Secrets Officer (rotation, the postprovision hook's notification URLs). Role ids: Azure
// built-in roles (functions-facts §7/§8).
param storageAccountName string
param applicationInsightsName string
param keyVaultName string
param identityPrincipalId string

@description('The person running azd; empty: no roles for a person.')
param userPrincipalId string = ''
param userPrincipalType string = 'User'

@description('Optional on-prem sender (Azure Arc server or certificate app) allowed to put messages on sync-completed; empty: none.')
param onpremSenderPrincipalId string = ''

var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'
var keyVaultSecretsOfficer = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
var storageQueueDataMessageSender = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
var storageQueueDataReader = '19e7f393-937e-4f77-808e-94535e297925'
var storageTableDataReader = '76199698-9eea-4c19-bc75-cec21354c6b6'
var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'

// Blob: deployment package and the host's timer leases. Queue: triggers, outputs and the host's
// moves to -poison (Reader + Message Processor is not enough). Table: the app's state.
var appStorageRoles = [
  storageBlobDataOwner
  storageQueueDataContributor
  storageTableDataContributor
]

// The operator only reads (az storage ... --auth-mode login): the poison queues, the findings
// table and the reports container, each with a Reader role on that one resource. Re-queueing or
// deleting a poisoned message is a deliberate act with a role granted for it (docs/operations.md).
var operatorPoisonQueues = [
  'groups-changed-poison'
  'recompute-users-poison'
  'reprocess-user-poison'
  'sync-completed-poison'
  'subscription-lifecycle-poison'
]
var operatorTable = 'findings'
var operatorContainer = 'reports'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource poisonQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = [
  for queueName in operatorPoisonQueues: {
    parent: queueService
    name: queueName
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource findingsTable 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = {
  parent: tableService
  name: operatorTable
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource reportsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: operatorContainer
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appStorageAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in appStorageRoles: {
    name: guid(storage.id, identityPrincipalId, roleId)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
      principalId: identityPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource appMetricsAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identityPrincipalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appSecretsAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource userPoisonQueueAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (queueName, i) in operatorPoisonQueues: if (!empty(userPrincipalId)) {
    name: guid(poisonQueues[i].id, userPrincipalId, storageQueueDataReader)
    scope: poisonQueues[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataReader)
      principalId: userPrincipalId
      principalType: userPrincipalType
    }
  }
]

resource userFindingsAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(findingsTable.id, userPrincipalId, storageTableDataReader)
  scope: findingsTable
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataReader)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

resource userReportsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(reportsContainer.id, userPrincipalId, storageBlobDataReader)
  scope: reportsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

resource userSecretsAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(vault.id, userPrincipalId, keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficer)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

// Optional Entra ID path for the on-prem trigger: send (add) only, on the sync-completed queue only.

resource syncCompletedQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: 'sync-completed'
}

resource onpremSenderAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(onpremSenderPrincipalId)) {
  name: guid(syncCompletedQueue.id, onpremSenderPrincipalId, storageQueueDataMessageSender)
  scope: syncCompletedQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSender)
    principalId: onpremSenderPrincipalId
    principalType: 'ServicePrincipal'
  }
}
