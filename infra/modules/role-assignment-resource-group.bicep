// Assigns the custom role to the app identity on one resource group (the module's scope).
targetScope = 'resourceGroup'

param principalId string
@description('Name (GUID) of the custom role definition.')
param roleDefinitionGuid string
param assignmentDescription string

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roleDefinitionGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}

output id string = assignment.id
