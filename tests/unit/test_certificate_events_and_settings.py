"""Key Vault certificate events parsed from the published schema (never raising), and the certificate
rotation settings in platform.yaml checked against the gitops side."""

import re
from pathlib import Path

import pytest
import yaml

from shared.errors import ConfigError
from shared.platform import ENVIRONMENTS, load_environment, parse_environment
from shared.services.certificates import CertificateEvent, Ignored, parse_event

ROOT = Path(__file__).resolve().parents[2]
VAULT = "kv-plat-dev-uaen"
TOPIC = f"/subscriptions/0000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/{VAULT}"
ID = f"https://{VAULT}.vault.azure.net/certificates/origin-dev-platform/0123456789abcdef0123456789abcdef"


def event(**changes):
    base = {"id": "e1", "type": "Microsoft.KeyVault.CertificateNearExpiry", "subject": "origin-dev-platform",
            "topic": TOPIC, "data": {"Id": ID, "VaultName": VAULT, "ObjectType": "Certificate",
                                     "ObjectName": "origin-dev-platform",
                                     "Version": "0123456789abcdef0123456789abcdef", "NBF": 1, "EXP": 2}}
    base.update(changes)
    return base


WANTED = CertificateEvent(id="e1", kind="CertificateNearExpiry", vault=VAULT, name="origin-dev-platform",
                          version="0123456789abcdef0123456789abcdef")

ACCEPTED = {
    "the Event Grid schema": event(),
    "keys with stray spaces, as in the published sample": event(data={
        " Id": ID, "VaultName ": VAULT, "ObjectType": "Certificate", "ObjectName ": "origin-dev-platform",
        " Version": "0123456789abcdef0123456789abcdef"}),
    "name and version only in Id": event(data={"Id": ID, "VaultName": VAULT}),
    "the vault only in the topic": event(data={"Id": ID}),
    "a CloudEvents source instead of a topic": {**{k: v for k, v in event().items() if k != "topic"},
                                                "source": TOPIC},
    "lower-case keys and unknown fields": event(data={"id": ID, "vaultname": VAULT, "objecttype": "certificate",
                                                      "extra": {"x": 1}}),
}


@pytest.mark.parametrize("raw", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_certificate_events_are_read_whatever_the_published_variant(raw):
    assert parse_event(raw, VAULT) == WANTED


def test_the_name_falls_back_to_the_subject_when_data_names_nothing():
    parsed = parse_event(event(data={"VaultName": VAULT}), VAULT)
    assert parsed == CertificateEvent("e1", "CertificateNearExpiry", VAULT, "origin-dev-platform", None)


IGNORED = {
    "another vault": (event(data={"Id": ID, "VaultName": "kv-other"}), "OtherVault"),
    "a secret event": (event(type="Microsoft.KeyVault.SecretNearExpiry"), "OtherEventType"),
    "a certificate event type carrying a key": (event(data={"VaultName": VAULT, "ObjectType": "Key"}),
                                                "OtherObjectType"),
    "a storage event": (event(type="Microsoft.Storage.BlobCreated"), "OtherEventType"),
    "no type": (event(type=None), "OtherEventType"),
    "no vault anywhere": (event(topic="", data={"ObjectName": "x"}), "Malformed"),
    "no name anywhere": (event(subject="", data={"VaultName": VAULT}), "Malformed"),
    "data that is a list": (event(topic="", data=[1, 2]), "Malformed"),
    "an Id that is a number": (event(topic="", subject="", data={"Id": 12}), "Malformed"),
}


@pytest.mark.parametrize("raw, reason", IGNORED.values(), ids=IGNORED.keys())
def test_foreign_and_malformed_events_are_ignored_with_a_reason(raw, reason):
    parsed = parse_event(raw, VAULT)
    assert isinstance(parsed, Ignored) and parsed.reason == reason and parsed.message


def test_parsing_never_raises_on_garbage():
    for raw in ({}, {"data": object()}, {"type": 5, "data": {"Id": object()}}, {"type": "Microsoft.KeyVault."
                                                                                "CertificateExpired", "data": 7}):
        assert isinstance(parse_event(raw, VAULT), CertificateEvent | Ignored)


def _refresh_interval_minutes() -> float:
    doc = yaml.safe_load((ROOT / "gitops/infrastructure/configs/base/secrets/origin-certificate.yaml").read_text())
    text = doc["spec"]["externalSecretSpec"]["refreshInterval"]
    total = 0.0
    for amount, unit in re.findall(r"(\d+(?:\.\d+)?)(h|m|s)", text):
        total += float(amount) * {"h": 60, "m": 1, "s": 1 / 60}[unit]
    assert total > 0, text
    return total


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_grace_period_outlasts_the_external_secrets_refresh_interval(env):
    rotation = load_environment(env).certificate_rotation
    assert rotation.grace_period_minutes > _refresh_interval_minutes()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_certificate_names_the_secrets_external_secrets_fills(env):
    for cert in load_environment(env).certificates:
        assert cert.synced_secrets, cert.name
        assert all(ref.endswith("/" + cert.name) for ref in cert.synced_secrets)
        assert "gateways/" + cert.name in cert.synced_secrets  # where the public Gateway serves it


def test_production_sweeps_orphans_as_a_dry_run_by_default():
    assert load_environment("prd-uaenorth").certificate_rotation.orphan_cleanup == "report"


def test_bad_certificate_rotation_settings_are_listed_as_problems():
    raw = yaml.safe_load((ROOT / "infra/envs/dev-uaenorth/platform.yaml").read_text())
    raw["certificate_rotation"] = {"grace_period_minutes": 0, "renew_lifetime_share": 1.5, "orphan_cleanup": "yes",
                                   "typo": 1}
    raw["certificates"][0]["synced_secrets"] = ["no-namespace"]
    with pytest.raises(ConfigError) as caught:
        parse_environment(raw)
    text = "\n".join(caught.value.problems)
    for needle in ("grace_period_minutes", "renew_lifetime_share", "orphan_cleanup", "typo", "synced_secrets"):
        assert needle in text


def test_the_event_grid_function_has_the_name_events_tf_subscribes():
    import json
    import subprocess
    import sys

    variables = (ROOT / "infra/modules/automation/variables.tf").read_text()
    block = variables[variables.index('variable "certificate_event_function"'):]
    subscribed = re.search(r'default\s*=\s*"([^"]+)"', block).group(1)
    code = ("import json, function_app\n"
            "print(json.dumps({f.get_function_name(): [b['type'] for b in json.loads(f.get_function_json())"
            "['bindings']] for f in function_app.app.get_functions()}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    functions = json.loads(out.stdout.strip().splitlines()[-1])
    assert "eventGridTrigger" in functions[subscribed]
    assert functions["certificate_daily_check"] == ["timerTrigger"]
