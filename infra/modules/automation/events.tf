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

resource "azurerm_eventgrid_system_topic_event_subscription" "certificates" {
  count = var.certificate_events_enabled ? 1 : 0

  name                  = "certificate-events"
  system_topic          = azurerm_eventgrid_system_topic.key_vault.name
  resource_group_name   = var.resource_group_name
  event_delivery_schema = "EventGridSchema"

  # Certificate events only. NewVersionCreated also fires for the app's own imports; the app
  # recognises those, so they do not trigger another rotation.
  included_event_types = [
    "Microsoft.KeyVault.CertificateNewVersionCreated",
    "Microsoft.KeyVault.CertificateNearExpiry",
    "Microsoft.KeyVault.CertificateExpired",
  ]

  azure_function_endpoint {
    function_id                       = "${azurerm_function_app_flex_consumption.this.id}/functions/${var.certificate_event_function}"
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

  depends_on = [azurerm_role_assignment.deadletter]
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

resource "azurerm_eventgrid_system_topic_event_subscription" "resource_changes" {
  count = local.drift_events_enabled ? 1 : 0

  name                  = "platform-resource-changes"
  system_topic          = azurerm_eventgrid_system_topic.subscription[0].name
  resource_group_name   = var.resource_group_name
  event_delivery_schema = "EventGridSchema"

  # Writes and deletes in the platform resource group only (the cluster, its pools and their neighbours);
  # the app debounces bursts into one drift check per scope.
  included_event_types = [
    "Microsoft.Resources.ResourceWriteSuccess",
    "Microsoft.Resources.ResourceDeleteSuccess",
  ]

  subject_filter {
    subject_begins_with = local.resource_group_scope
  }

  azure_function_endpoint {
    function_id                       = "${azurerm_function_app_flex_consumption.this.id}/functions/${var.drift_event_functions.resources}"
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

  depends_on = [azurerm_role_assignment.deadletter_drift]
}

resource "azurerm_eventgrid_system_topic_event_subscription" "cluster_events" {
  count = local.drift_events_enabled ? 1 : 0

  name                  = "aks-cluster-events"
  system_topic          = azurerm_eventgrid_system_topic.cluster[0].name
  resource_group_name   = var.resource_group_name
  event_delivery_schema = "EventGridSchema"

  included_event_types = [
    "Microsoft.ContainerService.NewKubernetesVersionAvailable",
    "Microsoft.ContainerService.ClusterSupportEnding",
    "Microsoft.ContainerService.ClusterSupportEnded",
    "Microsoft.ContainerService.NodePoolRollingFailed",
  ]

  azure_function_endpoint {
    function_id                       = "${azurerm_function_app_flex_consumption.this.id}/functions/${var.drift_event_functions.cluster}"
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

  depends_on = [azurerm_role_assignment.deadletter_drift]
}
