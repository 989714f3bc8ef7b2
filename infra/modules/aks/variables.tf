variable "name" {
  type        = string
  description = "Required. Cluster name, e.g. `aks-platform-dev-uaenorth`. Also the DNS prefix."
  nullable    = false

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,52}[a-z0-9]$", var.name))
    error_message = "name must be 2-54 lowercase letters, digits or hyphens."
  }
}

variable "location" {
  type        = string
  description = "Required. Azure region, e.g. `uaenorth`."
  nullable    = false
}

variable "resource_group_name" {
  type        = string
  description = "Required. Resource group of the cluster (its nodes go to the AKS-managed node resource group)."
  nullable    = false
}

variable "tenant_id" {
  type        = string
  description = "Required. Entra ID tenant whose users and groups are authorised through Azure RBAC."
  nullable    = false

  validation {
    condition     = can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.tenant_id))
    error_message = "tenant_id must be a GUID."
  }
}

variable "admin_group_object_ids" {
  type        = list(string)
  description = "Optional. Entra ID groups that get cluster-admin. Day-to-day access should use Azure RBAC role assignments instead."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for id in var.admin_group_object_ids : can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", id))])
    error_message = "admin_group_object_ids must be GUIDs."
  }
}

variable "kubernetes_version" {
  type        = string
  description = "Required. Kubernetes minor version (e.g. `1.36`); AKS picks the latest patch and the upgrade channel keeps it current."
  nullable    = false

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must be a minor version such as 1.36."
  }
}

variable "sku_tier" {
  type        = string
  description = "Optional. AKS control plane tier: Free (dev), Standard (financially backed SLA) or Premium (LTS)."
  default     = "Standard"
  nullable    = false

  validation {
    condition     = contains(["Free", "Standard", "Premium"], var.sku_tier)
    error_message = "sku_tier must be Free, Standard or Premium."
  }
}

variable "private_cluster_enabled" {
  type        = bool
  description = "Required. true: API server on a private endpoint only (prd). false: public endpoint limited to api_server_authorized_ip_ranges."
  nullable    = false
}

variable "api_server_authorized_ip_ranges" {
  type        = list(string)
  description = "Optional. CIDRs allowed to reach a public API server; the firewall's egress IP is added automatically. Must be empty for a private cluster and non-empty otherwise."
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for c in var.api_server_authorized_ip_ranges : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "api_server_authorized_ip_ranges must be CIDRs and must not include 0.0.0.0/0."
  }
  validation {
    condition     = var.private_cluster_enabled == (length(var.api_server_authorized_ip_ranges) == 0)
    error_message = "A private cluster takes no authorized IP ranges; a public one needs at least one."
  }
}

variable "private_dns_zone_id" {
  type        = string
  description = "Optional. Private DNS zone (privatelink.<region>.azmk8s.io) for a private API server, linked to the hub so operators resolve it. null lets AKS create one that only the spoke resolves."
  default     = null
}

variable "firewall_public_ip" {
  type        = string
  description = "Optional. Egress IP of the hub firewall. With a public API server and user-defined routing, nodes reach the API server from this IP, so it is always authorized."
  default     = null
}

variable "subnet_ids" {
  type = object({
    system_nodes = string
    gpu_nodes    = string
  })
  description = "Required. Subnets of the node pools. Both must already carry the route table to the firewall (userDefinedRouting)."
  nullable    = false
}

variable "ingress_subnet_id" {
  type        = string
  description = "Optional. Subnet of the internal load balancers of the Gateways (service annotation `service.beta.kubernetes.io/azure-load-balancer-internal-subnet`); the control-plane identity gets Network Contributor on it. null: none."
  default     = null
}

variable "route_table_id" {
  type        = string
  description = "Required. Route table of the node subnets; the cluster identity needs Network Contributor on it."
  nullable    = false
}

variable "zones" {
  type        = list(string)
  description = "Optional. Availability zones of the system and CPU pools (and of GPU pools that set none)."
  default     = ["1", "2", "3"]
  nullable    = false

  validation {
    condition     = alltrue([for z in var.zones : contains(["1", "2", "3"], z)])
    error_message = "zones may only contain \"1\", \"2\" and \"3\"."
  }
}

variable "network" {
  type = object({
    pod_cidr       = optional(string, "192.168.0.0/16")
    service_cidr   = optional(string, "172.16.0.0/16")
    dns_service_ip = optional(string, "172.16.0.10")
  })
  description = "Optional. Overlay pod CIDR and service CIDR; neither may overlap the VNets."
  default     = {}
  nullable    = false

  validation {
    condition     = can(cidrhost(var.network.pod_cidr, 0)) && can(cidrhost(var.network.service_cidr, 0))
    error_message = "pod_cidr and service_cidr must be CIDRs."
  }
}

variable "system_pool" {
  type = object({
    vm_size         = string
    min_count       = number
    max_count       = number
    os_disk_size_gb = optional(number, 128)
  })
  description = "Required. The system pool: tainted CriticalAddonsOnly, so only system pods run there."
  nullable    = false

  validation {
    condition     = var.system_pool.min_count >= 1 && var.system_pool.min_count <= var.system_pool.max_count
    error_message = "system_pool needs 1 <= min_count <= max_count."
  }
}

variable "cpu_pool" {
  type = object({
    vm_size         = string
    min_count       = number
    max_count       = number
    os_disk_size_gb = optional(number, 128)
  })
  description = "Required. The CPU user pool: controllers, Flux, ingress and everything that needs no GPU."
  nullable    = false

  validation {
    condition     = var.cpu_pool.min_count >= 0 && var.cpu_pool.min_count <= var.cpu_pool.max_count
    error_message = "cpu_pool needs 0 <= min_count <= max_count."
  }
}

variable "gpu_pools" {
  type = list(object({
    name            = string
    vendor          = string
    vm_size         = string
    gpus_per_node   = number
    min_count       = number
    max_count       = number
    mig_profile     = optional(string)
    inference_queue = optional(string)
    zones           = optional(list(string))
    os_disk_size_gb = optional(number, 256)
  }))
  description = <<-EOT
    Optional. GPU user pools. vendor `nvidia` pools are tainted `nvidia.com/gpu=present:NoSchedule`
    and get no AKS-installed driver (the NVIDIA GPU operator owns it); `amd` pools are tainted
    `amd.com/gpu=present:NoSchedule`. mig_profile (MIG1g..MIG7g) partitions NVIDIA GPUs.
  EOT
  default     = []
  nullable    = false

  validation {
    condition     = alltrue([for p in var.gpu_pools : contains(["nvidia", "amd"], p.vendor)])
    error_message = "gpu_pools[].vendor must be nvidia or amd."
  }
  validation {
    # AKS pool names: lowercase alphanumeric, at most 12; 9 leaves room for the rotation suffix.
    condition     = alltrue([for p in var.gpu_pools : can(regex("^[a-z][a-z0-9]{0,8}$", p.name))])
    error_message = "gpu_pools[].name must be 1-9 lowercase letters or digits, starting with a letter."
  }
  validation {
    condition     = alltrue([for p in var.gpu_pools : p.min_count >= 0 && p.min_count <= p.max_count])
    error_message = "gpu_pools need 0 <= min_count <= max_count."
  }
  validation {
    condition     = alltrue([for p in var.gpu_pools : p.mig_profile == null || (p.vendor == "nvidia" && contains(["MIG1g", "MIG2g", "MIG3g", "MIG4g", "MIG7g"], coalesce(p.mig_profile, "none")))])
    error_message = "mig_profile is for nvidia pools only and must be one of MIG1g, MIG2g, MIG3g, MIG4g, MIG7g."
  }
  validation {
    condition     = length(distinct([for p in var.gpu_pools : p.name])) == length(var.gpu_pools)
    error_message = "gpu_pools[].name must be unique."
  }
}

variable "node_label_prefix" {
  type        = string
  description = "Required. Prefix of the platform's node labels (`<prefix>/gpu-vendor`, `<prefix>/gpu-pool`, ...): `cluster.node_label_prefix` in platform.yaml, the prefix the gitops node selectors and Kyverno rules use."
  nullable    = false

  validation {
    condition     = length(var.node_label_prefix) <= 253 && can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$", var.node_label_prefix))
    error_message = "node_label_prefix must be a DNS subdomain of at most 253 characters, such as platform.example.com."
  }
  validation {
    # The kubelet may not set labels in the Kubernetes namespaces, so AKS would reject the node labels.
    condition     = !can(regex("(^|\\.)(kubernetes\\.io|k8s\\.io)$", var.node_label_prefix))
    error_message = "node_label_prefix must not be in the reserved kubernetes.io or k8s.io domains."
  }
}

variable "upgrade_channel" {
  type        = string
  description = "Optional. Automatic Kubernetes upgrade channel."
  default     = "patch"
  nullable    = false

  validation {
    condition     = contains(["patch", "stable", "rapid", "node-image", "none"], var.upgrade_channel)
    error_message = "upgrade_channel must be patch, stable, rapid, node-image or none."
  }
}

variable "maintenance_window" {
  type = object({
    day_of_week    = string
    start_time     = string
    utc_offset     = optional(string, "+04:00")
    duration_hours = optional(number, 4)
  })
  description = "Required. Weekly window for Kubernetes and node OS upgrades. Environments use different days so dev upgrades before stg, and stg before prd."
  nullable    = false

  validation {
    condition     = contains(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"], var.maintenance_window.day_of_week)
    error_message = "day_of_week must be a weekday name such as Sunday."
  }
  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]$", var.maintenance_window.start_time)) && var.maintenance_window.duration_hours >= 4
    error_message = "start_time must be HH:MM and duration_hours at least 4 (the AKS minimum)."
  }
}

variable "autoscaler_profile" {
  type = object({
    expander                         = optional(string, "least-waste")
    scan_interval                    = optional(string, "10s")
    scale_down_unneeded              = optional(string, "10m")
    scale_down_delay_after_add       = optional(string, "10m")
    scale_down_utilization_threshold = optional(string, "0.5")
    max_node_provisioning_time       = optional(string, "20m")
    max_graceful_termination_sec     = optional(string, "600")
    skip_nodes_with_local_storage    = optional(bool, false)
  })
  description = "Optional. Cluster autoscaler settings. max_node_provisioning_time is 20m because a GPU node takes several minutes to become ready."
  default     = {}
  nullable    = false

  validation {
    condition     = contains(["least-waste", "most-pods", "priority", "random"], var.autoscaler_profile.expander)
    error_message = "expander must be least-waste, most-pods, priority or random."
  }
}

variable "log_analytics_workspace_id" {
  type        = string
  description = "Required. Log Analytics workspace for Container Insights."
  nullable    = false
}

variable "monitor_workspace_id" {
  type        = string
  description = "Required. Azure Monitor workspace receiving Managed Prometheus metrics."
  nullable    = false
}

variable "flux" {
  type = object({
    repository_url        = string
    branch                = string
    path                  = string
    auth_secret_name      = optional(string)
    sync_interval_seconds = optional(number, 120)
    # Client ID of the identity Flux's controllers sign in to Azure with (workload identity), null for none.
    # dev: kustomize-controller decrypts SOPS files with its Key Vault key.
    workload_identity_client_id = optional(string)
  })
  description = <<-EOT
    Required. Flux source: this repository and the folder `gitops/clusters/<env>`.
    auth_secret_name names a Secret in flux-system holding the Git credentials, so that no
    credential passes through Terraform state; null means the repository is readable anonymously.
    workload_identity_client_id: the identity of Flux's controllers (federated by the caller).
  EOT
  nullable    = false

  validation {
    condition     = startswith(var.flux.repository_url, "https://") || startswith(var.flux.repository_url, "ssh://")
    error_message = "flux.repository_url must be an https:// or ssh:// URL."
  }
  validation {
    condition     = can(regex("^(\\./)?gitops/clusters/[a-z0-9-]+$", var.flux.path))
    error_message = "flux.path must be gitops/clusters/<env>."
  }
}

variable "automation_principal_id" {
  type        = string
  description = "Required. Object (principal) ID of the automation app's managed identity. Substituted into gitops as AUTOMATION_PRINCIPAL_ID: Kubernetes RBAC names an Entra service principal by its object ID, and the gitops RoleBindings grant it what GPU scaling does in the cluster (cordon nodes, set the serving Deployment's replicas)."
  nullable    = false

  validation {
    condition     = can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", var.automation_principal_id))
    error_message = "automation_principal_id must be an Entra object ID (a lowercase GUID)."
  }
}

variable "workload_identities" {
  type = map(object({
    identity_id     = string
    client_id       = string
    namespace       = string
    service_account = string
    flux_variable   = string
  }))
  description = <<-EOT
    Optional. User-assigned identities used by the cluster's workloads, by name. Each gets a federated
    credential trusting this cluster's OIDC issuer for `system:serviceaccount:<namespace>:<service_account>`,
    and the root Flux Kustomization substitutes its client ID for the variable `flux_variable` in
    `gitops/clusters/<env>` (post_build.substitute). Their Azure roles are the caller's.
  EOT
  default     = {}
  nullable    = false

  validation {
    condition = alltrue([
      for wi in values(var.workload_identities) :
      can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", wi.namespace)) && can(regex("^[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?$", wi.service_account))
    ])
    error_message = "workload_identities[].namespace must be a DNS label and service_account a DNS subdomain."
  }
  validation {
    condition     = alltrue([for wi in values(var.workload_identities) : can(regex("^[A-Z_][A-Z0-9_]*$", wi.flux_variable))])
    error_message = "workload_identities[].flux_variable must be an upper-case shell variable name such as KEDA_CLIENT_ID."
  }
  validation {
    condition     = length(distinct([for wi in values(var.workload_identities) : wi.flux_variable])) == length(var.workload_identities)
    error_message = "workload_identities[].flux_variable must be unique."
  }
  validation {
    condition     = length(distinct([for wi in values(var.workload_identities) : "${wi.namespace}/${wi.service_account}"])) == length(var.workload_identities)
    error_message = "Each service account may be federated with one identity only."
  }
}

variable "tags" {
  type        = map(string)
  description = "Optional. Tags applied to every resource."
  default     = {}
  nullable    = false
}

variable "azure_policy" {
  type = object({
    allowed_registries    = list(string)
    allowed_images_effect = optional(string, "Deny")
    privileged_namespaces = optional(list(string), [])
  })
  description = <<-EOT
    Required. Azure Policy on the cluster:
    - allowed_registries: registry hosts images may come from (the platform ACR's login server, plus
      mcr.microsoft.com for what AKS deploys itself).
    - allowed_images_effect: Deny (enforced) or Audit (reported only), e.g. while images are being mirrored.
    - privileged_namespaces: namespaces exempt from the pod security initiatives (GPU operators, NFD).
  EOT
  nullable    = false

  validation {
    condition     = length(var.azure_policy.allowed_registries) > 0 && alltrue([for r in var.azure_policy.allowed_registries : can(regex("^[a-z0-9.-]+$", r))])
    error_message = "azure_policy.allowed_registries must be registry host names, at least one."
  }

  validation {
    condition     = contains(["Deny", "Audit"], var.azure_policy.allowed_images_effect)
    error_message = "azure_policy.allowed_images_effect must be Deny or Audit."
  }
}

variable "access_group_object_ids" {
  type = object({
    developers = string
    operators  = string
    bots       = string
  })
  description = "Required. Entra ID group object IDs of the platform's roles (platform.yaml `access`). Substituted into gitops as DEVELOPERS_GROUP_ID, OPERATORS_GROUP_ID and BOTS_GROUP_ID: the Kubernetes bindings of gitops/apps/base/rbac/bindings.yaml name the groups by object ID (README \"Delivery\", RBAC)."
  nullable    = false

  validation {
    condition     = alltrue([for id in values(var.access_group_object_ids) : can(regex("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", id))])
    error_message = "access.developers, access.operators and access.bots must be Entra ID group object IDs (GUIDs)."
  }
}
