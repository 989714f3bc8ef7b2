# The one root module of every environment. infra/envs/<env>/main.tf and providers.tf are symlinks to
# these files, so an environment is its platform.yaml and backend.tf and nothing else: Terraform runs
# in the environment folder, where path.module and the relative module source resolve.
locals {
  platform = yamldecode(file("${path.module}/platform.yaml"))
}

module "platform" {
  source = "../../modules/platform"

  platform = local.platform
}

output "platform" {
  description = "What other tools need from this environment: cluster, registry, vault, storage, app, egress IP."
  value = {
    resource_group        = module.platform.resource_group_name
    cluster               = module.platform.cluster
    registry_login_server = module.platform.registry_login_server
    key_vault_uri         = module.platform.key_vault_uri
    storage_account_name  = module.platform.storage_account_name
    automation            = module.platform.automation
    egress_ip             = module.platform.egress_ip
    sops_key_id           = module.platform.sops_key_id # dev only: .sops.yaml's azure_keyvault
  }
}

output "ci_variables" {
  description = "CI/CD variables per CI environment (AZURE_CLIENT_ID/TENANT_ID/SUBSCRIPTION_ID of the plan and deploy identities): `terraform output -json ci_variables` after the first apply, README \"Delivery\"."
  value       = module.platform.ci_variables
}
