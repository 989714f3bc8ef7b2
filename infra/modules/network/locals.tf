locals {
  hub_prefix_length      = tonumber(split("/", var.hub_address_space)[1])
  firewall_subnet_prefix = cidrsubnet(var.hub_address_space, 26 - local.hub_prefix_length, 0)

  # Subnets whose egress is forced through the firewall. Private endpoints and the internal
  # ingress only answer; they never start connections to the internet.
  routed_subnets = toset(["system_nodes", "gpu_nodes", "functions"])

  default_private_dns_zones = [
    "privatelink.vaultcore.azure.net",
    "privatelink.azurecr.io",
    "privatelink.blob.core.windows.net",
    "privatelink.queue.core.windows.net",
    "privatelink.table.core.windows.net",
    "privatelink.postgres.database.azure.com",
    "privatelink.${var.location}.azmk8s.io",
  ]
  private_dns_zones = toset(length(var.private_dns_zones) > 0 ? var.private_dns_zones : local.default_private_dns_zones)

  node_sources = [var.subnets.system_nodes, var.subnets.gpu_nodes]
}
