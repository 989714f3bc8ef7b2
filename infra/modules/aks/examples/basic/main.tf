terraform {
  required_version = ">= 1.9, < 2.0"
  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.55.0"
    }
  }
}

variable "subscription_id" {
  type        = string
  description = "Required. Sandbox subscription to run the example in."
}

provider "azurerm" {
  subscription_id     = var.subscription_id
  storage_use_azuread = true
  features {}
}

# The real hub and spoke (firewall egress, routes, every subnet) and the monitoring workspaces.
module "prerequisites" {
  source = "../../../../examples/prerequisites"

  resource_group_name = "rg-example-aks"
  hub_and_spoke       = { git_fqdns = ["gitlab.example.com"] }
}

# An identity for the KEDA operator; the module federates it with the cluster's OIDC issuer and
# passes its client ID to Flux as KEDA_CLIENT_ID.
resource "azurerm_user_assigned_identity" "keda" {
  name                = "id-aks-platform-example-keda"
  location            = module.prerequisites.location
  resource_group_name = module.prerequisites.resource_group_name
}

# Stands in for the automation app's identity (modules/automation), the subject of the gitops RBAC for GPU scaling.
resource "azurerm_user_assigned_identity" "automation" {
  name                = "id-aks-platform-example-automation"
  location            = module.prerequisites.location
  resource_group_name = module.prerequisites.resource_group_name
}

module "aks" {
  source = "../.."

  name                            = "aks-platform-example"
  location                        = module.prerequisites.location
  resource_group_name             = module.prerequisites.resource_group_name
  tenant_id                       = "00000000-0000-0000-0000-0000000000aa"
  kubernetes_version              = "1.36"
  sku_tier                        = "Free"
  private_cluster_enabled         = false
  api_server_authorized_ip_ranges = ["203.0.113.0/24"]
  firewall_public_ip              = module.prerequisites.network.firewall_public_ip
  subnet_ids = {
    system_nodes = module.prerequisites.network.subnet_ids.system_nodes
    gpu_nodes    = module.prerequisites.network.subnet_ids.gpu_nodes
  }
  route_table_id = module.prerequisites.network.route_table_id
  system_pool    = { vm_size = "Standard_D4ds_v5", min_count = 1, max_count = 2 }
  cpu_pool       = { vm_size = "Standard_D8ds_v5", min_count = 0, max_count = 2 }
  gpu_pools = [
    # An H100 pool split into seven MIG slices; it scales from zero.
    { name = "h100", vendor = "nvidia", vm_size = "Standard_NC40ads_H100_v5", gpus_per_node = 1, min_count = 0, max_count = 1, mig_profile = "MIG1g", inference_queue = "inference-h100" },
  ]
  node_label_prefix          = "platform.example.com"
  maintenance_window         = { day_of_week = "Monday", start_time = "02:00" }
  log_analytics_workspace_id = module.prerequisites.monitoring.log_analytics_workspace_id
  monitor_workspace_id       = module.prerequisites.monitoring.monitor_workspace_id
  flux = {
    repository_url = "https://gitlab.example.com/platform/platform-core.git"
    branch         = "main"
    path           = "gitops/clusters/dev-uaenorth"
  }
  automation_principal_id = azurerm_user_assigned_identity.automation.principal_id
  access_group_object_ids = {
    developers = "00000000-0000-0000-0000-0000000dd001"
    operators  = "00000000-0000-0000-0000-0000000dd002"
    bots       = "00000000-0000-0000-0000-0000000dd003"
  }
  workload_identities = {
    keda = {
      identity_id     = azurerm_user_assigned_identity.keda.id
      client_id       = azurerm_user_assigned_identity.keda.client_id
      namespace       = "keda"
      service_account = "keda-operator"
      flux_variable   = "KEDA_CLIENT_ID"
    }
  }

  # Nodes must not boot before the firewall rules and the spoke's default route exist.
  depends_on = [module.prerequisites]
}

output "gpu_pool_scheduling" {
  description = "Taint and labels of each GPU pool."
  value       = module.aks.gpu_pool_scheduling
}
