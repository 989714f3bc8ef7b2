output "id" {
  description = "Resource ID of the storage account."
  value       = azurerm_storage_account.this.id
}

output "name" {
  description = "Name of the storage account."
  value       = azurerm_storage_account.this.name
}

output "primary_blob_endpoint" {
  description = "Blob endpoint, e.g. https://stplatdevuaen.blob.core.windows.net/."
  value       = azurerm_storage_account.this.primary_blob_endpoint
}

output "queue_ids" {
  description = "Resource Manager IDs of the inference queues by name (scopes for queue-level role assignments)."
  value       = { for q in var.inference_queues : q => "${azurerm_storage_account.this.id}/queueServices/default/queues/${azurerm_storage_queue.inference[q].name}" }
}

output "table_ids" {
  description = "Resource Manager IDs of the state tables by name (scopes for table-level role assignments)."
  value       = { for t in var.state_tables : t => azapi_resource.table[t].id }
}

output "container_ids" {
  description = "Resource Manager IDs of the blob containers by name."
  value       = { for c in var.containers : c => "${azurerm_storage_account.this.id}/blobServices/default/containers/${azurerm_storage_container.this[c].name}" }
}
