variable "name" {
  type        = string
  description = "Required. Function app name, e.g. `func-platform-dev-uaenorth` (at most 32 characters to avoid host ID collisions)."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$", var.name))
    error_message = "name must be 2-32 lowercase letters, digits or hyphens."
  }
}

variable "environment" {
  type        = string
  description = "Required. Environment name, e.g. `dev-uaenorth`; the app reads it as PLATFORM_ENV and loads the matching platform.yaml."
  nullable    = false

  validation {
    condition     = can(regex("^(dev|stg|prd)-[a-z0-9]+$", var.environment))
    error_message = "environment must look like dev-uaenorth, stg-uaenorth or prd-uaenorth."
  }
}

variable "location" {
  type        = string
  description = "Required. Azure region."
  nullable    = false
}

variable "resource_group_name" {
  type        = string
  description = "Required. Resource group of the app, its plan, identity and Event Grid topic."
  nullable    = false
}

variable "subnet_id" {
  type        = string
  description = "Required. Subnet delegated to Microsoft.App/environments: outbound traffic goes through the hub firewall and reaches Key Vault and Storage over their private endpoints."
  nullable    = false
}

variable "storage" {
  type = object({
    id                   = string
    name                 = string
    blob_endpoint        = string
    deployment_container = string
    deadletter_container = string
    queue_ids            = map(string)
    table_ids            = map(string)
  })
  description = "Required. The platform storage account: host storage, deployment package container, inference queues and state tables (Resource Manager IDs, used as role scopes)."
  nullable    = false
}

variable "key_vault" {
  type = object({
    id   = string
    name = string
  })
  description = "Required. The platform Key Vault: certificates the app rotates and secrets it reads through Key Vault references."
  nullable    = false
}

variable "key_vault_secret_settings" {
  type        = map(string)
  description = "Optional. App setting name => Key Vault secret name. Each becomes a Key Vault reference: the value never passes through Terraform."
  default = {
    #checkov:skip=CKV_SECRET_6:A Key Vault secret name, not a secret value; the value is resolved by App Service at run time.
    CLOUDFLARE_API_TOKEN = "cloudflare-api-token"
    #checkov:skip=CKV_SECRET_6:A Key Vault secret name, not a secret value; the value is resolved by App Service at run time.
    GITLAB_TOKEN = "gitlab-token"
    #checkov:skip=CKV_SECRET_6:A Key Vault secret name, not a secret value; the value is resolved by App Service at run time.
    GITLAB_WEBHOOK_SECRET = "gitlab-webhook-secret"
    #checkov:skip=CKV_SECRET_6:A Key Vault secret name, not a secret value; the value is resolved by App Service at run time.
    SLACK_SIGNING_SECRET = "slack-signing-secret"
    #checkov:skip=CKV_SECRET_6:A Key Vault secret name, not a secret value; the value is resolved by App Service at run time.
    TEAMS_WEBHOOK_SECRET = "teams-webhook-secret"
    #checkov:skip=CKV_SECRET_6:A Key Vault secret name, not a secret value; the value is resolved by App Service at run time.
    CHAT_NOTIFY_SLACK_WEBHOOK_URL = "chat-notify-slack-webhook-url"
    #checkov:skip=CKV_SECRET_6:A Key Vault secret name, not a secret value; the value is resolved by App Service at run time.
    CHAT_NOTIFY_TEAMS_WEBHOOK_URL = "chat-notify-teams-webhook-url"
  }
  nullable = false

  validation {
    condition     = alltrue([for s in values(var.key_vault_secret_settings) : can(regex("^[0-9a-zA-Z-]{1,127}$", s))])
    error_message = "Values are Key Vault secret names (letters, digits, hyphens), not secret values."
  }
}

variable "extra_ca_secret_name" {
  type        = string
  description = "Optional. Key Vault secret holding CA certificates (PEM) the app trusts on top of the public roots: the cluster's internal CA, pushed by external-secrets. Becomes the Key Vault reference TLS_EXTRA_CA_PEM. null: none."
  default     = null

  validation {
    condition     = var.extra_ca_secret_name == null || can(regex("^[0-9a-zA-Z-]{1,127}$", var.extra_ca_secret_name))
    error_message = "extra_ca_secret_name is a Key Vault secret name (letters, digits, hyphens)."
  }
}

variable "app_settings" {
  type        = map(string)
  description = "Optional. Further plain (non-secret) app settings. Secrets belong in key_vault_secret_settings."
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([for v in values(var.app_settings) :
    !can(regex("(?i)(AccountKey=|SharedAccessSignature=|sig=|-----BEGIN|password=|glpat-|xox[abp]-)", v))])
    error_message = "app_settings must not carry credentials; use key_vault_secret_settings."
  }
}

variable "cluster_id" {
  type        = string
  description = "Required. The AKS cluster whose node pools the app scales (and nothing else)."
  nullable    = false

  validation {
    condition     = can(regex("^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft.ContainerService/managedClusters/[^/]+$", var.cluster_id))
    error_message = "cluster_id must be an AKS managed cluster resource ID."
  }
}

variable "application_insights" {
  type = object({
    id                = string
    connection_string = string
  })
  description = "Required. Application Insights for the app's telemetry (Entra ID authenticated)."
  nullable    = false
  sensitive   = true
}

variable "maximum_instance_count" {
  type        = number
  description = "Optional. Upper bound of Flex Consumption instances."
  default     = 40
  nullable    = false

  validation {
    condition     = var.maximum_instance_count >= 1 && var.maximum_instance_count <= 1000
    error_message = "maximum_instance_count must be between 1 and 1000."
  }
}

variable "instance_memory_mb" {
  type        = number
  description = "Optional. Memory per instance: 2048 or 4096 MB."
  default     = 2048
  nullable    = false

  validation {
    condition     = contains([2048, 4096], var.instance_memory_mb)
    error_message = "instance_memory_mb must be 2048 or 4096."
  }
}

variable "certificate_events_enabled" {
  type        = bool
  description = "Optional. Subscribe the app's Event Grid function to the vault's certificate events. Event Grid validates the endpoint, so this needs the app code deployed: false on an environment's very first apply."
  default     = true
  nullable    = false
}

variable "certificate_event_function" {
  type        = string
  description = "Optional. Name of the Event Grid triggered function in the app."
  default     = "keyvault_certificate_events"
  nullable    = false
}

variable "drift_events_enabled" {
  type        = bool
  description = "Optional. Subscribe the app to subscription-level resource events (platform resource group) and the AKS cluster's system-topic events for drift detection and version bumps. Also needs certificate_events_enabled (the app code deployed)."
  default     = true
  nullable    = false
}

variable "drift_event_functions" {
  type = object({
    resources = string
    cluster   = string
  })
  description = "Optional. Names of the Event Grid triggered functions for resource events and AKS cluster events."
  default = {
    resources = "resource_events"
    cluster   = "aks_events"
  }
  nullable = false

  validation {
    condition     = length(var.drift_event_functions.resources) > 0 && length(var.drift_event_functions.cluster) > 0
    error_message = "Both function names must be non-empty."
  }
}

variable "tags" {
  type        = map(string)
  description = "Optional. Tags applied to every resource."
  default     = {}
  nullable    = false
}

variable "gpu_scaling_schedule" {
  type        = string
  description = "Optional. NCRONTAB schedule (six fields, seconds first) of the gpu_scaling timer, the app setting GPU_SCALING_SCHEDULE its binding reads. Every 15 s by default: a GPU node takes minutes to serve, so a tick is cheap next to being late."
  default     = "*/15 * * * * *"
  nullable    = false

  validation {
    condition     = can(regex("^[0-9*/,-]+( [0-9A-Za-z*/,-]+){5}$", var.gpu_scaling_schedule))
    error_message = "gpu_scaling_schedule must be a six-field NCRONTAB expression ({second} {minute} {hour} {day} {month} {day-of-week}), e.g. */15 * * * * *."
  }
}

variable "gpu_scaling_enabled" {
  type        = bool
  description = "Optional. The environment's kill switch for GPU scaling (app setting GPU_SCALING_ENABLED): false leaves every pool and the serving Deployments alone; decisions are still logged."
  default     = true
  nullable    = false
}

variable "gpu_scaling_dry_run" {
  type        = bool
  description = "Optional. GPU scaling decides and audits without changing anything (app setting GPU_SCALING_DRY_RUN). null: the environment tier's default, true in prd (shadow mode while KEDA sizes prd), false in dev and stg. Switching prd to false needs the prd ScaledObject paused in gitops in the same change."
  default     = null
  nullable    = true
}

variable "gpu_scaling_drain_timeout_seconds" {
  type        = number
  description = "Optional. Seconds a cordoned GPU node may keep serving its requests before its machine is deleted anyway (app setting GPU_SCALING_DRAIN_TIMEOUT_SECONDS)."
  default     = 600
  nullable    = false

  validation {
    condition     = var.gpu_scaling_drain_timeout_seconds >= 0 && var.gpu_scaling_drain_timeout_seconds <= 3600
    error_message = "gpu_scaling_drain_timeout_seconds must be between 0 and 3600 (the app refuses anything else)."
  }
}

variable "compliance_schedule" {
  type        = string
  description = "Optional. NCRONTAB schedule (six fields, seconds first) of the compliance_scan timer, the app setting COMPLIANCE_SCHEDULE its binding reads. Daily at 04:30 UTC by default."
  default     = "0 30 4 * * *"
  nullable    = false

  validation {
    condition     = can(regex("^[0-9*/,-]+( [0-9A-Za-z*/,-]+){5}$", var.compliance_schedule))
    error_message = "compliance_schedule must be a six-field NCRONTAB expression ({second} {minute} {hour} {day} {month} {day-of-week}), e.g. 0 30 4 * * *."
  }
}

variable "caller_authentication" {
  description = <<-EOT
    Optional. App Service Authentication (Easy Auth) for callers that present an Entra ID token, e.g. MCP clients on
    /api/mcp: client_id of the app registration that stands for this app's API, the tenant, and the accepted
    token audiences. Anonymous requests still pass (chat and GitLab webhooks authenticate by signature, the rest by
    function key); a valid token adds the X-MS-CLIENT-PRINCIPAL-* headers the MCP server maps to a role. null:
    authentication off, and /api/mcp refuses every call (README "MCP server").
  EOT
  type = object({
    client_id         = string
    tenant_id         = string
    allowed_audiences = list(string)
  })
  default = null

  validation {
    condition = var.caller_authentication == null ? true : (
      can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.caller_authentication.client_id))
      && length(var.caller_authentication.allowed_audiences) > 0
    )
    error_message = "caller_authentication.client_id must be a GUID and allowed_audiences must name at least one audience."
  }
}
