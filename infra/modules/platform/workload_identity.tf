locals {
  # Service accounts in gitops/ that call Azure with workload identity. namespace and service_account
  # must match the manifests, and every ${VAR} under gitops/clusters must be a flux_variable here
  # (both checked by tests/gitops/test_platform_facts.py).
  workload_identities = {
    # The ClusterSecretStore azure-key-vault reads the vault as this service account.
    external-secrets = {
      namespace       = "external-secrets"
      service_account = "external-secrets"
      flux_variable   = "EXTERNAL_SECRETS_CLIENT_ID"
    }
    # The azure-queue scaler (TriggerAuthentication provider azure-workload) runs in the operator.
    keda = {
      namespace       = "keda"
      service_account = "keda-operator"
      flux_variable   = "KEDA_CLIENT_ID"
    }
    # The tracking server proxies artifacts to the mlflow container.
    mlflow = {
      namespace       = "mlflow"
      service_account = "mlflow"
      flux_variable   = "MLFLOW_CLIENT_ID"
    }
    # The RAG example's ingestion reads the data-lake container (gitops/apps/base/rag).
    rag = {
      namespace       = "rag"
      service_account = "rag"
      flux_variable   = "RAG_CLIENT_ID"
    }
  }

  # Least privilege: one data-plane role per identity, on exactly what it reads or writes.
  workload_roles = merge(
    {
      external-secrets-vault = {
        identity = "external-secrets"
        role     = "Key Vault Secrets User"
        scope    = module.keyvault.id
      }
      mlflow-artifacts = {
        identity = "mlflow"
        role     = "Storage Blob Data Contributor"
        scope    = module.storage.container_ids[local.mlflow_container]
      }
      rag-datalake = {
        identity = "rag"
        role     = "Storage Blob Data Reader"
        scope    = module.storage.container_ids[local.datalake_container]
      }
    },
    # KEDA only reads the depth of the inference queues: each queue, not the account.
    {
      for pool in local.p.gpu_pools : "keda-${pool.inference_queue}" => {
        identity = "keda"
        role     = "Storage Queue Data Reader"
        scope    = module.storage.queue_ids[pool.inference_queue]
      }
    },
  )
}

# Created before the cluster, so their client IDs are known when the Flux configuration is; the
# federated credentials (which need the cluster's OIDC issuer) are in modules/aks.
resource "azurerm_user_assigned_identity" "workload" {
  for_each = local.workload_identities

  name                = "id-${local.p.cluster.name}-${each.key}"
  location            = local.p.location
  resource_group_name = azurerm_resource_group.platform.name
  tags                = local.tags
}

resource "azurerm_role_assignment" "workload" {
  for_each = local.workload_roles

  scope                = each.value.scope
  role_definition_name = each.value.role
  principal_id         = azurerm_user_assigned_identity.workload[each.value.identity].principal_id
  principal_type       = "ServicePrincipal"
}
