"""The automation app as Terraform lays it down agrees with the code it runs: the settings its bindings
resolve, the tables it writes, the Resource Manager actions its adapters call.

Each check reads the Python side from the code itself (the app's function metadata, the modules' constants,
the adapter's SDK calls), so a new function, table or ARM call without its Terraform counterpart fails here
before Azure puts the function in error or answers 403.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest
from infra_helpers import MODULES_DIR, REPO, blocks, module_locals, resources

AUTOMATION = MODULES_DIR / "automation"
PLATFORM = MODULES_DIR / "platform"
BINDING_EXPRESSION = re.compile(r"%(\w+)%")


def _app_setting_names() -> set[str]:
    """Names the module's `app_settings` local sets, read from its rendered merge(...) expression, plus the
    names of the Key Vault reference settings (a `for` over var.key_vault_secret_settings)."""
    expression = module_locals(AUTOMATION)["app_settings"]
    names = set(re.findall(r"[{,]\s*(\w+)\s*=(?!=)", expression))
    names |= set(blocks(AUTOMATION, "variable")["key_vault_secret_settings"]["default"])
    return names - {"__comments__", "__inline_comments__"}


@pytest.fixture(scope="module")
def functions() -> list[dict]:
    """Every function's bindings, as the Functions host indexes the app (in a fresh interpreter: the app
    object may be indexed once)."""
    code = (
        "import json, function_app\n"
        "print(json.dumps([json.loads(f.get_function_json()) | {'name': f.get_function_name()}"
        " for f in function_app.app.get_functions()]))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _binding_settings(function: dict) -> set[str]:
    """App settings a function's bindings need: every %NAME% expression, and each `connection` (a setting
    name, or the prefix of identity-based NAME__* settings)."""
    needed: set[str] = set()
    for binding in function["bindings"]:
        for key, value in binding.items():
            if not isinstance(value, str):
                continue
            needed |= set(BINDING_EXPRESSION.findall(value))
            if key == "connection" and value:
                needed.add(value)
    return needed


def test_every_binding_setting_a_function_uses_is_set_by_the_terraform_app_settings(functions):
    assert functions, "the app indexes no function"
    names = _app_setting_names()
    missing = {
        f"{function['name']}: {setting}"
        for function in functions
        for setting in _binding_settings(function)
        if setting not in names and not any(n.startswith(f"{setting}__") for n in names)
    }
    assert not missing, f"bindings name app settings infra/modules/automation does not set: {sorted(missing)}"


def test_the_setting_check_sees_the_gpu_scaling_schedule(functions):
    # The check above is only as good as its reading of the metadata: the one %SETTING% binding today.
    by_name = {f["name"]: f for f in functions}
    assert "GPU_SCALING_SCHEDULE" in _binding_settings(by_name["gpu_scaling"])
    assert "GPU_SCALING_SCHEDULE" in _app_setting_names()


@pytest.mark.parametrize(
    "setting",
    ["GPU_SCALING_SCHEDULE", "GPU_SCALING_ENABLED", "GPU_SCALING_DRY_RUN", "GPU_SCALING_DRAIN_TIMEOUT_SECONDS"],
)
def test_the_gpu_scaling_switches_are_app_settings_from_module_variables(setting):
    expression = module_locals(AUTOMATION)["app_settings"]
    assert re.search(rf"[{{,]\s*{setting}\s*=\s*(tostring\()?(var|local)\.gpu_scaling_", expression), setting


def test_the_gpu_scaling_defaults_are_values_the_app_accepts():
    from shared.local.cron import CronSchedule
    from shared.services.scaling.tick import switches_from

    variables = blocks(AUTOMATION, "variable")
    schedule = variables["gpu_scaling_schedule"]["default"]
    assert schedule == "*/15 * * * * *"
    CronSchedule.parse(schedule)
    switches = switches_from({
        "GPU_SCALING_ENABLED": str(variables["gpu_scaling_enabled"]["default"]).lower(),
        "GPU_SCALING_DRY_RUN": "true",
        "GPU_SCALING_DRAIN_TIMEOUT_SECONDS": str(variables["gpu_scaling_drain_timeout_seconds"]["default"]),
    })
    assert switches.enabled and switches.dry_run and switches.drain_timeout_seconds == 600
    assert "validation" in variables["gpu_scaling_schedule"]
    assert "validation" in variables["gpu_scaling_drain_timeout_seconds"]


def test_the_schedule_validation_takes_ncrontab_and_refuses_five_field_cron():
    condition = blocks(AUTOMATION, "variable")["gpu_scaling_schedule"]["validation"][0]["condition"]
    pattern = re.search(r'regex\("(.+)", var\.gpu_scaling_schedule\)', condition).group(1).replace("\\\\", "\\")
    for schedule, valid in [("*/15 * * * * *", True), ("0 */5 * * * MON-FRI", True), ("*/15 * * * *", False),
                            ("", False), ("every 15s", False)]:
        assert bool(re.fullmatch(pattern, schedule)) is valid, schedule


def test_prd_runs_gpu_scaling_as_a_dry_run_by_default_and_dev_and_stg_act():
    by_tier = module_locals(AUTOMATION)["gpu_scaling_dry_run_by_tier"]
    assert by_tier == {"dev": False, "stg": False, "prd": True}
    assert blocks(AUTOMATION, "variable")["gpu_scaling_dry_run"]["default"] is None
    dry_run = module_locals(AUTOMATION)["gpu_scaling_dry_run"]
    assert "var.gpu_scaling_dry_run" in dry_run and "local.gpu_scaling_dry_run_by_tier" in dry_run
    # The composition leaves the tier default alone (tests/gitops pairs it with the KEDA overlays).
    assert "gpu_scaling_dry_run" not in blocks(PLATFORM, "module")["automation"]


# -- state tables --------------------------------------------------------------------------------------

TABLE_METHODS = {"insert", "get", "replace", "delete", "query", "upsert"}


def _python_sources():
    return sorted(p for p in (REPO / "shared").rglob("*.py") if "local" not in p.relative_to(REPO).parts)


def _table_constants() -> dict[str, str]:
    """Module-level NAME_TABLE = "literal" constants of the deployed package (not the local tooling)."""
    found: dict[str, str] = {}
    for path in _python_sources():
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id.endswith("_TABLE"):
                        found[f"{path.relative_to(REPO)}:{target.id}"] = node.value.value
    return found


def test_every_table_the_code_uses_is_created_by_terraform():
    tables = blocks(PLATFORM, "module")["storage"]["state_tables"]
    constants = _table_constants()
    assert {"dedup", "audit", "certrevocations", "gpuscaling"} <= set(constants.values()), constants
    missing = {where: name for where, name in constants.items() if name not in tables}
    assert not missing, f"tables the app uses that infra/modules/platform state_tables does not create: {missing}"


def test_table_calls_name_their_table_through_a_constant():
    # So that the constant scan above sees every table: storage.<method>("literal", ...) is refused.
    literal_calls = []
    for path in _python_sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in TABLE_METHODS and isinstance(node.func.value, ast.Attribute)
                    and node.func.value.attr == "storage" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                literal_calls.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not literal_calls, f"table named by a literal (use a *_TABLE constant): {literal_calls}"


def test_the_app_holds_a_data_role_on_every_state_table():
    table_role = resources(AUTOMATION)[("azurerm_role_assignment", "tables")]
    assert table_role["for_each"] == "${var.storage.table_ids}"
    assert blocks(PLATFORM, "module")["automation"]["storage"]["table_ids"] == "${module.storage.table_ids}"


# -- Resource Manager actions ---------------------------------------------------------------------------

# What each azure-mgmt-containerservice call the AKS adapter makes needs (the operations' RBAC actions).
ARM_ACTIONS = {
    "managed_clusters.get": "Microsoft.ContainerService/managedClusters/read",
    "managed_clusters.list_cluster_user_credentials":
        "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action",
    "agent_pools.get": "Microsoft.ContainerService/managedClusters/agentPools/read",
    "agent_pools.list": "Microsoft.ContainerService/managedClusters/agentPools/read",
    "agent_pools.begin_create_or_update": "Microsoft.ContainerService/managedClusters/agentPools/write",
    "agent_pools.begin_delete_machines":
        "Microsoft.ContainerService/managedClusters/agentPools/deleteMachines/action",
}


def _aks_adapter_calls() -> set[str]:
    tree = ast.parse((REPO / "shared" / "adapters" / "aks.py").read_text())
    calls = set()
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr in ("agent_pools", "managed_clusters")):
            calls.add(f"{node.func.value.attr}.{node.func.attr}")
    return calls


def test_the_node_pool_scaler_role_allows_every_aks_call_the_adapter_makes():
    calls = _aks_adapter_calls()
    assert "agent_pools.begin_delete_machines" in calls
    unknown = calls - set(ARM_ACTIONS)
    assert not unknown, f"add the RBAC action of {sorted(unknown)} to ARM_ACTIONS and to roles.tf"
    actions = resources(AUTOMATION)[("azurerm_role_definition", "node_pool_scaler")]["permissions"][0]["actions"]
    missing = {call: ARM_ACTIONS[call] for call in calls if ARM_ACTIONS[call] not in actions}
    assert not missing, f"node_pool_scaler lacks {missing}"


def test_the_node_pool_scaler_role_grants_nothing_the_adapter_does_not_call():
    actions = resources(AUTOMATION)[("azurerm_role_definition", "node_pool_scaler")]["permissions"][0]["actions"]
    needed = {ARM_ACTIONS[call] for call in _aks_adapter_calls()}
    assert set(actions) == needed


def test_easy_auth_validates_entra_tokens_for_mcp_but_lets_signed_webhooks_and_function_keys_through():
    """/api/mcp maps X-MS-CLIENT-PRINCIPAL-ID to a role and trusts it only when App Service Authentication is on;
    Slack, Teams, GitLab and Event Grid cannot send Entra tokens, so unauthenticated requests must still pass."""
    app = resources(AUTOMATION)[("azurerm_function_app_flex_consumption", "this")]
    [dynamic] = [d for d in app["dynamic"] if "auth_settings_v2" in d]
    auth = dynamic["auth_settings_v2"]
    assert "caller_authentication" in auth["for_each"]
    content = auth["content"][0]
    assert content["auth_enabled"] is True and content["require_authentication"] is False
    assert content["unauthenticated_action"] == "AllowAnonymous"
    assert content["default_provider"] == "azureactivedirectory"
    assert content["login"][0]["token_store_enabled"] is False
    wired = blocks(PLATFORM, "module")["automation"]["caller_authentication"]
    assert "local.p.automation.caller_authentication" in wired and "local.p.tenant_id" in wired
