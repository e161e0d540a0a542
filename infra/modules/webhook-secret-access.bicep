// Lets the app identity read exactly one secret that the platform resolves for a Key Vault reference in the
// app settings: the HMAC key that signs the generic webhook (ADF_REFRESH_WEBHOOK_SECRET), or a notification URL. The assignment is on
// the secret, not on the vault: none of the secrets the product watches becomes readable.
// For a vault that uses access policies instead of Azure RBAC, grant "Get" on secrets by hand.
targetScope = 'resourceGroup'

param vaultName string
param secretName string
param principalId string

@description('Why the identity reads this secret, for the role assignment description.')
param purpose string = 'resolve the webhook signing key reference'

// Key Vault Secrets User
var secretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: secretName
}

resource secretReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(secret.id, principalId, secretsUserRoleId)
  scope: secret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', secretsUserRoleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'adf-secret-refresh: ${purpose} (this secret only)'
  }
}
