variable "name" {
  type        = string
  description = "Required. Registry name (globally unique, 5-50 alphanumerics)."
  nullable    = false

  validation {
    condition     = can(regex("^[a-zA-Z0-9]{5,50}$", var.name))
    error_message = "name must be 5-50 letters or digits."
  }
}

variable "location" {
  type        = string
  description = "Required. Azure region."
  nullable    = false
}

variable "resource_group_name" {
  type        = string
  description = "Required. Resource group of the registry."
  nullable    = false
}

variable "private_endpoint_subnet_id" {
  type        = string
  description = "Required. Subnet of the registry's private endpoint."
  nullable    = false
}

variable "private_dns_zone_id" {
  type        = string
  description = "Required. ID of the privatelink.azurecr.io zone (registry and data endpoints both register there)."
  nullable    = false
}

variable "pull_principal_ids" {
  type        = map(string)
  description = "Optional. Principals that get AcrPull, keyed by a stable name (e.g. `kubelet`). The key, not the ID, drives for_each so that IDs unknown at plan time are fine."
  default     = {}
  nullable    = false
}

variable "zone_redundancy_enabled" {
  type        = bool
  description = "Optional. Spread the registry over availability zones (no extra cost on Premium)."
  default     = true
  nullable    = false
}

variable "untagged_retention_days" {
  type        = number
  description = "Optional. Days after which untagged manifests are deleted."
  default     = 7
  nullable    = false

  validation {
    condition     = var.untagged_retention_days >= 0 && var.untagged_retention_days <= 365
    error_message = "untagged_retention_days must be between 0 and 365."
  }
}

variable "tags" {
  type        = map(string)
  description = "Optional. Tags applied to every resource."
  default     = {}
  nullable    = false
}
