# The public entry (issue 8 item 3): Cloudflare -> the firewall's public IP, DNAT -> the internal load
# balancer of the public Gateway in the ingress_internal subnet.
#
# Why DNAT on the firewall rather than a public load balancer on the nodes: every node subnet sends
# 0.0.0.0/0 to the firewall, so the answer to a flow that entered through a public load balancer would
# leave through the firewall, which never saw the flow, and be dropped (asymmetric path). A DNAT flow is
# also SNATed by the firewall to its own private IP, so the answer goes back to the firewall over the
# peering (the hub prefix is more specific than the 0.0.0.0/0 route): one path both ways. TCP passes
# through untouched, so TLS and Cloudflare's Authenticated Origin Pulls end on the public Gateway, every
# inbound flow is in the firewall's logs, and no other public IP exists in the spoke. Behind Cloudflare
# the TCP source is always a Cloudflare edge (the client is in CF-Connecting-IP), so SNAT loses nothing.
resource "azurerm_firewall_policy_rule_collection_group" "public_entry" {
  count = var.public_entry == null ? 0 : 1

  name               = "public-entry"
  firewall_policy_id = azurerm_firewall_policy.hub.id
  # DNAT collections are evaluated before network and application rules whatever the priority.
  priority = 100

  nat_rule_collection {
    name     = "cloudflare-to-public-gateway"
    priority = 100
    action   = "Dnat"

    rule {
      name      = "https"
      protocols = ["TCP"]
      # Only Cloudflare's published edge ranges (infra/cloudflare-ip-ranges.yaml): nothing else can open a
      # connection to the origin. IPv4 only: the firewall's public IP is IPv4.
      source_addresses    = var.public_entry.source_ranges
      destination_address = azurerm_public_ip.firewall.ip_address
      destination_ports   = ["443"]
      translated_address  = var.public_entry.private_ip
      translated_port     = "443"
    }
  }
}
