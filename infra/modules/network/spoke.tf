resource "azurerm_virtual_network" "spoke" {
  #checkov:skip=CKV_AZURE_182:The single DNS server is the firewall's DNS proxy, a zone-redundant service behind one private IP; FQDN network rules only work when clients resolve through it.
  name                = "vnet-spoke-${var.name_suffix}"
  location            = var.location
  resource_group_name = var.resource_group_name
  address_space       = [var.spoke_address_space]
  # Clients must resolve through the firewall so that FQDN-based network rules match what they resolved.
  dns_servers = [azurerm_firewall.hub.ip_configuration[0].private_ip_address]
  tags        = var.tags
}

resource "azurerm_subnet" "system_nodes" {
  #checkov:skip=CKV2_AZURE_31:The NSG is associated in nsg.tf (azurerm_subnet_network_security_group_association.spoke, for_each over the subnet roles), which checkov's graph cannot follow; tests/infra asserts every spoke subnet has one.
  name                 = "snet-system-nodes"
  resource_group_name  = var.resource_group_name
  virtual_network_name = azurerm_virtual_network.spoke.name
  address_prefixes     = [var.subnets.system_nodes]
}

resource "azurerm_subnet" "gpu_nodes" {
  #checkov:skip=CKV2_AZURE_31:The NSG is associated in nsg.tf (azurerm_subnet_network_security_group_association.spoke, for_each over the subnet roles), which checkov's graph cannot follow; tests/infra asserts every spoke subnet has one.
  name                 = "snet-gpu-nodes"
  resource_group_name  = var.resource_group_name
  virtual_network_name = azurerm_virtual_network.spoke.name
  address_prefixes     = [var.subnets.gpu_nodes]
}

resource "azurerm_subnet" "private_endpoints" {
  #checkov:skip=CKV2_AZURE_31:The NSG is associated in nsg.tf (azurerm_subnet_network_security_group_association.spoke, for_each over the subnet roles), which checkov's graph cannot follow; tests/infra asserts every spoke subnet has one.
  name                 = "snet-private-endpoints"
  resource_group_name  = var.resource_group_name
  virtual_network_name = azurerm_virtual_network.spoke.name
  address_prefixes     = [var.subnets.private_endpoints]
  # Let NSGs and route tables apply to private endpoint traffic too.
  private_endpoint_network_policies = "Enabled"
}

resource "azurerm_subnet" "ingress_internal" {
  #checkov:skip=CKV2_AZURE_31:The NSG is associated in nsg.tf (azurerm_subnet_network_security_group_association.spoke, for_each over the subnet roles), which checkov's graph cannot follow; tests/infra asserts every spoke subnet has one.
  name                 = "snet-ingress-internal"
  resource_group_name  = var.resource_group_name
  virtual_network_name = azurerm_virtual_network.spoke.name
  address_prefixes     = [var.subnets.ingress_internal]
}

resource "azurerm_subnet" "functions" {
  #checkov:skip=CKV2_AZURE_31:The NSG is associated in nsg.tf (azurerm_subnet_network_security_group_association.spoke, for_each over the subnet roles), which checkov's graph cannot follow; tests/infra asserts every spoke subnet has one.
  name                 = "snet-functions"
  resource_group_name  = var.resource_group_name
  virtual_network_name = azurerm_virtual_network.spoke.name
  address_prefixes     = [var.subnets.functions]

  # Flex Consumption VNet integration requires this delegation.
  delegation {
    name = "flex-consumption"
    service_delegation {
      name    = "Microsoft.App/environments"
      actions = ["Microsoft.Network/virtualNetworks/subnets/join/action"]
    }
  }
}

locals {
  spoke_subnets = {
    system_nodes      = azurerm_subnet.system_nodes
    gpu_nodes         = azurerm_subnet.gpu_nodes
    private_endpoints = azurerm_subnet.private_endpoints
    ingress_internal  = azurerm_subnet.ingress_internal
    functions         = azurerm_subnet.functions
  }
}
