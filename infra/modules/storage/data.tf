# Created through Azure Resource Manager (storage_account_id), so the Terraform runner needs no
# data-plane access through the account firewall.
resource "azurerm_storage_container" "this" {
  for_each = toset(var.containers)

  #checkov:skip=CKV2_AZURE_21:Blob read logging is collected as Azure Monitor resource logs (diagnostics.tf), not classic Storage Analytics logging.
  name                  = each.value
  storage_account_id    = azurerm_storage_account.this.id
  container_access_type = "private"
}

resource "azurerm_storage_queue" "inference" {
  for_each = toset(var.inference_queues)

  name               = each.value
  storage_account_id = azurerm_storage_account.this.id
}

resource "azurerm_storage_table" "state" {
  #checkov:skip=CKV2_AZURE_20:Table read logging is collected as Azure Monitor resource logs (diagnostics.tf), not classic Storage Analytics logging.
  for_each = toset(var.state_tables)

  name               = each.value
  storage_account_id = azurerm_storage_account.this.id
}
