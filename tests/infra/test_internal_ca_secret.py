"""The Key Vault secret external-secrets pushes the internal CA certificate into, the one write role it has, and
the app setting that reads it (TLS_EXTRA_CA_PEM)."""

from infra_helpers import MODULES_DIR, blocks, module_locals, resources

from shared import tls

PLATFORM = MODULES_DIR / "platform"
AUTOMATION = MODULES_DIR / "automation"


def test_the_secret_is_created_in_the_platform_vault_with_the_placeholder_the_app_reads_as_no_ca_yet():
    secret = resources(PLATFORM)[("azapi_resource", "internal_ca_secret")]
    assert secret["type"].startswith("Microsoft.KeyVault/vaults/secrets@")
    assert secret["parent_id"] == "${module.keyvault.id}"
    assert secret["name"] == "${local.internal_ca_secret}"
    assert module_locals(PLATFORM)["internal_ca_secret"] == "platform-internal-ca-crt"
    assert secret["body"]["properties"]["value"] == tls.PLACEHOLDER
    # external-secrets' Azure provider overwrites only secrets tagged as its own.
    assert secret["tags"] == {"managed-by": "external-secrets"}
    # After creation the value is external-secrets': Terraform never writes the placeholder back.
    [lifecycle] = secret["lifecycle"]
    assert set(lifecycle["ignore_changes"]) == {"body", "tags"}


def test_external_secrets_may_write_that_one_secret_and_only_reads_the_rest_of_the_vault():
    platform = resources(PLATFORM)
    push = platform[("azurerm_role_assignment", "internal_ca_push")]
    assert push["scope"] == "${azapi_resource.internal_ca_secret.id}"
    assert push["role_definition_name"] == "Key Vault Secrets Officer"
    assert push["principal_id"] == '${azurerm_user_assigned_identity.workload["external-secrets"].principal_id}'
    roles = module_locals(PLATFORM)["workload_roles"]
    assert ('external-secrets-vault = {identity = "external-secrets", role = "Key Vault Secrets User", '
            "scope = module.keyvault.id}") in roles and "Officer" not in roles
    officers = [name for (rtype, name), body in platform.items()
                if rtype == "azurerm_role_assignment" and "Officer" in str(body.get("role_definition_name"))]
    assert officers == ["internal_ca_push"]


def test_the_app_reads_it_as_tls_extra_ca_pem_through_a_key_vault_reference_once_it_exists():
    wiring = blocks(PLATFORM, "module")["automation"]
    # Through the resource, not the local: the app's reference is set only after the secret exists.
    assert wiring["extra_ca_secret_name"] == "${azapi_resource.internal_ca_secret.name}"
    app = (AUTOMATION / "app.tf").read_text()
    assert "TLS_EXTRA_CA_PEM = var.extra_ca_secret_name" in app
    assert "TLS_EXTRA_CA_PEM" not in str(blocks(AUTOMATION, "variable")["key_vault_secret_settings"]["default"])
