# SOPS for dev only (README "Delivery", SOPS; platform.yaml key_vault.sops_key is set in dev alone, enforced by
# a validation): the Key Vault key .sops.yaml encrypts with, and the identity Flux's kustomize-controller decrypts
# with (workload identity on the Flux extension, federated with the cluster's issuer), allowed to use that one key.
# .sops.yaml pins the key's versioned id (output sops_key_id, https://<vault>.vault.azure.net/keys/<name>/<version>);
# tests/delivery/test_sops.py ties the three together. stg and prd: none of this, external-secrets only.
locals {
  sops_enabled = local.p.key_vault.sops_key != null
}

# Through Resource Manager, like MLflow's password secret (modules/postgresql): the vault is private-endpoint only,
# and a control-plane PUT needs no network path to it (the CI runners have none). The PUT creates the key's first
# version and never a new one; later versions come from the rotation policy.
resource "azapi_resource" "sops_key" {
  count = local.sops_enabled ? 1 : 0

  type      = "Microsoft.KeyVault/vaults/keys@2023-07-01"
  name      = local.p.key_vault.sops_key
  parent_id = module.keyvault.id
  tags      = local.tags

  body = {
    properties = {
      kty     = "RSA"
      keySize = 4096
      # SOPS wraps each file's data key with RSA-OAEP-256 and unwraps it to decrypt.
      keyOps     = ["wrapKey", "unwrapKey"]
      attributes = { enabled = true }
      # A new version yearly, each expiring after two years: older versions keep decrypting until `sops updatekeys`.
      rotationPolicy = {
        attributes = { expiryTime = "P2Y" }
        lifetimeActions = [
          { action = { type = "rotate" }, trigger = { timeAfterCreate = "P1Y" } },
          { action = { type = "notify" }, trigger = { timeBeforeExpiry = "P30D" } },
        ]
      }
    }
  }
  response_export_values = ["properties.keyUriWithVersion"]
}

resource "azurerm_user_assigned_identity" "flux_sops" {
  count = local.sops_enabled ? 1 : 0

  name                = "id-${local.p.cluster.name}-flux-sops"
  location            = local.p.location
  resource_group_name = azurerm_resource_group.platform.name
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "flux_sops" {
  count = local.sops_enabled ? 1 : 0

  name                = "${local.p.cluster.name}-flux-system-kustomize-controller"
  resource_group_name = azurerm_resource_group.platform.name
  parent_id           = azurerm_user_assigned_identity.flux_sops[0].id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = module.aks.oidc_issuer_url
  subject             = "system:serviceaccount:flux-system:kustomize-controller"
}

resource "azurerm_role_assignment" "flux_sops_key" {
  count = local.sops_enabled ? 1 : 0

  # The key itself (its versionless resource ID), not the vault: decrypt with this key, nothing else.
  scope                = azapi_resource.sops_key[0].id
  role_definition_name = "Key Vault Crypto User"
  principal_id         = azurerm_user_assigned_identity.flux_sops[0].principal_id
  principal_type       = "ServicePrincipal"
  description          = "Flux kustomize-controller: decrypt dev's SOPS files"
}
