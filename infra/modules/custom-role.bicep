// The least-privilege custom role: exactly the ARM actions the code performs, nothing more.
//
// The list must equal adf_secret_refresh::azure::operations::required_actions() (src/azure/operations.rs);
// tests/infra.rs fails when the two differ. Deployed at subscription scope: a custom role lives in
// the tenant and lists where it may be assigned.
targetScope = 'subscription'

@description('Display name of the role, unique in the tenant.')
param roleName string

@description('Subscriptions and resource groups where the role may be assigned.')
param assignableScopes array

var roleDefinitionGuid = guid(subscription().id, roleName)

resource role 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: roleDefinitionGuid
  properties: {
    roleName: roleName
    description: 'adf-secret-refresh: list factories, read and re-save linked services and credentials, test connections, read integration runtime status, read datasets, pipelines, data flows and triggers (to say what a broken linked service stops), list Synapse workspaces, read App Service Key Vault references and refresh them, read API Management named values and refresh them. No secret values (never config/list or namedValues/listValue), no factory or workspace writes.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.DataFactory/factories/credentials/read'
          'Microsoft.DataFactory/factories/credentials/write'
          'Microsoft.DataFactory/factories/dataflows/read'
          'Microsoft.DataFactory/factories/datasets/read'
          'Microsoft.DataFactory/factories/getDataPlaneAccess/read'
          'Microsoft.DataFactory/factories/getFeatureValue/read'
          'Microsoft.DataFactory/factories/integrationruntimes/getstatus/read'
          'Microsoft.DataFactory/factories/linkedservices/read'
          'Microsoft.DataFactory/factories/linkedservices/write'
          'Microsoft.DataFactory/factories/pipelines/read'
          'Microsoft.DataFactory/factories/read'
          'Microsoft.DataFactory/factories/triggers/read'
          'Microsoft.Synapse/workspaces/read'
          'Microsoft.Web/sites/Read'
          'Microsoft.Web/sites/config/Read'
          'Microsoft.Web/sites/config/Write'
          'Microsoft.Web/sites/slots/Read'
          'Microsoft.Web/sites/slots/config/Read'
          'Microsoft.Web/sites/slots/config/Write'
          'Microsoft.ApiManagement/service/read'
          'Microsoft.ApiManagement/service/namedValues/read'
          'Microsoft.ApiManagement/service/namedValues/refreshSecret/action'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

output roleDefinitionGuid string = roleDefinitionGuid
output roleDefinitionId string = role.id
