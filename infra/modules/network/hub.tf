resource "azurerm_virtual_network" "hub" {
  #checkov:skip=CKV_AZURE_182:The hub uses Azure-provided DNS on purpose: the firewall's DNS proxy forwards to it, so a second custom resolver would only add a hop.
  name                = "vnet-hub-${var.name_suffix}"
  location            = var.location
  resource_group_name = var.resource_group_name
  address_space       = [var.hub_address_space]
  tags                = var.tags
}

resource "azurerm_subnet" "firewall" {
  #checkov:skip=CKV2_AZURE_31:Azure refuses an NSG on AzureFirewallSubnet; the firewall policy is the control for this subnet.
  # The name is fixed by Azure.
  name                 = "AzureFirewallSubnet"
  resource_group_name  = var.resource_group_name
  virtual_network_name = azurerm_virtual_network.hub.name
  address_prefixes     = [local.firewall_subnet_prefix]
}
