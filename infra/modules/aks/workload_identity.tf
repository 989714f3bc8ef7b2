# Workload identity: the cluster's OIDC issuer vouches for one Kubernetes service account per
# identity. The identities and their Azure roles belong to the caller (modules/platform); this
# module federates them with its issuer and hands their client IDs to Flux (flux.tf).
resource "azurerm_federated_identity_credential" "workload" {
  for_each = var.workload_identities

  name = "${var.name}-${each.value.namespace}-${each.value.service_account}"
  # The identity's resource group, read from its ID (required by the older azurerm 4.x releases this module allows).
  resource_group_name = split("/", each.value.identity_id)[4]
  parent_id           = each.value.identity_id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = azurerm_kubernetes_cluster.this.oidc_issuer_url
  subject             = "system:serviceaccount:${each.value.namespace}:${each.value.service_account}"
}
