locals {
  p           = var.platform
  env         = local.p.environment
  name_suffix = "platform-${local.env}"
  tags        = merge({ environment = local.env, managed-by = "terraform" }, local.p.tags)

  gitlab_host          = regex("^https?://([^/:]+)", local.p.gitlab.url)[0]
  flux_repository_url  = "${trimsuffix(local.p.gitlab.url, "/")}/${local.p.gitlab.project}.git"
  private_dns_zone_aks = "privatelink.${local.p.location}.azmk8s.io"
  # Cloudflare's published edge ranges: the only sources of the public entry (one file, also read by gitops).
  cloudflare_ip_ranges  = yamldecode(file("${path.module}/../../cloudflare-ip-ranges.yaml"))
  deployment_container  = "app-package"
  deadletter_container  = "eventgrid-deadletter"
  automation_containers = ["leases", local.deployment_container, local.deadletter_container]
  # MLflow's artifact store (gitops/apps: --artifacts-destination=wasbs://mlflow@<account>...).
  mlflow_container = "mlflow"
  # Model weights, mounted read-only by vLLM through a static blobfuse2 volume (gitops/apps: PV/PVC
  # `models`), reached through the blob private endpoint. Uploads: infra/README.md "Model weights".
  models_container = "models"
  # The RAG example's data-lake source (gitops/apps/base/rag: DATA_LAKE_CONTAINER), read with workload identity.
  datalake_container = "datalake"
  storage_containers = concat(local.automation_containers,
  [local.mlflow_container, local.models_container, local.datalake_container])
}

resource "azurerm_resource_group" "platform" {
  name     = local.p.resource_group
  location = local.p.location
  tags     = local.tags
}

module "monitoring" {
  source = "../monitoring"

  name_suffix         = local.name_suffix
  location            = local.p.location
  resource_group_name = azurerm_resource_group.platform.name
  log_retention_days  = local.p.monitoring.log_retention_days
  alert_emails        = local.p.monitoring.alert_emails
  budgets             = local.p.cost.budgets
  budget_resource_groups = {
    platform = azurerm_resource_group.platform.name
    nodes    = module.aks.node_resource_group
  }
  tags = local.tags
}

module "network" {
  source = "../network"

  name_suffix                = local.name_suffix
  location                   = local.p.location
  resource_group_name        = azurerm_resource_group.platform.name
  hub_address_space          = local.p.network.hub_address_space
  spoke_address_space        = local.p.network.spoke_address_space
  subnets                    = local.p.network.subnets
  firewall_sku_tier          = local.p.network.firewall_sku_tier
  zones                      = local.p.cluster.zones
  git_fqdns                  = [local.gitlab_host]
  automation_fqdns           = local.p.network.automation_fqdns
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
  public_entry = {
    private_ip    = local.p.network.gateways.public_ip
    source_ranges = local.cloudflare_ip_ranges.ipv4
  }
  tags = local.tags
}

module "aks" {
  source = "../aks"

  name                            = local.p.cluster.name
  location                        = local.p.location
  resource_group_name             = azurerm_resource_group.platform.name
  tenant_id                       = local.p.tenant_id
  admin_group_object_ids          = local.p.cluster.admin_group_object_ids
  kubernetes_version              = local.p.cluster.kubernetes_version
  sku_tier                        = local.p.cluster.sku_tier
  upgrade_channel                 = local.p.cluster.upgrade_channel
  private_cluster_enabled         = local.p.cluster.private_api_server
  api_server_authorized_ip_ranges = local.p.network.api_server_authorized_ip_ranges
  private_dns_zone_id             = module.network.private_dns_zone_ids[local.private_dns_zone_aks]
  firewall_public_ip              = module.network.firewall_public_ip
  subnet_ids = {
    system_nodes = module.network.subnet_ids.system_nodes
    gpu_nodes    = module.network.subnet_ids.gpu_nodes
  }
  # The Gateways' internal load balancers (annotation azure-load-balancer-internal-subnet) live here.
  ingress_subnet_id = module.network.subnet_ids.ingress_internal
  route_table_id    = module.network.route_table_id
  zones             = local.p.cluster.zones
  network = {
    pod_cidr       = local.p.cluster.pod_cidr
    service_cidr   = local.p.cluster.service_cidr
    dns_service_ip = local.p.cluster.dns_service_ip
  }
  azure_policy = {
    allowed_registries    = ["${local.p.acr.name}.azurecr.io", "mcr.microsoft.com"]
    allowed_images_effect = local.p.cluster.allowed_images_effect
    # Host access by design: GPU drivers and device plugins, node feature discovery, and monitoring
    # (node-exporter's host namespaces, the log collector's /var/log hostPath).
    privileged_namespaces = ["gpu-operator", "kube-amd-gpu", "node-feature-discovery", "monitoring"]
  }
  system_pool        = local.p.cluster.system_pool
  cpu_pool           = local.p.cluster.cpu_pool
  gpu_pools          = local.p.gpu_pools
  node_label_prefix  = local.p.cluster.node_label_prefix
  maintenance_window = local.p.cluster.maintenance_window

  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
  monitor_workspace_id       = module.monitoring.monitor_workspace_id

  # Kubernetes RBAC subject of the automation app (gitops/apps/base/vllm/gpu-scaling-rbac.yaml).
  automation_principal_id = module.automation.identity.principal_id
  access_group_object_ids = local.p.access
  flux = {
    repository_url   = local.flux_repository_url
    branch           = local.p.gitlab.default_branch
    path             = local.p.gitlab.gitops_path
    auth_secret_name = local.p.gitlab.flux_auth_secret
    # dev only (sops.tf): kustomize-controller's identity for SOPS decryption.
    workload_identity_client_id = one(azurerm_user_assigned_identity.flux_sops[*].client_id)
  }
  # Federated with the cluster's issuer; client IDs substituted into gitops/clusters/<env> by Flux.
  workload_identities = {
    for name, wi in local.workload_identities : name => merge(wi, {
      identity_id = azurerm_user_assigned_identity.workload[name].id
      client_id   = azurerm_user_assigned_identity.workload[name].client_id
    })
  }

  tags = local.tags

  # Nodes must never boot before the default route to the firewall and the NSGs are in place.
  depends_on = [module.network]
}

module "acr" {
  source = "../acr"

  name                       = local.p.acr.name
  location                   = local.p.location
  resource_group_name        = azurerm_resource_group.platform.name
  zone_redundancy_enabled    = local.p.acr.zone_redundancy
  private_endpoint_subnet_id = module.network.subnet_ids.private_endpoints
  private_dns_zone_id        = module.network.private_dns_zone_ids["privatelink.azurecr.io"]
  pull_principal_ids         = { kubelet = module.aks.kubelet_identity_object_id }
  tags                       = local.tags
}

module "keyvault" {
  source = "../keyvault"

  name                       = local.p.key_vault.name
  location                   = local.p.location
  resource_group_name        = azurerm_resource_group.platform.name
  tenant_id                  = local.p.tenant_id
  purge_protection_enabled   = local.p.key_vault.purge_protection
  soft_delete_retention_days = local.p.key_vault.soft_delete_retention_days
  private_endpoint_subnet_id = module.network.subnet_ids.private_endpoints
  private_dns_zone_id        = module.network.private_dns_zone_ids["privatelink.vaultcore.azure.net"]
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
  tags                       = local.tags
}

# The automation's own work queues (drift: GitLab webhook events, debounced drift checks; ChatOps: commands
# acknowledged in chat and run from the queue).
locals {
  automation_queues = ["gitlab-events", "drift-checks", "chatops-commands"]
}

module "storage" {
  source = "../storage"

  account_name        = local.p.storage.account_name
  location            = local.p.location
  resource_group_name = azurerm_resource_group.platform.name
  replication_type    = local.p.storage.replication_type
  inference_queues    = concat([for pool in local.p.gpu_pools : pool.inference_queue], local.automation_queues)
  state_tables = [
    "dedup", "audit", "certrevocations", "driftfindings", "gpuscaling", "modelrouting", "compliancefindings",
    "chatopsapprovals",
  ]
  containers                 = local.storage_containers
  private_endpoint_subnet_id = module.network.subnet_ids.private_endpoints
  private_dns_zone_ids = {
    blob  = module.network.private_dns_zone_ids["privatelink.blob.core.windows.net"]
    queue = module.network.private_dns_zone_ids["privatelink.queue.core.windows.net"]
    table = module.network.private_dns_zone_ids["privatelink.table.core.windows.net"]
  }
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
  tags                       = local.tags
}

module "postgresql" {
  source = "../postgresql"

  name                       = local.p.mlflow_database.server_name
  location                   = local.p.location
  resource_group_name        = azurerm_resource_group.platform.name
  tenant_id                  = local.p.tenant_id
  database_name              = local.p.mlflow_database.database
  administrator_login        = local.p.mlflow_database.administrator_login
  postgresql_version         = local.p.mlflow_database.postgresql_version
  sku_name                   = local.p.mlflow_database.sku_name
  storage_mb                 = local.p.mlflow_database.storage_mb
  backup_retention_days      = local.p.mlflow_database.backup_retention_days
  high_availability          = local.p.mlflow_database.zone_redundant_ha
  private_endpoint_subnet_id = module.network.subnet_ids.private_endpoints
  private_dns_zone_id        = module.network.private_dns_zone_ids["privatelink.postgres.database.azure.com"]
  key_vault_id               = module.keyvault.id
  password_secret_name       = local.p.mlflow_database.password_secret
  log_analytics_workspace_id = module.monitoring.log_analytics_workspace_id
  tags                       = local.tags
}

module "automation" {
  source = "../automation"

  name                   = local.p.automation.function_app_name
  environment            = local.env
  location               = local.p.location
  resource_group_name    = azurerm_resource_group.platform.name
  subnet_id              = module.network.subnet_ids.functions
  maximum_instance_count = local.p.automation.maximum_instance_count
  cluster_id             = module.aks.id
  key_vault = {
    id   = module.keyvault.id
    name = module.keyvault.name
  }
  # The secret's name through the resource: the app's reference is set only once the secret exists.
  extra_ca_secret_name = azapi_resource.internal_ca_secret.name
  storage = {
    id                   = module.storage.id
    name                 = module.storage.name
    blob_endpoint        = module.storage.primary_blob_endpoint
    deployment_container = local.deployment_container
    deadletter_container = local.deadletter_container
    queue_ids            = module.storage.queue_ids
    table_ids            = module.storage.table_ids
  }
  application_insights = {
    id                = module.monitoring.application_insights_id
    connection_string = module.monitoring.application_insights_connection_string
  }
  certificate_events_enabled = local.p.automation.certificate_events_enabled
  caller_authentication = local.p.automation.caller_authentication == null ? null : merge(
    local.p.automation.caller_authentication, { tenant_id = local.p.tenant_id }
  )
  # OpenCost's internal route and the token audience it requires (opencost.tf).
  app_settings = local.opencost_app_settings
  tags         = local.tags
}

# The vLLM pods mount container `models` read-only with blobfuse2 (static PV, AzureStorageAuthType MSI):
# the node's kubelet identity reads that one container, nothing else in the account.
resource "azurerm_role_assignment" "kubelet_reads_models" {
  scope                = module.storage.container_ids[local.models_container]
  role_definition_name = "Storage Blob Data Reader"
  principal_id         = module.aks.kubelet_identity_object_id
  principal_type       = "ServicePrincipal"
}

# Defender for Containers on the environment's subscription (each environment has its own): runtime
# threat detection through the cluster's sensor (modules/aks microsoft_defender), agentless discovery, and
# vulnerability assessment of the images in the platform registry.
resource "azurerm_security_center_subscription_pricing" "containers" {
  tier          = "Standard"
  resource_type = "Containers"

  extension {
    name = "ContainerRegistriesVulnerabilityAssessments"
  }
  extension {
    name = "AgentlessDiscoveryForKubernetes"
  }
  extension {
    name = "ContainerSensor"
  }
}
