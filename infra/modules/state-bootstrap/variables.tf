variable "resource_group_name" {
  type        = string
  description = "Required. Resource group created for the state account, e.g. `rg-tfstate-dev-uaenorth`."
  nullable    = false

  validation {
    condition     = can(regex("^[-\\w.()]{1,89}[-\\w()]$", var.resource_group_name))
    error_message = "resource_group_name must be a valid resource group name."
  }
}

variable "location" {
  type        = string
  description = "Required. Azure region of the state account."
  nullable    = false
}

variable "storage_account_name" {
  type        = string
  description = "Required. State storage account name (3-24 lowercase letters and digits); must match the backend block of the environment."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "storage_account_name must be 3-24 lowercase letters or digits."
  }
}

variable "container_name" {
  type        = string
  description = "Optional. Blob container holding the state files (one key per environment)."
  default     = "tfstate"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$", var.container_name))
    error_message = "container_name must be a valid blob container name."
  }
}

variable "replication_type" {
  type        = string
  description = "Optional. Replication of the state account. Losing state means re-importing a whole platform, so geo-zone-redundant by default."
  default     = "GZRS"
  nullable    = false

  validation {
    condition     = contains(["ZRS", "GRS", "GZRS", "RAGZRS"], var.replication_type)
    error_message = "replication_type must be ZRS, GRS, GZRS or RAGZRS: state deserves more than one copy in one datacenter."
  }
}

variable "allowed_ip_ranges" {
  type        = list(string)
  description = "Optional. Public CIDRs of the Terraform runners (CI egress, operator VPN) let through the account firewall."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.allowed_ip_ranges : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "allowed_ip_ranges must be CIDRs and must not include 0.0.0.0/0."
  }
}

variable "state_contributor_principal_ids" {
  type        = map(string)
  description = "Optional. Principals (CI identity, platform engineers' group) given Storage Blob Data Contributor on the state container, keyed by a stable name."
  default     = {}
  nullable    = false
}

variable "tags" {
  type        = map(string)
  description = "Optional. Tags applied to every resource."
  default     = {}
  nullable    = false
}
