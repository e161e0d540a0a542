// Per Key Vault, in the vault's resource group:
// - Key Vault Reader for the app identity: secret metadata (versions, enabled, expiry), never values;
// - the Event Grid system topic for the vault, with its own identity for dead-lettering.
targetScope = 'resourceGroup'

param vaultName string
param systemTopicName string
param principalId string
param tags object

@description('Resource id of the action group for the Event Grid alerts; empty sends nothing.')
param actionGroupId string = ''

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

// Event Grid alerts on this topic: events it could not deliver to the function (dead-lettered or dropped),
// and failed delivery attempts (Event Grid retries them, but a steady stream means the function is down).
var topicAlerts = [
  {
    name: 'deadlettered'
    metric: 'DeadLetteredCount'
    severity: 1
    description: 'Event Grid dead-lettered Key Vault events: rotations that never reached the function. They are in the eventgrid-deadletter container.'
  }
  {
    name: 'dropped'
    metric: 'DroppedEventCount'
    severity: 1
    description: 'Event Grid dropped Key Vault events it could not deliver and could not dead-letter.'
  }
  {
    name: 'delivery-failures'
    metric: 'DeliveryAttemptFailCount'
    severity: 2
    description: 'Event Grid failed to deliver Key Vault events to the function (it retries with back-off).'
  }
]

resource topicAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = [for a in topicAlerts: {
  name: 'alert-${systemTopicName}-${a.name}'
  location: 'global'
  tags: tags
  properties: {
    description: a.description
    severity: a.severity
    enabled: true
    scopes: [
      systemTopic.id
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: a.metric
          metricName: a.metric
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    autoMitigate: true
    actions: empty(actionGroupId) ? [] : [
      {
        actionGroupId: actionGroupId
      }
    ]
  }
}]
