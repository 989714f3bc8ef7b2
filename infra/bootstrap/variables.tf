variable "environment" {
  type        = string
  description = "Required. Environment whose subscription gets a state account: dev-uaenorth, stg-uaenorth or prd-uaenorth."
  nullable    = false

  validation {
    condition     = can(regex("^(dev|stg|prd)-[a-z0-9]+$", var.environment))
    error_message = "environment must be an infra/envs folder name such as dev-uaenorth."
  }
}

variable "allowed_ip_ranges" {
  type        = list(string)
  description = "Optional. Public CIDRs of CI and operators allowed through the state account firewall."
  default     = []
  nullable    = false
}

variable "state_contributor_principal_ids" {
  type        = map(string)
  description = "Optional. Principals given Storage Blob Data Contributor on the state container, keyed by a stable name (e.g. `ci`, `platform-engineers`)."
  default     = {}
  nullable    = false
}
