"""The automation app in Azure reaches OpenCost: Terraform sets OPENCOST_URL and OPENCOST_AUDIENCE from each
environment's declared facts (platform.yaml cost.opencost), the same facts gitops routes and checks tokens by."""

from __future__ import annotations

import re

import pytest
import yaml
from infra_helpers import ENVIRONMENTS, ENVS_DIR, MODULES_DIR, blocks, load_hcl, module_locals

from shared.adapters.opencost import OpenCostClient
from shared.credentials import StaticTokenCredential
from shared.settings import Settings

PLATFORM = MODULES_DIR / "platform"
OPENCOST_TF = PLATFORM / "opencost.tf"


def declared(env: str) -> dict:
    return yaml.safe_load((ENVS_DIR / env / "platform.yaml").read_text())["cost"]["opencost"]


def test_the_typed_platform_variable_keeps_every_opencost_fact():
    kept = str(blocks(PLATFORM, "variable")["platform"]["type"])
    opencost = kept[kept.index("opencost"):]
    assert all(re.search(rf"\b{key}\b", opencost) for key in ("hostname", "audience", "app_role"))


def test_terraform_derives_both_settings_from_the_facts_and_hands_them_to_the_automation_app():
    local = str(module_locals(PLATFORM)["opencost_app_settings"])
    assert re.search(r'OPENCOST_URL\s*=\s*"https://\$\{local\.opencost\.hostname\}"', local)
    assert re.search(r"OPENCOST_AUDIENCE\s*=\s*local\.opencost\.audience", local)
    [automation] = [m["automation"] for m in load_hcl(PLATFORM / "main.tf")["module"] if "automation" in m]
    assert automation["app_settings"] == "${local.opencost_app_settings}"
    assert "var.app_settings" in str(module_locals(MODULES_DIR / "automation")["app_settings"])


def test_the_hostname_resolves_in_the_vnet_to_the_internal_gateway():
    tf = load_hcl(OPENCOST_TF)["resource"]
    [record] = [r["azurerm_private_dns_a_record"]["opencost"] for r in tf if "azurerm_private_dns_a_record" in r]
    [zone] = [r["azurerm_private_dns_zone"]["opencost"] for r in tf if "azurerm_private_dns_zone" in r]
    assert zone["name"] == "${local.opencost.hostname}" and record["name"] == "@"
    assert record["records"] == ["${local.p.network.gateways.internal_ip}"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_declares_an_internal_https_opencost_the_app_accepts(env):
    facts = yaml.safe_load((ENVS_DIR / env / "platform.yaml").read_text())
    opencost = declared(env)
    [certificate] = facts["certificates"]
    assert any(opencost["hostname"].split(".", 1)[1] == h[2:] for h in certificate["hostnames"] if h.startswith("*."))
    assert opencost["audience"] == f"api://platform-opencost-{env}" and opencost["app_role"]
    # What Terraform sets is a configuration the app starts with and the adapter builds a client from.
    settings = Settings.from_env({"PLATFORM_ENV": env, "PLATFORM_STORAGE_ACCOUNT": facts["storage"]["account_name"],
                                  "OPENCOST_URL": f"https://{opencost['hostname']}",
                                  "OPENCOST_AUDIENCE": opencost["audience"]})
    OpenCostClient(settings.opencost_url, credential=StaticTokenCredential(), audience=settings.opencost_audience)
