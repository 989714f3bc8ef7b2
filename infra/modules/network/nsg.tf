locals {
  deny_internet_inbound = {
    name                       = "deny-internet-inbound"
    priority                   = 4000
    access                     = "Deny"
    protocol                   = "*"
    source_address_prefix      = "Internet"
    destination_port_range     = "*"
    destination_address_prefix = "*"
  }
  deny_all_inbound = {
    name                       = "deny-all-inbound"
    priority                   = 4096
    access                     = "Deny"
    protocol                   = "*"
    source_address_prefix      = "*"
    destination_port_range     = "*"
    destination_address_prefix = "*"
  }

  # Inbound rules per subnet. Azure's default rules (allow VNet, allow AzureLoadBalancer, deny
  # the rest) stay underneath; these make the intent explicit and close the rest where only
  # one port is expected.
  # The public Gateway's pods run on the user pool in system_nodes: the firewall's DNAT flows (SNATed to
  # a firewall address, so their source is AzureFirewallSubnet) reach them on 443 at the public entry IP.
  # The Internet itself stays denied at 4000.
  allow_public_entry = var.public_entry == null ? [] : [{
    name                       = "allow-https-from-firewall-dnat"
    priority                   = 200
    access                     = "Allow"
    protocol                   = "Tcp"
    source_address_prefix      = local.firewall_subnet_prefix
    destination_port_range     = "443"
    destination_address_prefix = var.public_entry.private_ip
  }]

  nsg_rules = {
    system_nodes = concat(local.allow_public_entry, [local.deny_internet_inbound])
    gpu_nodes    = [local.deny_internet_inbound]
    functions    = [local.deny_internet_inbound]
    private_endpoints = [
      {
        name                       = "allow-https-from-vnet"
        priority                   = 100
        access                     = "Allow"
        protocol                   = "Tcp"
        source_address_prefix      = "VirtualNetwork"
        destination_port_range     = "443"
        destination_address_prefix = var.subnets.private_endpoints
      },
      local.deny_all_inbound,
    ]
    ingress_internal = [
      {
        name                       = "allow-https-from-vnet"
        priority                   = 100
        access                     = "Allow"
        protocol                   = "Tcp"
        source_address_prefix      = "VirtualNetwork"
        destination_port_range     = "443"
        destination_address_prefix = var.subnets.ingress_internal
      },
      {
        name                       = "allow-http-from-vnet"
        priority                   = 105
        access                     = "Allow"
        protocol                   = "Tcp"
        source_address_prefix      = "VirtualNetwork"
        destination_port_range     = "80"
        destination_address_prefix = var.subnets.ingress_internal
      },
      {
        name                       = "allow-load-balancer-probes"
        priority                   = 110
        access                     = "Allow"
        protocol                   = "*"
        source_address_prefix      = "AzureLoadBalancer"
        destination_port_range     = "*"
        destination_address_prefix = "*"
      },
      local.deny_all_inbound,
    ]
  }
}

resource "azurerm_network_security_group" "spoke" {
  for_each = local.nsg_rules

  name                = "nsg-${replace(each.key, "_", "-")}-${var.name_suffix}"
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = var.tags

  dynamic "security_rule" {
    for_each = each.value
    content {
      name                       = security_rule.value.name
      priority                   = security_rule.value.priority
      direction                  = "Inbound"
      access                     = security_rule.value.access
      protocol                   = security_rule.value.protocol
      source_port_range          = "*"
      source_address_prefix      = security_rule.value.source_address_prefix
      destination_port_range     = security_rule.value.destination_port_range
      destination_address_prefix = security_rule.value.destination_address_prefix
    }
  }
}

resource "azurerm_subnet_network_security_group_association" "spoke" {
  for_each = local.nsg_rules

  subnet_id                 = local.spoke_subnets[each.key].id
  network_security_group_id = azurerm_network_security_group.spoke[each.key].id
}
