// Alert rules an operator needs, in the app's resource group. Each rule sends to the action group given
// (empty: the rules still fire and show in Azure Monitor > Alerts, but notify nobody).
// The Event Grid rules (dead-letters, dropped events, failed deliveries) live beside each system topic,
// in modules/vault.bicep, because a metric alert is scoped to its resource.
//
// Log rules query the Log Analytics workspace behind Application Insights:
// - AppRequests: one row per function invocation (OperationName = function name, Success);
// - StorageQueueLogs: one row per queue operation (the StorageWrite category is always on, see storage.bicep).
// Neither table exists before its first rows, so the rules skip query validation (API version 2022-06-15),
// and main.bicep creates them after the diagnostic settings that feed StorageQueueLogs.

param appName string
param location string
param tags object

@description('Resource id of the Log Analytics workspace behind Application Insights.')
param workspaceId string

@description('Resource id of the action group that receives the alerts; empty sends nothing.')
param actionGroupId string

@description('Name of the queue that receives a message when a run needs a person.')
param attentionQueueName string

@description('Name of the queue that receives the refresh jobs that never completed.')
param poisonQueueName string

@description('Hours without a successful Audit invocation before the alert fires (the audit is daily).')
param auditMissingHours int = 26

var actions = empty(actionGroupId) ? {} : {
  actionGroups: [
    actionGroupId
  ]
}

// One definition per log rule: name, severity, description, query, how often, over how long, and when it fires.
// Each query returns one row per matching record (no summarize): the rule counts rows (timeAggregation Count),
// so "> 0" means "at least one", and "< 1" means "none at all".
var logRules = [
  {
    name: 'function-failures'
    severity: 2
    description: 'A function invocation failed (KeyVaultSecretEvent, Refresh, RefreshStatus or Audit). RefreshJob failures are host retries: their end is the attention and poison alerts.'
    query: 'AppRequests | where Success == false and OperationName != "RefreshJob" | project TimeGenerated, OperationName, ResultCode'
    frequency: 'PT15M'
    window: 'PT15M'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'attention-messages'
    severity: 3
    description: 'A run needs a person: a message was put on ${attentionQueueName}. Read the report it names (docs/operations.md).'
    query: 'StorageQueueLogs | where OperationName == "PutMessage" and Uri has "/${attentionQueueName}/messages"'
    frequency: 'PT15M'
    window: 'PT15M'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'poison-messages'
    severity: 1
    description: 'A refresh job never completed and went to ${poisonQueueName}: the secret rotated, and some linked services were not refreshed. See docs/operations.md.'
    query: 'StorageQueueLogs | where OperationName == "PutMessage" and Uri has "/${poisonQueueName}/messages"'
    frequency: 'PT15M'
    window: 'PT15M'
    operator: 'GreaterThan'
    threshold: 0
  }
  {
    name: 'audit-missing'
    severity: 2
    description: 'No successful Audit invocation in ${auditMissingHours} hours: the app is stopped, cannot start the handler, or the audit fails. It also fires after a fresh deployment until the first scheduled audit.'
    query: 'AppRequests | where TimeGenerated > ago(${auditMissingHours}h) and OperationName == "Audit" and Success == true'
    frequency: 'PT1H'
    window: 'P2D'
    operator: 'LessThan'
    threshold: 1
  }
]

resource rules 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = [for rule in logRules: {
  name: 'alert-${appName}-${rule.name}'
  location: location
  tags: tags
  properties: {
    displayName: 'adf-secret-refresh ${appName}: ${rule.name}'
    description: rule.description
    severity: rule.severity
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: rule.frequency
    windowSize: rule.window
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Count'
          operator: rule.operator
          threshold: rule.threshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    // Azure validates a rule's query when the rule is created, and a table exists in the workspace only once
    // rows have arrived: on a fresh workspace StorageQueueLogs and AppRequests are still missing.
    skipQueryValidation: true
    actions: actions
  }
}]

output ruleNames array = [for (rule, i) in logRules: rules[i].name]
