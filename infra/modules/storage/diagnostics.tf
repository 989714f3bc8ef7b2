resource "azurerm_monitor_diagnostic_setting" "services" {
  for_each = toset(["blob", "queue", "table"])

  name                       = "to-log-analytics"
  target_resource_id         = "${azurerm_storage_account.this.id}/${each.value}Services/default"
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category = "StorageRead"
  }
  enabled_log {
    category = "StorageWrite"
  }
  enabled_log {
    category = "StorageDelete"
  }
}
