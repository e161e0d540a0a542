// adf-secret-refresh: everything the function app needs, in one resource group deployment.
//
// Deploy in three steps (scripts/deploy.sh does this):
//   1. this file with deployEventSubscriptions=false: app, storage, identity, roles, system topics;
//   2. the code (scripts/package.sh, then az functionapp deployment source config-zip);
//   3. this file again with deployEventSubscriptions=true: Event Grid refuses to subscribe a function
//      that does not exist yet, so the subscriptions can only come after the code;
//   4. a dry run of the Refresh function, which must answer with a report.
//
// Hosting: Flex Consumption (FC1), runtime 'custom'. Why not Consumption (Y1): see docs/deploy.md and
// modules/function-app.bicep. In short: Linux Consumption is being retired (30 September 2028) and
// its zip deployment needs storage account keys, while Flex deploys and runs with the managed identity
// alone, so the storage account can refuse shared keys entirely.
targetScope = 'resourceGroup'

@description('Name of the function app. Also the stem of every other resource name. Globally unique (it becomes <appName>.azurewebsites.net).')
@minLength(3)
@maxLength(40)
param appName string

@description('Region for the app and its resources. The Event Grid system topics always go to their vault\'s region.')
param location string = resourceGroup().location

@description('ARM scopes the app may read and write: /subscriptions/{s}, /subscriptions/{s}/resourceGroups/{rg}, or a factory resource id. No trailing slash.')
@minLength(1)
param managedScopes array

@description('Resource ids of the Key Vaults whose secret events the app acts on (/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{name}).')
param vaultIds array = []

@description('Names of further vaults whose events reach the app by a subscription made by hand (for example on a system topic the vault already has). They are only added to ADF_REFRESH_VAULTS; see docs/deploy.md.')
param manualVaultNames array = []

@description('When to send notifications.')
@allowed([
  'attention'
  'always'
  'never'
])
param notifyPolicy string = 'attention'

@description('Generic JSON webhook URL (empty: no generic webhook). May also be an @Microsoft.KeyVault(SecretUri=...) reference.')
@secure()
param webhookUrl string = ''

@description('Key Vault secret URI (https://<vault>.vault.azure.net/secrets/<name>[/<version>]) of the HMAC key that signs the generic webhook. Becomes a Key Vault reference, never a plain value.')
param webhookSecretUri string = ''

@description('Resource id of the vault that holds webhookSecretUri. When set, the app identity gets Key Vault Secrets User on that one secret so the platform can resolve the reference.')
param webhookSecretVaultId string = ''

@description('Microsoft Teams Workflows webhook URL (empty: no Teams message). May also be an @Microsoft.KeyVault(SecretUri=...) reference.')
@secure()
param teamsWebhookUrl string = ''

@description('Slack incoming webhook URL (empty: no Slack message). May also be an @Microsoft.KeyVault(SecretUri=...) reference.')
@secure()
param slackWebhookUrl string = ''

@description('NCRONTAB schedule (six fields, UTC) of the daily audit.')
param auditSchedule string = '0 0 6 * * *'

@description('Time budget of one refresh or audit run, in seconds. Must stay below functionTimeout in host.json (10 minutes), so a run stops cleanly and reports before the host kills it.')
@minValue(30)
@maxValue(570)
param runBudgetSeconds int = 480

@description('The audit\'s expiry thresholds in days, warning and critical, e.g. \'30,7\'.')
param expiryWarningDays string = '30,7'

@description('The platforms scanned, comma-separated: dataFactory, synapse, appService, apiManagement. Empty means all four.')
param platforms string = ''

@description('Create the Event Grid subscriptions to the KeyVaultSecretEvent function. Only after the code is deployed.')
param deployEventSubscriptions bool = false

@description('Memory of each Flex Consumption instance, in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Upper bound of Flex Consumption instances. 40 is the lowest value Flex accepts; the queue trigger\'s batchSize (host.json) and ARM throttling keep the real concurrency small.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Replication of the app\'s storage account (host state, queues, reports).')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_LRS'

@description('Days Log Analytics keeps the app\'s logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 90

@description('Resource id of the action group that receives the alerts (function failures, attention and poison messages, missing audit, Event Grid dead-letters and delivery failures). Empty: the alert rules exist and fire in Azure Monitor, but notify nobody.')
param alertActionGroupId string = ''

@description('Days the reports container keeps a report (and the dead-letter container an undelivered event) before the lifecycle rule deletes it.')
@minValue(1)
@maxValue(3650)
param reportRetentionDays int = 90

@description('Log every read of the queues (StorageRead) to Log Analytics. On by default: it is the audit trail checkov control CKV_AZURE_33 asks for. Every poll of the queues by the Functions host is a read, so it costs Log Analytics ingestion around the clock (see docs/deploy.md, "What it costs to run"); turn it off to save that cost. Writes and deletes are always logged.')
param logQueueReads bool = true

@description('Resource ids of Key Vault secrets (/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/{v}/secrets/{name}) that webhookUrl, teamsWebhookUrl or slackWebhookUrl reference as @Microsoft.KeyVault(SecretUri=...). The app identity gets Key Vault Secrets User on each one, and on nothing else, so the platform can resolve the references.')
param notificationSecretIds array = []

param tags object = {}

// Names shared by the code and the infrastructure. tests/infra.rs checks them against
// adf_secret_refresh::functions::{REFRESH_JOB_QUEUE, ATTENTION_QUEUE, REPORT_CONTAINER}.
var refreshJobQueueName = 'refresh-jobs'
var attentionQueueName = 'refresh-attention'
var reportContainerName = 'reports'
var deadLetterContainerName = 'eventgrid-deadletter'
var deploymentContainerName = 'app-package'
var eventFunctionName = 'KeyVaultSecretEvent'

var allTags = union(tags, {
  application: 'adf-secret-refresh'
  'app-name': appName
})
var compactName = replace(toLower(appName), '-', '')
var storageAccountName = 'st${take(compactName, 9)}${uniqueString(resourceGroup().id, appName)}'

// Scopes by kind: a role assignment at a subscription, a resource group and a resource each need
// a deployment at a different scope.
var subscriptionScopes = filter(managedScopes, s => length(split(s, '/')) == 3)
var resourceGroupScopes = filter(managedScopes, s => length(split(s, '/')) == 5)
// Nested, not '&&': ARM may evaluate both operands, and a short id has no segment 7.
var factoryScopes = filter(filter(managedScopes, s => length(split(s, '/')) == 9), s => toLower(split(s, '/')[7]) == 'factories')
// A custom role's assignable scopes may be subscriptions or resource groups, not resources:
// a factory contributes its resource group. union() removes duplicates.
var factoryResourceGroups = [for s in factoryScopes: '/subscriptions/${split(s, '/')[2]}/resourceGroups/${split(s, '/')[4]}']
var assignableScopes = union(subscriptionScopes, resourceGroupScopes, factoryResourceGroups)
var vaultNames = [for v in vaultIds: last(split(v, '/'))]
// Placeholders keep the expressions valid when no webhook secret vault is given (the module is skipped).
var webhookVaultParts = split(empty(webhookSecretVaultId) ? '${resourceGroup().id}/providers/Microsoft.KeyVault/vaults/none' : webhookSecretVaultId, '/')
var webhookSecretName = empty(webhookSecretUri) ? 'none' : split(webhookSecretUri, '/')[4]

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${appName}'
  location: location
  tags: allTags
}

module monitoring 'modules/monitoring.bicep' = {
  name: '${take(appName, 40)}-monitoring'
  params: {
    appName: appName
    location: location
    tags: allTags
    retentionInDays: logRetentionDays
    publisherPrincipalId: identity.properties.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: '${take(appName, 40)}-storage'
  params: {
    name: storageAccountName
    location: location
    tags: allTags
    skuName: storageSku
    queueNames: [
      refreshJobQueueName
      '${refreshJobQueueName}-poison'
      attentionQueueName
    ]
    containerNames: [
      reportContainerName
      deadLetterContainerName
      deploymentContainerName
    ]
    appPrincipalId: identity.properties.principalId
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    reportRetentionDays: reportRetentionDays
    logQueueReads: logQueueReads
    expiringPrefixes: [
      '${reportContainerName}/'
      '${deadLetterContainerName}/'
    ]
  }
}

module alerts 'modules/alerts.bicep' = {
  name: '${take(appName, 40)}-alerts'
  // After the storage diagnostic settings (in the storage module) that send the queue logs the rules read.
  dependsOn: [
    storage
  ]
  params: {
    appName: appName
    location: location
    tags: allTags
    workspaceId: monitoring.outputs.workspaceId
    actionGroupId: alertActionGroupId
    attentionQueueName: attentionQueueName
    poisonQueueName: '${refreshJobQueueName}-poison'
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: '${take(appName, 40)}-function-app'
  params: {
    appName: appName
    location: location
    tags: allTags
    identityId: identity.id
    identityClientId: identity.properties.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: '${storage.outputs.blobEndpoint}${deploymentContainerName}'
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    appSettings: [
      {
        name: 'ADF_REFRESH_SCOPE'
        value: join(managedScopes, ',')
      }
      {
        name: 'ADF_REFRESH_VAULTS'
        value: join(concat(vaultNames, manualVaultNames), ',')
      }
      {
        name: 'ADF_REFRESH_NOTIFY'
        value: notifyPolicy
      }
      {
        name: 'ADF_REFRESH_WEBHOOK_URL'
        value: webhookUrl
      }
      {
        // A Key Vault reference: the platform resolves it with the app identity; the value is
        // never stored in the app's configuration or in this deployment's history.
        name: 'ADF_REFRESH_WEBHOOK_SECRET'
        value: empty(webhookSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${webhookSecretUri})'
      }
      {
        name: 'ADF_REFRESH_TEAMS_WEBHOOK_URL'
        value: teamsWebhookUrl
      }
      {
        name: 'ADF_REFRESH_SLACK_WEBHOOK_URL'
        value: slackWebhookUrl
      }
      {
        name: 'ADF_REFRESH_CREDENTIAL'
        value: 'managed-identity'
      }
      {
        name: 'AZURE_CLIENT_ID'
        value: identity.properties.clientId
      }
      {
        name: 'ADF_REFRESH_AUDIT_SCHEDULE'
        value: auditSchedule
      }
      {
        name: 'ADF_REFRESH_RUN_BUDGET_SECONDS'
        value: string(runBudgetSeconds)
      }
      {
        name: 'ADF_REFRESH_EXPIRY_WARNING_DAYS'
        value: expiryWarningDays
      }
      {
        name: 'ADF_REFRESH_PLATFORMS'
        value: platforms
      }
    ]
  }
}

// The least-privilege role: exactly the ARM actions the code performs.
module customRole 'modules/custom-role.bicep' = {
  name: '${take(appName, 40)}-custom-role'
  scope: subscription()
  params: {
    roleName: 'ADF Secret Refresh (${appName})'
    assignableScopes: assignableScopes
  }
}

module subscriptionAssignments 'modules/role-assignment-subscription.bicep' = [for (s, i) in subscriptionScopes: {
  name: '${take(appName, 40)}-scope-sub-${i}'
  scope: subscription(split(s, '/')[2])
  params: {
    principalId: identity.properties.principalId
    roleDefinitionGuid: customRole.outputs.roleDefinitionGuid
    assignmentDescription: 'adf-secret-refresh ${appName}: re-save and test ADF linked services'
  }
}]

module resourceGroupAssignments 'modules/role-assignment-resource-group.bicep' = [for (s, i) in resourceGroupScopes: {
  name: '${take(appName, 40)}-scope-rg-${i}'
  scope: resourceGroup(split(s, '/')[2], split(s, '/')[4])
  params: {
    principalId: identity.properties.principalId
    roleDefinitionGuid: customRole.outputs.roleDefinitionGuid
    assignmentDescription: 'adf-secret-refresh ${appName}: re-save and test ADF linked services'
  }
}]

module factoryAssignments 'modules/role-assignment-factory.bicep' = [for (s, i) in factoryScopes: {
  name: '${take(appName, 40)}-scope-adf-${i}'
  scope: resourceGroup(split(s, '/')[2], split(s, '/')[4])
  params: {
    factoryName: split(s, '/')[8]
    principalId: identity.properties.principalId
    roleDefinitionGuid: customRole.outputs.roleDefinitionGuid
    assignmentDescription: 'adf-secret-refresh ${appName}: re-save and test ADF linked services'
  }
}]

// Per vault, in the vault's own resource group: Key Vault Reader (metadata only) and the Event Grid
// system topic. A vault can have only one system topic; see docs/deploy.md if yours already has one.
module vaults 'modules/vault.bicep' = [for (v, i) in vaultIds: {
  name: '${take(appName, 40)}-vault-${i}'
  scope: resourceGroup(split(v, '/')[2], split(v, '/')[4])
  params: {
    vaultName: split(v, '/')[8]
    systemTopicName: 'evgt-${split(v, '/')[8]}-${take(appName, 20)}'
    principalId: identity.properties.principalId
    tags: allTags
    actionGroupId: alertActionGroupId
  }
}]

// The system topic's own identity writes undeliverable events to the dead-letter container.
module deadLetterAccess 'modules/dead-letter-access.bicep' = [for (v, i) in vaultIds: {
  name: '${take(appName, 40)}-deadletter-${i}'
  params: {
    storageAccountName: storage.outputs.name
    containerName: deadLetterContainerName
    principalId: vaults[i].outputs.systemTopicPrincipalId
  }
}]

module eventSubscriptions 'modules/event-subscription.bicep' = [for (v, i) in vaultIds: if (deployEventSubscriptions) {
  name: '${take(appName, 40)}-events-${i}'
  scope: resourceGroup(split(v, '/')[2], split(v, '/')[4])
  params: {
    systemTopicName: vaults[i].outputs.systemTopicName
    subscriptionName: 'adf-secret-refresh-${take(appName, 40)}'
    functionResourceId: '${functionApp.outputs.id}/functions/${eventFunctionName}'
    deadLetterStorageAccountId: storage.outputs.id
    deadLetterContainerName: deadLetterContainerName
    // Passing the assignment id makes the subscription wait until dead-lettering is authorised.
    deadLetterRoleAssignmentId: deadLetterAccess[i].outputs.roleAssignmentId
  }
}]

// The platform resolves ADF_REFRESH_WEBHOOK_SECRET with the app identity: it may read that one
// secret, and no other.
module webhookSecretAccess 'modules/webhook-secret-access.bicep' = if (!empty(webhookSecretUri) && !empty(webhookSecretVaultId)) {
  name: '${take(appName, 40)}-webhook-secret'
  scope: resourceGroup(webhookVaultParts[2], webhookVaultParts[4])
  params: {
    vaultName: webhookVaultParts[8]
    secretName: webhookSecretName
    principalId: identity.properties.principalId
  }
}

// Notification URLs kept in Key Vault: read access to exactly those secrets.
module notificationSecretAccess 'modules/webhook-secret-access.bicep' = [for (secretId, i) in notificationSecretIds: {
  name: '${take(appName, 40)}-notify-secret-${i}'
  scope: resourceGroup(split(secretId, '/')[2], split(secretId, '/')[4])
  params: {
    vaultName: split(secretId, '/')[8]
    secretName: split(secretId, '/')[10]
    principalId: identity.properties.principalId
    purpose: 'resolve a notification URL reference'
  }
}]

output functionAppName string = functionApp.outputs.name
output functionAppHostName string = functionApp.outputs.defaultHostName
output storageAccountName string = storage.outputs.name
output reportContainerName string = reportContainerName
output managedIdentityPrincipalId string = identity.properties.principalId
output managedIdentityClientId string = identity.properties.clientId
output customRoleDefinitionId string = customRole.outputs.roleDefinitionId
output applicationInsightsName string = monitoring.outputs.appInsightsName
output alertRuleNames array = alerts.outputs.ruleNames
output systemTopicNames array = [for (v, i) in vaultIds: vaults[i].outputs.systemTopicName]
output eventSubscriptionsDeployed bool = deployEventSubscriptions
// One per vault, in vaultIds' order: the subscription's id once deployEventSubscriptions is true, else ''.
// scripts/deploy.sh step 3 fails unless every vault has one.
output eventSubscriptionIds array = [for (v, i) in vaultIds: deployEventSubscriptions ? eventSubscriptions[i].outputs.id : '']
