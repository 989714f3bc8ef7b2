resource "azurerm_storage_account" "this" {
  #checkov:skip=CKV_AZURE_206:Replication is data (storage.replication_type): ZRS in stg/prd (tested), LRS in dev and the examples where losing queued test work is acceptable.
  #checkov:skip=CKV2_AZURE_1:Encrypted at rest with Microsoft-managed keys plus infrastructure encryption; the account holds queue messages and bookkeeping, no data that calls for a customer-managed key.
  #checkov:skip=CKV_AZURE_59:Public endpoint stays on, but closed: default_action Deny, no IP rules. It must exist for trusted-service access (Event Grid dead-lettering); everything else uses the private endpoints.
  #checkov:skip=CKV_AZURE_33:Queue logging is collected as Azure Monitor resource logs (diagnostics.tf); classic Storage Analytics logging needs data-plane calls from the Terraform runner, which the firewall denies.
  name                     = var.account_name
  location                 = var.location
  resource_group_name      = var.resource_group_name
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.replication_type
  min_tls_version          = "TLS1_2"

  https_traffic_only_enabled        = true
  infrastructure_encryption_enabled = true
  cross_tenant_replication_enabled  = false
  allow_nested_items_to_be_public   = false
  # Identity-based access only: the app, the Functions host and Terraform use Entra ID, so there is no key to leak.
  shared_access_key_enabled       = false
  default_to_oauth_authentication = true
  local_user_enabled              = false
  public_network_access_enabled   = true
  tags                            = var.tags

  network_rules {
    default_action = "Deny"
    bypass         = ["AzureServices", "Logging", "Metrics"]
  }

  sas_policy {
    expiration_period = "00.01:00:00"
    expiration_action = "Log"
  }

  blob_properties {
    versioning_enabled = true
    delete_retention_policy {
      days = 14
    }
    container_delete_retention_policy {
      days = 14
    }
  }
}
