"""GPU pool bounds proposals end to end: the scaling tick (Azurite, the ARM and Kubernetes emulators) keeps
wanting more than max_count, and the raise is proposed in the GitLab emulator through the real python-gitlab."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib

import pytest

from shared.context import Context
from shared.credentials import StaticTokenCredential
from shared.local.sandbox import Sandbox
from shared.services.scaling import bounds
from shared.services.scaling import tick as scaling
from shared.settings import Settings

pytestmark = pytest.mark.integration
T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
ON = scaling.Switches(enabled=True, dry_run=False, drain_timeout_seconds=600)
BRANCH = "platform-bot/gpu-pool-bounds/dev-uaenorth"
PLATFORM_PATH = "infra/envs/dev-uaenorth/platform.yaml"
STEP = dt.timedelta(minutes=4)  # a tick every 4 minutes: inside the 5-minute gap, few requests to send


@pytest.fixture(scope="module")
def sandbox(dev_platform, tmp_path_factory):
    with Sandbox(dev_platform, tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture
def ctx(sandbox, azurite, dev_platform):
    for emulator in (sandbox.arm, sandbox.kubernetes, sandbox.gitlab):
        emulator.reset()
    # Service time 10 min (a prior: no completions counter), so a few requests a minute need more than the
    # declared 4 nodes; max_count stays as git declares it.
    h100 = dataclasses.replace(dev_platform.gpu_pools[0], fallback_pool=None,
                               scaling=(("service_seconds", 600.0),))
    platform = dataclasses.replace(dev_platform, gpu_pools=(h100, *dev_platform.gpu_pools[1:]))
    environ = {"PLATFORM_ENV": "dev-uaenorth", "PLATFORM_STORAGE_CONNECTION_STRING": azurite.connection_string,
               "SDK_MAX_RETRIES": "0", "HTTP_TIMEOUT_SECONDS": "5", **sandbox.settings_env()}
    context = Context(settings=Settings.from_env(environ), platform=platform, credential=StaticTokenCredential(),
                      clock=lambda: dt.datetime.now(dt.UTC))
    context.started = dt.datetime.now(dt.UTC) - dt.timedelta(milliseconds=1)
    for row in [p.name for p in platform.gpu_pools] + [bounds.LEDGER_ROW]:
        context.storage.delete(scaling.STATE_TABLE, platform.name, row)
    _empty(azurite, h100.inference_queue)
    return context


def _empty(azurite, queue: str) -> None:
    """The previous test's requests gone, in one Clear Messages call (receiving and deleting them one by one
    took seconds)."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.queue import QueueClient

    with QueueClient.from_connection_string(azurite.connection_string, queue) as client:
        try:
            client.clear_messages()
        except ResourceNotFoundError:
            pass  # no test has sent to it yet


def _run(ctx, ticks: range, switches=ON, per_tick: int = 25):
    """Ticks at T0 + i x STEP, each after ``per_tick`` new requests; returns the last tick's results."""
    pool = ctx.platform.gpu_pools[0]
    results = []
    for i in ticks:
        for n in range(per_tick):
            ctx.storage.send(pool.inference_queue, f'{{"prompt": "{i}-{n}"}}')
        results = scaling.tick(ctx, now=T0 + i * STEP, switches=switches, pools=[pool.name])
    return results


def _mrs(ctx):
    return ctx.git.find_open_merge_request(BRANCH, ctx.platform.gitlab.default_branch)


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]


def test_a_pool_capped_at_max_count_for_30_minutes_gets_one_merge_request_raising_it(ctx, sandbox):
    # The pool wakes at 0 min; from 4 min on the policy wants more than max_count (4) and gets 4.
    results = _run(ctx, range(0, 9))  # 0..32 min
    assert results[0].reason == "Bounds" and results[0].target == 4
    episode = results[0].inputs["bounds"]["episode"]
    assert episode["since"] == (T0 + STEP).timestamp() and episode["peak_wanted"] > 4, results[0].inputs
    assert _mrs(ctx) is None, "capped for 28 minutes: nothing proposed yet"

    _run(ctx, range(9, 10))  # 36 min: capped for 32 minutes
    mr = _mrs(ctx)
    assert mr is not None and mr.source_branch == BRANCH
    assert {"platform-bot", "gpu-scaling", "topic::gpu-pool-bounds", "env::dev-uaenorth"} <= set(mr.labels)
    ledger = bounds.load_ledger(ctx.storage, "dev-uaenorth")
    (proposal,) = ledger.proposals
    assert (proposal.pool, proposal.declared) == ("h100", 4) and 4 < proposal.proposed <= 8
    assert f"| h100 | 4 | {proposal.proposed} | {proposal.wanted} | {proposal.peak} | 2026-11-29T12:" in mr.description
    main = sandbox.gitlab.file("main", PLATFORM_PATH)
    assert changed_lines(main, sandbox.gitlab.file(BRANCH, PLATFORM_PATH)) == [
        "-    max_count: 4", f"+    max_count: {proposal.proposed}"]
    records = ctx.state.audit_trail("gpuscaling/dev-uaenorth/bounds", since=ctx.started)
    assert [(r.action, r.outcome) for r in records] == [("propose_bounds", "succeeded")]

    # Later ticks while it stays capped: the proposal stands, GitLab is not asked again.
    head = sandbox.gitlab.head(BRANCH)
    before = len(sandbox.gitlab.requests)
    _run(ctx, range(10, 12))
    assert sandbox.gitlab.head(BRANCH) == head and len(sandbox.gitlab.requests) == before


def test_a_gitlab_outage_never_fails_the_tick_and_the_proposal_follows_on_a_later_tick(ctx, sandbox):
    _run(ctx, range(0, 9))
    sandbox.gitlab.inject(status=503, path="repository/branches", times=None)
    results = _run(ctx, range(9, 10))
    assert results[0].action != "failed"
    ledger = bounds.load_ledger(ctx.storage, "dev-uaenorth")
    assert ledger.proposals == () and ledger.retry_at is not None and ledger.last["outcome"] == "deferred"
    assert _mrs_after_clearing(ctx, sandbox) is None

    _run(ctx, range(10, 11))  # 4 minutes later: past the retry wait
    assert _mrs(ctx) is not None


def _mrs_after_clearing(ctx, sandbox):
    sandbox.gitlab.clear_faults()
    return _mrs(ctx)


def test_the_kill_switch_proposes_nothing_and_a_dry_run_only_audits(ctx, sandbox):
    _run(ctx, range(0, 10), switches=dataclasses.replace(ON, enabled=False))
    assert _mrs(ctx) is None and bounds.load_ledger(ctx.storage, "dev-uaenorth").proposals == ()
    assert ctx.state.audit_trail("gpuscaling/dev-uaenorth/bounds", since=ctx.started) == []

    _run(ctx, range(10, 11), switches=dataclasses.replace(ON, dry_run=True))
    assert _mrs(ctx) is None and BRANCH not in sandbox.gitlab.branches
    records = ctx.state.audit_trail("gpuscaling/dev-uaenorth/bounds", since=ctx.started)
    assert [(r.action, r.outcome) for r in records] == [("propose_bounds", "planned")]
    # Switched to real runs, the dry run's proposal does not count: it is made for real.
    _run(ctx, range(11, 12))
    assert _mrs(ctx) is not None
