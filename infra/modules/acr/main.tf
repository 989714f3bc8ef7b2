resource "azurerm_container_registry" "this" {
  #checkov:skip=CKV_AZURE_233:Zone redundancy is data (acr.zone_redundancy, default true, true in every platform.yaml: tested); checkov cannot resolve it through the module input.
  #checkov:skip=CKV_AZURE_165:Single-region platform (uaenorth only); geo-replication would replicate to a region nothing pulls from.
  #checkov:skip=CKV_AZURE_166:Quarantine blocks every pull until an external scanner marks the image; images are promoted by digest through GitOps merge requests instead.
  #checkov:skip=CKV_AZURE_164:Content trust (Docker Notary v1) is retired by Azure; image signing belongs with Notation and a policy in the cluster.
  name                          = var.name
  location                      = var.location
  resource_group_name           = var.resource_group_name
  sku                           = "Premium"
  admin_enabled                 = false
  anonymous_pull_enabled        = false
  public_network_access_enabled = false
  network_rule_bypass_option    = "AzureServices"
  # Only possible with public network access disabled: images cannot be exported out.
  export_policy_enabled   = false
  data_endpoint_enabled   = true
  zone_redundancy_enabled = var.zone_redundancy_enabled
  # Untagged manifests pile up with every rebuild pushed by digest.
  retention_policy_in_days = var.untagged_retention_days
  tags                     = var.tags
}

resource "azurerm_private_endpoint" "registry" {
  name                = "pe-${var.name}"
  location            = var.location
  resource_group_name = var.resource_group_name
  subnet_id           = var.private_endpoint_subnet_id
  tags                = var.tags

  private_service_connection {
    name                           = "registry"
    private_connection_resource_id = azurerm_container_registry.this.id
    subresource_names              = ["registry"]
    is_manual_connection           = false
  }

  private_dns_zone_group {
    name                 = "registry"
    private_dns_zone_ids = [var.private_dns_zone_id]
  }
}

resource "azurerm_role_assignment" "pull" {
  for_each = var.pull_principal_ids

  scope                = azurerm_container_registry.this.id
  role_definition_name = "AcrPull"
  principal_id         = each.value
  principal_type       = "ServicePrincipal"
}
