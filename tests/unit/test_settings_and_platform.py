import json
import re
from pathlib import Path

import pytest
import yaml

from shared.errors import ConfigError
from shared.platform import ENVIRONMENTS, load_environment, parse_environment
from shared.settings import SETTINGS_DOC, Settings

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true"}


def test_good_settings_parse_with_defaults():
    settings = Settings.from_env(GOOD)
    assert settings.env == "dev-uaenorth"
    assert settings.arm_endpoint == "https://management.azure.com"
    assert settings.credential_mode == "default"


def test_bad_settings_give_one_error_listing_every_problem_and_the_expected_form():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"PLATFORM_ENV": "prod", "AZURE_CREDENTIAL": "magic", "ARM_ENDPOINT": "nope",
                           "SDK_MAX_RETRIES": "many", "LOG_LEVEL": "LOUD", "TLS_CA_BUNDLE": "/no/such.pem"})
    problems = caught.value.problems
    assert len(problems) == 7, problems
    text = str(caught.value)
    for expected in ("PLATFORM_ENV: expected one of dev-uaenorth", "set exactly one", "AZURE_CREDENTIAL",
                     "ARM_ENDPOINT: expected an http(s) URL", "SDK_MAX_RETRIES", "LOG_LEVEL", "TLS_CA_BUNDLE"):
        assert expected in text


def test_secret_settings_never_appear_in_the_repr():
    settings = Settings.from_env({**GOOD, "CLOUDFLARE_API_TOKEN": "cf-token-value-123"})
    assert "cf-token-value-123" not in repr(settings)
    assert settings.configured()["cloudflare"] is True


def test_a_retired_teams_connector_url_is_refused_and_a_bad_webhook_url_is_not_echoed():
    connector = "https://contoso.webhook.office.com/webhookb2/0000@1111/IncomingWebhook/abc/def"
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({**GOOD, "CHAT_NOTIFY_TEAMS_WEBHOOK_URL": connector,
                           "CHAT_NOTIFY_SLACK_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/s3cr3t-part"})
    text = str(caught.value)
    assert "CHAT_NOTIFY_TEAMS_WEBHOOK_URL: an Office 365 connector webhook" in text and "Workflows webhook" in text
    assert "CHAT_NOTIFY_SLACK_WEBHOOK_URL: expected an http(s) URL" in text
    assert "abc/def" not in text and "s3cr3t-part" not in text
    workflow = ("https://prod-00.uaenorth.logic.azure.com/powerautomate/automations/direct/workflows/abc/triggers/"
                "manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=xyz")
    assert Settings.from_env({**GOOD, "CHAT_NOTIFY_TEAMS_WEBHOOK_URL": workflow}).chat_notify_teams_webhook_url


def test_the_sample_settings_list_every_setting_with_no_secret_values():
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    assert set(SETTINGS_DOC) <= set(sample), set(SETTINGS_DOC) - set(sample)
    for name, (_, secret, _) in SETTINGS_DOC.items():
        if secret:
            assert sample[name] in ("", "UseDevelopmentStorage=true") or sample[name].startswith("<"), name


def test_the_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in SETTINGS_DOC if not re.search(rf"`{name}`", readme)]
    assert not missing, f"README.md does not document: {missing}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_platform_file_is_valid(env):
    platform = load_environment(env)
    assert platform.name == env
    assert {p.vendor for p in platform.gpu_pools} == {"nvidia", "amd"}
    assert platform.certificates


def test_a_broken_platform_file_lists_every_problem():
    raw = yaml.safe_load((ROOT / "infra/envs/dev-uaenorth/platform.yaml").read_text())
    raw["subscription_id"] = "not-a-guid"
    raw["gpu_pools"][0]["min_count"] = 9
    raw["certificates"][0]["validity_days"] = 100
    del raw["gitlab"]
    with pytest.raises(ConfigError) as caught:
        parse_environment(raw, expected_name="dev-uaenorth")
    text = str(caught.value)
    assert "subscription_id must be a GUID" in text
    assert "min_count 9 > max_count" in text
    assert "validity_days 100 is not one Cloudflare accepts" in text
    assert "missing 'gitlab'" in text
    assert len(caught.value.problems) == 4
