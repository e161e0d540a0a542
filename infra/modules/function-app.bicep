// The function app: a Flex Consumption (FC1) plan running the Rust binary as a custom handler.
//
// Why Flex Consumption and not Consumption (Y1):
// - Flex supports custom handlers: the Functions stacks API lists runtime 'custom' (version '1.0')
//   for SKU FC1.
// - Flex runs and deploys with the managed identity alone. The deployment package goes to a blob
//   container with the user-assigned identity, so the storage account can refuse shared keys.
//   On Linux Consumption, `az functionapp deployment source config-zip` uploads the package with
//   the storage account key and points WEBSITE_RUN_FROM_PACKAGE at a SAS URL: it needs keys.
// - Linux Consumption (Y1) is being retired on 30 September 2028 and gets no new features.
// On Flex the runtime and its version come from functionAppConfig.runtime, so the
// FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION app settings are not set (Flex
// deprecates them; the host is always 4.x).

param appName string
param location string
param tags object

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string

@description('Client id of that identity.')
param identityClientId string

param storageAccountName string

@description('URL of the blob container that holds the deployment package.')
param deploymentContainerUrl string

param instanceMemoryMB int
param maximumInstanceCount int
param appInsightsConnectionString string

@description('The product\'s settings, as {name, value} objects.')
param appSettings array

var hostSettings = [
  {
    name: 'AzureWebJobsStorage__accountName'
    value: storageAccountName
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsightsConnectionString
  }
  {
    // Entra authentication for telemetry: Application Insights has local auth disabled.
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${appName}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    // checkov:skip=CKV_AZURE_225: Zone redundancy on Flex needs always-ready instances (billed while idle) and zone-redundant storage; this event-driven job rides out a zone outage through Event Grid retries and queue re-delivery.
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    // checkov:skip=CKV_AZURE_222: Event Grid delivers Key Vault events to the KeyVaultSecretEvent function over the public endpoint, and operators call the Refresh function with a function key; the app has no VNet for a private endpoint. Callers still need a function key or the Event Grid system key.
    // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero and has no fixed worker count; resilience comes from re-delivery (Event Grid retries for 24 h, queue messages reappear after the visibility timeout).
    // checkov:skip=CKV_AZURE_213: App Service health check does not apply to Flex Consumption; the Functions host itself restarts a custom handler that stops answering.
    // checkov:skip=CKV_AZURE_17: Event Grid cannot present a client certificate when it delivers events; callers are authenticated by function keys instead.
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    clientCertEnabled: false
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: concat(hostSettings, appSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'custom'
        version: '1.0'
      }
    }
  }
}

// No FTP, no basic-auth publishing. `az functionapp deployment source config-zip` signs in to the
// deployment endpoint with the caller's Entra ID token instead.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
