resource "azurerm_key_vault" "this" {
  #checkov:skip=CKV_AZURE_110:Purge protection is data (key_vault.purge_protection): true in prd, enforced by a plan-time validation and tests/infra; off in dev/stg so vault names can be purged and reused.
  #checkov:skip=CKV_AZURE_42:Soft delete is always on (Azure no longer allows turning it off); recoverability beyond it is purge protection, see CKV_AZURE_110.
  name                = var.name
  location            = var.location
  resource_group_name = var.resource_group_name
  tenant_id           = var.tenant_id
  sku_name            = "standard"
  # Azure RBAC instead of access policies: permissions per identity and per object, audited in one place.
  enable_rbac_authorization     = true
  purge_protection_enabled      = var.purge_protection_enabled
  soft_delete_retention_days    = var.soft_delete_retention_days
  public_network_access_enabled = var.public_network_access_enabled
  tags                          = var.tags

  network_acls {
    default_action = "Deny"
    # Event Grid (certificate events) and App Service (Key Vault references) are trusted services.
    bypass   = "AzureServices"
    ip_rules = var.allowed_ip_ranges
  }
}

resource "azurerm_private_endpoint" "vault" {
  name                = "pe-${var.name}"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.private_endpoint_subnet_id
  tags                = var.tags

  private_service_connection {
    name                           = "vault"
    private_connection_resource_id = azurerm_key_vault.this.id
    subresource_names              = ["vault"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "vault"
    private_dns_zone_ids = [var.private_dns_zone_id]
  }
}

resource "azurerm_monitor_diagnostic_setting" "vault" {
  name                       = "to-log-analytics"
  target_resource_id         = azurerm_key_vault.this.id
  log_analytics_workspace_id = var.log_analytics_workspace_id

  enabled_log {
    category_group = "audit"
  }
}
