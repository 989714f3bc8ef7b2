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
  description = "Required. Azure region."
  nullable    = false
}

variable "resource_group_name" {
  type        = string
  description = "Required. Resource group of the monitoring resources."
  nullable    = false
}

variable "log_retention_days" {
  type        = number
  description = "Optional. Log Analytics retention in days."
  default     = 30
  nullable    = false

  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "log_retention_days must be between 30 and 730."
  }
}

variable "alert_emails" {
  type        = list(string)
  description = "Required. Addresses the action group notifies (an on-call alias, not a person)."
  nullable    = false

  validation {
    condition     = length(var.alert_emails) > 0 && alltrue([for e in var.alert_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "alert_emails needs at least one valid e-mail address."
  }
}

variable "failed_request_threshold" {
  type        = number
  description = "Optional. Failed requests of the automation app in 15 minutes that raise an alert."
  default     = 5
  nullable    = false

  validation {
    condition     = var.failed_request_threshold > 0
    error_message = "failed_request_threshold must be positive."
  }
}

variable "tags" {
  type        = map(string)
  description = "Optional. Tags applied to every resource."
  default     = {}
  nullable    = false
}
