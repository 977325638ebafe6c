// One storage account, reached only with the managed identity (shared keys off): blob for the
// deployment package and the host's timer leases, queues for the pipeline, tables for state.
// Blob containers for the app's own files: reports (shared/adapters/blobs.py REPORTS_CONTAINER).
// Queue and table names are contracts with the code (shared/adapters/queues.py QUEUE_NAMES and
// their -poison twins, shared/adapters/tables.py TABLE_NAMES); tests/infra checks them.
param name string
param location string
param tags object = {}
param deploymentContainerName string

var queueNames = [
  'groups-changed'
  'groups-changed-poison'
  'recompute-users'
  'recompute-users-poison'
  'reprocess-user'
  'reprocess-user-poison'
  'sync-completed'
  'sync-completed-poison'
  'subscription-lifecycle'
  'subscription-lifecycle-poison'
]

var containerNames = [
  'reports'
]

var tableNames = [
  'deltalinks'
  'groupmembers'
  'subscriptions'
  'findings'
  'reprocessledger'
  'servicestate'
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: the Flex app has no VNet integration here, so a deny rule would lock it out of its own storage; access is Entra ID only (shared keys off)
  // checkov:skip=CKV_AZURE_59: same: the app reaches the account over its public endpoint, with its managed identity (no keys, no SAS, no anonymous blobs)
  // checkov:skip=CKV_AZURE_206: LRS on purpose: all state is rebuilt by the nightly reconciliation (deltas, findings, ledger), and LRS exists in every Flex region
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
