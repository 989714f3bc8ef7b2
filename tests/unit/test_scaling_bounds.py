"""GPU pool bounds proposals: the pure parts (signal, episode, plan, the platform.yaml edit), table-driven."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shared.services import gitops_change as gc
from shared.services.scaling import bounds as b

ROOT = Path(__file__).resolve().parents[2]
MIN = 60.0
P = b.BoundsParameters()


@pytest.mark.parametrize(("behaviour", "reason", "target", "wanted", "max_count", "expected"), [
    ("a scale-up clamped to max_count is capped", "ScaleUp", 4, 7, 4, b.CAPPED),
    ("a pool already at max_count that wants more is capped (Bounds)", "Bounds", 4, 9, 4, b.CAPPED),
    ("a wake-up clamped to max_count is capped", "WakeFromZero", 4, 6, 4, b.CAPPED),
    ("a step-limited scale-up that reaches max_count is capped", "ScaleUpCapped", 4, 20, 4, b.CAPPED),
    ("a step-limited scale-up still below max_count is only climbing", "ScaleUpCapped", 2, 20, 4, b.WITHIN),
    ("a need at max_count is within bounds", "ScaleUp", 4, 4, 4, b.WITHIN),
    ("holding or scaling down is within bounds", "Stabilizing", 4, 2, 4, b.WITHIN),
    ("stale or missing inputs say nothing", "InputStale", 4, None, 4, b.UNKNOWN),
    ("an override says nothing", "Override", 4, None, 4, b.UNKNOWN),
])
def test_what_one_decision_says_about_the_maximum(behaviour, reason, target, wanted, max_count, expected):
    assert b.signal(reason, target, wanted, max_count) == expected, behaviour


def _episode(*ticks: tuple[float, str, float | None], max_count: int = 4) -> b.Episode:
    ep = b.Episode()
    for at, sig, wanted in ticks:
        ep = b.track(ep, sig, wanted, max_count, at, P)
    return ep


@pytest.mark.parametrize(("behaviour", "ticks", "since", "peak", "wanted"), [
    ("the first capped tick starts an episode", [(0, b.CAPPED, 6)], 0, 6, 6),
    ("capped ticks extend it and keep the peak", [(0, b.CAPPED, 6), (15, b.CAPPED, 9), (30, b.CAPPED, 7)], 0, 9, 7),
    ("an uncapped tick inside the gap keeps it", [(0, b.CAPPED, 6), (15, b.WITHIN, 3), (30, b.CAPPED, 6)], 0, 6, 6),
    ("uncapped ticks past the gap end it", [(0, b.CAPPED, 6), (10 * MIN, b.WITHIN, 3)], None, 0, 0),
    ("a capped tick after a long pause starts a new one", [(0, b.CAPPED, 9), (10 * MIN, b.CAPPED, 5)],
     10 * MIN, 5, 5),
    ("unknown ticks neither extend nor end it", [(0, b.CAPPED, 6), (10 * MIN, b.UNKNOWN, None)], 0, 6, 6),
    ("a fractional need is rounded up", [(0, b.CAPPED, 5.2)], 0, 6, 6),
])
def test_the_episode_of_capped_ticks(behaviour, ticks, since, peak, wanted):
    ep = _episode(*ticks)
    assert (ep.since, ep.peak_wanted, ep.wanted) == (since, peak, wanted), behaviour


def test_a_new_declared_maximum_restarts_the_episode():
    ep = _episode((0, b.CAPPED, 6), (15, b.CAPPED, 7))
    again = b.track(ep, b.CAPPED, 9, 8, 30, P)
    assert (again.since, again.peak_wanted, again.max_count) == (30, 9, 8)


def test_the_episode_survives_a_json_round_trip():
    ep = _episode((0, b.CAPPED, 6), (15, b.CAPPED, 9))
    assert b.Episode.from_json(ep.to_json()) == ep


def _pool(name="h100", declared=4, since=0.0, last=None, peak=8, wanted=7, quota=False) -> b.PoolBounds:
    episode = b.Episode() if since is None else b.Episode(since, last if last is not None else NOW, peak, wanted,
                                                          declared)
    return b.PoolBounds(name, declared, episode, quota)


NOW = 40 * MIN
OLD = b.Proposal("h100", 4, 8, 7, 8, 0.0, 31 * MIN)


@pytest.mark.parametrize(("behaviour", "pools", "ledger", "dry_run", "reason", "proposed"), [
    ("no episode: nothing to propose", [_pool(since=None)], b.Ledger(), False, b.NOT_SUSTAINED, {}),
    ("capped for less than the sustained window: nothing yet", [_pool(since=NOW - 29 * MIN)], b.Ledger(), False,
     b.NOT_SUSTAINED, {}),
    ("capped for the sustained window: propose the peak", [_pool(since=NOW - 30 * MIN)], b.Ledger(), False,
     b.PROPOSE, {"h100": 8}),
    ("the proposal is at most twice the declared maximum", [_pool(peak=20)], b.Ledger(), False, b.PROPOSE,
     {"h100": 8}),
    ("an episode whose last capped tick is past the gap is over", [_pool(last=NOW - 6 * MIN)], b.Ledger(), False,
     b.NOT_SUSTAINED, {}),
    ("already proposed at least as high: nothing", [_pool()], b.Ledger((OLD,)), False, b.ALREADY_PROPOSED, {}),
    ("a higher need than proposed: proposed again", [_pool(declared=8, peak=12)],
     b.Ledger((b.Proposal("h100", 8, 10, 10, 10, 0.0, 31 * MIN),)), False, b.PROPOSE, {"h100": 12}),
    ("a proposal older than the refresh interval is made again", [_pool()],
     b.Ledger((b.Proposal("h100", 4, 8, 7, 8, 0.0, NOW - 25 * 3600),)), False, b.PROPOSE, {"h100": 8}),
    ("a dry run's proposal does not count for a real run", [_pool()],
     b.Ledger((b.Proposal("h100", 4, 8, 7, 8, 0.0, 31 * MIN, dry_run=True),)), False, b.PROPOSE, {"h100": 8}),
    ("a pool whose quota is exhausted is not proposed", [_pool(quota=True)], b.Ledger(), False, b.QUOTA_FIRST, {}),
    ("after a failure, wait until retry_at", [_pool()], b.Ledger(retry_at=NOW + 30), False, b.RETRY_LATER, {}),
    ("one change carries every standing proposal (one branch, one commit)", [_pool("mi300x", declared=1, peak=2)],
     b.Ledger((OLD,)), False, b.PROPOSE, {"h100": 8, "mi300x": 2}),
    ("a proposal made against another declared maximum is dropped", [_pool("h100", declared=8, since=None)],
     b.Ledger((OLD,)), False, b.NOT_SUSTAINED, {}),
])
def test_whether_to_propose_a_higher_maximum(behaviour, pools, ledger, dry_run, reason, proposed):
    decided = b.plan(pools, ledger, NOW, dry_run=dry_run, params=P)
    assert decided.reason == reason, (behaviour, decided.message)
    assert decided.propose == (reason == b.PROPOSE)
    assert {p.pool: p.proposed for p in decided.proposals} == proposed, behaviour


def test_a_dropped_proposal_is_not_kept_in_the_ledger():
    decided = b.plan([_pool("h100", declared=8, since=None)], b.Ledger((OLD,)), NOW)
    assert decided.kept == ()


def test_the_edit_raises_only_the_proposed_max_counts_and_keeps_comments():
    text = (ROOT / "infra/envs/dev-uaenorth/platform.yaml").read_text()
    after = b.raise_max_counts(text, [b.Proposal("h100", 4, 8, 7, 8, 0.0, NOW)])
    changed = [(x, y) for x, y in zip(text.splitlines(), after.splitlines(), strict=True) if x != y]
    assert changed == [("    max_count: 4", "    max_count: 8")]
    assert [p["max_count"] for p in yaml.safe_load(after)["gpu_pools"] if p["name"] == "h100"] == [8]


def test_the_edit_never_lowers_a_maximum_git_already_raised():
    text = (ROOT / "infra/envs/dev-uaenorth/platform.yaml").read_text()
    assert b.raise_max_counts(text, [b.Proposal("h100", 4, 3, 3, 3, 0.0, NOW)]) == text


def test_the_description_gives_the_numbers():
    request = b.change_request("prd-uaenorth", [b.Proposal("h100", 4, 8, 7, 9, 0.0, 45 * MIN)])
    assert (request.topic, request.env, request.auto_merge) == ("gpu-pool-bounds", "prd-uaenorth", False)
    assert request.rows == (("h100", "4", "8", "7", "9", "1970-01-01T00:00:00Z", "45 min"),)
    assert "30 minutes" in request.summary
    labels = gc.labels_for(request)
    assert "needs-review" in labels and "auto-merge" not in labels
