# OpenCost's API for the automation app (README "Cost", gitops/README.md "Cost"): OpenCost runs in the cluster
# behind a route on the internal Gateway (gitops configs/base/monitoring/opencost-route.yaml) that admits only
# an Entra ID token for platform.yaml cost.opencost.audience carrying cost.opencost.app_role. The app reaches
# it from its VNet-integrated subnet at https://<cost.opencost.hostname>, which a private DNS zone of exactly
# that name resolves to the internal Gateway's address (network.gateways.internal_ip): the public zone's
# wildcard would send it to Cloudflare and the public Gateway, which has no such route.
locals {
  opencost = try(local.p.cost.opencost, null)
  opencost_app_settings = local.opencost == null ? {} : {
    OPENCOST_URL      = "https://${local.opencost.hostname}"
    OPENCOST_AUDIENCE = local.opencost.audience
  }
  opencost_vnets = local.opencost == null ? {} : {
    hub   = module.network.hub_vnet_id
    spoke = module.network.spoke_vnet_id
  }
}

resource "azurerm_private_dns_zone" "opencost" {
  count = local.opencost == null ? 0 : 1

  name                = local.opencost.hostname
  resource_group_name = azurerm_resource_group.platform.name
  tags                = local.tags
}

resource "azurerm_private_dns_a_record" "opencost" {
  count = local.opencost == null ? 0 : 1

  name                = "@"
  zone_name           = azurerm_private_dns_zone.opencost[0].name
  resource_group_name = azurerm_resource_group.platform.name
  ttl                 = 300
  records             = [local.p.network.gateways.internal_ip]
  tags                = local.tags
}

# Hub (the firewall's DNS proxy resolves from there) and spoke, as the network module links its zones.
resource "azurerm_private_dns_zone_virtual_network_link" "opencost" {
  for_each = local.opencost_vnets

  name                  = "link-${each.key}"
  resource_group_name   = azurerm_resource_group.platform.name
  private_dns_zone_name = azurerm_private_dns_zone.opencost[0].name
  virtual_network_id    = each.value
  registration_enabled  = false
  tags                  = local.tags
}
