variable "name" {
  type        = string
  description = "Required. Server name, globally unique; the host is `<name>.postgres.database.azure.com`."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.name))
    error_message = "name must be 3-63 lowercase letters, digits or hyphens, starting and ending alphanumeric."
  }
}

variable "location" {
  type        = string
  description = "Required. Azure region, e.g. `uaenorth`."
  nullable    = false
}

variable "resource_group_name" {
  type        = string
  description = "Required. Resource group of the server and its private endpoint."
  nullable    = false
}

variable "tenant_id" {
  type        = string
  description = "Required. Entra ID tenant for Entra authentication on the server."
  nullable    = false

  validation {
    condition     = can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.tenant_id))
    error_message = "tenant_id must be a GUID."
  }
}

variable "database_name" {
  type        = string
  description = "Optional. The application database created on the server."
  default     = "mlflow"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must be a lowercase PostgreSQL identifier."
  }
}

variable "administrator_login" {
  type        = string
  description = "Optional. Administrator login (password authentication); the password is generated and written to Key Vault."
  default     = "mlflowadmin"
  nullable    = false

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.administrator_login)) && !contains(["admin", "administrator", "root", "azure_superuser", "azure_pg_admin", "guest", "public"], var.administrator_login) && !startswith(var.administrator_login, "pg_")
    error_message = "administrator_login must be a lowercase identifier and not a reserved name (admin, root, azure_*, pg_*...)."
  }
}

variable "postgresql_version" {
  type        = string
  description = "Optional. PostgreSQL major version."
  default     = "16"
  nullable    = false

  validation {
    condition     = contains(["14", "15", "16", "17"], var.postgresql_version)
    error_message = "postgresql_version must be 14, 15, 16 or 17 (older majors are at or near their end of life)."
  }
}

variable "sku_name" {
  type        = string
  description = "Optional. Compute SKU, `<tier>_<size>`: B_ (Burstable, dev), GP_ (General Purpose) or MO_ (Memory Optimized)."
  default     = "GP_Standard_D2ds_v5"
  nullable    = false

  validation {
    condition     = can(regex("^(B|GP|MO)_Standard_[A-Za-z0-9_]+$", var.sku_name))
    error_message = "sku_name must look like B_Standard_B1ms, GP_Standard_D2ds_v5 or MO_Standard_E4ds_v5."
  }
}

variable "storage_mb" {
  type        = number
  description = "Optional. Storage size in MB (auto-grow is on)."
  default     = 32768
  nullable    = false

  validation {
    condition     = contains([32768, 65536, 131072, 262144, 524288, 1048576, 2097152, 4193280, 4194304, 8388608, 16777216, 33553408], var.storage_mb)
    error_message = "storage_mb must be one of the sizes Flexible Server offers (32768, 65536, 131072, ...)."
  }
}

variable "backup_retention_days" {
  type        = number
  description = "Optional. Point-in-time restore window in days."
  default     = 7
  nullable    = false

  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 7 and 35."
  }
}

variable "geo_redundant_backup_enabled" {
  type        = bool
  description = "Optional. Geo-redundant backups (set at creation only)."
  default     = false
  nullable    = false
}

variable "high_availability" {
  type        = bool
  description = "Optional. Zone-redundant high availability (a standby in zone 2, the primary in zone 1). Not available on Burstable SKUs."
  default     = false
  nullable    = false

  validation {
    condition     = !var.high_availability || !startswith(var.sku_name, "B_")
    error_message = "high_availability needs a General Purpose or Memory Optimized SKU."
  }
}

variable "maintenance_window" {
  type = object({
    day_of_week = number
    start_hour  = number
  })
  description = "Optional. Weekly maintenance window in UTC: day_of_week 0 (Sunday) to 6, start_hour 0-23."
  default     = { day_of_week = 0, start_hour = 0 }
  nullable    = false

  validation {
    condition     = var.maintenance_window.day_of_week >= 0 && var.maintenance_window.day_of_week <= 6 && var.maintenance_window.start_hour >= 0 && var.maintenance_window.start_hour <= 23
    error_message = "maintenance_window.day_of_week must be 0-6 and start_hour 0-23."
  }
}

variable "private_endpoint_subnet_id" {
  type        = string
  description = "Required. Subnet of the server's private endpoint."
  nullable    = false
}

variable "private_dns_zone_id" {
  type        = string
  description = "Required. ID of the private DNS zone `privatelink.postgres.database.azure.com`."
  nullable    = false

  validation {
    condition     = endswith(lower(var.private_dns_zone_id), "/privatednszones/privatelink.postgres.database.azure.com")
    error_message = "private_dns_zone_id must be the privatelink.postgres.database.azure.com zone."
  }
}

variable "key_vault_id" {
  type        = string
  description = "Required. Key Vault that receives the generated administrator password."
  nullable    = false

  validation {
    condition     = can(regex("(?i)/providers/Microsoft.KeyVault/vaults/[^/]+$", var.key_vault_id))
    error_message = "key_vault_id must be a Key Vault resource ID."
  }
}

variable "password_secret_name" {
  type        = string
  description = "Required. Name of the Key Vault secret holding the administrator password (gitops reads it through external-secrets), e.g. `mlflow-db-password`."
  nullable    = false

  validation {
    condition     = can(regex("^[0-9A-Za-z-]{1,127}$", var.password_secret_name))
    error_message = "password_secret_name must be 1-127 letters, digits and hyphens (Key Vault object name)."
  }
}

variable "log_analytics_workspace_id" {
  type        = string
  description = "Optional. Log Analytics workspace for the server's logs; null sends none."
  default     = null
}

variable "tags" {
  type        = map(string)
  description = "Optional. Tags applied to every resource."
  default     = {}
  nullable    = false
}
