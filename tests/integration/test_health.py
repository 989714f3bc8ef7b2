"""GET /api/health through the real app served by the local host."""

import pytest
import requests

from shared.context import Context, set_context
from shared.credentials import StaticTokenCredential
from shared.local.host import LocalHost
from shared.settings import Settings

pytestmark = pytest.mark.integration
TOKEN = "cf-health-test-token-value"


@pytest.fixture(scope="module")
def app_url(azurite):
    import function_app
    from shared.adapters.storage import AzureStorage

    # The app has queue-triggered functions (drift), which the host polls from Azurite.
    storage = AzureStorage(connection_string=azurite.connection_string)
    host = LocalHost(function_app.app, port=0, run_timers=False, storage=storage)
    url = host.start()
    yield url
    host.stop()
    set_context(None)


def use_settings(environ):
    try:
        settings = Settings.from_env(environ)
    except Exception as exc:  # the app will hit the same error on first use
        set_context(None)
        return exc
    from shared.platform import load_environment

    set_context(Context(settings=settings, platform=load_environment(settings.env),
                        credential=StaticTokenCredential()))
    return None


def test_health_reports_version_environment_and_configured_dependencies_without_secrets(app_url, azurite):
    use_settings({"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
                  "CLOUDFLARE_API_TOKEN": TOKEN})
    r = requests.get(f"{app_url}/api/health", timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["environment"] == "dev-uaenorth" and body["version"]
    assert body["dependencies"]["cloudflare"]["configured"] is True
    assert body["dependencies"]["gitlab"]["configured"] is False
    assert body["gpu_pools"] == ["h100", "mi300x"]
    assert TOKEN not in r.text and "AccountKey" not in r.text
    assert r.headers["x-correlation-id"]


def test_health_answers_503_listing_every_problem_when_settings_are_bad(app_url, monkeypatch):
    set_context(None)
    monkeypatch.setenv("PLATFORM_ENV", "production")
    monkeypatch.delenv("PLATFORM_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("PLATFORM_STORAGE_ACCOUNT", raising=False)
    r = requests.get(f"{app_url}/api/health", timeout=5)
    assert r.status_code == 503
    problems = r.json()["problems"]
    assert any("PLATFORM_ENV" in p for p in problems) and any("PLATFORM_STORAGE" in p for p in problems)
    set_context(None)


def test_an_oversized_body_is_refused_before_the_function_runs(app_url, azurite):
    use_settings({"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string})
    r = requests.get(f"{app_url}/api/health", data=b"x" * (256 * 1024 + 1), timeout=5)
    assert r.status_code == 413 and r.json()["error"] == "PayloadTooLarge"
