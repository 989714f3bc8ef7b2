"""`platformctl cost` and the monthly summary against the OpenCost emulator (OpenCost's published allocation
API on loopback), priced from the platform's price file."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests

from shared import cli
from shared.adapters.opencost import OpenCostClient
from shared.context import Context
from shared.credentials import StaticTokenCredential
from shared.errors import PermanentError
from shared.local.sandbox.opencost import OpenCostEmulator
from shared.services import chat_notify, cost, cost_prices
from shared.settings import Settings

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
#: What the route's JWT check admits: the sandbox credential's token (StaticTokenCredential).
AUTH = {"Authorization": "Bearer sandbox-token"}


@pytest.fixture(scope="module")
def opencost(dev_platform):
    emulator = OpenCostEmulator(dev_platform, now=lambda: NOW, roleless_tokens=frozenset({"no-role"}))
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def environ(opencost, monkeypatch):
    opencost.clear_faults()
    values = {"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": "UseDevelopmentStorage=true",
              "SDK_MAX_RETRIES": "0", "HTTP_TIMEOUT_SECONDS": "5", "AZURE_CREDENTIAL": "static",
              **opencost.settings_env()}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def run(capsys, *argv: str) -> tuple[int, object]:
    code = cli.main(list(argv))
    out = capsys.readouterr().out
    return code, (json.loads(out) if "--json" in argv and out.strip() else out)


def test_cost_by_namespace_puts_the_gpu_serving_namespace_first_and_idle_apart(environ, capsys):
    code, data = run(capsys, "cost", "--since", "7d", "--json")
    assert code == 0 and data["env"] == "dev-uaenorth" and data["aggregate"] == "namespace"
    names = [line["name"] for line in data["lines"]]
    assert names[0] == "model-serving" and {"qdrant", "mlflow", "monitoring"} <= set(names)
    assert "__idle__" not in names and data["idle"]["name"] == "__idle__"
    assert data["total"] == pytest.approx(data["allocated"] + data["idle"]["total"], abs=0.02)
    start, end = (dt.datetime.fromisoformat(data["window"][k].replace("Z", "+00:00")) for k in ("start", "end"))
    assert end - start == dt.timedelta(days=7)
    assert "as of" in data["prices"]


def test_cost_by_label_groups_workloads_by_team_model_or_tenant(environ, capsys):
    code, data = run(capsys, "cost", "--by", "label:model", "--since", "24h", "--json")
    assert code == 0
    assert {line["name"] for line in data["lines"]} == {"platform-llm", "__unallocated__"}


def test_the_text_report_names_idle_capacity_and_the_price_source(environ, capsys):
    code, text = run(capsys, "cost", "--since", "month")
    assert code == 0 and "(idle capacity)" in text and "model-serving" in text and "list prices as of" in text


def test_gpu_cost_is_the_price_files_gpu_rate_times_gpu_hours(opencost, dev_platform):
    sets = cost_prices.opencost_rates(cost_prices.load(), dev_platform.location)
    body = requests.get(f"{opencost.base_url}/allocation/compute?window=1h&aggregate=namespace&accumulate=true",
                        headers=AUTH, timeout=5).json()
    serving = body["data"][0]["model-serving"]
    assert body["code"] == 200 and body["status"] == "success"
    assert serving["gpuCost"] == pytest.approx(serving["gpuHours"] * sets.gpu)


@pytest.mark.parametrize("query", ["window=soon&aggregate=namespace", "window=7d&aggregate=flavour"])
def test_the_emulator_refuses_a_bad_window_or_aggregate_as_opencost_does(opencost, query):
    answer = requests.get(f"{opencost.base_url}/allocation?{query}", headers=AUTH, timeout=5)
    assert answer.status_code == 400 and answer.text.startswith("Invalid '")


CLI_FAILURES = {
    "a --since that is no time is bad input": ((), ("--since", "yesterday-ish"), 2),
    "opencost unavailable is a temporary failure": ({"status": 503, "times": None}, ("--since", "7d"), 1),
    "opencost refusing the path is a permanent failure": ({"status": 404, "times": None}, ("--since", "7d"), 1),
}


@pytest.mark.parametrize("behaviour", sorted(CLI_FAILURES))
def test_cost_failures_exit_with_the_errors_meaning(behaviour, environ, opencost, capsys):
    fault, args, code = CLI_FAILURES[behaviour]
    if fault:
        opencost.inject(**fault, path="/allocation")
    assert run(capsys, "cost", *args, "--json")[0] == code


# -- the credential OpenCost's internal route requires ----------------------------------------

@pytest.fixture
def route(opencost):
    """The emulator as the internal route in front of OpenCost, without faults other tests left."""
    opencost.clear_faults()
    return opencost


def test_the_adapter_asks_its_credential_for_opencosts_audience_at_the_first_request_and_is_admitted(route):
    credential = StaticTokenCredential()
    client = OpenCostClient(route.base_url, credential=credential, audience=route.audience)
    assert credential.scopes == []  # lazily: building the client asks for nothing
    [allocations] = client.allocation(window="1h", aggregate="namespace")
    assert "model-serving" in allocations
    assert credential.scopes == [f"{route.audience}/.default"]


CREDENTIAL_REFUSALS = {
    "without a credential the route refuses with 401": (None, None, 401),
    "with a token the route cannot verify it refuses with 401": (StaticTokenCredential("stolen"), "api://other", 401),
    "with a token lacking the app role it refuses with 403": (StaticTokenCredential("no-role"), "api://x", 403),
}


@pytest.mark.parametrize("behaviour", sorted(CREDENTIAL_REFUSALS))
def test_opencosts_route_refuses_the_adapter_and_the_error_names_the_audience_setting(behaviour, route):
    credential, audience, status = CREDENTIAL_REFUSALS[behaviour]
    client = OpenCostClient(route.base_url, credential=credential, audience=audience)
    with pytest.raises(PermanentError) as refused:
        client.allocation(window="1h", aggregate="namespace")
    assert f"({status}:" in str(refused.value) and "OPENCOST_AUDIENCE" in refused.value.remediation
    assert "stolen" not in str(refused.value) and "no-role" not in str(refused.value)


def test_a_token_never_goes_over_plain_http_beyond_loopback():
    with pytest.raises(PermanentError, match="https"):
        OpenCostClient("http://opencost.dev.platform.example.com", credential=StaticTokenCredential(),
                       audience="api://platform-opencost-dev-uaenorth")


def test_cost_without_opencost_configured_says_which_setting(environ, monkeypatch, capsys):
    monkeypatch.delenv("OPENCOST_URL")
    code, data = run(capsys, "cost", "--json")
    assert code == 1 and "OPENCOST_URL" in data["message"]


# -- the monthly summary --------------------------------------------------------------------

@pytest.fixture
def ctx(opencost, azurite, dev_platform, storage):
    settings = Settings.from_env({"PLATFORM_ENV": "dev-uaenorth",
                                  "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
                                  "HTTP_TIMEOUT_SECONDS": "5", "AZURE_CREDENTIAL": "static",
                                  **opencost.settings_env()})
    return Context(settings=settings, platform=dev_platform, clock=lambda: NOW)


def test_the_monthly_summary_with_no_chat_channel_configured_is_audited_not_posted(ctx):
    # No CHAT_NOTIFY_* webhook in these settings: the real chat_notify delivers nowhere. (December's summary: the
    # month is claimed once per environment, and the posting test below owns November's.)
    january = dt.datetime(2027, 1, 1, 8, 0, tzinfo=dt.UTC)
    assert cost.post_monthly_summary(ctx, now=january) == "no-channel"
    [record] = ctx.state.audit_trail("cost/dev-uaenorth/2026-12", until=january + dt.timedelta(days=1))
    assert (record.reason, record.outcome) == ("MonthlyCostSummary", "skipped")


def test_the_monthly_summary_posts_last_month_once_through_chat_notify(ctx, monkeypatch):
    posts: list[tuple[str, str | None]] = []

    def post(context, text: str, *, env: str | None = None) -> bool:  # chat_notify's contract (issue 13)
        posts.append((text, env))
        return True

    monkeypatch.setattr(chat_notify, "post", post)
    first = cost.post_monthly_summary(ctx, now=NOW)
    again = cost.post_monthly_summary(ctx, now=NOW + dt.timedelta(minutes=5))
    assert (first, again) == ("posted", "already-posted")
    [(text, env)] = posts
    assert env == "dev-uaenorth" and "2026-11-01 to 2026-12-01" in text and "model-serving" in text
