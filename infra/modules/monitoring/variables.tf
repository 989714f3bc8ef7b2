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

variable "budgets" {
  type = object({
    subscription_monthly    = number
    resource_groups_monthly = map(number)
    start_month             = string
    actual_thresholds       = optional(list(number), [80, 100])
    forecast_thresholds     = optional(list(number), [100])
  })
  description = "Optional. Monthly cost budgets in the billing currency: of the subscription, and per resource group by key of `budget_resource_groups`; the first month they apply (YYYY-MM); thresholds in percent of the amount whose actual and forecast spend notify the action group. null: no budgets."
  default     = null

  validation {
    condition     = var.budgets == null || try(var.budgets.subscription_monthly > 0 && alltrue([for a in values(var.budgets.resource_groups_monthly) : a > 0]) && sum(concat([0], values(var.budgets.resource_groups_monthly))) <= var.budgets.subscription_monthly, false)
    error_message = "budgets: amounts must be positive and the resource groups' together no larger than the subscription's."
  }

  validation {
    condition     = var.budgets == null || can(regex("^20[0-9]{2}-(0[1-9]|1[0-2])$", var.budgets.start_month))
    error_message = "budgets.start_month must be YYYY-MM (Azure budgets start on the first of a month)."
  }

  validation {
    condition     = var.budgets == null || try(length(var.budgets.actual_thresholds) + length(var.budgets.forecast_thresholds) <= 5 && length(var.budgets.forecast_thresholds) > 0 && alltrue([for t in concat(var.budgets.actual_thresholds, var.budgets.forecast_thresholds) : t > 0 && t <= 1000]), false)
    error_message = "budgets: at least one forecast threshold, at most 5 thresholds in all (Azure's limit), each between 0 and 1000 percent."
  }

  validation {
    condition     = var.budgets == null || try(alltrue([for k in keys(var.budgets.resource_groups_monthly) : contains(keys(var.budget_resource_groups), k)]), false)
    error_message = "budgets.resource_groups_monthly: every key must name a resource group of budget_resource_groups."
  }
}

variable "budget_resource_groups" {
  type        = map(string)
  description = "Optional. Resource groups budgets may be set on, by key (`platform`, `nodes`: the cluster's node resource group)."
  default     = {}
  nullable    = false
}
