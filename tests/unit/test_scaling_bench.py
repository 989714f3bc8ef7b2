"""The scaling benchmark's reading of "no more node-hours than KEDA-like at an equal or better p95"."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "scaling_bench", Path(__file__).resolve().parents[2] / "bench" / "scaling.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def run(policy: tuple[float, float], keda: tuple[float, float], matched: tuple[float | None, float, float] | None):
    """(node-hours, p95) of the default policy and KEDA-like; (headroom, node-hours, p95) at KEDA-like's p95."""
    out = {"policies": {"policy": {"node_hours": policy[0], "wait_p95": policy[1]},
                        "keda": {"node_hours": keda[0], "wait_p95": keda[1]}}}
    out["matched"] = None if matched is None else {"headroom": matched[0], "node_hours": matched[1],
                                                   "wait_p95": matched[2]}
    return out


CASES = {
    "equal or better p95 at fewer node-hours is met": (run((8, 2), (11, 3), None), True, True),
    "both within the SLO at fewer node-hours is met although KEDA-like's p95 is lower":
        (run((2.5, 14), (7, 10), (None, 3.5, 12)), True, False),
    "at KEDA-like's p95 with more headroom and fewer node-hours is met":
        (run((9, 500), (31, 380), (4, 13, 370)), True, True),
    "outside the SLO and no headroom reaching KEDA-like's p95 is not met":
        (run((9, 500), (31, 380), (None, 13, 450)), False, False),
    "more node-hours than KEDA-like is not met even at a better p95": (run((12, 2), (11, 3), None), False, False),
}


@pytest.mark.parametrize("behaviour", sorted(CASES))
def test_keda_comparison(behaviour: str) -> None:
    data, ok, strict = CASES[behaviour]
    verdict = bench.keda_comparison(data, slo=30.0)
    assert (verdict["ok"], verdict["strict_ok"]) == (ok, strict), verdict["measured"]
