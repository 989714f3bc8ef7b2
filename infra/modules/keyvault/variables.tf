variable "name" {
  type        = string
  description = "Required. Vault name (globally unique, 3-24 characters)."
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$", var.name))
    error_message = "name must be 3-24 letters, digits or hyphens, starting with a letter."
  }
}

variable "location" {
  type        = string
  description = "Required. Azure region."
  nullable    = false
}

variable "resource_group_name" {
  type        = string
  description = "Required. Resource group of the vault."
  nullable    = false
}

variable "tenant_id" {
  type        = string
  description = "Required. Entra ID tenant of the vault."
  nullable    = false

  validation {
    condition     = can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.tenant_id))
    error_message = "tenant_id must be a GUID."
  }
}

variable "purge_protection_enabled" {
  type        = bool
  description = "Required. Purge protection (cannot be turned off once on). true in prd; dev and stg may purge so names can be reused."
  nullable    = false
}

variable "soft_delete_retention_days" {
  type        = number
  description = "Optional. Days a deleted vault or object stays recoverable. Set once; Azure refuses changes."
  default     = 90
  nullable    = false

  validation {
    condition     = var.soft_delete_retention_days >= 7 && var.soft_delete_retention_days <= 90
    error_message = "soft_delete_retention_days must be between 7 and 90."
  }
}

variable "allowed_ip_ranges" {
  type        = list(string)
  description = "Optional. Public CIDRs let through the vault firewall, used only while public network access is on."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.allowed_ip_ranges : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "allowed_ip_ranges must be CIDRs and must not include 0.0.0.0/0."
  }
}

variable "public_network_access_enabled" {
  type        = bool
  description = "Optional. false: the vault is reached through its private endpoint only (trusted Azure services such as Event Grid still bypass)."
  default     = false
  nullable    = false
}

variable "private_endpoint_subnet_id" {
  type        = string
  description = "Required. Subnet of the vault's private endpoint."
  nullable    = false
}

variable "private_dns_zone_id" {
  type        = string
  description = "Required. ID of the privatelink.vaultcore.azure.net zone."
  nullable    = false
}

variable "log_analytics_workspace_id" {
  type        = string
  description = "Required. Log Analytics workspace receiving the vault's audit log."
  nullable    = false
}

variable "tags" {
  type        = map(string)
  description = "Optional. Tags applied to every resource."
  default     = {}
  nullable    = false
}
