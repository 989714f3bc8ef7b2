"""The three environments: same code, different data, wired to every module."""

import ipaddress
import re

import pytest
from infra_helpers import (
    ENVIRONMENTS,
    ENVS_DIR,
    INFRA,
    MODULES_DIR,
    blocks,
    load_hcl,
    module_locals,
    platform_file,
    tf_files,
)

# What the automation app reads from platform.yaml (shared/platform.py): renaming any breaks it.
APP_CONTRACT = {
    "": ["environment", "location", "subscription_id", "tenant_id", "resource_group"],
    "cluster": ["name"],
    "key_vault": ["name"],
    "storage": ["account_name"],
    "gitlab": ["url", "project", "default_branch", "gitops_path"],
}
GPU_POOL_KEYS = {
    "name",
    "vendor",
    "vm_size",
    "gpus_per_node",
    "min_count",
    "max_count",
    "mig_profile",
    "inference_queue",
    "requests_per_gpu",
}
CERTIFICATE_KEYS = {
    "name",
    "zone",
    "zone_id",
    "hostnames",
    "request_type",
    "validity_days",
    "renew_before_days",
}
WIRED_MODULES = {"network", "aks", "acr", "keyvault", "storage", "monitoring", "automation"}


def test_there_is_a_folder_per_environment_and_nothing_else():
    assert sorted(p.name for p in ENVS_DIR.iterdir() if p.is_dir()) == sorted(ENVIRONMENTS)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_folders_hold_only_backend_wiring_and_data(env):
    names = {p.name for p in (ENVS_DIR / env).iterdir() if not p.name.startswith(".")}
    assert names <= {"backend.tf", "main.tf", "providers.tf", "platform.yaml"}, names
    assert {"backend.tf", "main.tf", "providers.tf", "platform.yaml"} <= names


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_resources_are_declared_in_environment_folders(env):
    for path in tf_files(ENVS_DIR / env):
        parsed = load_hcl(path)
        assert not parsed.get("resource"), f"{path.name} declares resources: they belong in a module"
        assert not parsed.get("data"), f"{path.name} declares data sources: they belong in a module"


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("name", ["main.tf", "providers.tf"])
def test_environment_code_is_the_one_shared_root_not_a_copy(env, name):
    path = ENVS_DIR / env / name
    assert path.is_symlink(), f"{path} must be a symlink to infra/root/{name}: differences belong in platform.yaml"
    assert path.resolve() == (INFRA / "root" / name).resolve()


def test_backends_differ_only_in_environment_values():
    def normalise(env: str) -> str:
        text = (ENVS_DIR / env / "backend.tf").read_text()
        p = platform_file(env)
        for value in (p["subscription_id"], *p["state"].values(), env):
            text = text.replace(str(value), "<v>")
        return text

    assert len({normalise(env) for env in ENVIRONMENTS}) == 1


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_has_its_own_remote_state_matching_platform_yaml(env):
    backend = load_hcl(ENVS_DIR / env / "backend.tf")["terraform"][0]["backend"][0]
    assert list(backend) == ["azurerm"]
    config = backend["azurerm"]
    state = platform_file(env)["state"]
    assert config["key"] == state["key"] == f"{env}.tfstate"
    assert config["resource_group_name"] == state["resource_group"]
    assert config["storage_account_name"] == state["storage_account_name"]
    assert config["container_name"] == state["container"]
    assert config["subscription_id"] == platform_file(env)["subscription_id"]
    # Entra ID auth: the state account has shared keys disabled.
    assert config["use_azuread_auth"] is True


def test_state_keys_and_accounts_are_distinct_per_environment():
    keys = {platform_file(env)["state"]["key"] for env in ENVIRONMENTS}
    accounts = {platform_file(env)["state"]["storage_account_name"] for env in ENVIRONMENTS}
    assert len(keys) == len(accounts) == len(ENVIRONMENTS)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_reads_its_platform_file_with_yamldecode(env):
    platform_local = load_hcl(ENVS_DIR / env / "main.tf")["locals"][0]["platform"]
    assert 'yamldecode(file("${path.module}/platform.yaml"))' in platform_local
    calls = [body for entry in load_hcl(ENVS_DIR / env / "main.tf")["module"] for body in entry.values()]
    assert [c["source"] for c in calls] == ["../../modules/platform"]
    assert calls[0]["platform"] == "${local.platform}"


def test_the_composition_wires_every_required_module():
    calls = blocks(MODULES_DIR / "platform", "module")
    sources = {body["source"].removeprefix("../") for body in calls.values()}
    assert sources >= WIRED_MODULES, f"missing: {WIRED_MODULES - sources}"


def test_state_bootstrap_is_applied_from_its_own_root():
    calls = [body for entry in load_hcl(INFRA / "bootstrap" / "main.tf")["module"] for body in entry.values()]
    assert [c["source"] for c in calls] == ["../modules/state-bootstrap"]
    assert not load_hcl(INFRA / "bootstrap" / "main.tf").get("resource")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_platform_file_keeps_every_key_the_app_reads(env):
    p = platform_file(env)
    for section, keys in APP_CONTRACT.items():
        holder = p if not section else p[section]
        for key in keys:
            assert key in holder, f"{section}.{key} missing"
    assert p["environment"] == env
    assert p["gitlab"]["gitops_path"] == f"gitops/clusters/{env}"
    assert p["gpu_pools"], "no GPU pools"
    for pool in p["gpu_pools"]:
        assert set(pool) >= GPU_POOL_KEYS, f"gpu pool {pool.get('name')} misses {GPU_POOL_KEYS - set(pool)}"
    for cert in p["certificates"]:
        assert set(cert) >= CERTIFICATE_KEYS


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_platform_names_fit_azure_naming_rules(env):
    p = platform_file(env)
    assert re.fullmatch(r"[a-z0-9]{3,24}", p["storage"]["account_name"])
    assert re.fullmatch(r"[a-z0-9]{3,24}", p["state"]["storage_account_name"])
    assert re.fullmatch(r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]", p["key_vault"]["name"])
    assert re.fullmatch(r"[a-zA-Z0-9]{5,50}", p["acr"]["name"])
    assert len(p["automation"]["function_app_name"]) <= 32
    for pool in p["gpu_pools"]:
        assert re.fullmatch(r"[a-z][a-z0-9]{0,8}", pool["name"]), pool["name"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_subnets_sit_inside_the_spoke_without_overlapping(env):
    network = platform_file(env)["network"]
    spoke = ipaddress.ip_network(network["spoke_address_space"])
    hub = ipaddress.ip_network(network["hub_address_space"])
    assert not spoke.overlaps(hub)
    subnets = {name: ipaddress.ip_network(cidr) for name, cidr in network["subnets"].items()}
    assert set(subnets) == {"system_nodes", "gpu_nodes", "private_endpoints", "ingress_internal", "functions"}
    for name, net in subnets.items():
        assert net.subnet_of(spoke), f"{name} {net} is outside the spoke {spoke}"
    nets = list(subnets.items())
    for i, (a, net_a) in enumerate(nets):
        for b, net_b in nets[i + 1 :]:
            assert not net_a.overlaps(net_b), f"{a} overlaps {b}"
    cluster = platform_file(env)["cluster"]
    for overlay in (cluster["pod_cidr"], cluster["service_cidr"]):
        overlay_net = ipaddress.ip_network(overlay)
        assert not overlay_net.overlaps(spoke) and not overlay_net.overlaps(hub)
    assert ipaddress.ip_address(cluster["dns_service_ip"]) in ipaddress.ip_network(cluster["service_cidr"])


def test_environments_do_not_share_address_space():
    spaces = [
        ipaddress.ip_network(platform_file(env)["network"][key])
        for env in ENVIRONMENTS
        for key in ("hub_address_space", "spoke_address_space")
    ]
    for i, a in enumerate(spaces):
        for b in spaces[i + 1 :]:
            assert not a.overlaps(b), f"{a} overlaps {b}: peering environments later would be impossible"


def test_maintenance_windows_let_dev_upgrade_before_stg_before_prd():
    order = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    days = [
        order.index(platform_file(env)["cluster"]["maintenance_window"]["day_of_week"])
        for env in ENVIRONMENTS
    ]
    assert days == sorted(days) and len(set(days)) == 3


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_public_api_servers_have_narrow_authorized_ranges_and_private_ones_none(env):
    p = platform_file(env)
    ranges = p["network"]["api_server_authorized_ip_ranges"]
    if p["cluster"]["private_api_server"]:
        assert ranges == []
    else:
        assert ranges and "0.0.0.0/0" not in ranges


def test_prd_has_a_private_api_server():
    assert platform_file("prd-uaenorth")["cluster"]["private_api_server"] is True


def test_prd_has_key_vault_purge_protection():
    assert platform_file("prd-uaenorth")["key_vault"]["purge_protection"] is True


def test_prd_is_zone_redundant():
    p = platform_file("prd-uaenorth")
    assert sorted(p["cluster"]["zones"]) == ["1", "2", "3"]
    assert p["storage"]["replication_type"] in {"ZRS", "GZRS", "RAGZRS"}
    assert p["acr"]["zone_redundancy"] is True
    assert p["cluster"]["system_pool"]["min_count"] >= 3, "one system node per zone at least"


def test_prd_uses_the_paid_aks_tier_and_the_premium_firewall():
    p = platform_file("prd-uaenorth")
    assert p["cluster"]["sku_tier"] in {"Standard", "Premium"}
    assert p["network"]["firewall_sku_tier"] == "Premium"


def test_prd_guarantees_are_also_enforced_by_terraform_validations():
    conditions = " ".join(
        v["condition"] for v in blocks(MODULES_DIR / "platform", "variable")["platform"]["validation"]
    )
    for needle in ("private_api_server", "purge_protection", "zones", "replication_type"):
        assert needle in conditions, f"no plan-time validation mentions {needle}"


def test_the_composition_passes_platform_facts_to_the_modules():
    calls = blocks(MODULES_DIR / "platform", "module")
    assert calls["aks"]["private_cluster_enabled"] == "${local.p.cluster.private_api_server}"
    assert calls["keyvault"]["purge_protection_enabled"] == "${local.p.key_vault.purge_protection}"
    assert calls["aks"]["zones"] == "${local.p.cluster.zones}"
    assert calls["aks"]["gpu_pools"] == "${local.p.gpu_pools}"
    assert "inference_queue" in calls["storage"]["inference_queues"]
    # certrevocations: superseded origin certificates (issue 9); driftfindings: first/last seen (issue 11);
    # gpuscaling: carried state of the GPU scaling policy per pool (issue 10); modelrouting: the fallback
    # timers per model (issue 15); compliancefindings: compliance scan history (issue 12); chatopsapprovals:
    # pending production approvals (issue 13).
    assert calls["storage"]["state_tables"] == ["dedup", "audit", "certrevocations", "driftfindings", "gpuscaling",
                                                "modelrouting", "compliancefindings", "chatopsapprovals"]
    assert calls["storage"]["containers"] == "${local.storage_containers}"
    platform_locals = module_locals(MODULES_DIR / "platform")
    assert "leases" in platform_locals["automation_containers"]
    assert "local.automation_containers" in platform_locals["storage_containers"]
    assert "local.mlflow_container" in platform_locals["storage_containers"]
    assert calls["aks"]["node_label_prefix"] == "${local.p.cluster.node_label_prefix}"
    assert calls["aks"]["flux"]["path"] == "${local.p.gitlab.gitops_path}"
