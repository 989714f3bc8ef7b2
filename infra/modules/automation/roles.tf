locals {
  cluster_resource_group_id = regex("^(/subscriptions/[^/]+/resourceGroups/[^/]+)", var.cluster_id)[0]
}

# Scaling GPU pools: read and write agent pools of one cluster, nothing else of AKS (no cluster
# settings, no admin credentials). A scale-down removes exactly the machines it drained
# (POST .../agentPools/{pool}/deleteMachines, the adapter's begin_delete_machines): its own action, which
# agentPools/write does not include, and no built-in role short of Contributor-like ones grants it alone. The user credential only carries the API server URL and the
# cluster CA (Entra ID clusters put no secret in it): the Kubernetes adapter needs both to reach the
# API server. Built-in roles all grant more.
resource "azurerm_role_definition" "node_pool_scaler" {
  name        = "Platform node pool scaler (${var.environment})"
  scope       = local.cluster_resource_group_id
  description = "Read the cluster, read/update its agent pools (min/max count) and delete drained machines. Used by the Platform Core automation app."

  permissions {
    actions = [
      "Microsoft.ContainerService/managedClusters/read",
      "Microsoft.ContainerService/managedClusters/agentPools/read",
      "Microsoft.ContainerService/managedClusters/agentPools/write",
      "Microsoft.ContainerService/managedClusters/agentPools/deleteMachines/action",
      "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
    ]
    not_actions = []
  }

  assignable_scopes = [local.cluster_resource_group_id]
}

resource "azurerm_role_assignment" "node_pools" {
  scope              = var.cluster_id
  role_definition_id = azurerm_role_definition.node_pool_scaler.role_definition_resource_id
  principal_id       = azurerm_user_assigned_identity.app.principal_id
  principal_type     = "ServicePrincipal"
}

# Inside the cluster (Entra ID + Azure RBAC, local accounts off): read Flux objects, nodes and
# workloads for health and drift. Kubernetes writes are granted by the capability that needs them.
resource "azurerm_role_assignment" "cluster_reader" {
  scope                = var.cluster_id
  role_definition_name = "Azure Kubernetes Service RBAC Reader"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
  principal_type       = "ServicePrincipal"
}

# Origin certificates: the app imports new versions. Vault scope, because a certificate that
# does not exist yet cannot be a role scope.
resource "azurerm_role_assignment" "certificates" {
  scope                = var.key_vault.id
  role_definition_name = "Key Vault Certificates Officer"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
  principal_type       = "ServicePrincipal"
}

# Key Vault references (Cloudflare, GitLab and Slack secrets) are read with this identity.
resource "azurerm_role_assignment" "secrets" {
  scope                = var.key_vault.id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
  principal_type       = "ServicePrincipal"
}

# Each inference queue and each state table individually, not the whole account.
resource "azurerm_role_assignment" "queues" {
  for_each = var.storage.queue_ids

  scope                = each.value
  role_definition_name = "Storage Queue Data Contributor"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "tables" {
  for_each = var.storage.table_ids

  scope                = each.value
  role_definition_name = "Storage Table Data Contributor"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
  principal_type       = "ServicePrincipal"
}

# The Functions host keeps its own containers (locks, timers, the deployment package) and the
# automation's leases in blobs; identity-based host storage requires Blob Data Owner.
resource "azurerm_role_assignment" "host_storage" {
  scope                = var.storage.id
  role_definition_name = "Storage Blob Data Owner"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "telemetry" {
  scope                = var.application_insights.id
  role_definition_name = "Monitoring Metrics Publisher"
  principal_id         = azurerm_user_assigned_identity.app.principal_id
  principal_type       = "ServicePrincipal"
}
