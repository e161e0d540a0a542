// Lets the app identity read exactly one secret: the HMAC key that signs the generic webhook, which
// the platform resolves for the ADF_REFRESH_WEBHOOK_SECRET Key Vault reference. The assignment is on
// the secret, not on the vault: none of the secrets the product watches becomes readable.
// For a vault that uses access policies instead of Azure RBAC, grant "Get" on secrets by hand.
targetScope = 'resourceGroup'

param vaultName string
param secretName string
param principalId string

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
    description: 'adf-secret-refresh: resolve the webhook signing key reference (this secret only)'
  }
}
