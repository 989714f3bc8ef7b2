output "resource_group_name" {
  description = "Name of the example's resource group."
  value       = azurerm_resource_group.this.name
}

output "resource_group_id" {
  description = "Resource ID of the example's resource group (a scope for role assignments)."
  value       = azurerm_resource_group.this.id
}

output "location" {
  description = "Region of the resource group."
  value       = azurerm_resource_group.this.location
}

output "private_endpoint_subnet_id" {
  description = "ID of the minimal network's private-endpoint subnet; null without private_endpoint_network."
  value       = one(azurerm_subnet.private_endpoints[*].id)
  # The private endpoint of the module under test and the NSG association both update the subnet;
  # concurrent updates fail with AnotherOperationInProgress, so the endpoint waits for the association.
  depends_on = [azurerm_subnet_network_security_group_association.private_endpoints]
}

output "private_dns_zone_ids" {
  description = "IDs of the zones of private_dns_zone_names, by zone name."
  value       = { for name, zone in azurerm_private_dns_zone.this : name => zone.id }
}

output "log_analytics_workspace_id" {
  description = "Resource ID of the Log Analytics workspace: the small one of log_analytics_workspace_enabled, or the monitoring module's under hub_and_spoke; null otherwise."
  value       = one(concat(azurerm_log_analytics_workspace.this[*].id, module.monitoring[*].log_analytics_workspace_id))
}

output "monitoring" {
  description = "The monitoring module's IDs (log_analytics_workspace_id, monitor_workspace_id, application_insights_id) under hub_and_spoke; null otherwise."
  value = one([for m in module.monitoring : {
    log_analytics_workspace_id = m.log_analytics_workspace_id
    monitor_workspace_id       = m.monitor_workspace_id
    application_insights_id    = m.application_insights_id
  }])
}

output "application_insights_connection_string" {
  description = "Connection string of the monitoring module's Application Insights under hub_and_spoke; null otherwise."
  value       = one(module.monitoring[*].application_insights_connection_string)
  sensitive   = true
}

output "network" {
  description = "The network module's outputs (subnet_ids, private_dns_zone_ids, firewall_public_ip, route_table_id, ...) under hub_and_spoke; null otherwise."
  value       = one(module.network[*])
}

# The address plan as three plain outputs rather than one object: checkov resolves a module output
# that is a string, not an attribute of an object one, and the network module's VNet checks need the
# address space resolved.
output "hub_address_space" {
  description = "CIDR of the examples' hub VNet (address plan of the examples that build the hub and spoke)."
  value       = local.address_plan.hub_address_space
}

output "spoke_address_space" {
  description = "CIDR of the examples' spoke VNet."
  value       = local.address_plan.spoke_address_space
}

output "spoke_subnets" {
  description = "CIDRs of the examples' spoke subnets, in the network module's `subnets` shape."
  value       = local.address_plan.subnets
}
