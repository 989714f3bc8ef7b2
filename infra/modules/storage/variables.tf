variable "account_name" {
  type        = string
  description = "Required. Storage account name (3-24 lowercase letters and digits). The app reads it as PLATFORM_STORAGE_ACCOUNT."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.account_name))
    error_message = "account_name must be 3-24 lowercase letters or digits."
  }
}

variable "location" {
  type        = string
  description = "Required. Azure region."
  nullable    = false
}

variable "resource_group_name" {
  type        = string
  description = "Required. Resource group of the account."
  nullable    = false
}

variable "replication_type" {
  type        = string
  description = "Optional. Replication: LRS for dev, ZRS or GZRS where losing a zone must not lose queued work."
  default     = "ZRS"
  nullable    = false

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "GZRS", "RAGRS", "RAGZRS"], var.replication_type)
    error_message = "replication_type must be one of LRS, ZRS, GRS, GZRS, RAGRS, RAGZRS."
  }
}

variable "inference_queues" {
  type        = list(string)
  description = "Required. Inference queue names, one per GPU pool (gpu_pools[].inference_queue in platform.yaml)."
  nullable    = false

  validation {
    condition     = alltrue([for q in var.inference_queues : can(regex("^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$", q))])
    error_message = "Queue names are 3-63 lowercase letters, digits and single hyphens, starting and ending alphanumeric."
  }
}

variable "state_tables" {
  type        = list(string)
  description = "Optional. Tables of the automation's state: `dedup` (webhook and event de-duplication) and `audit`."
  default     = ["dedup", "audit"]
  nullable    = false

  validation {
    condition     = alltrue([for t in var.state_tables : can(regex("^[A-Za-z][A-Za-z0-9]{2,62}$", t))])
    error_message = "Table names are 3-63 letters or digits, starting with a letter."
  }
}

variable "containers" {
  type        = list(string)
  description = "Optional. Blob containers: `leases` (the automation's locks), `app-package` (Flex Consumption deployment package), `eventgrid-deadletter`; modules/platform adds `mlflow` (MLflow artifacts)."
  default     = ["leases", "app-package", "eventgrid-deadletter"]
  nullable    = false

  validation {
    condition     = alltrue([for c in var.containers : can(regex("^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$", c))])
    error_message = "Container names are 3-63 lowercase letters, digits and single hyphens, starting and ending alphanumeric."
  }
}

variable "private_endpoint_subnet_id" {
  type        = string
  description = "Required. Subnet of the blob, queue and table private endpoints."
  nullable    = false
}

variable "private_dns_zone_ids" {
  type = object({
    blob  = string
    queue = string
    table = string
  })
  description = "Required. IDs of the privatelink.{blob,queue,table}.core.windows.net zones."
  nullable    = false
}

variable "log_analytics_workspace_id" {
  type        = string
  description = "Required. Log Analytics workspace receiving the blob, queue and table resource logs."
  nullable    = false
}

variable "tags" {
  type        = map(string)
  description = "Optional. Tags applied to every resource."
  default     = {}
  nullable    = false
}
