# The administrator password exists in two places only: the server and the Key Vault secret that
# external-secrets hands to MLflow. It is written through Azure Resource Manager
# (Microsoft.KeyVault/vaults/secrets), so the Terraform runner needs no data-plane access through the
# vault's firewall. Never an output; in the state, which is private and encrypted (infra/README.md).
resource "random_password" "administrator" {
  length           = 40
  special          = true
  override_special = "-_.~"
  min_lower        = 4
  min_upper        = 4
  min_numeric      = 4
  min_special      = 2

  # A new password only when the server is replaced.
  keepers = {
    server = var.name
  }
}

resource "azapi_resource" "password_secret" {
  type      = "Microsoft.KeyVault/vaults/secrets@2023-07-01"
  name      = var.password_secret_name
  parent_id = var.key_vault_id

  body = {
    properties = {
      contentType = "text/plain; postgresql administrator password of ${var.name}"
      attributes  = { enabled = true }
    }
  }
  # Write-only (never stored in state by azapi); sent again only when its version changes, i.e. when the
  # password does (a sha256 of 240 random bits reveals nothing).
  sensitive_body = {
    properties = { value = random_password.administrator.result }
  }
  sensitive_body_version = {
    "properties.value" = sha256(random_password.administrator.result)
  }
  response_export_values = []
}
