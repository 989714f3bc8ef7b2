locals {
  # Where the GPU scaling function only decides and audits (dry run) unless gpu_scaling_dry_run says
  # otherwise. prd runs in shadow first: its decisions are audited against real demand while KEDA and the
  # cluster autoscaler keep sizing prd (gitops/apps/prd-uaenorth keeps the ScaledObject active; the
  # overlays and this map are cross-checked by tests/gitops/test_gpu_scaling_ownership.py). dev and stg
  # let the function act, so the policy is proven there before prd hands it the pools.
  gpu_scaling_dry_run_by_tier = {
    dev = false
    stg = false
    prd = true
  }
  gpu_scaling_dry_run = coalesce(var.gpu_scaling_dry_run, local.gpu_scaling_dry_run_by_tier[split("-", var.environment)[0]])

  app_settings = merge(
    var.app_settings,
    {
      PLATFORM_ENV             = var.environment
      PLATFORM_STORAGE_ACCOUNT = var.storage.name
      # Identity-based host storage: no connection string anywhere.
      AzureWebJobsStorage__accountName = var.storage.name
      AzureWebJobsStorage__credential  = "managedidentity"
      AzureWebJobsStorage__clientId    = azurerm_user_assigned_identity.app.client_id
      AZURE_CLIENT_ID                  = azurerm_user_assigned_identity.app.client_id
      # Application Insights accepts telemetry only with an Entra ID token.
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING = "ClientId=${azurerm_user_assigned_identity.app.client_id};Authorization=AAD"
      # GPU scaling (functions/gpu_scaling.py): the timer's schedule is the binding expression
      # %GPU_SCALING_SCHEDULE%; an app without the setting has the function in error (never runs).
      GPU_SCALING_SCHEDULE              = var.gpu_scaling_schedule
      GPU_SCALING_ENABLED               = tostring(var.gpu_scaling_enabled)
      GPU_SCALING_DRY_RUN               = tostring(local.gpu_scaling_dry_run)
      GPU_SCALING_DRAIN_TIMEOUT_SECONDS = tostring(var.gpu_scaling_drain_timeout_seconds)
      # Compliance scans (functions/compliance.py): the timer's binding expression %COMPLIANCE_SCHEDULE%.
      COMPLIANCE_SCHEDULE = var.compliance_schedule
    },
    {
      for setting, secret in merge(
        var.key_vault_secret_settings,
        # Not a secret (a CA certificate is public), but it changes when the CA renews: read from Key Vault too.
        var.extra_ca_secret_name == null ? {} : { TLS_EXTRA_CA_PEM = var.extra_ca_secret_name },
      ) :
      setting => "@Microsoft.KeyVault(SecretUri=https://${var.key_vault.name}.vault.azure.net/secrets/${secret}/)"
    },
  )
}

resource "azurerm_service_plan" "this" {
  #checkov:skip=CKV_AZURE_225:Flex Consumption (FC1) is serverless: Azure places and replaces instances; plan-level zone balancing does not apply to FC1.
  #checkov:skip=CKV_AZURE_212:Flex Consumption (FC1) has no fixed worker count to raise; instances scale with load up to maximum_instance_count.
  name                = "asp-${var.name}"
  location            = var.location
  resource_group_name = var.resource_group_name
  os_type             = "Linux"
  sku_name            = "FC1"
  tags                = var.tags
}

resource "azurerm_function_app_flex_consumption" "this" {
  name                = var.name
  location            = var.location
  resource_group_name = var.resource_group_name
  service_plan_id     = azurerm_service_plan.this.id

  runtime_name           = "python"
  runtime_version        = "3.11"
  maximum_instance_count = var.maximum_instance_count
  instance_memory_in_mb  = var.instance_memory_mb

  storage_container_type            = "blobContainer"
  storage_container_endpoint        = "${var.storage.blob_endpoint}${var.storage.deployment_container}"
  storage_authentication_type       = "UserAssignedIdentity"
  storage_user_assigned_identity_id = azurerm_user_assigned_identity.app.id

  virtual_network_subnet_id = var.subnet_id
  https_only                = true
  # GitLab and Slack webhooks and Event Grid deliveries arrive from the internet; every request is
  # authenticated (webhook token, request signature, function key).
  public_network_access_enabled = true
  client_certificate_enabled    = false
  # Deployments authenticate with Entra ID; the publishing profile's basic credentials stay off.
  webdeploy_publish_basic_authentication_enabled = false

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.app.id]
  }

  app_settings = local.app_settings
  tags         = var.tags

  # Easy Auth validates a caller's Entra ID token when one is sent and injects X-MS-CLIENT-PRINCIPAL-*; requests
  # without a token pass through (webhooks and chat sign their bodies), so nothing else changes.
  dynamic "auth_settings_v2" {
    for_each = var.caller_authentication == null ? [] : [var.caller_authentication]
    content {
      auth_enabled           = true
      require_authentication = false
      unauthenticated_action = "AllowAnonymous"
      default_provider       = "azureactivedirectory"
      require_https          = true

      active_directory_v2 {
        client_id            = auth_settings_v2.value.client_id
        tenant_auth_endpoint = "https://login.microsoftonline.com/${auth_settings_v2.value.tenant_id}/v2.0"
        allowed_audiences    = auth_settings_v2.value.allowed_audiences
      }

      login {
        token_store_enabled = false
      }
    }
  }

  site_config {
    minimum_tls_version                    = "1.2"
    scm_minimum_tls_version                = "1.2"
    remote_debugging_enabled               = false
    http2_enabled                          = true
    application_insights_connection_string = var.application_insights.connection_string
  }

  depends_on = [
    azurerm_role_assignment.host_storage,
    azurerm_role_assignment.secrets,
  ]
}

# Key Vault references must be resolved with the user-assigned identity, which holds the
# Secrets User role. azurerm's Flex Consumption resource cannot set keyVaultReferenceIdentity
# yet (hashicorp/terraform-provider-azurerm#28928); replace this with the argument once it can.
resource "azapi_update_resource" "key_vault_reference_identity" {
  type        = "Microsoft.Web/sites@2024-04-01"
  resource_id = azurerm_function_app_flex_consumption.this.id

  body = {
    properties = {
      keyVaultReferenceIdentity = azurerm_user_assigned_identity.app.id
    }
  }
}
