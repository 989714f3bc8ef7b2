variable "platform" {
  type = object({
    environment     = string
    location        = string
    subscription_id = string
    tenant_id       = string
    resource_group  = string
    tags            = optional(map(string), {})
    # The environment's remote state (infra/bootstrap): the CI identities read (plan) or write (deploy) it.
    state = object({
      resource_group       = string
      storage_account_name = string
      container            = string
      key                  = string
    })
    network = object({
      hub_address_space               = string
      spoke_address_space             = string
      api_server_authorized_ip_ranges = list(string)
      firewall_sku_tier               = optional(string, "Standard")
      subnets = object({
        system_nodes      = string
        gpu_nodes         = string
        private_endpoints = string
        ingress_internal  = string
        functions         = string
      })
      automation_fqdns = optional(list(string), [])
      gateways = object({
        public_ip   = string
        internal_ip = string
      })
    })
    cluster = object({
      name                   = string
      kubernetes_version     = string
      sku_tier               = optional(string, "Standard")
      upgrade_channel        = optional(string, "patch")
      admin_group_object_ids = optional(list(string), [])
      pod_cidr               = optional(string, "192.168.0.0/16")
      service_cidr           = optional(string, "172.16.0.0/16")
      dns_service_ip         = optional(string, "172.16.0.10")
      maintenance_window = object({
        day_of_week    = string
        start_time     = string
        utc_offset     = optional(string, "+04:00")
        duration_hours = optional(number, 4)
      })
      private_api_server = bool
      zones              = list(string)
      system_pool        = object({ vm_size = string, min_count = number, max_count = number })
      cpu_pool           = object({ vm_size = string, min_count = number, max_count = number })
      node_label_prefix  = string
      # Deny enforces "images from the platform ACR (and MCR) only"; Audit reports while images are mirrored.
      allowed_images_effect = optional(string, "Deny")
    })
    key_vault = object({
      name                       = string
      purge_protection           = bool
      soft_delete_retention_days = optional(number, 90)
      # dev only: name of the Key Vault key SOPS encrypts with (.sops.yaml; sops.tf); null elsewhere.
      sops_key = optional(string)
    })
    storage = object({
      account_name     = string
      replication_type = optional(string, "ZRS")
    })
    mlflow_database = object({
      server_name           = string
      database              = string
      administrator_login   = string
      postgresql_version    = string
      sku_name              = string
      storage_mb            = number
      backup_retention_days = number
      zone_redundant_ha     = bool
      password_secret       = string
    })
    acr = object({
      name            = string
      zone_redundancy = optional(bool, true)
    })
    monitoring = object({
      log_retention_days = optional(number, 30)
      alert_emails       = list(string)
    })
    cost = optional(object({
      budgets = optional(object({
        subscription_monthly    = number
        resource_groups_monthly = map(number)
        start_month             = string
        actual_thresholds       = optional(list(number), [80, 100])
        forecast_thresholds     = optional(list(number), [100])
      }))
      # OpenCost's API for the automation app: internal Gateway hostname, Entra ID audience, app role.
      opencost = optional(object({
        hostname = string
        audience = string
        app_role = string
      }))
    }), {})
    automation = object({
      function_app_name          = string
      maximum_instance_count     = optional(number, 40)
      certificate_events_enabled = optional(bool, true)
      # Entra ID app registration standing for the app's API (MCP clients' tokens); null: Easy Auth off.
      caller_authentication = optional(object({
        client_id         = string
        allowed_audiences = list(string)
      }))
    })
    gpu_pools = list(object({
      name            = string
      vendor          = string
      vm_size         = string
      gpus_per_node   = number
      min_count       = number
      max_count       = number
      mig_profile     = optional(string)
      inference_queue = string
    }))
    gitlab = object({
      url              = string
      project          = string
      default_branch   = string
      gitops_path      = string
      flux_auth_secret = optional(string)
    })
    # The pipelines that sign in to Azure (ci_identities.tf): GitLab is `gitlab` above; GitHub is optional.
    ci = optional(object({
      github_repository = optional(string)
    }), {})
    access = object({
      developers = string
      operators  = string
      bots       = string
    })
  })
  description = <<-EOT
    Required. The decoded `infra/envs/<env>/platform.yaml` (yamldecode), the one source of truth
    shared with the automation app. Keys Terraform does not use (certificates, requests_per_gpu,
    ...) are dropped by type conversion. See infra/README.md for every key.
  EOT
  nullable    = false

  validation {
    condition     = can(regex("^(dev|stg|prd)-[a-z0-9]+$", var.platform.environment))
    error_message = "environment must be <dev|stg|prd>-<region>."
  }
  validation {
    condition     = endswith(var.platform.environment, var.platform.location)
    error_message = "environment must end with its location (dev-uaenorth is in uaenorth)."
  }
  # Production guarantees, enforced at plan time as well as by tests/infra.
  validation {
    condition     = !startswith(var.platform.environment, "prd-") || var.platform.cluster.private_api_server
    error_message = "prd needs a private API server (cluster.private_api_server: true)."
  }
  validation {
    condition     = !startswith(var.platform.environment, "prd-") || var.platform.key_vault.purge_protection
    error_message = "prd needs Key Vault purge protection (key_vault.purge_protection: true)."
  }
  validation {
    condition     = !startswith(var.platform.environment, "prd-") || length(setintersection(toset(var.platform.cluster.zones), toset(["1", "2", "3"]))) == 3
    error_message = "prd must be zone redundant (cluster.zones: [\"1\", \"2\", \"3\"])."
  }
  validation {
    condition     = !startswith(var.platform.environment, "prd-") || contains(["ZRS", "GZRS", "RAGZRS"], coalesce(var.platform.storage.replication_type, "ZRS"))
    error_message = "prd storage must be zone redundant (ZRS, GZRS or RAGZRS)."
  }
  validation {
    condition     = length(distinct([for p in var.platform.gpu_pools : p.inference_queue])) == length(var.platform.gpu_pools)
    error_message = "Every GPU pool needs its own inference_queue."
  }
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$", var.platform.cluster.node_label_prefix))
    error_message = "cluster.node_label_prefix must be a DNS subdomain such as platform.example.com (the gitops manifests select on <prefix>/gpu-vendor)."
  }
  validation {
    condition     = startswith(var.platform.environment, "dev-") || var.platform.key_vault.sops_key == null
    error_message = "key_vault.sops_key is for dev only: stg and prd use external-secrets only."
  }
  validation {
    condition     = can(regex("^https://[^/]+$", trimsuffix(var.platform.gitlab.url, "/")))
    error_message = "gitlab.url must be the https URL of the GitLab instance (the OIDC issuer of its ID tokens), without a path."
  }
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$", var.platform.gitlab.project))
    error_message = "gitlab.project must be the project path, group[/subgroup]/project."
  }
  validation {
    condition     = var.platform.ci.github_repository == null || can(regex("^[A-Za-z0-9-]+/[A-Za-z0-9_.-]+$", coalesce(var.platform.ci.github_repository, "-")))
    error_message = "ci.github_repository must be <owner>/<repo> (or absent when GitHub runs no pipeline)."
  }
  validation {
    condition     = endswith(var.platform.gitlab.gitops_path, "/${var.platform.environment}")
    error_message = "gitlab.gitops_path must be gitops/clusters/<environment>."
  }
}
