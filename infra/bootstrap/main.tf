# Creates the remote-state account of one environment's subscription. Applied once per
# subscription, with local state kept in a workspace named after the environment:
#   make infra-bootstrap ENV=dev-uaenorth
# Everything comes from the environment's platform.yaml (`state` section).
locals {
  platform = yamldecode(file("${path.module}/../envs/${var.environment}/platform.yaml"))
}

module "state" {
  source = "../modules/state-bootstrap"

  resource_group_name             = local.platform.state.resource_group
  location                        = local.platform.location
  storage_account_name            = local.platform.state.storage_account_name
  container_name                  = local.platform.state.container
  allowed_ip_ranges               = var.allowed_ip_ranges
  state_contributor_principal_ids = var.state_contributor_principal_ids
  tags                            = merge({ environment = var.environment, managed-by = "terraform" }, try(local.platform.tags, {}))
}

output "backend" {
  description = "Values for infra/envs/<env>/backend.tf."
  value = {
    resource_group_name  = module.state.resource_group_name
    storage_account_name = module.state.storage_account_name
    container_name       = module.state.container_name
    key                  = local.platform.state.key
  }
}
