output "resource_group_name" {
  description = "Resource group of the platform."
  value       = azurerm_resource_group.platform.name
}

output "cluster" {
  description = "AKS cluster: id, name, OIDC issuer, per-GPU-pool scheduling (taint and labels) and the client IDs of the workload identities (as Flux substitutes them)."
  value = {
    id                  = module.aks.id
    name                = module.aks.name
    oidc_issuer_url     = module.aks.oidc_issuer_url
    gpu_pool_scheduling = module.aks.gpu_pool_scheduling
    kubelet_client_id   = module.aks.kubelet_identity_client_id
    workload_identity_client_ids = {
      for name, wi in local.workload_identities : wi.flux_variable => azurerm_user_assigned_identity.workload[name].client_id
    }
  }
}

output "registry_login_server" {
  description = "Login server of the platform registry."
  value       = module.acr.login_server
}

output "key_vault_uri" {
  description = "Data plane URI of the platform Key Vault."
  value       = module.keyvault.vault_uri
}

output "storage_account_name" {
  description = "Storage account of queues, tables and leases (PLATFORM_STORAGE_ACCOUNT)."
  value       = module.storage.name
}

output "automation" {
  description = "The automation app: name, host name (webhook target) and identity client ID."
  value = {
    name             = module.automation.name
    default_hostname = module.automation.default_hostname
    client_id        = module.automation.identity.client_id
  }
}

output "egress_ip" {
  description = "Public egress IP of the platform (hub firewall)."
  value       = module.network.firewall_public_ip
}

output "mlflow_database" {
  description = "MLflow's PostgreSQL server: host, database, login and the Key Vault secret name of its password (never the password)."
  value = {
    host            = module.postgresql.fqdn
    database        = module.postgresql.database_name
    login           = module.postgresql.administrator_login
    password_secret = module.postgresql.password_secret_name
  }
}

output "ci_variables" {
  description = "What each CI environment sets as variables (identifiers, not secrets) so its jobs sign in with OIDC: by CI system, then environment name as the pipelines name them (plan/<env> and <env> in GitLab, <env>-plan and <env> in GitHub)."
  value = {
    gitlab = {
      for name, ci in local.ci_identities : ci.gitlab_environment => {
        AZURE_CLIENT_ID       = azurerm_user_assigned_identity.ci[name].client_id
        AZURE_TENANT_ID       = local.p.tenant_id
        AZURE_SUBSCRIPTION_ID = local.p.subscription_id
      }
    }
    github = local.p.ci.github_repository == null ? {} : {
      for name, ci in local.ci_identities : ci.github_environment => {
        AZURE_CLIENT_ID       = azurerm_user_assigned_identity.ci[name].client_id
        AZURE_TENANT_ID       = local.p.tenant_id
        AZURE_SUBSCRIPTION_ID = local.p.subscription_id
      }
    }
  }
}

output "sops_key_id" {
  description = "dev only (null elsewhere): versioned id of the SOPS key, the azure_keyvault value of .sops.yaml."
  value       = local.sops_enabled ? azapi_resource.sops_key[0].output.properties.keyUriWithVersion : null
}
