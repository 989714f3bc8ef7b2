output "id" {
  description = "Resource ID of the cluster (scope of the automation app's node pool role)."
  value       = azurerm_kubernetes_cluster.this.id
}

output "name" {
  description = "Name of the cluster."
  value       = azurerm_kubernetes_cluster.this.name
}

output "oidc_issuer_url" {
  description = "OIDC issuer URL, for federated credentials of workload identities."
  value       = azurerm_kubernetes_cluster.this.oidc_issuer_url
}

output "kubelet_identity_object_id" {
  description = "Object ID of the kubelet identity (AcrPull on the platform registry)."
  value       = azurerm_kubernetes_cluster.this.kubelet_identity[0].object_id
}

output "kubelet_identity_client_id" {
  description = "Client ID of the kubelet identity (AzureStorageIdentityClientID of the static `models` blob volume)."
  value       = azurerm_kubernetes_cluster.this.kubelet_identity[0].client_id
}

output "node_resource_group" {
  description = "AKS-managed resource group of the nodes."
  value       = azurerm_kubernetes_cluster.this.node_resource_group
}

output "gpu_pool_scheduling" {
  description = "Per GPU pool: the taint a workload must tolerate and the labels it can select on."
  value = {
    for name, p in local.gpu_pools : name => {
      taint  = local.gpu_taints[p.vendor]
      labels = local.gpu_labels[name]
    }
  }
}
