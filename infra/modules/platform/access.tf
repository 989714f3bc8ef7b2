# Who may reach the cluster (README "Delivery", RBAC). The Entra ID groups of platform.yaml `access` get only
# "Azure Kubernetes Service Cluster User Role" (listClusterUserCredential: a kubeconfig that signs in with Entra
# ID): what each may do inside the cluster is granted by the Kubernetes RBAC in gitops (ClusterRoles in
# gitops/infrastructure/configs/base/rbac, bindings per environment), never by the Azure "AKS RBAC *" roles, which
# cannot express "no exec in prd" or "no secrets for the bot". Cluster-admin stays with
# cluster.admin_group_object_ids. Operators also read metrics, logs and alerts of the environment.
locals {
  access_groups = {
    developers = local.p.access.developers
    operators  = local.p.access.operators
    bots       = local.p.access.bots
  }
}

resource "azurerm_role_assignment" "cluster_user" {
  for_each = local.access_groups

  scope                = module.aks.id
  role_definition_name = "Azure Kubernetes Service Cluster User Role"
  principal_id         = each.value
  principal_type       = "Group"
  description          = "platform ${each.key}: kubeconfig only; Kubernetes RBAC in gitops grants the rest"
}

resource "azurerm_role_assignment" "operators_monitoring" {
  scope                = azurerm_resource_group.platform.id
  role_definition_name = "Monitoring Reader"
  principal_id         = local.p.access.operators
  principal_type       = "Group"
  description          = "platform operators: metrics, logs and alerts of the environment"
}
