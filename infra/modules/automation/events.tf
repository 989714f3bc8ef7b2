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
