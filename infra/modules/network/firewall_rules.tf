# Egress allow-list. Everything not listed is denied by the firewall's implicit deny.
# Source: "Outbound network and FQDN rules for AKS clusters" (required rules only), plus the
# registries, Cloudflare and the Git host this platform uses.

locals {
  # Chart and image sources declared in gitops/ that var.registry_fqdns does not already cover: derived from
  # the HelmRepository/OCIRepository URLs, the charts' image registries (gitops/versions.yaml `registries`) and
  # the hosts those redirect to. tests/gitops/test_egress.py fails when a declared source needs a host that is
  # not allowed, and when a host here is needed by nothing (so the list only shrinks as charts move to OCI in
  # the platform ACR: gitops/README.md "Egress").
  gitops_source_fqdns = [
    "reg.kyverno.io",                       # Kyverno images (redirects to ghcr.io)
    "grafana.github.io",                    # chart index: loki, alloy
    "grafana-community.github.io",          # chart index: tempo, grafana
    "rocm.github.io",                       # chart index and packages: AMD GPU operator
    "github.com",                           # chart tarballs the github.io indexes point at (release downloads)
    "release-assets.githubusercontent.com", # where GitHub release downloads redirect
    "objects.githubusercontent.com",        # older GitHub release download redirects
  ]
}
resource "azurerm_firewall_policy_rule_collection_group" "egress" {
  name               = "egress"
  firewall_policy_id = azurerm_firewall_policy.hub.id
  priority           = 200

  network_rule_collection {
    name     = "aks-network"
    priority = 200
    action   = "Allow"

    # Node-to-control-plane tunnel on clusters that still use it.
    rule {
      name                  = "aks-tunnel-udp"
      protocols             = ["UDP"]
      source_addresses      = local.node_sources
      destination_addresses = ["AzureCloud.${var.location}"]
      destination_ports     = ["1194"]
    }
    rule {
      name                  = "aks-tunnel-tcp"
      protocols             = ["TCP"]
      source_addresses      = local.node_sources
      destination_addresses = ["AzureCloud.${var.location}"]
      destination_ports     = ["9000"]
    }
    # Public API server (dev/stg). With a private API server this rule never matches.
    rule {
      name                  = "aks-api-server"
      protocols             = ["TCP"]
      source_addresses      = local.node_sources
      destination_addresses = ["AzureCloud.${var.location}"]
      destination_ports     = ["443"]
    }
    rule {
      name              = "ntp"
      protocols         = ["UDP"]
      source_addresses  = local.node_sources
      destination_fqdns = ["ntp.ubuntu.com"]
      destination_ports = ["123"]
    }
    # Managed Prometheus and Container Insights ingestion.
    rule {
      name                  = "azure-monitor"
      protocols             = ["TCP"]
      source_addresses      = concat(local.node_sources, [var.subnets.functions])
      destination_addresses = ["AzureMonitor"]
      destination_ports     = ["443"]
    }
    rule {
      name              = "cloudflare-tunnel"
      protocols         = ["TCP", "UDP"]
      source_addresses  = local.node_sources
      destination_fqdns = var.cloudflare_tunnel_fqdns
      destination_ports = ["7844"]
    }
  }

  application_rule_collection {
    name     = "aks-application"
    priority = 300
    action   = "Allow"

    # MCR, AKS packages, Entra ID login and ARM: everything AKS itself needs.
    rule {
      name                  = "aks-fqdn-tag"
      source_addresses      = local.node_sources
      destination_fqdn_tags = ["AzureKubernetesService"]
      protocols {
        type = "Https"
        port = 443
      }
      protocols {
        type = "Http"
        port = 80
      }
    }
    # The managed Flux extension's data plane.
    rule {
      name              = "flux-extension"
      source_addresses  = local.node_sources
      destination_fqdns = ["${var.location}.dp.kubernetesconfiguration.azure.com"]
      protocols {
        type = "Https"
        port = 443
      }
    }
    # The GPU operators build kernel modules against the node's kernel headers.
    rule {
      name              = "ubuntu-packages"
      source_addresses  = [var.subnets.gpu_nodes]
      destination_fqdns = ["azure.archive.ubuntu.com", "archive.ubuntu.com", "security.ubuntu.com"]
      protocols {
        type = "Http"
        port = 80
      }
      protocols {
        type = "Https"
        port = 443
      }
    }
    rule {
      name              = "registries"
      source_addresses  = local.node_sources
      destination_fqdns = var.registry_fqdns
      protocols {
        type = "Https"
        port = 443
      }
    }
    rule {
      name              = "gitops-sources"
      source_addresses  = local.node_sources
      destination_fqdns = local.gitops_source_fqdns
      protocols {
        type = "Https"
        port = 443
      }
    }
    rule {
      name              = "cloudflare-api"
      source_addresses  = concat(local.node_sources, [var.subnets.functions])
      destination_fqdns = var.cloudflare_fqdns
      protocols {
        type = "Https"
        port = 443
      }
    }
    dynamic "rule" {
      for_each = length(var.git_fqdns) > 0 ? [1] : []
      content {
        name              = "git"
        source_addresses  = concat(local.node_sources, [var.subnets.functions])
        destination_fqdns = var.git_fqdns
        protocols {
          type = "Https"
          port = 443
        }
      }
    }
    dynamic "rule" {
      for_each = length(var.automation_fqdns) > 0 ? [1] : []
      content {
        name              = "automation"
        source_addresses  = [var.subnets.functions]
        destination_fqdns = var.automation_fqdns
        protocols {
          type = "Https"
          port = 443
        }
      }
    }
  }
}
