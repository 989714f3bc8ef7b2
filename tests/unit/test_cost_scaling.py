"""Scaling decisions priced from the one price source: simulator metrics, the table, the CLI."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from shared import cli, cli_scaling
from shared.services import cost_prices
from shared.services.scaling import simulator as sim

MODEL = sim.ServiceModel(prefill_tokens_per_second=1000, decode_tokens_per_second=10)
TRACE = sim.make_trace("t", [(t, 0, 40) for t in range(0, 600, 4)], duration=600)


def config(**kw) -> sim.SimConfig:
    return sim.SimConfig(slots_per_node=2, time_to_ready_seconds=100.0, slo_seconds=15.0, service=MODEL, **kw)


@pytest.fixture(scope="module")
def h100_price() -> float:
    return cost_prices.pool_price("dev-uaenorth", "h100")[1]


def test_every_policys_metrics_cost_its_node_hours_at_the_pools_price(h100_price) -> None:
    run = sim.run_scenario(sim.scenario("steady", TRACE), config=config(node_hour_price=h100_price))
    for m in run["policies"].values():
        assert m["cost"] == pytest.approx(m["node_hours"] * h100_price)
    assert "cost $" in sim.table([run]).splitlines()[0]


def test_without_a_price_the_metrics_leave_cost_out() -> None:
    run = sim.run_scenario(sim.scenario("steady", TRACE), config=config(), policies=["static"])
    assert run["policies"]["static"]["cost"] is None
    assert sim.table([run]).splitlines()[2].split()[8] == "-"


def test_simulate_prices_the_pool_it_is_asked_for_from_the_price_file(tmp_path, capsys) -> None:
    trace = tmp_path / "trace.csv"
    trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.68,374,44\n"
                     "2023-11-16 18:15:50.99,396,109\n", encoding="utf-8")
    assert cli.main(["scaling", "simulate", "--trace", str(trace), "--pool", "mi300x", "--policy", "static",
                     "--json"]) == 0
    m = json.loads(capsys.readouterr().out)["policies"]["static"]
    assert m["cost"] == pytest.approx(m["node_hours"] * cost_prices.pool_price("dev-uaenorth", "mi300x")[1])
    assert cli.main(["scaling", "simulate", "--trace", str(trace), "--pool", "nope"]) == 2


POOL_COST = {
    "ready and provisioning nodes are billed": (SimpleNamespace(ready=2, provisioning=1), 3),
    "an empty pool costs nothing": (SimpleNamespace(ready=0, provisioning=0), 0),
    "unknown nodes cost is not guessed": (None, None),
}


@pytest.mark.parametrize("behaviour", sorted(POOL_COST))
def test_status_prices_the_pool_as_it_is(behaviour: str, h100_price) -> None:
    obs, nodes = POOL_COST[behaviour]
    row = cli_scaling._pool_cost(cost_prices.load(), "uaenorth", "Standard_NC40ads_H100_v5", obs)
    assert row["billed_nodes"] == nodes
    assert row["cost_per_hour"] == (None if nodes is None else pytest.approx(nodes * h100_price))


def test_status_names_a_vm_size_without_a_price_instead_of_failing() -> None:
    row = cli_scaling._pool_cost(cost_prices.load(), "uaenorth", "Standard_Nope", SimpleNamespace(ready=1,
                                                                                                   provisioning=0))
    assert row["cost_per_hour"] is None and "vm-prices.yaml" in row["cost_note"]
