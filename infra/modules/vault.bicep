// Per Key Vault, in the vault's resource group:
// - Key Vault Reader for the app identity: secret metadata (versions, enabled, expiry), never values;
// - the Event Grid system topic for the vault, with its own identity for dead-lettering.
targetScope = 'resourceGroup'

param vaultName string
param systemTopicName string
param principalId string
param tags object

// Key Vault Reader: "Read metadata of key vaults and its certificates, keys, and secrets. Cannot read
// sensitive values such as secret contents or key material." RBAC-mode vaults only.
var keyVaultReaderRoleId = '21090545-7ca7-4776-b22c-e363652d74d2'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultReaderRoleId)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultReaderRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'adf-secret-refresh: secret versions and expiry (metadata only, never values)'
  }
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: systemTopicName
  // A system topic lives in its source's region.
  location: vault.location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: vault.id
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

output systemTopicName string = systemTopic.name
output systemTopicPrincipalId string = systemTopic.identity.principalId
