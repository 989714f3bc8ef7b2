"""The internal CA's certificate leaves the cluster for the automation app (TLS_EXTRA_CA_PEM): only the
certificate, through the environment's Key Vault store, into the secret Terraform created and the app reads."""

from __future__ import annotations

import pytest

from .conftest import ENVS, find, platform, tf_locals


def configs(objects, env):
    if ("infrastructure/configs", env) not in objects:
        pytest.skip(f"infrastructure/configs/{env} does not build (see test_every_overlay_builds)")
    return objects[("infrastructure/configs", env)]


def push(objs):
    [push_secret] = find(objs, "PushSecret")
    return push_secret


@pytest.mark.parametrize("env", ENVS)
def test_the_push_secret_pushes_the_certificate_of_the_ca_the_internal_issuer_signs_with_never_its_key(objects, env):
    objs = configs(objects, env)
    spec = push(objs)["spec"]
    [ca] = find(objs, "Certificate", "platform-internal-ca")
    [issuer] = find(objs, "ClusterIssuer", "platform-internal-ca")
    assert ca["spec"]["isCA"] is True
    assert spec["selector"] == {"secret": {"name": ca["spec"]["secretName"]}}
    assert issuer["spec"]["ca"]["secretName"] == ca["spec"]["secretName"]
    assert push(objs)["metadata"]["namespace"] == ca["metadata"]["namespace"]
    # Only listed keys are pushed: the certificate alone, no bulk dataTo, no template that could add the key.
    assert [d["match"]["secretKey"] for d in spec["data"]] == ["tls.crt"]
    assert "dataTo" not in spec and "template" not in spec
    assert spec["updatePolicy"] == "Replace"  # a renewed CA replaces the old one
    assert spec.get("deletionPolicy", "None") == "None"  # Terraform owns the Key Vault secret


@pytest.mark.parametrize("env", ENVS)
def test_it_goes_through_the_environments_key_vault_store_into_the_secret_terraform_created(objects, env):
    objs = configs(objects, env)
    spec = push(objs)["spec"]
    assert spec["secretStoreRefs"] == [{"kind": "ClusterSecretStore", "name": "azure-key-vault"}]
    [store] = find(objs, "ClusterSecretStore", "azure-key-vault")
    assert store["spec"]["provider"]["azurekv"]["vaultUrl"].rstrip("/") == (
        f"https://{platform(env)['key_vault']['name']}.vault.azure.net")
    [data] = spec["data"]
    assert data["match"]["remoteRef"] == {"remoteKey": f"secret/{tf_locals('platform')['internal_ca_secret']}"}
