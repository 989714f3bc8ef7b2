# SOPS for dev only (README "Delivery", SOPS; platform.yaml key_vault.sops_key is set in dev alone, enforced by
# a validation): the Key Vault key .sops.yaml encrypts with, and the identity Flux's kustomize-controller decrypts
# with (workload identity on the Flux extension, federated with the cluster's issuer), allowed to use that one key.
# .sops.yaml pins the key's versioned id (`terraform output` key id form, https://<vault>/keys/<name>/<version>);
# tests/delivery/test_sops.py ties the three together. stg and prd: none of this, external-secrets only.
locals {
  sops_enabled = local.p.key_vault.sops_key != null
}

resource "azurerm_key_vault_key" "sops" {
  count = local.sops_enabled ? 1 : 0

  #checkov:skip=CKV_AZURE_112:The vault is the standard SKU (software keys); SOPS files hold dev's example secrets only.
  #checkov:skip=CKV_AZURE_40:The rotation policy gives every version its expiry (expire_after); a fixed expiration_date would fight the rotation.
  name         = local.p.key_vault.sops_key
  key_vault_id = module.keyvault.id
  key_type     = "RSA"
  key_size     = 4096
  # SOPS wraps each file's data key with RSA-OAEP-256 and unwraps it to decrypt.
  key_opts = ["wrapKey", "unwrapKey"]
  # A new version yearly; older versions stay enabled, so files keep decrypting until `sops updatekeys`.
  rotation_policy {
    expire_after         = "P2Y"
    notify_before_expiry = "P30D"
    automatic {
      time_after_creation = "P1Y"
    }
  }
  tags = local.tags
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

  # The key itself, not the vault: decrypt with this key, nothing else.
  scope                = azurerm_key_vault_key.sops[0].resource_versionless_id
  role_definition_name = "Key Vault Crypto User"
  principal_id         = azurerm_user_assigned_identity.flux_sops[0].principal_id
  principal_type       = "ServicePrincipal"
  description          = "Flux kustomize-controller: decrypt dev's SOPS files"
}
