"""The one price source: parsed once, covering every VM size platform.yaml declares, feeding OpenCost."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from shared.services import cost_prices

ROOT = Path(__file__).resolve().parents[2]
ENVS = sorted(p.parent.name for p in (ROOT / "infra" / "envs").glob("*/platform.yaml"))


@pytest.fixture(scope="module")
def book() -> cost_prices.PriceBook:
    return cost_prices.load()


def declared_vm_sizes(env: str) -> tuple[str, set[str]]:
    raw = yaml.safe_load((ROOT / "infra" / "envs" / env / "platform.yaml").read_text())
    sizes = {p["vm_size"] for p in raw["gpu_pools"]}
    sizes |= {raw["cluster"][pool]["vm_size"] for pool in ("system_pool", "cpu_pool")}
    return raw["location"], sizes


@pytest.mark.parametrize("env", ENVS)
def test_every_vm_size_an_environment_declares_has_a_price_in_its_location(book, env: str) -> None:
    location, sizes = declared_vm_sizes(env)
    missing = sorted(s for s in sizes if s not in book.regions.get(location, {}))
    assert not missing, f"{env}: no price in {location} for {missing}"


@pytest.mark.parametrize("env", ENVS)
def test_opencost_rates_are_fitted_for_the_region_every_environment_runs_in(env: str) -> None:
    location, _ = declared_vm_sizes(env)
    assert location == cost_prices.OPENCOST_REGION


def test_the_price_file_carries_its_date_and_says_which_prices_are_estimates(book) -> None:
    assert isinstance(book.as_of, dt.date) and book.currency == "USD"
    assert "as of" in book.label() and ("estimates" in book.label()) == book.has_estimates


def test_opencost_custom_pricing_is_generated_from_the_price_file_and_current(book) -> None:
    expected = cost_prices.render_opencost_env(book, cost_prices.OPENCOST_REGION)
    assert cost_prices.OPENCOST_ENV.read_text() == expected, \
        "stale: run .venv/bin/python -m shared.services.cost_prices --write"


def test_opencost_prices_general_purpose_sizes_within_one_percent_and_gpu_sizes_within_fifteen(book) -> None:
    rates = cost_prices.opencost_rates(book, cost_prices.OPENCOST_REGION)
    for size, ratio in rates.fit.items():
        gpus = book.price(cost_prices.OPENCOST_REGION, size).gpus
        assert ratio == pytest.approx(1.0, abs=0.01 if gpus == 0 else 0.15), size


def test_the_opencost_config_map_holds_only_fields_opencost_accepts() -> None:
    # OpenCost rejects the whole ConfigMap update on a key that is not a CustomPricing field.
    keys = {line.split("=", 1)[0] for line in cost_prices.OPENCOST_ENV.read_text().splitlines()
            if line and not line.startswith("#")}
    assert keys == {"provider", "description", "currencyCode", "CPU", "RAM", "GPU"}


def test_cost_is_node_hours_times_the_sizes_hourly_price(book) -> None:
    price = book.hourly("uaenorth", "Standard_NC40ads_H100_v5")
    assert book.cost("uaenorth", "Standard_NC40ads_H100_v5", 2.5) == pytest.approx(2.5 * price)


def test_a_size_without_a_price_names_the_file_to_add_it_to(book) -> None:
    with pytest.raises(cost_prices.PriceMissing, match=r"vm-prices\.yaml"):
        book.hourly("uaenorth", "Standard_Nope")


GOOD = {"hourly": 1.0, "vcpus": 2, "memory_gib": 8, "gpus": 0, "estimate": False}
INVALID = {
    "a file without a date": ({"currency": "USD", "regions": {"r": {"S": GOOD}}}, "as_of"),
    "a date that is not one": ({"as_of": "soon", "currency": "USD", "regions": {"r": {"S": GOOD}}}, "as_of"),
    "a price that is not positive": ({"as_of": "2026-01-01", "currency": "USD",
                                      "regions": {"r": {"S": {**GOOD, "hourly": 0}}}}, "hourly"),
    "a price that does not say whether it is an estimate": (
        {"as_of": "2026-01-01", "currency": "USD",
         "regions": {"r": {"S": {k: v for k, v in GOOD.items() if k != "estimate"}}}}, "estimate"),
    "no regions": ({"as_of": "2026-01-01", "currency": "USD"}, "regions"),
}


@pytest.mark.parametrize("behaviour", sorted(INVALID))
def test_an_invalid_price_file_is_refused_naming_the_field(behaviour: str) -> None:
    raw, field = INVALID[behaviour]
    with pytest.raises(ValueError, match=field):
        cost_prices.parse(raw)
