// Example parameters. Copy to main.bicepparam (or any name), fill in, and pass it to
// scripts/deploy.sh with --parameters. deployEventSubscriptions is set by deploy.sh per step.
using 'main.bicep'

param appName = 'adfrefresh-prod-weu'
param location = 'westeurope'

// What the app may read and re-save: whole subscriptions, resource groups, or single factories.
param managedScopes = [
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-data-platform'
  '/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-analytics/providers/Microsoft.DataFactory/factories/adf-analytics'
]

// The vaults whose rotations trigger a refresh. They may live in other resource groups or subscriptions.
param vaultIds = [
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-secrets/providers/Microsoft.KeyVault/vaults/kv-data-platform'
]

param notifyPolicy = 'attention'

// Notification endpoints (empty: that channel is off). Each may be a Key Vault reference instead of a URL,
// e.g. '@Microsoft.KeyVault(SecretUri=https://kv-ops.vault.azure.net/secrets/slack-webhook-url)'.
param webhookUrl = ''
param teamsWebhookUrl = ''
param slackWebhookUrl = ''

// Secrets that the notification URLs above reference (when they are Key Vault references): the app identity
// may read exactly these, so that the platform can resolve them.
param notificationSecretIds = [
  // '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-ops/providers/Microsoft.KeyVault/vaults/kv-ops/secrets/slack-webhook-url'
]

// Alerts go to this action group (empty: they fire in Azure Monitor but notify nobody).
param alertActionGroupId = ''

// Reports and dead-lettered events are deleted after this many days.
param reportRetentionDays = 90

// Every poll of the queues is a logged read: on for the audit trail (checkov CKV_AZURE_33), off to save
// Log Analytics cost. See docs/deploy.md, "What it costs to run".
param logQueueReads = true

// HMAC key of the generic webhook: a Key Vault secret, referenced, never copied into app settings.
param webhookSecretUri = ''
param webhookSecretVaultId = ''

// Daily at 06:00 UTC (NCRONTAB: second minute hour day month day-of-week).
param auditSchedule = '0 0 6 * * *'
