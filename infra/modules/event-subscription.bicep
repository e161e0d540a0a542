// The Event Grid subscription from one vault's system topic to the KeyVaultSecretEvent function.
// Deployed in the vault's resource group, after the code: Event Grid checks that the function exists.
targetScope = 'resourceGroup'

param systemTopicName string
param subscriptionName string
@description('<function app id>/functions/KeyVaultSecretEvent')
param functionResourceId string
param deadLetterStorageAccountId string
param deadLetterContainerName string
@description('Id of the dead-letter role assignment; passed only so that this waits for it.')
param deadLetterRoleAssignmentId string

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

resource eventSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  name: subscriptionName
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: functionResourceId
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.KeyVault.SecretNewVersionCreated'
        'Microsoft.KeyVault.SecretNearExpiry'
        'Microsoft.KeyVault.SecretExpired'
      ]
    }
    // Retry for a day; after that the event goes to the dead-letter container.
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output id string = eventSubscription.id
output deadLetterAuthorisedBy string = deadLetterRoleAssignmentId
