resource "azurerm_route_table" "spoke" {
  name                = "rt-spoke-${var.name_suffix}"
  location            = var.location
  resource_group_name = var.resource_group_name
  # Routes learned over a gateway must not bypass the firewall.
  bgp_route_propagation_enabled = false
  tags                          = var.tags

  route {
    name                   = "default-via-firewall"
    address_prefix         = "0.0.0.0/0"
    next_hop_type          = "VirtualAppliance"
    next_hop_in_ip_address = azurerm_firewall.hub.ip_configuration[0].private_ip_address
  }
}

resource "azurerm_subnet_route_table_association" "spoke" {
  for_each = local.routed_subnets

  subnet_id      = local.spoke_subnets[each.key].id
  route_table_id = azurerm_route_table.spoke.id
}
