"""GPU pool bounds in git: when the policy has wanted more than a pool's declared ``max_count`` for a
sustained window, propose raising ``gpu_pools[].max_count`` in the environment's ``platform.yaml``
through ``gitops_change`` (topic ``gpu-pool-bounds``: one merge request per environment, updated, never
duplicated; never marked for automatic merging in prd-uaenorth).

Why a merge request and not a bigger pool: ``max_count`` is quota and budget, a human's decision that
lives in git (Terraform reads the same file). The scaling tick only notices that the decision keeps
hitting it and says so, with the numbers, where the decision is made.

Gather, decide, act:

- ``track(episode, signal, wanted, now)`` (pure, every tick, under the pool's lease): the *episode* of
  ticks whose decision was capped at ``max_count`` (``signal``: the policy wanted more than the pool's
  declared maximum and the target is that maximum; reason codes ``ScaleUp``, ``ScaleUpCapped``,
  ``WakeFromZero`` or ``Bounds``). Stale or missing inputs and overrides say nothing (``UNKNOWN``);
  a pause shorter than ``gap_seconds`` does not end an episode. Carried in the pool's row of the table
  ``gpuscaling`` (column ``bounds``), so it costs no extra I/O.
- ``plan(pools, ledger, now)`` (pure, after every pool was ticked): which pools are due. A pool is due
  once its episode has lasted ``sustained_seconds`` and nothing at least as high was proposed for it
  (or the last proposal is older than ``refresh_seconds``, which also rebases the merge request). The
  proposal covers every pool with an outstanding proposal, since the one branch per topic holds one
  commit; a proposal is dropped once the deployed ``platform.yaml`` declares another maximum (merged,
  or changed by hand: a still capped pool is proposed again with fresh numbers).
- ``propose_due(ctx, ...)`` acts, only when ``plan`` says so (a few GitLab calls per proposal, not per
  tick): ``gitops_change.propose`` with one attempt (no in-process retry), after every pool's scaling
  is done and outside the pools' leases. A temporary GitLab failure is logged and retried on a later
  tick (after its ``Retry-After``, at least ``retry_seconds``); a permanent one is logged with the code
  ``GpuBoundsProposalFailed`` and retried after ``permanent_retry_seconds``. Nothing here raises into
  the tick. The ledger of proposals is one row per environment (``~bounds``) in the same table.

The kill switch (``GPU_SCALING_ENABLED=false``) proposes nothing; a dry run (``GPU_SCALING_DRY_RUN``)
audits the proposal as ``planned`` and remembers it as a dry run only (a later real run proposes it).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.errors import ConflictError, PermanentError, PlatformError, TemporaryError
from shared.retry import NO_RETRY
from shared.services.scaling.policy import BOUNDS, SCALE_UP, SCALE_UP_CAPPED, WAKE

log = logging.getLogger("platform_core.gpu_scaling")

TOPIC = "gpu-pool-bounds"
ACTOR = "gpu-scaling"
STATE_TABLE = "gpuscaling"   # the scaling tick's table; pool rows are keyed by pool name
LEDGER_ROW = "~bounds"       # AKS pool names are lowercase letters and digits: never this
ALERT_FAILED = "GpuBoundsProposalFailed"

# Signals of one tick's decision.
CAPPED = "capped"     # the policy wanted more than max_count and the decision is max_count
WITHIN = "within"     # the decision is what the policy wanted (or the pool is still climbing to it)
UNKNOWN = "unknown"   # stale or missing inputs, a manual override: says nothing either way

#: Reason codes under which a decision can be capped at max_count (policy.py's ``out`` keeps the reason
#: when it clamps a scale-up, and says ``Bounds`` when the clamp leaves the pool where it is).
CAPPABLE = frozenset({SCALE_UP, SCALE_UP_CAPPED, WAKE, BOUNDS})

# Reason codes of a plan.
NOT_SUSTAINED = "NotSustained"        # no pool has been capped for the sustained window
ALREADY_PROPOSED = "AlreadyProposed"  # every due pool has an open proposal at least this high
RETRY_LATER = "RetryLater"            # the last attempt failed; waiting before the next
QUOTA_FIRST = "QuotaFirst"            # capped, but the pool's quota is exhausted: a higher max would not help
PROPOSE = "ProposeRaise"              # open or update the merge request


@dataclass(frozen=True)
class BoundsParameters:
    #: seconds the decision must have been capped at max_count before a raise is proposed
    sustained_seconds: float = 1800.0
    #: seconds without a capped tick (uncapped ticks seen) that end an episode
    gap_seconds: float = 300.0
    #: the proposed max_count is at most this multiple of the declared one (a review, not a blank cheque)
    max_raise_factor: float = 2.0
    #: seconds after which a proposal that still stands is made again (rebases the MR, refreshes numbers)
    refresh_seconds: float = 86400.0
    #: seconds to wait after a temporary GitLab failure without Retry-After
    retry_seconds: float = 60.0
    #: seconds to wait after a permanent failure (authentication, configuration)
    permanent_retry_seconds: float = 3600.0


DEFAULTS = BoundsParameters()


# -- per pool: the episode -------------------------------------------------------------------------


@dataclass(frozen=True)
class Episode:
    """Ticks capped at max_count, carried from tick to tick in the pool's row."""

    since: float | None = None        # first capped tick of this episode
    last_capped: float | None = None  # latest capped tick
    peak_wanted: int = 0              # highest need the policy stated during the episode
    wanted: int = 0                   # the latest capped tick's need
    max_count: int = 0                # the declared maximum the episode was measured against

    def sustained_for(self, now: float) -> float:
        return 0.0 if self.since is None else now - self.since

    def quiet_for(self, now: float) -> float:
        """Seconds since the last capped tick."""
        return 0.0 if self.last_capped is None else now - self.last_capped

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Episode:
        if not data:
            return cls()
        return cls(**{k: data[k] for k in ("since", "last_capped", "peak_wanted", "wanted", "max_count")
                      if k in data})


def signal(reason: str, target: int, wanted: float | None, max_count: int) -> str:
    """What one decision says about the pool's maximum (pure)."""
    if wanted is None:
        return UNKNOWN  # no figures: stale or missing inputs, or an override
    if reason in CAPPABLE and wanted > max_count and target >= max_count:
        return CAPPED
    return WITHIN


def track(episode: Episode, sig: str, wanted: float | None, max_count: int, now: float,
          params: BoundsParameters = DEFAULTS) -> Episode:
    """The episode after one tick (pure)."""
    if episode.since is not None and episode.max_count != max_count:
        episode = Episode()  # git declares another maximum: measure against it from scratch
    if sig == UNKNOWN:
        return episode
    if sig == WITHIN:
        if episode.since is not None and episode.quiet_for(now) > params.gap_seconds:
            return Episode()
        return episode
    need = math.ceil(wanted or 0)
    if episode.since is None or episode.quiet_for(now) > params.gap_seconds:
        return Episode(now, now, need, need, max_count)
    return Episode(episode.since, now, max(episode.peak_wanted, need), need, max_count)


def track_decision(raw: Mapping[str, Any] | None, decision: Any, max_count: int, now: float,
                   params: BoundsParameters = DEFAULTS) -> dict[str, Any]:
    """The tick's hook: the carried episode (JSON) after ``decision`` (a ``policy.Decision``)."""
    wanted = (decision.figures or {}).get("wanted")
    sig = signal(decision.reason, decision.target, wanted, max_count)
    return track(Episode.from_json(raw), sig, wanted, max_count, now, params).to_json()


# -- per environment: the ledger and the plan ------------------------------------------------------


@dataclass(frozen=True)
class Proposal:
    pool: str
    declared: int       # max_count in platform.yaml when proposed
    proposed: int       # the max_count proposed
    wanted: int         # the latest need when proposed
    peak: int           # the highest need of the episode
    since: float        # when the episode started
    at: float           # when proposed
    dry_run: bool = False


@dataclass(frozen=True)
class Ledger:
    proposals: tuple[Proposal, ...] = ()
    retry_at: float | None = None
    last: Mapping[str, Any] | None = None
    etag: str | None = None


@dataclass(frozen=True)
class PoolBounds:
    """What the plan needs of one pool this tick."""

    name: str
    declared: int
    episode: Episode
    quota_exhausted: bool = False


@dataclass(frozen=True)
class BoundsPlan:
    reason: str
    message: str
    propose: bool
    proposals: tuple[Proposal, ...] = ()   # the whole change: every outstanding proposal, the new ones included
    due: tuple[str, ...] = ()              # pools proposed (anew) this time
    kept: tuple[Proposal, ...] = ()        # the ledger's proposals still standing (what to keep if nothing acts)
    notes: tuple[str, ...] = field(default=())


def proposed_max(declared: int, peak: int, params: BoundsParameters = DEFAULTS) -> int:
    """The maximum to propose: the episode's peak need, at most ``max_raise_factor`` x the declared one."""
    ceiling = max(declared + 1, math.ceil(declared * params.max_raise_factor))
    return max(declared + 1, min(peak, ceiling))


def plan(pools: Sequence[PoolBounds], ledger: Ledger, now: float, *, dry_run: bool = False,
         params: BoundsParameters = DEFAULTS) -> BoundsPlan:
    """Decide whether to open or update the bounds merge request (pure)."""
    declared = {p.name: p.declared for p in pools}
    # A proposal stands while the deployed file still declares the maximum it was made against.
    kept = tuple(p for p in ledger.proposals if declared.get(p.pool, p.declared) == p.declared)
    standing = {p.pool: p for p in kept}
    due: list[Proposal] = []
    notes: list[str] = []
    quota_blocked = proposed_before = 0
    for pool in pools:
        ep = pool.episode
        if ep.since is None or ep.sustained_for(now) < params.sustained_seconds:
            continue
        if ep.quiet_for(now) > params.gap_seconds:
            continue
        if pool.quota_exhausted:
            quota_blocked += 1
            notes.append(f"{pool.name}: capped at {pool.declared} since {_clock(ep.since)} but its quota is "
                         "exhausted: raise the quota first")
            continue
        value = proposed_max(pool.declared, ep.peak_wanted, params)
        old = standing.get(pool.name)
        if (old is not None and old.proposed >= value and now - old.at < params.refresh_seconds
                and (dry_run or not old.dry_run)):
            proposed_before += 1
            notes.append(f"{pool.name}: max_count {old.declared} -> {old.proposed} already proposed at "
                         f"{_clock(old.at)}")
            continue
        due.append(Proposal(pool.name, pool.declared, max(value, old.proposed if old else 0), ep.wanted,
                            ep.peak_wanted, ep.since, now, dry_run))
    if not due:
        reason = QUOTA_FIRST if quota_blocked else (ALREADY_PROPOSED if proposed_before else NOT_SUSTAINED)
        return BoundsPlan(reason, "; ".join(notes) or "no pool capped at max_count for the sustained window",
                          False, kept=kept, notes=tuple(notes))
    if ledger.retry_at is not None and now < ledger.retry_at:
        return BoundsPlan(RETRY_LATER, f"proposal due for {', '.join(p.pool for p in due)}; the last attempt "
                                       f"failed, next try after {_clock(ledger.retry_at)}", False,
                          kept=kept, notes=tuple(notes))
    names = {p.pool for p in due}
    proposals = tuple(sorted((*due, *(p for p in kept if p.pool not in names)), key=lambda p: p.pool))
    message = "; ".join(f"{p.pool}: max_count {p.declared} -> {p.proposed} (wanted {p.wanted}, peak {p.peak}, "
                        f"capped since {_clock(p.since)})" for p in due)
    return BoundsPlan(PROPOSE, message, True, proposals, tuple(sorted(names)), kept, tuple(notes))


# -- the change ------------------------------------------------------------------------------------


def change_request(env: str, proposals: Sequence[Proposal], params: BoundsParameters = DEFAULTS) -> Any:
    """The ``gitops_change`` request raising ``gpu_pools[].max_count`` for ``proposals``."""
    from shared.services import gitops_change as gc

    path = f"infra/envs/{env}/platform.yaml"
    minutes = params.sustained_seconds / 60
    rows = tuple((p.pool, p.declared, p.proposed, p.wanted, p.peak, _clock(p.since),
                  f"{(p.at - p.since) / 60:.0f} min") for p in proposals)
    pools = ", ".join(p.pool for p in proposals)
    return gc.ChangeRequest(
        env=env, topic=TOPIC, title=f"gpu({env}): raise max_count of {pools}",
        summary=(f"The GPU scaling policy in **{env}** has wanted more nodes than `gpu_pools[].max_count` allows "
                 f"for at least {minutes:.0f} minutes, so requests wait longer than the SLO. This raises each "
                 "pool's maximum to the highest need seen while it was capped (at most "
                 f"{params.max_raise_factor:g}x the declared maximum). `max_count` is quota and budget: check the "
                 "region's GPU quota (the VM family's cores) before merging. Close this merge request to keep "
                 "the current bounds."),
        changes=(gc.FileChange(path, lambda text: raise_max_counts(text, proposals)),),
        columns=("pool", "max_count (git)", "proposed", "wanted", "peak wanted", "capped since", "for"),
        rows=tuple(tuple(str(c) for c in row) for row in rows), labels=("gpu-scaling",), destructive=False)


def raise_max_counts(text: str | None, proposals: Sequence[Proposal]) -> str | None:
    """``platform.yaml`` with each proposed ``max_count`` (comment-preserving; never lowers a value)."""
    if text is None:
        return None
    import yaml

    from shared.services import drift as d

    pools = {str(p.get("name")): p for p in (yaml.safe_load(text) or {}).get("gpu_pools") or ()}
    edits = []
    for p in proposals:
        current = pools.get(p.pool)
        if current is None:
            continue  # the pool is gone from git: nothing to raise
        if int(current.get("max_count") or 0) < p.proposed:
            edits.append(d.YamlEdit(("gpu_pools", f"name={p.pool}", "max_count"), p.proposed))
    return d.apply_edits(text, edits)


# -- act -------------------------------------------------------------------------------------------


def load_ledger(storage: Any, env: str) -> Ledger:
    row = storage.get(STATE_TABLE, env, LEDGER_ROW)
    if row is None:
        return Ledger()
    proposals = tuple(Proposal(**p) for p in json.loads(row.get("proposals") or "[]"))
    last = json.loads(row["last"]) if row.get("last") else None
    retry_at = row.get("retry_at")
    return Ledger(proposals, float(retry_at) if retry_at not in (None, "") else None, last, row.get("_etag"))


def save_ledger(storage: Any, env: str, ledger: Ledger) -> None:
    entity = {"PartitionKey": env, "RowKey": LEDGER_ROW,
              "proposals": json.dumps([vars(p) for p in ledger.proposals], sort_keys=True),
              "retry_at": "" if ledger.retry_at is None else repr(ledger.retry_at),
              "last": json.dumps(ledger.last, default=str) if ledger.last else ""}
    try:
        if ledger.etag:
            storage.replace(STATE_TABLE, entity, ledger.etag)
        else:
            storage.insert(STATE_TABLE, entity)
    except ConflictError:
        # Another run wrote it in between (the CLI's dry-run tick and the timer): theirs stands.
        log.info("gpu bounds ledger of %s written concurrently; keeping the other write", env)


def pools_from(results: Sequence[Any]) -> list[PoolBounds]:
    """The tick's results (``TickResult.inputs["bounds"]``) as the plan's input."""
    out = []
    for r in results:
        info = (r.inputs or {}).get("bounds")
        if info:
            out.append(PoolBounds(r.pool, int(info["declared"]), Episode.from_json(info["episode"]),
                                  bool(info.get("quota_exhausted"))))
    return out


def propose_due(ctx: Any, results: Sequence[Any], *, now: dt.datetime, dry_run: bool,
                params: BoundsParameters = DEFAULTS) -> BoundsPlan | None:
    """After a tick: open or update the bounds merge request if a pool is due. Never raises."""
    pools = pools_from(results)
    t = now.timestamp()
    # Nothing sustained anywhere: not even the ledger is read (the common case costs nothing).
    if not any(p.episode.since is not None and p.episode.sustained_for(t) >= params.sustained_seconds
               for p in pools):
        return None
    env = ctx.platform.name
    try:
        ledger = load_ledger(ctx.storage, env)
        decided = plan(pools, ledger, t, dry_run=dry_run, params=params)
        if not decided.propose:
            if decided.reason in (QUOTA_FIRST, RETRY_LATER):
                log.info("gpu pool bounds: %s: %s", decided.reason, decided.message,
                         extra={"reason": decided.reason})
            return decided
        return _act(ctx, env, decided, ledger, t, dry_run, params)
    except PlatformError as exc:
        log.warning("gpu pool bounds: %s: %s (next tick)", exc.code, exc, extra={"error_code": exc.code})
    except Exception:  # our own bug must not stop the scaling that already happened
        # The code in the message: the log-code alert matches the message text (infra alerts.tf).
        log.exception("%s: gpu pool bounds proposal crashed", ALERT_FAILED, extra={"error_code": ALERT_FAILED})
    return None


def _act(ctx: Any, env: str, decided: BoundsPlan, ledger: Ledger, t: float, dry_run: bool,
         params: BoundsParameters) -> BoundsPlan:
    from shared.services import gitops_change as gc

    request = change_request(env, decided.proposals, params)
    target = f"gpuscaling/{env}/bounds"
    inputs = {"proposals": [vars(p) for p in decided.proposals], "due": list(decided.due)}
    try:
        outcome = gc.propose(ctx, request, dry_run=dry_run, actor=ACTOR, reason=decided.message, policy=NO_RETRY)
    except (TemporaryError, ConflictError) as exc:
        # (A conflict is a race with another writer of the branch: the next try re-reads it.)
        wait = max(float(getattr(exc, "retry_after", None) or 0), params.retry_seconds)
        log.warning("gpu pool bounds: GitLab %s: %s; proposing again after %.0fs", exc.code, exc, wait,
                    extra={"error_code": exc.code, "reason": PROPOSE})
        ctx.state.audit(actor=ACTOR, action="propose_bounds", target=target, reason=PROPOSE, outcome="deferred",
                        inputs=inputs, message=f"{exc.code}: {exc}")
        save_ledger(ctx.storage, env, replace(ledger, proposals=decided.kept, retry_at=t + wait,
                                              last={"at": t, "outcome": "deferred", "code": exc.code}))
        return decided
    except PermanentError as exc:
        log.error("%s: %s", ALERT_FAILED, exc, extra={"error_code": ALERT_FAILED, "cause": exc.code,
                                                       "remediation": exc.remediation})
        ctx.state.audit(actor=ACTOR, action="propose_bounds", target=target, reason=PROPOSE, outcome="failed",
                        inputs=inputs, message=f"{exc.code}: {exc}")
        save_ledger(ctx.storage, env, replace(ledger, proposals=decided.kept,
                                              retry_at=t + params.permanent_retry_seconds,
                                              last={"at": t, "outcome": "failed", "code": exc.code}))
        return decided
    mr = outcome.merge_request
    last = {"at": t, "outcome": "planned" if dry_run else "succeeded", "plan": outcome.plan.reason,
            "branch": outcome.plan.branch, "merge_request": mr.web_url if mr else None}
    if outcome.plan.reason == gc.HUMAN_ON_BRANCH:
        log.warning("gpu pool bounds: %s", outcome.plan.message, extra={"reason": gc.HUMAN_ON_BRANCH})
    ctx.state.audit(actor=ACTOR, action="propose_bounds", target=target, reason=PROPOSE,
                    outcome="planned" if dry_run else "succeeded", inputs={**inputs, "plan": outcome.plan.reason},
                    message=f"{decided.message} -> {outcome.plan.reason}" + (f" ({mr.web_url})" if mr else ""))
    log.info("gpu pool bounds: %s -> %s %s", decided.message, outcome.plan.reason, mr.web_url if mr else "",
             extra={"reason": PROPOSE, "plan": outcome.plan.reason})
    save_ledger(ctx.storage, env, replace(ledger, proposals=decided.proposals, retry_at=None, last=last))
    return decided


def _clock(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
