# A user-assigned control plane identity exists before the cluster, so its network permissions
# are in place when AKS first programs the node subnets (userDefinedRouting fails otherwise).
resource "azurerm_user_assigned_identity" "control_plane" {
  name                = "id-${var.name}"
  location            = var.location
  resource_group_name = var.resource_group_name
  tags                = var.tags
}

resource "azurerm_role_assignment" "control_plane_subnet" {
  for_each = var.subnet_ids

  scope                = each.value
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_user_assigned_identity.control_plane.principal_id
  principal_type       = "ServicePrincipal"
}

# The cloud provider creates the Gateways' internal load balancer frontends in the ingress subnet: it
# joins the subnet and reads it as the control-plane identity.
resource "azurerm_role_assignment" "control_plane_ingress_subnet" {
  count = var.ingress_subnet_id == null ? 0 : 1

  scope                = var.ingress_subnet_id
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_user_assigned_identity.control_plane.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "control_plane_route_table" {
  scope                = var.route_table_id
  role_definition_name = "Network Contributor"
  principal_id         = azurerm_user_assigned_identity.control_plane.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "control_plane_private_dns" {
  count = var.private_cluster_enabled && var.private_dns_zone_id != null ? 1 : 0

  scope                = var.private_dns_zone_id
  role_definition_name = "Private DNS Zone Contributor"
  principal_id         = azurerm_user_assigned_identity.control_plane.principal_id
  principal_type       = "ServicePrincipal"
}
