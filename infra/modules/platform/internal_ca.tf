# The cluster's internal CA certificate (cert-manager ClusterIssuer platform-internal-ca, which signs the internal
# Gateway's certificate) reaches the automation app, which runs outside the cluster and calls OpenCost through that
# Gateway. external-secrets pushes the CA's certificate, never its key, into this Key Vault secret
# (gitops/infrastructure/configs/base/certificates/internal-ca-push.yaml) and the app reads it as TLS_EXTRA_CA_PEM
# through a Key Vault reference (README "Cost"). The name is cross-checked against the PushSecret by tests/infra.
locals {
  #checkov:skip=CKV_SECRET_6:A Key Vault secret name, not a secret value; the value is a public CA certificate.
  internal_ca_secret = "platform-internal-ca-crt"
}

# Terraform creates the secret, so that a role can be scoped to it and the app's Key Vault reference resolves from
# the first apply; external-secrets owns the value afterwards. Written through Resource Manager (no data-plane
# access for the runner, as for the MLflow password). The placeholder is what shared/tls.py PLACEHOLDER reads as "no
# extra CA yet". The tag is the one external-secrets' Azure provider requires before it overwrites a secret it did
# not create (providers/v1/azure/keyvault: "not managed by external-secrets"); its pushes keep it.
resource "azapi_resource" "internal_ca_secret" {
  type      = "Microsoft.KeyVault/vaults/secrets@2023-07-01"
  name      = local.internal_ca_secret
  parent_id = module.keyvault.id
  tags      = { managed-by = "external-secrets" }

  body = {
    properties = {
      contentType = "application/x-pem-file"
      attributes  = { enabled = true }
      value       = "not-yet-pushed"
    }
  }
  response_export_values = []

  lifecycle {
    # Each push is a new version with external-secrets' value and tags: never write the placeholder back.
    ignore_changes = [body, tags]
  }
}

# external-secrets may write this one secret and nothing else ("Key Vault Secrets User" on the vault for its reads
# stays in workload_identity.tf): the data actions of Secrets Officer, scoped to the secret.
resource "azurerm_role_assignment" "internal_ca_push" {
  scope                = azapi_resource.internal_ca_secret.id
  role_definition_name = "Key Vault Secrets Officer"
  principal_id         = azurerm_user_assigned_identity.workload["external-secrets"].principal_id
  principal_type       = "ServicePrincipal"
  description          = "external-secrets PushSecret platform-internal-ca-crt: the internal CA certificate only"
}
