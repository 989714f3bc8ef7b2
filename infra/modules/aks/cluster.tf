resource "azurerm_kubernetes_cluster" "this" {
  #checkov:skip=CKV_AZURE_115:Private API server is data: cluster.private_api_server in platform.yaml, true in prd (tested in tests/infra); dev/stg use a public endpoint limited to authorized IP ranges.
  #checkov:skip=CKV_AZURE_6:Authorized IP ranges are set whenever the API server is public (dynamic block below, validated by variable rules); a private API server (prd) takes none.
  #checkov:skip=CKV_AZURE_117:Managed disks are encrypted at rest with platform-managed keys and host encryption is on; a customer-managed disk encryption set adds a key lifecycle nobody has asked for yet.
  #checkov:skip=CKV_AZURE_172:The Secrets Store CSI add-on is deliberately absent (issue 8 item 9: nothing used it, its identity could read the whole vault); external-secrets syncs secrets with its own refresh interval, so there is no CSI rotation to enable.
  #checkov:skip=CKV_AZURE_170:The tier is data (cluster.sku_tier): Standard in stg/prd, Free in dev where no SLA is needed.
  name                = var.name
  location            = var.location
  resource_group_name = var.resource_group_name
  # A private cluster with a custom private DNS zone needs the private-cluster prefix.
  dns_prefix                 = var.private_cluster_enabled ? null : var.name
  dns_prefix_private_cluster = var.private_cluster_enabled ? var.name : null
  kubernetes_version         = var.kubernetes_version
  sku_tier                   = var.sku_tier
  automatic_upgrade_channel  = var.upgrade_channel
  node_os_upgrade_channel    = "NodeImage"
  tags                       = var.tags

  private_cluster_enabled = var.private_cluster_enabled
  private_dns_zone_id     = var.private_cluster_enabled ? coalesce(var.private_dns_zone_id, "System") : null

  dynamic "api_server_access_profile" {
    for_each = var.private_cluster_enabled ? [] : [1]
    content {
      authorized_ip_ranges = local.authorized_ip_ranges
    }
  }

  # Entra ID only: no static kubeconfig credentials, authorisation through Azure RBAC.
  local_account_disabled            = true
  role_based_access_control_enabled = true
  azure_active_directory_role_based_access_control {
    tenant_id              = var.tenant_id
    azure_rbac_enabled     = true
    admin_group_object_ids = var.admin_group_object_ids
  }

  oidc_issuer_enabled          = true
  workload_identity_enabled    = true
  azure_policy_enabled         = true
  image_cleaner_enabled        = true
  image_cleaner_interval_hours = 48

  identity {
    type         = "UserAssigned"
    identity_ids = [azurerm_user_assigned_identity.control_plane.id]
  }

  default_node_pool {
    name                        = "system"
    vm_size                     = var.system_pool.vm_size
    vnet_subnet_id              = var.subnet_ids.system_nodes
    zones                       = var.zones
    auto_scaling_enabled        = true
    min_count                   = var.system_pool.min_count
    max_count                   = var.system_pool.max_count
    max_pods                    = 110
    os_sku                      = "AzureLinux"
    os_disk_type                = "Ephemeral"
    os_disk_size_gb             = var.system_pool.os_disk_size_gb
    host_encryption_enabled     = true
    orchestrator_version        = var.kubernetes_version
    temporary_name_for_rotation = "systemtmp"
    # Taints the pool CriticalAddonsOnly=true:NoSchedule: application pods go to user pools.
    only_critical_addons_enabled = true
    tags                         = var.tags

    upgrade_settings {
      max_surge                = "33%"
      drain_timeout_in_minutes = 30
    }
  }

  network_profile {
    network_plugin      = "azure"
    network_plugin_mode = "overlay"
    network_data_plane  = "cilium"
    network_policy      = "cilium"
    pod_cidr            = var.network.pod_cidr
    service_cidr        = var.network.service_cidr
    dns_service_ip      = var.network.dns_service_ip
    # All egress leaves through the hub firewall; AKS creates no outbound public IP.
    outbound_type     = "userDefinedRouting"
    load_balancer_sku = "standard"
  }

  auto_scaler_profile {
    expander                         = var.autoscaler_profile.expander
    scan_interval                    = var.autoscaler_profile.scan_interval
    scale_down_unneeded              = var.autoscaler_profile.scale_down_unneeded
    scale_down_delay_after_add       = var.autoscaler_profile.scale_down_delay_after_add
    scale_down_utilization_threshold = var.autoscaler_profile.scale_down_utilization_threshold
    max_node_provisioning_time       = var.autoscaler_profile.max_node_provisioning_time
    max_graceful_termination_sec     = var.autoscaler_profile.max_graceful_termination_sec
    skip_nodes_with_local_storage    = var.autoscaler_profile.skip_nodes_with_local_storage
    skip_nodes_with_system_pods      = true
    balance_similar_node_groups      = false
  }

  maintenance_window_auto_upgrade {
    frequency   = "Weekly"
    interval    = 1
    day_of_week = var.maintenance_window.day_of_week
    start_time  = var.maintenance_window.start_time
    utc_offset  = var.maintenance_window.utc_offset
    duration    = var.maintenance_window.duration_hours
  }

  maintenance_window_node_os {
    frequency   = "Weekly"
    interval    = 1
    day_of_week = var.maintenance_window.day_of_week
    start_time  = var.maintenance_window.start_time
    utc_offset  = var.maintenance_window.utc_offset
    duration    = var.maintenance_window.duration_hours
  }

  # Container Insights through the managed identity (no workspace key on the nodes).
  oms_agent {
    log_analytics_workspace_id      = var.log_analytics_workspace_id
    msi_auth_for_monitoring_enabled = true
  }

  # Managed Prometheus; its data collection rule is in monitoring.tf.
  monitor_metrics {}

  # CSI drivers: Azure Disk (managed-csi-premium: Prometheus, Loki, Tempo, Qdrant, MLflow) and Blob
  # (azureblob-fuse-premium: the vLLM model weights, blobfuse2). Blob is off by default in AKS.
  storage_profile {
    disk_driver_enabled         = true
    file_driver_enabled         = true
    snapshot_controller_enabled = true
    blob_driver_enabled         = true
  }

  # No key_vault_secrets_provider (Secrets Store CSI add-on): nothing mounts secrets through it, and its
  # identity would be one more principal able to read the vault from any namespace. external-secrets reads
  # Key Vault with its own workload identity, scoped to its service account (modules/platform).

  # Defender for Containers sensor (runtime threat detection), reporting to the platform workspace; the
  # plan itself is enabled per subscription (modules/platform, azurerm_security_center_subscription_pricing).
  microsoft_defender {
    log_analytics_workspace_id = var.log_analytics_workspace_id
  }

  lifecycle {
    # The autoscaler owns the node count.
    ignore_changes = [default_node_pool[0].node_count]
  }

  depends_on = [
    azurerm_role_assignment.control_plane_subnet,
    azurerm_role_assignment.control_plane_ingress_subnet,
    azurerm_role_assignment.control_plane_route_table,
    azurerm_role_assignment.control_plane_private_dns,
  ]
}
