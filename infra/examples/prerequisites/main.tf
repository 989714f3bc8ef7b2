# What the module examples need around the module they show, declared once. Examples of modules
# that only need a place for a private endpoint get the minimal network; those that need the real
# hub and spoke (firewall egress, routes, every subnet) get the platform's own modules.

locals {
  name_suffix = "platform-example"

  # One address plan for every example that builds the hub and spoke (here, and the network example).
  address_plan = {
    hub_address_space   = "10.90.0.0/22"
    spoke_address_space = "10.91.0.0/16"
    subnets = {
      system_nodes      = "10.91.0.0/22"
      gpu_nodes         = "10.91.4.0/22"
      private_endpoints = "10.91.8.0/24"
      ingress_internal  = "10.91.9.0/24"
      functions         = "10.91.10.0/24"
    }
  }
}

resource "azurerm_resource_group" "this" {
  name     = var.resource_group_name
  location = var.location
}

# A minimal network for the private endpoint; the network module builds the real one.
resource "azurerm_virtual_network" "private_endpoints" {
  count = var.private_endpoint_network == null ? 0 : 1

  name                = "vnet-example"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  address_space       = [var.private_endpoint_network.address_space]
}

resource "azurerm_subnet" "private_endpoints" {
  count = var.private_endpoint_network == null ? 0 : 1

  name                 = "snet-private-endpoints"
  resource_group_name  = azurerm_resource_group.this.name
  virtual_network_name = azurerm_virtual_network.private_endpoints[0].name
  address_prefixes     = [var.private_endpoint_network.subnet_prefix]
}

resource "azurerm_network_security_group" "private_endpoints" {
  count = var.private_endpoint_network == null ? 0 : 1

  name                = "nsg-private-endpoints"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
}

resource "azurerm_subnet_network_security_group_association" "private_endpoints" {
  count = var.private_endpoint_network == null ? 0 : 1

  subnet_id                 = azurerm_subnet.private_endpoints[0].id
  network_security_group_id = azurerm_network_security_group.private_endpoints[0].id
}

resource "azurerm_private_dns_zone" "this" {
  for_each = var.private_dns_zone_names

  name                = each.value
  resource_group_name = azurerm_resource_group.this.name
}

resource "azurerm_log_analytics_workspace" "this" {
  count = var.log_analytics_workspace_enabled ? 1 : 0

  name                = "log-example"
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  sku                 = "PerGB2018"
  retention_in_days   = 30
}

module "monitoring" {
  source = "../../modules/monitoring"
  count  = var.hub_and_spoke == null ? 0 : 1

  name_suffix         = local.name_suffix
  location            = azurerm_resource_group.this.location
  resource_group_name = azurerm_resource_group.this.name
  alert_emails        = ["platform-oncall@example.com"]
}

module "network" {
  source = "../../modules/network"
  count  = var.hub_and_spoke == null ? 0 : 1

  name_suffix                = local.name_suffix
  location                   = azurerm_resource_group.this.location
  resource_group_name        = azurerm_resource_group.this.name
  hub_address_space          = local.address_plan.hub_address_space
  spoke_address_space        = local.address_plan.spoke_address_space
  subnets                    = local.address_plan.subnets
  git_fqdns                  = var.hub_and_spoke.git_fqdns
  automation_fqdns           = var.hub_and_spoke.automation_fqdns
  log_analytics_workspace_id = module.monitoring[0].log_analytics_workspace_id
}
