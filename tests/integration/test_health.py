"""GET /api/health (anonymous) and /api/health/details (function key) through the real app served by the
local host, and the bounded dependency probes on the sandbox."""

import time

import pytest
import requests

from shared import __version__
from shared.context import Context, set_context
from shared.credentials import StaticTokenCredential
from shared.local.host import LocalHost
from shared.local.sandbox import Fault
from shared.services import health
from shared.settings import Settings

pytestmark = pytest.mark.integration
TOKEN = "cf-health-test-token-value"
KEY = "local-function-key-for-health-tests"


@pytest.fixture(scope="module")
def app_url(azurite):
    import function_app
    from shared.adapters.storage import AzureStorage

    # The app has queue-triggered functions (drift), which the host polls from Azurite.
    storage = AzureStorage(connection_string=azurite.connection_string)
    host = LocalHost(function_app.app, port=0, run_timers=False, storage=storage, function_key=KEY)
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


@pytest.fixture
def bad_settings(monkeypatch):
    set_context(None)
    monkeypatch.setenv("PLATFORM_ENV", "production")
    monkeypatch.delenv("PLATFORM_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.delenv("PLATFORM_STORAGE_ACCOUNT", raising=False)
    yield
    set_context(None)


def names_of_the_estate(platform) -> list[str]:
    """What an anonymous caller must not learn: the environment and every resource it names."""
    return [platform.name, platform.resource_group, platform.cluster_name, platform.key_vault_url,
            platform.gitlab.url, *(pool.name for pool in platform.gpu_pools),
            *(cert.name for cert in platform.certificates)]


def test_anonymous_health_answers_status_and_version_only(app_url, azurite, dev_platform):
    use_settings({"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
                  "CLOUDFLARE_API_TOKEN": TOKEN})
    r = requests.get(f"{app_url}/api/health", timeout=5)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": __version__}
    assert [name for name in names_of_the_estate(dev_platform) if name in r.text] == []
    assert r.headers["x-correlation-id"]


def test_anonymous_health_answers_503_without_naming_a_problem_when_settings_are_bad(app_url, bad_settings):
    r = requests.get(f"{app_url}/api/health", timeout=5)
    assert r.status_code == 503
    assert r.json() == {"status": "unhealthy", "version": __version__}


def test_details_report_version_environment_and_configured_dependencies_without_secrets(app_url, azurite):
    use_settings({"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
                  "CLOUDFLARE_API_TOKEN": TOKEN})
    r = requests.get(f"{app_url}/api/health/details", headers={"x-functions-key": KEY}, timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["environment"] == "dev-uaenorth" and body["version"]
    assert body["dependencies"]["cloudflare"]["configured"] is True
    assert body["dependencies"]["gitlab"]["configured"] is False
    assert body["gpu_pools"] == ["h100", "mi300x"]
    assert "probes" not in body  # probes only on request: the details stay cheap
    assert TOKEN not in r.text and "AccountKey" not in r.text


@pytest.mark.parametrize(
    ("how", "headers", "query", "status"),
    [
        pytest.param("no key", {}, "", 401, id="without a key the details are refused"),
        pytest.param("a wrong key", {"x-functions-key": "not-the-key"}, "", 401,
                     id="a wrong key is refused"),
        pytest.param("the key as a header", {"x-functions-key": KEY}, "", 200,
                     id="the key in x-functions-key opens the details"),
        pytest.param("the key in the query", {}, f"?code={KEY}", 200, id="the key as ?code= opens the details"),
    ],
)
def test_the_details_need_the_function_key(app_url, azurite, how, headers, query, status):
    use_settings({"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string})
    r = requests.get(f"{app_url}/api/health/details{query}", headers=headers, timeout=5)
    assert r.status_code == status, how
    if status == 401:
        assert r.content == b""


def test_details_answer_503_listing_every_problem_when_settings_are_bad(app_url, bad_settings):
    r = requests.get(f"{app_url}/api/health/details", headers={"x-functions-key": KEY}, timeout=5)
    assert r.status_code == 503
    problems = r.json()["problems"]
    assert any("PLATFORM_ENV" in p for p in problems) and any("PLATFORM_STORAGE" in p for p in problems)


def test_an_oversized_body_is_refused_before_the_function_runs(app_url, azurite):
    use_settings({"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string})
    r = requests.get(f"{app_url}/api/health", data=b"x" * (256 * 1024 + 1), timeout=5)
    assert r.status_code == 413 and r.json()["error"] == "PayloadTooLarge"


# -- probes: one cheap read per dependency, each bounded ---------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox_context(azurite, tmp_path_factory):
    """A context on the whole sandbox (every dependency configured), with SDK timeouts well above the
    probe bound so that only the bound can cut a slow answer short."""
    from shared.local.sandbox import Sandbox
    from shared.platform import load_environment

    platform = load_environment("dev-uaenorth")
    sandbox = Sandbox(platform, tmp_path_factory.mktemp("sandbox"))
    environ = {"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
               "SDK_MAX_RETRIES": "0", "HTTP_TIMEOUT_SECONDS": "20", **sandbox.start()}
    context = Context(settings=Settings.from_env(environ), platform=platform, credential=StaticTokenCredential())
    health.probe(context, timeout=30)  # build every adapter (SDK imports) before anything is timed
    yield context, sandbox
    sandbox.stop()


def test_every_configured_dependency_is_probed_and_ok_on_the_sandbox(sandbox_context):
    context, _ = sandbox_context
    statuses = {s.name: s for s in health.probe(context, timeout=10)}
    assert {name: s.status for name, s in statuses.items()} == {
        "storage": "ok", "aks": "ok", "keyvault": "ok", "cloudflare": "ok", "kubernetes": "ok", "gitlab": "ok"}


def test_a_hung_dependency_is_degraded_within_the_bound_and_the_call_does_not_wait_for_it(sandbox_context, caplog):
    context, sandbox = sandbox_context
    sandbox.gitlab.inject(Fault(status=None, delay=6, path="/api/v4/projects"))
    try:
        start = time.monotonic()
        statuses = {s.name: s for s in health.probe(context, timeout=1.0)}
        elapsed = time.monotonic() - start
    finally:
        sandbox.gitlab.clear_faults()
    assert elapsed < 2.5, f"probe took {elapsed:.1f}s with a 1s bound"
    gitlab = statuses["gitlab"]
    assert (gitlab.status, gitlab.reachable) == ("degraded", False)
    assert "no answer within 1s" in gitlab.detail and gitlab.seconds == pytest.approx(1.0, abs=0.5)
    assert all(s.status == "ok" for name, s in statuses.items() if name != "gitlab")
    assert not [r for r in caplog.records if r.exc_info], "a hung probe must not log a traceback"


def test_details_with_probes_report_each_dependency_and_a_hung_one_as_degraded(app_url, sandbox_context,
                                                                              monkeypatch):
    context, sandbox = sandbox_context
    monkeypatch.setattr(health, "PROBE_TIMEOUT_SECONDS", 1.0)
    set_context(context)
    try:
        r = requests.get(f"{app_url}/api/health/details?probe=true", headers={"x-functions-key": KEY}, timeout=30)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        assert {p["name"]: p["status"] for p in r.json()["probes"]} == {
            "storage": "ok", "aks": "ok", "keyvault": "ok", "cloudflare": "ok", "kubernetes": "ok", "gitlab": "ok"}
        sandbox.keyvault.inject(Fault(status=None, delay=health.PROBE_TIMEOUT_SECONDS + 3, path="certificates"))
        start = time.monotonic()
        r = requests.get(f"{app_url}/api/health/details?probe=true", headers={"x-functions-key": KEY}, timeout=30)
        assert time.monotonic() - start < health.PROBE_TIMEOUT_SECONDS + 2
    finally:
        sandbox.keyvault.clear_faults()
        set_context(None)
    body = r.json()
    assert r.status_code == 200 and body["status"] == "degraded"
    keyvault = next(p for p in body["probes"] if p["name"] == "keyvault")
    assert keyvault["status"] == "degraded" and "no answer within" in keyvault["detail"]
