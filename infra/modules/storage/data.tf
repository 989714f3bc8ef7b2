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

# Tables through Azure Resource Manager as well. azurerm 4.55's azurerm_storage_table only takes
# storage_account_name and creates the table over the data plane, which the account firewall (default Deny)
# and disabled shared keys close to the Terraform runner; the ARM table resource needs neither.
resource "azapi_resource" "table" {
  for_each = toset(var.state_tables)

  type      = "Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01"
  name      = each.value
  parent_id = "${azurerm_storage_account.this.id}/tableServices/default"
  body      = { properties = {} }
}
