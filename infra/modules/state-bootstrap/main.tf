resource "azurerm_resource_group" "state" {
  name     = var.resource_group_name
  location = var.location
  tags     = var.tags
}

resource "azurerm_storage_account" "state" {
  #checkov:skip=CKV2_AZURE_1:Terraform state is encrypted with Microsoft-managed keys plus infrastructure encryption; a customer-managed key would have to live outside the state it protects.
  #checkov:skip=CKV2_AZURE_33:Terraform runners (CI, operators) reach the account over its public endpoint, restricted to allowed_ip_ranges; a private endpoint would need the network this state creates.
  #checkov:skip=CKV_AZURE_59:See CKV2_AZURE_33: the public endpoint is needed by the runners and limited by the firewall (default Deny).
  #checkov:skip=CKV_AZURE_33:State lives in blobs only; the queue service is unused.
  name                     = var.storage_account_name
  location                 = azurerm_resource_group.state.location
  resource_group_name      = azurerm_resource_group.state.name
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.replication_type
  min_tls_version          = "TLS1_2"

  https_traffic_only_enabled        = true
  infrastructure_encryption_enabled = true
  cross_tenant_replication_enabled  = false
  allow_nested_items_to_be_public   = false
  # The azurerm backend authenticates with Entra ID (use_azuread_auth): no account keys.
  shared_access_key_enabled       = false
  default_to_oauth_authentication = true
  local_user_enabled              = false
  tags                            = var.tags

  network_rules {
    default_action = "Deny"
    bypass         = ["AzureServices"]
    ip_rules       = var.allowed_ip_ranges
  }

  sas_policy {
    expiration_period = "00.01:00:00"
    expiration_action = "Log"
  }

  # Every state write is a new version: a bad apply can be rolled back by restoring one.
  blob_properties {
    versioning_enabled = true
    delete_retention_policy {
      days = 30
    }
    container_delete_retention_policy {
      days = 30
    }
  }
}

resource "azurerm_storage_container" "state" {
  #checkov:skip=CKV2_AZURE_21:Classic Storage Analytics logging needs data-plane calls this bootstrap avoids; enable Azure Monitor resource logs on the account once a workspace exists.
  name                  = var.container_name
  storage_account_id    = azurerm_storage_account.state.id
  container_access_type = "private"
}

resource "azurerm_management_lock" "state" {
  name       = "do-not-delete-terraform-state"
  scope      = azurerm_storage_account.state.id
  lock_level = "CanNotDelete"
  notes      = "Holds the Terraform state of the platform; deleting it orphans every resource."
}

resource "azurerm_role_assignment" "state_contributors" {
  for_each = var.state_contributor_principal_ids

  # The Resource Manager ID of the container, built explicitly: role scopes need it.
  scope                = "${azurerm_storage_account.state.id}/blobServices/default/containers/${azurerm_storage_container.state.name}"
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = each.value
}
