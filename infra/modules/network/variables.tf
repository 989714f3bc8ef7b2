variable "name_suffix" {
  type        = string
  description = "Required. Suffix appended to every resource name, e.g. `platform-dev-uaenorth`."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{2,40}[a-z0-9]$", var.name_suffix))
    error_message = "name_suffix must be 4-42 lowercase letters, digits or hyphens."
  }
}

variable "location" {
  type        = string
  description = "Required. Azure region of the hub and the spoke, e.g. `uaenorth`."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9]+$", var.location))
    error_message = "location must be the short lowercase region name (uaenorth), not the display name."
  }
}

variable "resource_group_name" {
  type        = string
  description = "Required. Resource group that holds the hub, the spoke and the firewall."
  nullable    = false
}

variable "hub_address_space" {
  type        = string
  description = "Required. CIDR of the hub VNet; its first /26 becomes AzureFirewallSubnet."
  nullable    = false

  validation {
    condition     = can(cidrhost(var.hub_address_space, 0)) && tonumber(split("/", var.hub_address_space)[1]) <= 26
    error_message = "hub_address_space must be a CIDR of /26 or larger."
  }
}

variable "spoke_address_space" {
  type        = string
  description = "Required. CIDR of the environment's spoke VNet."
  nullable    = false

  validation {
    condition     = can(cidrhost(var.spoke_address_space, 0))
    error_message = "spoke_address_space must be a CIDR."
  }
}

variable "subnets" {
  type = object({
    system_nodes      = string
    gpu_nodes         = string
    private_endpoints = string
    ingress_internal  = string
    functions         = string
  })
  description = <<-EOT
    Required. CIDRs of the spoke subnets, all inside spoke_address_space:
    - system_nodes: the system pool and the CPU user pool (Azure CNI overlay: node IPs only).
    - gpu_nodes: the GPU pools.
    - private_endpoints: Key Vault, ACR and Storage private endpoints.
    - ingress_internal: the internal load balancers of the public and internal Gateways (the public one is the firewall's DNAT target).
    - functions: VNet integration of the automation app (delegated to Microsoft.App/environments).
  EOT
  nullable    = false

  validation {
    condition     = alltrue([for cidr in values(var.subnets) : can(cidrhost(cidr, 0))])
    error_message = "Every subnet must be a CIDR."
  }
}

variable "firewall_sku_tier" {
  type        = string
  description = "Optional. Azure Firewall tier. Premium adds IDPS in Deny mode (used in prd)."
  default     = "Standard"
  nullable    = false

  validation {
    condition     = contains(["Standard", "Premium"], var.firewall_sku_tier)
    error_message = "firewall_sku_tier must be Standard or Premium."
  }
}

variable "zones" {
  type        = list(string)
  description = "Optional. Availability zones of the firewall and its public IP. Empty means no zone pinning."
  default     = ["1", "2", "3"]
  nullable    = false

  validation {
    condition     = alltrue([for z in var.zones : contains(["1", "2", "3"], z)])
    error_message = "zones may only contain \"1\", \"2\" and \"3\"."
  }
}

variable "registry_fqdns" {
  type        = list(string)
  description = "Optional. Container and chart registries the cluster may pull from, besides the platform ACR (private endpoint) and MCR (AzureKubernetesService FQDN tag)."
  default = [
    "ghcr.io",
    "pkg-containers.githubusercontent.com",
    "registry-1.docker.io",
    "auth.docker.io",
    "production.cloudflare.docker.com",
    "registry.k8s.io",
    "*.pkg.dev",
    "quay.io",
    "*.quay.io",
    "nvcr.io",
    "*.nvcr.io",
    "helm.ngc.nvidia.com",
    "repo.radeon.com",
  ]
  nullable = false

  validation {
    condition     = alltrue([for f in var.registry_fqdns : can(regex("^(\\*\\.)?[a-z0-9.-]+$", f))])
    error_message = "registry_fqdns are host names; a wildcard is allowed only as a leading `*.`."
  }
}

variable "cloudflare_fqdns" {
  type        = list(string)
  description = "Optional. Cloudflare API host names reached over HTTPS (origin certificates, DNS)."
  default     = ["api.cloudflare.com"]
  nullable    = false
}

variable "cloudflare_tunnel_fqdns" {
  type        = list(string)
  description = "Optional. Cloudflare Tunnel edge host names; cloudflared reaches them on port 7844 over TCP and UDP (QUIC)."
  default     = ["region1.v2.argotunnel.com", "region2.v2.argotunnel.com"]
  nullable    = false
}

variable "automation_fqdns" {
  type        = list(string)
  description = "Optional. Extra HTTPS host names the automation app (functions subnet) may reach, e.g. the GitLab host and Slack."
  default     = []
  nullable    = false
}

variable "private_dns_zones" {
  type        = list(string)
  description = "Optional. Private DNS zones linked to hub and spoke. Empty selects the zones the platform's private endpoints need, plus the private AKS API server zone of the region."
  default     = []
  nullable    = false
}

variable "tags" {
  type        = map(string)
  description = "Optional. Tags applied to every resource."
  default     = {}
  nullable    = false
}

variable "git_fqdns" {
  type        = list(string)
  description = "Optional. Git hosts Flux pulls from (this repository's GitLab host), reached over HTTPS from the node subnets."
  default     = []
  nullable    = false
}

variable "log_analytics_workspace_id" {
  type        = string
  description = "Required. Log Analytics workspace receiving the firewall's logs (every allowed and denied flow)."
  nullable    = false

  validation {
    condition     = can(regex("(?i)/providers/Microsoft.OperationalInsights/workspaces/[^/]+$", var.log_analytics_workspace_id))
    error_message = "log_analytics_workspace_id must be a Log Analytics workspace resource ID."
  }
}

variable "public_entry" {
  type = object({
    private_ip    = string
    source_ranges = list(string)
  })
  description = <<-EOT
    Optional. The public entry: the firewall DNATs TCP 443 on its public IP to `private_ip` (the internal
    load balancer of the public Gateway, inside the ingress_internal subnet), only from `source_ranges`
    (Cloudflare's published IPv4 ranges). null: no inbound path from the internet at all.
  EOT
  default     = null

  validation {
    condition     = var.public_entry == null || can(cidrhost("${try(var.public_entry.private_ip, "")}/32", 0))
    error_message = "public_entry.private_ip must be an IPv4 address."
  }

  validation {
    condition = var.public_entry == null || (
      length(try(var.public_entry.source_ranges, [])) > 0 &&
      alltrue([for r in try(var.public_entry.source_ranges, []) : can(cidrnetmask(r)) && r != "0.0.0.0/0"])
    )
    error_message = "public_entry.source_ranges must be IPv4 CIDRs, at least one, never 0.0.0.0/0."
  }
}
