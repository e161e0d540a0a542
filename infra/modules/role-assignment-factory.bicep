// Assigns the custom role to the app identity on one data factory. Deployed in the factory's
// resource group; the factory must already exist.
targetScope = 'resourceGroup'

param factoryName string
param principalId string
@description('Name (GUID) of the custom role definition.')
param roleDefinitionGuid string
param assignmentDescription string

resource factory 'Microsoft.DataFactory/factories@2018-06-01' existing = {
  name: factoryName
}

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(factory.id, principalId, roleDefinitionGuid)
  scope: factory
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: assignmentDescription
  }
}

output id string = assignment.id
