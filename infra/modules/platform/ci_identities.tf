# The identities the pipelines sign in to Azure with (README "Delivery", "CI identities"): per environment one
# read-only `plan` identity and one `deploy` identity, each trusting exactly the CI jobs that use it through
# federated credentials (OIDC; no client secret anywhere). The very first apply of an environment runs with a
# human's login, because these identities do not exist before it; every later apply runs as `deploy`.
#
# Which job gets which identity is the CI variable AZURE_CLIENT_ID of the job's environment (output
# `ci_variables`, set once per environment in GitLab/GitHub: identifiers, not secrets):
#   GitLab  environment plan/<env> -> plan,  <env> -> deploy   (.gitlab-ci.yml, ci/gitlab/azure-oidc.yml)
#   GitHub  environment <env>-plan -> plan,  <env> -> deploy   (.github/workflows/ci.yml, terraform.yml)
# tests/infra/test_ci_identities.py ties these subjects to the pipeline files.
locals {
  ci_subscription_scope = "/subscriptions/${local.p.subscription_id}"
  # The environment's Terraform state (infra/bootstrap; platform.yaml `state`, which backend.tf matches).
  ci_state_container_scope = join("/", [
    local.ci_subscription_scope, "resourceGroups", local.p.state.resource_group,
    "providers/Microsoft.Storage/storageAccounts", local.p.state.storage_account_name,
    "blobServices/default/containers", local.p.state.container,
  ])

  ci_identities = {
    plan = {
      gitlab_environment = "plan/${local.env}"
      github_environment = "${local.env}-plan"
    }
    deploy = {
      gitlab_environment = local.env
      github_environment = local.env
    }
  }

  # GitLab's `sub` claim is project_path:<project>:ref_type:<branch|tag>:ref:<name> (the project setting
  # ci_id_token_sub_claim_components can only drop or reorder those parts): it never names the environment, and
  # Azure matches subjects exactly. So both identities trust the protected default branch; GitLab's protected
  # environments (stg, prd: maintainers deploy, approvals) decide who runs the jobs holding the deploy client ID.
  # GitHub's `sub` names the environment whenever the job has one (repo:<owner>/<repo>:environment:<name>), so
  # there each identity trusts only its own environment, pull-request plans included (they run in <env>-plan).
  ci_gitlab_issuer  = trimsuffix(local.p.gitlab.url, "/")
  ci_gitlab_subject = "project_path:${local.p.gitlab.project}:ref_type:branch:ref:${local.p.gitlab.default_branch}"
  ci_gitlab_federation = {
    for name, ci in local.ci_identities : "${name}-gitlab-${local.p.gitlab.default_branch}" => {
      identity = name
      issuer   = local.ci_gitlab_issuer
      subject  = local.ci_gitlab_subject
    }
  }
  ci_github_federation = local.p.ci.github_repository == null ? {} : {
    for name, ci in local.ci_identities : "${name}-github-environment" => {
      identity = name
      issuer   = "https://token.actions.githubusercontent.com"
      subject  = "repo:${local.p.ci.github_repository}:environment:${ci.github_environment}"
    }
  }
  ci_federation = merge(local.ci_gitlab_federation, local.ci_github_federation)

  # Owner, User Access Administrator and Role Based Access Control Administrator: the deploy identity assigns
  # every other role this configuration needs, never these (it cannot raise itself or anyone to admin).
  ci_privileged_role_ids = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635, 18d7d88d-d35e-4fb5-a5c3-7773c20a72d9, f58310d9-a9f6-439a-9e8d-f62e7b41a168"

  ci_roles = {
    # plan: read everything terraform refreshes, nothing more (tested: no write role). Terraform touches the vault
    # only through Resource Manager (MLflow's password, the SOPS key: azapi), so no vault data-plane role at all.
    plan-reader = {
      identity    = "plan"
      role        = "Reader"
      scope       = local.ci_subscription_scope
      description = "CI plan: read the environment's resources (terraform refresh)"
    }
    plan-state = {
      identity    = "plan"
      role        = "Storage Blob Data Reader"
      scope       = local.ci_state_container_scope
      description = "CI plan: read the state (plans run with -lock=false: a lock is a write)"
    }
    plan-findings = {
      identity    = "plan"
      role        = "Storage Table Data Reader"
      scope       = module.storage.id
      description = "CI promotion gate: read the open drift and compliance findings"
    }
    plan-registry = {
      identity    = "plan"
      role        = "AcrPull"
      scope       = module.acr.id
      description = "CI image scan: Trivy pulls the environment's images"
    }
    # deploy: apply this environment (its own subscription) and deploy the Functions package.
    deploy-contributor = {
      identity    = "deploy"
      role        = "Contributor"
      scope       = local.ci_subscription_scope
      description = "CI apply: create and change the environment's resources; deploy the Functions package"
    }
    deploy-state = {
      identity    = "deploy"
      role        = "Storage Blob Data Contributor"
      scope       = local.ci_state_container_scope
      description = "CI apply: write the state and hold its lease (lock)"
    }
    deploy-storage-blob = {
      identity    = "deploy"
      role        = "Storage Blob Data Contributor"
      scope       = module.storage.id
      description = "CI apply: containers through Entra ID (shared keys are disabled)"
    }
    deploy-storage-queue = {
      identity    = "deploy"
      role        = "Storage Queue Data Contributor"
      scope       = module.storage.id
      description = "CI apply: queues through Entra ID (shared keys are disabled)"
    }
    deploy-storage-table = {
      identity    = "deploy"
      role        = "Storage Table Data Contributor"
      scope       = module.storage.id
      description = "CI apply: tables through Entra ID (shared keys are disabled)"
    }
  }
}

resource "azurerm_user_assigned_identity" "ci" {
  for_each = local.ci_identities

  name                = "id-ci-${each.key}-${local.env}"
  location            = local.p.location
  resource_group_name = azurerm_resource_group.platform.name
  tags                = local.tags
}

resource "azurerm_federated_identity_credential" "ci" {
  for_each = local.ci_federation

  name                = each.key
  resource_group_name = azurerm_resource_group.platform.name
  parent_id           = azurerm_user_assigned_identity.ci[each.value.identity].id
  audience            = ["api://AzureADTokenExchange"]
  issuer              = each.value.issuer
  subject             = each.value.subject
}

resource "azurerm_role_assignment" "ci" {
  for_each = local.ci_roles

  scope                = each.value.scope
  role_definition_name = each.value.role
  principal_id         = azurerm_user_assigned_identity.ci[each.value.identity].principal_id
  principal_type       = "ServicePrincipal"
  description          = each.value.description
}

# Role assignments are part of the environment (workload identities, access groups, the registry pull): the deploy
# identity may create and delete them, except for the privileged administrator roles.
resource "azurerm_role_assignment" "ci_deploy_assigns_roles" {
  scope                = local.ci_subscription_scope
  role_definition_name = "Role Based Access Control Administrator"
  principal_id         = azurerm_user_assigned_identity.ci["deploy"].principal_id
  principal_type       = "ServicePrincipal"
  description          = "CI apply: role assignments of the environment, never Owner, User Access Administrator or RBAC Administrator"
  condition_version    = "2.0"
  condition            = <<-EOT
    (
     (
      !(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})
     )
     OR
     (
      @Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals {${local.ci_privileged_role_ids}}
     )
    )
    AND
    (
     (
      !(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})
     )
     OR
     (
      @Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAllValues:GuidNotEquals {${local.ci_privileged_role_ids}}
     )
    )
  EOT
}
