resource "azurerm_eventgrid_system_topic" "key_vault" {
  name                = "evgt-${var.key_vault.name}"
  location            = var.location
  resource_group_name = var.resource_group_name
  source_resource_id  = var.key_vault.id
  topic_type          = "Microsoft.KeyVault.vaults"
  tags                = var.tags

  # Dead-lettering to storage with its own identity instead of an account key.
  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_role_assignment" "deadletter" {
  scope                = "${var.storage.id}/blobServices/default/containers/${var.storage.deadletter_container}"
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = azurerm_eventgrid_system_topic.key_vault.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

# -- Drift: Azure tells the app when the platform changes, so drift is found when it happens -------

locals {
  # "/subscriptions/<id>" and "/subscriptions/<id>/resourceGroups/<rg>", from the cluster's ID.
  subscription_scope   = join("/", slice(split("/", var.cluster_id), 0, 3))
  resource_group_scope = join("/", slice(split("/", var.cluster_id), 0, 5))
  drift_events_enabled = var.certificate_events_enabled && var.drift_events_enabled
}

# Subscription-level resource events (an Azure subscription has at most one such system topic).
resource "azurerm_eventgrid_system_topic" "subscription" {
  count = var.drift_events_enabled ? 1 : 0

  name                   = "evgt-${var.name}-subscription"
  location               = "global"
  resource_group_name    = var.resource_group_name
  source_arm_resource_id = local.subscription_scope
  topic_type             = "Microsoft.Resources.Subscriptions"
  tags                   = var.tags

  identity {
    type = "SystemAssigned"
  }
}

# The AKS cluster's own events: new Kubernetes versions, support ending, failed node pool upgrades.
resource "azurerm_eventgrid_system_topic" "cluster" {
  count = var.drift_events_enabled ? 1 : 0

  name                   = "evgt-${var.name}-aks"
  location               = var.location
  resource_group_name    = var.resource_group_name
  source_arm_resource_id = var.cluster_id
  topic_type             = "Microsoft.ContainerService.ManagedClusters"
  tags                   = var.tags

  identity {
    type = "SystemAssigned"
  }
}

resource "azurerm_role_assignment" "deadletter_drift" {
  for_each = var.drift_events_enabled ? {
    subscription = azurerm_eventgrid_system_topic.subscription[0].identity[0].principal_id
    cluster      = azurerm_eventgrid_system_topic.cluster[0].identity[0].principal_id
  } : {}

  scope                = "${var.storage.id}/blobServices/default/containers/${var.storage.deadletter_container}"
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = each.value
  principal_type       = "ServicePrincipal"
}

# -- The app's Event Grid subscriptions: one shape, one resource ----------------------------------------------
#
# Every subscription delivers one event at a time to one Event Grid triggered function of the app, retries for a
# day and dead-letters to blob storage with its topic's identity. What differs is the topic, the event types, an
# optional subject prefix and the function. Event Grid validates the endpoint when a subscription is created, so
# each waits for the app code (certificate_events_enabled; the drift ones also for drift_events_enabled).
locals {
  event_subscriptions = {
    # Certificate events only. NewVersionCreated also fires for the app's own imports; the app recognises
    # those, so they do not trigger another rotation.
    certificates = {
      enabled      = var.certificate_events_enabled
      name         = "certificate-events"
      system_topic = azurerm_eventgrid_system_topic.key_vault.name
      included_event_types = [
        "Microsoft.KeyVault.CertificateNewVersionCreated",
        "Microsoft.KeyVault.CertificateNearExpiry",
        "Microsoft.KeyVault.CertificateExpired",
      ]
      subject_begins_with = []
      function            = var.certificate_event_function
    }
    # Writes and deletes in the platform resource group only (the cluster, its pools and their neighbours);
    # the app debounces bursts into one drift check per scope.
    resource_changes = {
      enabled      = local.drift_events_enabled
      name         = "platform-resource-changes"
      system_topic = one(azurerm_eventgrid_system_topic.subscription[*].name)
      included_event_types = [
        "Microsoft.Resources.ResourceWriteSuccess",
        "Microsoft.Resources.ResourceDeleteSuccess",
      ]
      subject_begins_with = [local.resource_group_scope]
      function            = var.drift_event_functions.resources
    }
    # New Kubernetes versions propose a bump; support ending and failed pool upgrades alert (stable codes).
    cluster_events = {
      enabled      = local.drift_events_enabled
      name         = "aks-cluster-events"
      system_topic = one(azurerm_eventgrid_system_topic.cluster[*].name)
      included_event_types = [
        "Microsoft.ContainerService.NewKubernetesVersionAvailable",
        "Microsoft.ContainerService.ClusterSupportEnding",
        "Microsoft.ContainerService.ClusterSupportEnded",
        "Microsoft.ContainerService.NodePoolRollingFailed",
      ]
      subject_begins_with = []
      function            = var.drift_event_functions.cluster
    }
  }
}

resource "azurerm_eventgrid_system_topic_event_subscription" "app" {
  for_each = { for key, subscription in local.event_subscriptions : key => subscription if subscription.enabled }

  name                  = each.value.name
  system_topic          = each.value.system_topic
  resource_group_name   = var.resource_group_name
  event_delivery_schema = "EventGridSchema"
  included_event_types  = each.value.included_event_types

  # A list of at most one prefix: its length is known at plan time even when the scope is not.
  dynamic "subject_filter" {
    for_each = each.value.subject_begins_with
    content {
      subject_begins_with = subject_filter.value
    }
  }

  azure_function_endpoint {
    function_id                       = "${azurerm_function_app_flex_consumption.this.id}/functions/${each.value.function}"
    max_events_per_batch              = 1
    preferred_batch_size_in_kilobytes = 64
  }

  retry_policy {
    max_delivery_attempts = 30
    event_time_to_live    = 1440
  }

  dead_letter_identity {
    type = "SystemAssigned"
  }

  storage_blob_dead_letter_destination {
    storage_account_id          = var.storage.id
    storage_blob_container_name = var.storage.deadletter_container
  }

  # The topic's identity must be allowed to write dead letters before Event Grid needs it.
  depends_on = [azurerm_role_assignment.deadletter, azurerm_role_assignment.deadletter_drift]
}

# The three subscriptions this map replaced (each was a count of 0 or 1), kept in state under their keys.
moved {
  from = azurerm_eventgrid_system_topic_event_subscription.certificates[0]
  to   = azurerm_eventgrid_system_topic_event_subscription.app["certificates"]
}

moved {
  from = azurerm_eventgrid_system_topic_event_subscription.resource_changes[0]
  to   = azurerm_eventgrid_system_topic_event_subscription.app["resource_changes"]
}

moved {
  from = azurerm_eventgrid_system_topic_event_subscription.cluster_events[0]
  to   = azurerm_eventgrid_system_topic_event_subscription.app["cluster_events"]
}
