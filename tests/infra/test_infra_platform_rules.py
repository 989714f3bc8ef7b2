"""What the platform promises, read from the modules: GPU isolation, identity, egress, secrets."""

import re

import pytest
from infra_helpers import (
    ENVIRONMENTS,
    INFRA,
    MODULES_DIR,
    all_tf_files,
    blocks,
    instances,
    load_hcl,
    module_locals,
    platform_file,
    resources,
)

AKS = MODULES_DIR / "aks"
GPU_TAINT_KEYS = {"nvidia": "nvidia.com/gpu", "amd": "amd.com/gpu"}


def _cluster() -> dict:
    return resources(AKS)[("azurerm_kubernetes_cluster", "this")]


def _gpu_pool() -> dict:
    return resources(AKS)[("azurerm_kubernetes_cluster_node_pool", "gpu")]


@pytest.mark.parametrize(("vendor", "key"), sorted(GPU_TAINT_KEYS.items()))
def test_gpu_pools_are_tainted_with_their_vendor_resource(vendor, key):
    taint = module_locals(AKS)["gpu_taints"][vendor]
    assert re.fullmatch(rf"{re.escape(key)}=[a-z]+:NoSchedule", taint), taint
    assert _gpu_pool()["node_taints"] == ["${local.gpu_taints[each.value.vendor]}"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_gpu_pool_in_every_environment_has_a_taint(env):
    taints = module_locals(AKS)["gpu_taints"]
    for pool in platform_file(env)["gpu_pools"]:
        assert pool["vendor"] in taints, f"{pool['name']}: vendor {pool['vendor']} has no taint"
        assert pool["min_count"] <= pool["max_count"]
        assert pool["mig_profile"] is None or (
            pool["vendor"] == "nvidia"
            and pool["mig_profile"] in {"MIG1g", "MIG2g", "MIG3g", "MIG4g", "MIG7g"}
        )


def test_gpu_pools_carry_labels_leave_the_nvidia_driver_to_the_operator_and_take_mig_profiles():
    pool = _gpu_pool()
    assert pool["node_labels"] == "${local.gpu_labels[each.key]}"
    labels = module_locals(AKS)["gpu_labels"]
    for label in ("gpu-vendor", "gpu-pool", "mig-profile", "inference-queue"):
        assert label in labels
    assert pool["gpu_driver"] == '${each.value.vendor == "nvidia" ? "None" : null}'
    assert pool["gpu_instance"] == "${each.value.mig_profile}"
    assert pool["mode"] == "User"
    assert pool["auto_scaling_enabled"] is True
    assert pool["lifecycle"][0]["ignore_changes"] == ["node_count"]


def test_the_system_pool_is_tainted_for_critical_addons_only():
    system = _cluster()["default_node_pool"][0]
    assert system["only_critical_addons_enabled"] is True
    assert system["auto_scaling_enabled"] is True


def test_the_cluster_uses_cilium_overlay_with_egress_through_the_firewall():
    network = _cluster()["network_profile"][0]
    assert network["network_plugin"] == "azure"
    assert network["network_plugin_mode"] == "overlay"
    assert network["network_data_plane"] == "cilium"
    assert network["network_policy"] == "cilium"
    assert network["outbound_type"] == "userDefinedRouting"


def test_the_cluster_uses_entra_id_workload_identity_and_no_local_accounts():
    cluster = _cluster()
    assert cluster["local_account_disabled"] is True
    assert cluster["oidc_issuer_enabled"] is True
    assert cluster["workload_identity_enabled"] is True
    assert cluster["azure_active_directory_role_based_access_control"][0]["azure_rbac_enabled"] is True


def test_the_cluster_has_autoscaler_maintenance_monitoring_and_flux():
    cluster = _cluster()
    for block in (
        "auto_scaler_profile",
        "maintenance_window_auto_upgrade",
        "maintenance_window_node_os",
        "oms_agent",
        "monitor_metrics",
    ):
        assert block in cluster, block
    aks = resources(AKS)
    assert aks[("azurerm_kubernetes_cluster_extension", "flux")]["extension_type"] == "microsoft.flux"
    flux = aks[("azurerm_kubernetes_flux_configuration", "platform")]
    assert flux["kustomizations"][0]["path"] == "${var.flux.path}"
    assert ("azurerm_monitor_data_collection_rule", "prometheus") in aks


def test_the_cluster_enables_the_csi_drivers_gitops_storage_classes_need():
    # managed-csi-premium (disk) for Prometheus, Loki, Tempo, Qdrant, MLflow; azureblob-fuse-premium (blob)
    # for the vLLM model weights.
    storage = _cluster()["storage_profile"][0]
    assert storage["disk_driver_enabled"] is True
    assert storage["blob_driver_enabled"] is True


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_sets_a_dns_subdomain_node_label_prefix(env):
    prefix = platform_file(env)["cluster"]["node_label_prefix"]
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+", prefix), prefix
    assert not re.search(r"(^|\.)(kubernetes\.io|k8s\.io)$", prefix)
    variable = blocks(AKS, "variable")["node_label_prefix"]
    assert "default" not in variable, "the prefix comes from platform.yaml, with no second value in HCL"
    labels = module_locals(AKS)["gpu_labels"]
    assert "${var.node_label_prefix}/gpu-vendor" in labels


PLATFORM = MODULES_DIR / "platform"
WORKLOAD_ROLES = {
    "external-secrets": ("Key Vault Secrets User", "module.keyvault.id"),
    "keda": ("Storage Queue Data Reader", "module.storage.queue_ids["),
    "mlflow": ("Storage Blob Data Contributor", "module.storage.container_ids[local.mlflow_container]"),
    "rag": ("Storage Blob Data Reader", "module.storage.container_ids[local.datalake_container]"),
}


def test_workload_identities_are_federated_with_the_cluster_issuer_for_one_service_account_each():
    fic = resources(AKS)[("azurerm_federated_identity_credential", "workload")]
    assert fic["for_each"] == "${var.workload_identities}"
    assert fic["issuer"] == "${azurerm_kubernetes_cluster.this.oidc_issuer_url}"
    assert fic["audience"] == ["api://AzureADTokenExchange"]
    assert fic["subject"] == "system:serviceaccount:${each.value.namespace}:${each.value.service_account}"
    flux = resources(AKS)[("azurerm_kubernetes_flux_configuration", "platform")]
    assert "${azurerm_federated_identity_credential.workload}" in flux["depends_on"]
    identities = module_locals(PLATFORM)["workload_identities"]
    assert set(identities) - {"__comments__", "__inline_comments__"} == set(WORKLOAD_ROLES)
    assert ("azurerm_user_assigned_identity", "workload") in resources(PLATFORM)


def test_workload_identities_hold_one_narrow_data_plane_role_each():
    roles = module_locals(PLATFORM)["workload_roles"]
    for identity, (role, scope) in WORKLOAD_ROLES.items():
        assert re.search(
            rf'identity = "{identity}", role = "{re.escape(role)}", scope = {re.escape(scope)}', roles
        ), f"{identity} should hold {role} on {scope}"
    # Nothing else: exactly one role per identity (KEDA's repeated per inference queue).
    assert sorted(re.findall(r'role = "([^"]+)"', roles)) == sorted(r for r, _ in WORKLOAD_ROLES.values())
    assignment = resources(PLATFORM)[("azurerm_role_assignment", "workload")]
    assert assignment["for_each"] == "${local.workload_roles}"
    assert assignment["principal_id"] == "${azurerm_user_assigned_identity.workload[each.value.identity].principal_id}"


def test_the_api_server_is_private_or_limited_to_authorized_ranges():
    cluster = _cluster()
    assert cluster["private_cluster_enabled"] == "${var.private_cluster_enabled}"
    access = cluster["dynamic"][0]["api_server_access_profile"]
    assert access["for_each"] == "${var.private_cluster_enabled ? [] : [1]}"
    conditions = [
        v["condition"] for v in blocks(AKS, "variable")["api_server_authorized_ip_ranges"]["validation"]
    ]
    assert any("private_cluster_enabled" in c for c in conditions)


def test_the_spoke_routes_everything_through_the_firewall():
    network = resources(MODULES_DIR / "network")
    route = network[("azurerm_route_table", "spoke")]["route"][0]
    assert route["address_prefix"] == "0.0.0.0/0"
    assert route["next_hop_type"] == "VirtualAppliance"
    routed = module_locals(MODULES_DIR / "network")["routed_subnets"]
    for subnet in ("system_nodes", "gpu_nodes", "functions"):
        assert subnet in routed
    assert ("azurerm_virtual_network_peering", "hub_to_spoke") in network
    assert ("azurerm_virtual_network_peering", "spoke_to_hub") in network
    assert ("azurerm_subnet_network_security_group_association", "spoke") in network


def test_the_firewall_allows_aks_by_fqdn_tag_and_service_tags():
    group = resources(MODULES_DIR / "network")[("azurerm_firewall_policy_rule_collection_group", "egress")]
    app_rules = [r for c in group["application_rule_collection"] for r in c["rule"]]
    net_rules = [r for c in group["network_rule_collection"] for r in c["rule"]]
    assert any(r.get("destination_fqdn_tags") == ["AzureKubernetesService"] for r in app_rules)
    assert any("AzureCloud.${var.location}" in r.get("destination_addresses", []) for r in net_rules)
    names = {r["name"] for r in app_rules}
    assert {"registries", "cloudflare-api", "flux-extension"} <= names
    policy = resources(MODULES_DIR / "network")[("azurerm_firewall_policy", "hub")]
    assert policy["threat_intelligence_mode"] == "Deny"


def test_key_vault_uses_rbac_soft_delete_a_private_endpoint_and_a_closed_firewall():
    kv = resources(MODULES_DIR / "keyvault")
    vault = kv[("azurerm_key_vault", "this")]
    assert vault["enable_rbac_authorization"] is True
    assert vault["purge_protection_enabled"] == "${var.purge_protection_enabled}"
    assert vault["network_acls"][0]["default_action"] == "Deny"
    assert ("azurerm_private_endpoint", "vault") in kv
    assert blocks(MODULES_DIR / "keyvault", "variable")["public_network_access_enabled"]["default"] is False


def test_the_registry_is_premium_private_and_kubelet_pulls_from_it():
    acr = resources(MODULES_DIR / "acr")
    registry = acr[("azurerm_container_registry", "this")]
    assert registry["sku"] == "Premium"
    assert registry["admin_enabled"] is False
    assert registry["public_network_access_enabled"] is False
    assert acr[("azurerm_role_assignment", "pull")]["role_definition_name"] == "AcrPull"
    assert "kubelet" in blocks(MODULES_DIR / "platform", "module")["acr"]["pull_principal_ids"]


def test_storage_creates_the_queues_tables_and_lease_container_without_shared_keys():
    storage = resources(MODULES_DIR / "storage")
    assert storage[("azurerm_storage_account", "this")]["shared_access_key_enabled"] is False
    assert ("azurerm_storage_queue", "inference") in storage
    # Issue 8 item 16: azurerm 4.55's azurerm_storage_table has no storage_account_id (only a data-plane
    # storage_account_name); the tables are created through Resource Manager instead.
    table = storage[("azapi_resource", "table")]
    assert table["type"].startswith("Microsoft.Storage/storageAccounts/tableServices/tables@")
    assert table["parent_id"] == "${azurerm_storage_account.this.id}/tableServices/default"
    variables = blocks(MODULES_DIR / "storage", "variable")
    assert variables["state_tables"]["default"] == ["dedup", "audit"]
    assert "leases" in variables["containers"]["default"]


def test_the_automation_app_runs_python_3_11_on_flex_consumption_with_a_managed_identity():
    automation = resources(MODULES_DIR / "automation")
    app = automation[("azurerm_function_app_flex_consumption", "this")]
    assert (app["runtime_name"], app["runtime_version"]) == ("python", "3.11")
    assert automation[("azurerm_service_plan", "this")]["sku_name"] == "FC1"
    assert app["identity"][0]["type"] == "UserAssigned"
    assert app["storage_authentication_type"] == "UserAssignedIdentity"


def test_the_automation_app_settings_are_the_ones_the_app_reads():
    app_settings = module_locals(MODULES_DIR / "automation")["app_settings"]
    for name in ("PLATFORM_ENV", "PLATFORM_STORAGE_ACCOUNT", "AzureWebJobsStorage__accountName"):
        assert name in app_settings
    assert "@Microsoft.KeyVault(SecretUri=" in app_settings
    secret_settings = blocks(MODULES_DIR / "automation", "variable")["key_vault_secret_settings"]["default"]
    assert set(secret_settings) == {
        "CLOUDFLARE_API_TOKEN",
        "GITLAB_TOKEN",
        "GITLAB_WEBHOOK_SECRET",
        "SLACK_SIGNING_SECRET",
        "TEAMS_WEBHOOK_SECRET",
        "CHAT_NOTIFY_SLACK_WEBHOOK_URL",
        "CHAT_NOTIFY_TEAMS_WEBHOOK_URL",
    }


def test_the_automation_roles_are_scoped_to_what_each_function_touches():
    automation = resources(MODULES_DIR / "automation")
    role = automation[("azurerm_role_definition", "node_pool_scaler")]
    actions = role["permissions"][0]["actions"]
    assert all(a.startswith("Microsoft.ContainerService/managedClusters/") for a in actions)
    assert not any("*" in a for a in actions)
    assert automation[("azurerm_role_assignment", "node_pools")]["scope"] == "${var.cluster_id}"
    assert (
        automation[("azurerm_role_assignment", "certificates")]["role_definition_name"]
        == "Key Vault Certificates Officer"
    )
    assert automation[("azurerm_role_assignment", "queues")]["for_each"] == "${var.storage.queue_ids}"
    assert automation[("azurerm_role_assignment", "tables")]["for_each"] == "${var.storage.table_ids}"
    broad = {"Owner", "Contributor", "User Access Administrator", "Storage Account Contributor"}
    for (rtype, name), body in automation.items():
        if rtype == "azurerm_role_assignment":
            assert body.get("role_definition_name") not in broad, f"{name} grants a broad role"


def test_key_vault_certificate_events_reach_the_apps_event_grid_function():
    automation = resources(MODULES_DIR / "automation")
    topic = automation[("azurerm_eventgrid_system_topic", "key_vault")]
    assert topic["topic_type"] == "Microsoft.KeyVault.vaults"
    subscription = instances(MODULES_DIR / "automation", "azurerm_eventgrid_system_topic_event_subscription",
                             "app")["certificates"]
    assert subscription["system_topic"] == "${azurerm_eventgrid_system_topic.key_vault.name}"
    assert all(t.startswith("Microsoft.KeyVault.Certificate") for t in subscription["included_event_types"])
    endpoint = subscription["azure_function_endpoint"][0]["function_id"]
    assert endpoint.endswith("/functions/${var.certificate_event_function}")
    default = blocks(MODULES_DIR / "automation", "variable")["certificate_event_function"]["default"]
    assert default == "keyvault_certificate_events"


SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "storage account key": re.compile(r"AccountKey=[A-Za-z0-9+/=]{20,}"),
    "SAS token": re.compile(r"(SharedAccessSignature=|[?&]sig=)[A-Za-z0-9%+/=]{10,}"),
    "GitLab token": re.compile(r"glpat-[0-9A-Za-z_-]{20}"),
    "Slack token": re.compile(r"xox[abpr]-[0-9A-Za-z-]{10,}"),
    "AWS key": re.compile(r"AKIA[0-9A-Z]{16}"),
    "literal credential": re.compile(
        # A quoted literal assigned to a credential-named attribute, unless it is a resource name
        # (lowercase words and hyphens), such as the name of the Key Vault secret to reference.
        r"(?i)^\s*\w*(password|passwd|secret|token|access_key|api_key|client_secret)\w*\s*=\s*"
        r"\"(?!\$\{)(?!(?-i:[a-z0-9]+(?:-[a-z0-9]+)+)\")[^\"]{6,}\"",
        re.M,
    ),
}
CREDENTIAL_NAME = re.compile(r"(?i)(password|secret|token|access_key|api_key|private_key|connection_string)")


@pytest.mark.parametrize(
    ("line", "caught"),
    [
        ('  client_secret = "Zq8~vR2mP9xL4kT7wN1bH6cJ3"', True),
        ('  admin_password = "P@ssw0rd-2024!"', True),
        ('  value = "DefaultEndpointsProtocol=https;AccountName=st;AccountKey=' + "A" * 40 + '"', True),
        ('  token = "glpat-' + "x1" * 10 + '"', True),
        ('  GITLAB_TOKEN = "gitlab-token"', False),
        ("  client_secret = var.client_secret", False),
        ('  secret_rotation_interval = "2m"', False),
    ],
)
def test_the_secret_scanner_catches_credentials_and_spares_names(line, caught):
    assert any(p.search(line) for p in SECRET_PATTERNS.values()) is caught


def _terraform_sources():
    return [*all_tf_files(), *sorted(p for p in INFRA.rglob("*.tfvars") if ".terraform" not in p.parts)]


@pytest.mark.parametrize("path", _terraform_sources(), ids=lambda p: str(p.relative_to(INFRA)))
def test_no_secrets_or_keys_in_terraform_sources(path):
    text = path.read_text()
    for kind, pattern in SECRET_PATTERNS.items():
        match = pattern.search(text)
        assert not match, f"{kind} in {path}: {match.group(0)[:40]}..."


@pytest.mark.parametrize(
    "module", sorted(p for p in MODULES_DIR.iterdir() if p.is_dir()), ids=lambda p: p.name
)
def test_no_secret_has_a_default_value(module):
    for name, body in blocks(module, "variable").items():
        if not CREDENTIAL_NAME.search(name) or "default" not in body:
            continue
        default = body["default"]
        assert not (isinstance(default, str) and default), f"{name} has a literal default"
        if isinstance(default, dict):
            # Allowed only as a map of names (e.g. app setting -> Key Vault secret name).
            assert all(re.fullmatch(r"[A-Za-z0-9-]{1,127}", str(v)) for v in default.values()), name


def test_no_secret_value_is_fed_through_terraform_to_the_app():
    app_settings = module_locals(MODULES_DIR / "automation")["app_settings"]
    assert "var.key_vault_secret_settings" in app_settings
    assert "data.azurerm_key_vault_secret" not in app_settings
    for path in all_tf_files():
        assert not load_hcl(path).get("data", [{}])[0].get("azurerm_key_vault_secret"), (
            f"{path} reads a secret into state"
        )


def test_every_spoke_subnet_has_a_network_security_group():
    network = MODULES_DIR / "network"
    nsg_subnets = set(module_locals(network)["nsg_rules"])
    spoke_subnets = set(module_locals(network)["spoke_subnets"])
    assert nsg_subnets == spoke_subnets
    association = resources(network)[("azurerm_subnet_network_security_group_association", "spoke")]
    assert association["for_each"] == "${local.nsg_rules}"


def test_the_key_vault_csi_add_on_is_off_and_nothing_grants_its_identity_the_vault():
    # Issue 8 item 9: the add-on's identity could read every secret from any namespace, and nothing used it;
    # external-secrets reads Key Vault with its own workload identity.
    assert "key_vault_secrets_provider" not in _cluster()
    for directory in (AKS, PLATFORM):
        for (rtype, _), body in resources(directory).items():
            if rtype == "azurerm_role_assignment":
                assert "key_vault_secrets_provider" not in str(body.get("principal_id", ""))
    assert "key_vault_secrets_provider_object_id" not in blocks(AKS, "output")
