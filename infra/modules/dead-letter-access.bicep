// Lets one Event Grid system topic write undeliverable events to the dead-letter container, with its
// managed identity (the storage account accepts no keys). Deployed in the app's resource group.
targetScope = 'resourceGroup'

param storageAccountName string
param containerName string
@description('Principal id of the system topic\'s identity.')
param principalId string

// Storage Blob Data Contributor
var blobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: account
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: containerName
}

resource writer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(container.id, principalId, blobDataContributorRoleId)
  scope: container
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', blobDataContributorRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'adf-secret-refresh: Event Grid dead-lettering of Key Vault events'
  }
}

output roleAssignmentId string = writer.id
