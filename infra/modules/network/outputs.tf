output "hub_vnet_id" {
  description = "ID of the hub VNet."
  value       = azurerm_virtual_network.hub.id
}

output "spoke_vnet_id" {
  description = "ID of the spoke VNet."
  value       = azurerm_virtual_network.spoke.id
}

output "subnet_ids" {
  description = "Spoke subnet IDs by role: system_nodes, gpu_nodes, private_endpoints, ingress_internal, functions."
  value       = { for k, s in local.spoke_subnets : k => s.id }
}

output "firewall_private_ip" {
  description = "Private IP of the Azure Firewall: next hop of 0.0.0.0/0 and DNS server of the spoke."
  value       = azurerm_firewall.hub.ip_configuration[0].private_ip_address
}

output "firewall_public_ip" {
  description = "Public egress IP of the platform (give it to services that allow-list callers)."
  value       = azurerm_public_ip.firewall.ip_address
}

output "route_table_id" {
  description = "ID of the spoke route table. AKS with userDefinedRouting needs it associated before the cluster exists."
  value       = azurerm_route_table.spoke.id
}

output "private_dns_zone_ids" {
  description = "Private DNS zone IDs by zone name."
  value       = { for k, z in azurerm_private_dns_zone.this : k => z.id }
}

output "route_table_association_ids" {
  description = "Subnet-route table association IDs; depend on them so that nodes never boot without the default route."
  value       = [for a in azurerm_subnet_route_table_association.spoke : a.id]
}
