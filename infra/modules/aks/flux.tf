resource "azurerm_kubernetes_cluster_extension" "flux" {
  name              = "flux"
  cluster_id        = azurerm_kubernetes_cluster.this.id
  extension_type    = "microsoft.flux"
  release_namespace = "flux-system"

  configuration_settings = {
    # Multi-tenancy: the extension's lockdown (on by default) refuses Flux objects outside flux-system that
    # name no service account of their own, i.e. every HelmRelease here (each sits in its controller's or app's
    # namespace, next to its source). This platform is one tenant: the whole tree is reviewed through merge
    # requests, so the lockdown buys nothing and is switched off (gitops/README.md "Flux on AKS"; checked by
    # tests/gitops/test_policies.py).
    "multiTenancy.enforce" = "false"
    # Image automation would let the cluster write to Git; promotion goes through merge requests.
    "image-automation-controller.enabled" = "false"
    "image-reflector-controller.enabled"  = "false"
    # Workload identity of the controllers (dev: kustomize-controller decrypts SOPS with Key Vault).
    "workloadIdentity.enable"        = var.flux.workload_identity_client_id == null ? "false" : "true"
    "workloadIdentity.azureClientId" = var.flux.workload_identity_client_id == null ? "" : var.flux.workload_identity_client_id
  }
}

resource "azurerm_kubernetes_flux_configuration" "platform" {
  name       = "platform"
  cluster_id = azurerm_kubernetes_cluster.this.id
  namespace  = "flux-system"
  scope      = "cluster"

  git_repository {
    url                      = var.flux.repository_url
    reference_type           = "branch"
    reference_value          = var.flux.branch
    sync_interval_in_seconds = var.flux.sync_interval_seconds
    # A Secret in flux-system, never a credential in Terraform state.
    local_auth_reference = var.flux.auth_secret_name
  }

  # gitops/clusters/<env> holds only Flux entry points; they order controllers, configs and apps.
  kustomizations {
    name                       = "cluster"
    path                       = var.flux.path
    sync_interval_in_seconds   = var.flux.sync_interval_seconds
    garbage_collection_enabled = true

    # The entry points pass these on to their layers (gitops/clusters/<env>/*.yaml postBuild.substitute):
    # the client ID of every workload identity, as ${<flux_variable>}, and the platform facts below.
    # tests/gitops checks that every
    # ${VAR} under gitops/clusters is provided here.
    post_build {
      substitute = merge(local.flux_substitute, local.flux_platform_substitute)
    }
  }

  # The federated credentials exist before Flux starts the controllers that use them.
  depends_on = [
    azurerm_kubernetes_cluster_extension.flux,
    azurerm_federated_identity_credential.workload,
  ]
}

# Facts only Terraform knows that gitops needs, substituted next to the workload identity client IDs. The keys
# are the contract with gitops/clusters (tests/gitops/test_platform_facts.py reads them from here).
locals {
  flux_platform_variables = {
    # vLLM's static blobfuse2 volume (container `models`) authenticates as the kubelet identity
    # (AzureStorageIdentityClientID), which has Storage Blob Data Reader on that container only.
    KUBELET_CLIENT_ID = azurerm_kubernetes_cluster.this.kubelet_identity[0].client_id
    # The automation app's managed identity, the subject of the Kubernetes RBAC that lets its gpu_scaling
    # function cordon GPU nodes and size the serving Deployment (gitops/apps/base/vllm/gpu-scaling-rbac.yaml).
    AUTOMATION_PRINCIPAL_ID = var.automation_principal_id
    # Entra ID groups bound by the gitops RBAC (gitops/apps/base/rbac/bindings.yaml), from platform.yaml.
    DEVELOPERS_GROUP_ID = var.access_group_object_ids.developers
    OPERATORS_GROUP_ID  = var.access_group_object_ids.operators
    BOTS_GROUP_ID       = var.access_group_object_ids.bots
  }
  flux_platform_substitute = local.flux_platform_variables
}
