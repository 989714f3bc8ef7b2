"""SOPS is for dev-uaenorth only: .sops.yaml encrypts with dev's Key Vault, Flux decrypts only on dev's apps
Kustomization, the example is a structurally valid SOPS file, and stg/prd hold no decryption and no encrypted file
(they use external-secrets only)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "gitops" / "apps" / "dev-uaenorth" / "sops" / "example.sops.yaml"
B64 = r"[A-Za-z0-9+/]+={0,2}"
ENC = re.compile(rf"ENC\[AES256_GCM,data:{B64},iv:(?P<iv>{B64}),tag:(?P<tag>{B64}),type:(str|int|float|bool|bytes)\]")


def sops_config() -> dict:
    return yaml.safe_load((REPO / ".sops.yaml").read_text())


def platform(env: str) -> dict:
    return yaml.safe_load((REPO / "infra" / "envs" / env / "platform.yaml").read_text())


def test_sops_rules_cover_only_dev_and_use_devs_key_vault():
    rules = sops_config()["creation_rules"]
    assert rules, ".sops.yaml has no creation rule"
    vault = platform("dev-uaenorth")["key_vault"]["name"]
    for rule in rules:
        assert rule["path_regex"].startswith("^gitops/apps/dev-uaenorth/"), rule["path_regex"]
        assert re.fullmatch(rf"https://{re.escape(vault)}\.vault\.azure\.net/keys/[\w-]+/[0-9a-f]{{32}}",
                            rule["azure_keyvault"]), rule["azure_keyvault"]
        assert not {"pgp", "age", "kms", "gcp_kms", "hc_vault_transit_uri"} & set(rule), "Key Vault only"
        assert re.match(rule["path_regex"], EXAMPLE.relative_to(REPO).as_posix())


def test_the_example_is_a_structurally_valid_sops_file_for_the_configured_key():
    doc = yaml.safe_load(EXAMPLE.read_text())
    meta = doc.pop("sops")
    rule = sops_config()["creation_rules"][0]
    (kv,) = meta["azure_kv"]
    assert f"{kv['vault_url']}/keys/{kv['name']}/{kv['version']}" == rule["azure_keyvault"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{600,}", kv["enc"]), "the wrapped data key (RSA-OAEP, base64url)"
    assert ENC.fullmatch(meta["mac"]) and meta["lastmodified"] and meta["version"]
    assert meta["encrypted_regex"] == rule["encrypted_regex"]
    assert doc and all(re.match(meta["encrypted_regex"], key) for key in doc)
    for key, value in doc.items():
        match = ENC.fullmatch(str(value))
        assert match, f"{key} is not encrypted"
        assert len(match["tag"]) == 24, "GCM tag: 16 bytes"


def test_flux_decrypts_only_on_devs_apps_kustomization():
    decrypting = {}
    for path in (REPO / "gitops").rglob("*.yaml"):
        text = path.read_text()
        if "schemas" in path.parts or "decryption" not in text:
            continue
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") == "Kustomization" and "decryption" in doc.get("spec", {}):
                decrypting[path.relative_to(REPO).as_posix()] = doc["spec"]["decryption"]
    assert decrypting == {"gitops/clusters/dev-uaenorth/apps.yaml": {"provider": "sops"}}


@pytest.mark.parametrize("env", ["stg-uaenorth", "prd-uaenorth"])
def test_stg_and_prd_hold_no_encrypted_file(env):
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "gitops", "infra"], check=True,
                             capture_output=True, text=True).stdout.split("\0")
    encrypted = [p for p in tracked if p and env in p and (
        ".sops." in p or "ENC[AES256_GCM," in (REPO / p).read_text(errors="replace"))]
    assert not encrypted, f"{env} uses external-secrets only"


def test_encrypted_files_exist_only_where_the_rules_allow():
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], check=True, capture_output=True,
                             text=True).stdout.split("\0")
    rules = [re.compile(r["path_regex"]) for r in sops_config()["creation_rules"]]
    outside = [p for p in tracked if p.endswith((".yaml", ".yml", ".json", ".env")) and (REPO / p).is_file()
               and "ENC[AES256_GCM," in (REPO / p).read_text(errors="replace")
               and not any(r.match(p) for r in rules) and not p.startswith("tests/")]
    assert not outside


def _sops_tf() -> dict:
    import hcl2

    with (REPO / "infra" / "modules" / "platform" / "sops.tf").open() as fh:
        parsed = hcl2.load(fh, serialization_options=hcl2.SerializationOptions(strip_string_quotes=True,
                                                                                 explicit_blocks=False))
    return {(rtype, name): body for entry in parsed["resource"] for rtype, named in entry.items()
            for name, body in named.items()}


def test_only_dev_declares_a_sops_key_and_sops_yaml_encrypts_with_that_key():
    keys = {env: platform(env)["key_vault"].get("sops_key") for env in ("dev-uaenorth", "stg-uaenorth", "prd-uaenorth")}
    assert keys["dev-uaenorth"] and keys["stg-uaenorth"] is None and keys["prd-uaenorth"] is None, keys
    vault = platform("dev-uaenorth")["key_vault"]["name"]
    for rule in sops_config()["creation_rules"]:
        # The key's versioned id (output sops_key_id): https://<vault>.vault.azure.net/keys/<name>/<version>.
        assert rule["azure_keyvault"].startswith(f"https://{vault}.vault.azure.net/keys/{keys['dev-uaenorth']}/")


def test_terraform_makes_the_sops_key_only_where_platform_yaml_names_one_and_lets_only_flux_decrypt_with_it():
    res = _sops_tf()
    key = res[("azapi_resource", "sops_key")]
    assert key["type"].startswith("Microsoft.KeyVault/vaults/keys@")
    assert key["name"] == "${local.p.key_vault.sops_key}" and "module.keyvault.id" in key["parent_id"]
    assert set(key["body"]["properties"]["keyOps"]) == {"wrapKey", "unwrapKey"}
    assert key["body"]["properties"]["kty"] == "RSA"
    assert all("local.sops_enabled" in body["count"] for body in res.values()), "dev only, by platform.yaml"
    fic = res[("azurerm_federated_identity_credential", "flux_sops")]
    assert fic["subject"] == "system:serviceaccount:flux-system:kustomize-controller"
    assert "module.aks.oidc_issuer_url" in fic["issuer"]
    role = res[("azurerm_role_assignment", "flux_sops_key")]
    assert role["role_definition_name"] == "Key Vault Crypto User"
    assert role["scope"] == "${azapi_resource.sops_key[0].id}", "the key (versionless resource ID), not the vault"
    assert "flux_sops[0].principal_id" in role["principal_id"]
    platform_main = (REPO / "infra" / "modules" / "platform" / "main.tf").read_text()
    assert "workload_identity_client_id = one(azurerm_user_assigned_identity.flux_sops[*].client_id)" in platform_main
    variables = (REPO / "infra" / "modules" / "platform" / "variables.tf").read_text()
    assert 'startswith(var.platform.environment, "dev-") || var.platform.key_vault.sops_key == null' in variables
