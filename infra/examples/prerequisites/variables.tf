variable "resource_group_name" {
  type        = string
  description = "Required. Resource group created for the example; everything else of the example goes in it."
  nullable    = false

  validation {
    condition     = can(regex("^[-A-Za-z0-9_.()]{0,89}[-A-Za-z0-9_()]$", var.resource_group_name))
    error_message = "resource_group_name must be 1-90 letters, digits, hyphens, underscores, periods or parentheses, not ending in a period."
  }
}

variable "location" {
  type        = string
  description = "Optional. Azure region of the example, e.g. `uaenorth`."
  default     = "uaenorth"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9]+$", var.location))
    error_message = "location must be the short lowercase region name (uaenorth), not the display name."
  }
}

variable "private_endpoint_network" {
  type = object({
    address_space = optional(string, "10.99.0.0/24")
    subnet_prefix = optional(string, "10.99.0.0/26")
  })
  description = "Optional. A minimal VNet with one private-endpoint subnet and its NSG, for examples of modules that only need somewhere to put a private endpoint (`{}` takes the default ranges). null builds none."
  default     = null

  validation {
    condition = var.private_endpoint_network == null || try(
      cidrhost(
        format("%s/%s", split("/", var.private_endpoint_network.subnet_prefix)[0], split("/", var.private_endpoint_network.address_space)[1]), 0
      ) == cidrhost(var.private_endpoint_network.address_space, 0)
      && tonumber(split("/", var.private_endpoint_network.subnet_prefix)[1]) >= tonumber(split("/", var.private_endpoint_network.address_space)[1]),
      false
    )
    error_message = "private_endpoint_network needs two CIDRs, subnet_prefix inside address_space."
  }
}

variable "private_dns_zone_names" {
  type        = set(string)
  description = "Optional. Private DNS zones to create, by name (e.g. `privatelink.azurecr.io`), for the private endpoints of the module under test."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for name in var.private_dns_zone_names : can(regex("^privatelink\\.[a-z0-9.-]+[a-z]$", name))])
    error_message = "private_dns_zone_names must be privatelink.* zone names."
  }
}

variable "log_analytics_workspace_enabled" {
  type        = bool
  description = "Optional. Create a small Log Analytics workspace (30 days) for the diagnostic settings of the module under test."
  default     = false
  nullable    = false

  validation {
    condition     = !(var.log_analytics_workspace_enabled && var.hub_and_spoke != null)
    error_message = "hub_and_spoke already brings the monitoring module's workspace; leave log_analytics_workspace_enabled false."
  }
}

variable "hub_and_spoke" {
  type = object({
    git_fqdns        = optional(list(string), [])
    automation_fqdns = optional(list(string), [])
  })
  description = "Optional. Deploy the platform's own monitoring and network modules (hub with firewall, spoke on the examples' address plan of the outputs hub_address_space, spoke_address_space and spoke_subnets, private DNS zones), for examples that need the real network (aks, automation). The lists are passed to the network module's egress rules. null deploys neither."
  default     = null
}
