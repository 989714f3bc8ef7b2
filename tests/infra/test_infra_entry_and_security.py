"""Issue 8 (infra side): the paths that must hold before the platform can serve anything, read from the HCL.

- item 3: the public entry (Cloudflare -> firewall DNAT -> the public Gateway's internal load balancer) and
  the internal entry (internal load balancers in ingress_internal, the control plane allowed to use it);
- item 4: model weights in a `models` container of the platform account, readable by the nodes;
- item 6: Kubernetes on a supported minor;
- item 10: MLflow's PostgreSQL, private, its password generated into Key Vault and never output;
- item 12: Defender for Containers, Azure Policy, control-plane audit logs.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from pathlib import Path

import pytest
import yaml
from infra_helpers import (
    ENVIRONMENTS,
    INFRA,
    MODULES_DIR,
    all_tf_files,
    blocks,
    module_locals,
    platform_file,
    resources,
)

NETWORK = MODULES_DIR / "network"
AKS = MODULES_DIR / "aks"
PLATFORM = MODULES_DIR / "platform"
POSTGRESQL = MODULES_DIR / "postgresql"
CLOUDFLARE_FILE = INFRA / "cloudflare-ip-ranges.yaml"


def cloudflare_ranges() -> dict:
    return yaml.safe_load(CLOUDFLARE_FILE.read_text())


def platform_module(name: str) -> dict:
    return blocks(PLATFORM, "module")[name]


# ------------------------------------------------------------------------------------------- item 3: public entry


def test_the_platform_reads_cloudflare_ranges_from_the_one_file_and_gives_the_ipv4_ones_to_the_entry():
    local = module_locals(PLATFORM)["cloudflare_ip_ranges"]
    match = re.fullmatch(r'\$\{yamldecode\(file\("\$\{path\.module\}/([^"]+)"\)\)\}', local)
    assert match, local
    assert (PLATFORM / match.group(1)).resolve() == CLOUDFLARE_FILE.resolve()
    entry = platform_module("network")["public_entry"]
    assert entry["source_ranges"] == "${local.cloudflare_ip_ranges.ipv4}"
    assert entry["private_ip"] == "${local.p.network.gateways.public_ip}"


def test_no_terraform_file_restates_a_cloudflare_range():
    ranges = cloudflare_ranges()["ipv4"] + cloudflare_ranges()["ipv6"]
    for path in all_tf_files():
        text = path.read_text()
        assert not [r for r in ranges if r in text], f"{path}: read infra/cloudflare-ip-ranges.yaml instead"


def test_the_cloudflare_file_holds_only_public_ranges_and_never_the_whole_internet():
    for cidr in cloudflare_ranges()["ipv4"]:
        network = ipaddress.ip_network(cidr)
        assert network.version == 4 and network.is_global and network.prefixlen >= 8, cidr


def test_the_firewall_dnats_https_only_from_the_entry_sources_to_the_public_gateway():
    group = resources(NETWORK)[("azurerm_firewall_policy_rule_collection_group", "public_entry")]
    (collection,) = group["nat_rule_collection"]
    assert collection["action"] == "Dnat"
    (rule,) = collection["rule"]
    assert rule["protocols"] == ["TCP"]
    assert rule["source_addresses"] == "${var.public_entry.source_ranges}"
    assert rule["destination_address"] == "${azurerm_public_ip.firewall.ip_address}"
    assert rule["destination_ports"] == ["443"]
    assert rule["translated_address"] == "${var.public_entry.private_ip}"
    assert str(rule["translated_port"]) == "443"


def test_node_subnets_allow_443_from_the_firewall_to_the_public_gateway_only_and_still_deny_the_internet():
    nsg = module_locals(NETWORK)
    allow = nsg["allow_public_entry"]
    assert allow.startswith("${var.public_entry == null ? [] : [{")
    for part in ('access = "Allow"', 'protocol = "Tcp"', "source_address_prefix = local.firewall_subnet_prefix",
                 'destination_port_range = "443"', "destination_address_prefix = var.public_entry.private_ip"):
        assert part in allow, part
    priority = int(re.search(r"priority = (\d+)", allow).group(1))
    assert priority < nsg["deny_internet_inbound"]["priority"]
    assert nsg["deny_internet_inbound"]["priority"] == 4000
    assert nsg["deny_internet_inbound"]["source_address_prefix"] == "Internet"
    rules = nsg["nsg_rules"]
    assert rules["system_nodes"] == "${concat(local.allow_public_entry, [local.deny_internet_inbound])}"
    assert rules["gpu_nodes"] == ["${local.deny_internet_inbound}"]
    assert rules["functions"] == ["${local.deny_internet_inbound}"]


def test_the_route_table_keeps_the_return_path_through_the_firewall_symmetric():
    # DNAT flows are SNATed to an address of AzureFirewallSubnet; the answer must reach it over the peering
    # (the hub prefix beats 0.0.0.0/0). A route for the hub, or for part of it, would break that, and a
    # public load balancer on routed nodes would answer through a firewall that never saw the flow.
    table = resources(NETWORK)[("azurerm_route_table", "spoke")]
    assert [(r["address_prefix"], r["next_hop_type"]) for r in table["route"]] == [("0.0.0.0/0", "VirtualAppliance")]
    assert table["bgp_route_propagation_enabled"] is False
    routed = module_locals(NETWORK)["routed_subnets"]
    assert "ingress_internal" not in routed and "private_endpoints" not in routed
    public_ips = [key for path in INFRA.joinpath("modules").iterdir() if path.is_dir()
                  for key in resources(path) if key[0] in ("azurerm_public_ip", "azurerm_lb")]
    assert public_ips == [("azurerm_public_ip", "firewall")], "no public address besides the firewall's"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_gateway_addresses_are_usable_distinct_addresses_of_the_ingress_subnet(env):
    network = platform_file(env)["network"]
    subnet = ipaddress.ip_network(network["subnets"]["ingress_internal"])
    reserved = {subnet.network_address + i for i in range(4)} | {subnet.broadcast_address}  # Azure keeps these
    addresses = [ipaddress.ip_address(network["gateways"][k]) for k in ("public_ip", "internal_ip")]
    assert len(set(addresses)) == 2
    for address in addresses:
        assert address in subnet and address not in reserved, address


def test_the_control_plane_identity_may_place_load_balancers_in_the_ingress_subnet():
    role = resources(AKS)[("azurerm_role_assignment", "control_plane_ingress_subnet")]
    assert role["scope"] == "${var.ingress_subnet_id}"
    assert role["role_definition_name"] == "Network Contributor"
    assert role["principal_id"] == "${azurerm_user_assigned_identity.control_plane.principal_id}"
    assert platform_module("aks")["ingress_subnet_id"] == "${module.network.subnet_ids.ingress_internal}"
    cluster = resources(AKS)[("azurerm_kubernetes_cluster", "this")]
    assert "${azurerm_role_assignment.control_plane_ingress_subnet}" in cluster["depends_on"]


# ------------------------------------------------------------------------------------------- item 4: model weights


def test_model_weights_live_in_a_models_container_of_the_platform_account_that_nodes_may_read():
    local = module_locals(PLATFORM)
    assert local["models_container"] == "models"
    assert "local.models_container" in local["storage_containers"]
    role = resources(PLATFORM)[("azurerm_role_assignment", "kubelet_reads_models")]
    assert role["scope"] == "${module.storage.container_ids[local.models_container]}"
    assert role["role_definition_name"] == "Storage Blob Data Reader"
    assert role["principal_id"] == "${module.aks.kubelet_identity_object_id}"
    # The nodes reach it through the account's blob private endpoint (the account denies public traffic).
    assert "blob" in platform_module("storage")["private_dns_zone_ids"]


# ------------------------------------------------------------------------------------------- item 6: Kubernetes

# Upstream end of life per minor (kubernetes.io/releases); AKS standard support of a minor ends about 12 months
# after its AKS GA, close to that date (LTS aside). 1.36: AKS GA 2026-06-19 (Azure/AKS changelog), LTS
# eligible. A minor missing here fails: add its date when you move to it.
KUBERNETES_END_OF_LIFE = {
    "1.33": datetime.date(2026, 6, 28),
    "1.34": datetime.date(2026, 10, 27),
    "1.35": datetime.date(2027, 2, 28),
    "1.36": datetime.date(2027, 6, 28),
}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_runs_a_kubernetes_minor_that_is_still_supported(env):
    version = platform_file(env)["cluster"]["kubernetes_version"]
    assert version in KUBERNETES_END_OF_LIFE, f"{env}: add the end of life of {version}"
    assert KUBERNETES_END_OF_LIFE[version] > datetime.date.today(), f"{env}: Kubernetes {version} is past end of life"


# ------------------------------------------------------------------------------------------- item 10: PostgreSQL


def test_mlflow_postgresql_is_reachable_only_through_its_private_endpoint():
    pg = resources(POSTGRESQL)
    server = pg[("azurerm_postgresql_flexible_server", "this")]
    assert server["public_network_access_enabled"] is False
    assert "delegated_subnet_id" not in server
    endpoint = pg[("azurerm_private_endpoint", "this")]
    assert endpoint["private_service_connection"][0]["subresource_names"] == ["postgresqlServer"]
    assert endpoint["private_dns_zone_group"][0]["private_dns_zone_ids"] == ["${var.private_dns_zone_id}"]
    assert "privatelink.postgres.database.azure.com" in module_locals(NETWORK)["default_private_dns_zones"]
    assert platform_module("postgresql")["private_dns_zone_id"] == (
        '${module.network.private_dns_zone_ids["privatelink.postgres.database.azure.com"]}'
    )


def test_mlflow_postgresql_password_is_generated_into_key_vault_and_never_output():
    pg = resources(POSTGRESQL)
    assert pg[("azurerm_postgresql_flexible_server", "this")]["administrator_password"] == (
        "${random_password.administrator.result}"
    )
    secret = pg[("azapi_resource", "password_secret")]
    assert secret["type"].startswith("Microsoft.KeyVault/vaults/secrets@")
    assert secret["parent_id"] == "${var.key_vault_id}"
    assert secret["name"] == "${var.password_secret_name}"
    assert "random_password.administrator.result" in str(secret["sensitive_body"])
    assert "random_password" not in str(secret.get("body"))
    for directory in (POSTGRESQL, PLATFORM, INFRA / "root"):
        for name, output in blocks(directory, "output").items():
            assert "random_password" not in str(output["value"]), name
            assert "administrator_password" not in str(output["value"]), name


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_names_the_secret_and_host_gitops_consumes(env):
    # Agreed with gitops: Key Vault secret `mlflow-db-password`; host <server_name>.postgres.database.azure.com.
    db = platform_file(env)["mlflow_database"]
    assert db["password_secret"] == "mlflow-db-password"
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", db["server_name"])
    assert env in db["server_name"]
    if env.startswith("prd-"):
        assert db["zone_redundant_ha"] is True and not db["sku_name"].startswith("B_")
    wiring = platform_module("postgresql")
    assert wiring["password_secret_name"] == "${local.p.mlflow_database.password_secret}"
    assert wiring["name"] == "${local.p.mlflow_database.server_name}"
    assert wiring["key_vault_id"] == "${module.keyvault.id}"


# ------------------------------------------------------------------------------------------- item 12: security

POLICY_DEFINITIONS = {
    "pod_security_baseline": ("policySetDefinitions/a8640138-9b0a-4a28-b8cb-1666c838647d", "Deny"),
    "pod_security_restricted": ("policySetDefinitions/42b8ef37-b724-4e24-bbc8-7a7708edfe00", "Audit"),
    "internal_load_balancers": ("policyDefinitions/3fc4dc25-5baf-40d8-9b05-7fe74c1bc64e", "Deny"),
    "allowed_images": ("policyDefinitions/febd0533-8e55-448f-b837-bd0e06f16469", None),
}


@pytest.mark.parametrize("name", sorted(POLICY_DEFINITIONS))
def test_the_cluster_carries_the_aks_baseline_policy_assignments(name):
    definition, effect = POLICY_DEFINITIONS[name]
    assignment = resources(AKS)[("azurerm_resource_policy_assignment", name)]
    assert assignment["resource_id"] == "${azurerm_kubernetes_cluster.this.id}"
    assert assignment["policy_definition_id"] == f"${{local.policy_definitions.{name}}}"
    assert module_locals(AKS)["policy_definitions"][name] == f"/providers/Microsoft.Authorization/{definition}"
    if effect:
        assert f'effect = {{value = "{effect}"}}' in assignment["parameters"]
    if name.startswith("pod_security"):
        assert "excludedNamespaces = {value = local.policy_excluded_namespaces}" in assignment["parameters"]


def test_images_may_come_only_from_the_platform_registry_and_mcr():
    policy = platform_module("aks")["azure_policy"]
    assert policy["allowed_registries"] == ["${local.p.acr.name}.azurecr.io", "mcr.microsoft.com"]
    assert policy["allowed_images_effect"] == "${local.p.cluster.allowed_images_effect}"
    assert platform_file("prd-uaenorth")["cluster"]["allowed_images_effect"] == "Deny"
    for env in ENVIRONMENTS:
        assert platform_file(env)["cluster"]["allowed_images_effect"] in ("Deny", "Audit")


def test_control_plane_audit_and_guard_logs_go_to_log_analytics():
    setting = resources(AKS)[("azurerm_monitor_diagnostic_setting", "control_plane")]
    assert setting["target_resource_id"] == "${azurerm_kubernetes_cluster.this.id}"
    assert setting["log_analytics_workspace_id"] == "${var.log_analytics_workspace_id}"
    (dynamic,) = setting["dynamic"]
    categories = dynamic["enabled_log"]["for_each"]
    assert '"kube-audit-admin"' in categories and '"guard"' in categories


def test_defender_for_containers_is_on_for_the_subscription_and_the_cluster():
    cluster = resources(AKS)[("azurerm_kubernetes_cluster", "this")]
    assert cluster["microsoft_defender"][0]["log_analytics_workspace_id"] == "${var.log_analytics_workspace_id}"
    pricing = resources(PLATFORM)[("azurerm_security_center_subscription_pricing", "containers")]
    assert pricing["tier"] == "Standard" and pricing["resource_type"] == "Containers"


def test_the_platform_passes_the_workspace_that_receives_these_logs():
    assert platform_module("aks")["log_analytics_workspace_id"] == "${module.monitoring.log_analytics_workspace_id}"
    assert Path(AKS / "security.tf").is_file()
