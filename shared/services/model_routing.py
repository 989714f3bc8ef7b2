"""Where each model's traffic goes first: the inference gateway's proactive fallback (README "AI stack").

The gateway (gitops/apps/base/inference-gateway) already falls back by itself: each model's route lists the
backends of its fallback list (``platform.yaml`` ``models[].fallback``) by priority, and a 429/5xx moves the
request one priority down. That reacts to errors, one request at a time. This module moves a model's traffic
*ahead* of errors: when the primary's queue wait has broken the model's SLO for ``breach_seconds``, or its
GPU pool's quota is exhausted (the GPU-scaling signal: its ``gpuscaling`` row names a ``fallback_to``), the
model's priority-0 backend (the Backend ``<model>-active``) is pointed at the next entry that is fit; once an
earlier entry has been back under ``recover_ratio`` x SLO for ``recover_seconds`` (hysteresis: a longer, lower
bar than the switch away), it is pointed back.

Why a runtime object and not a git change: the switch must happen within minutes and be undone the same way,
at any hour, in every environment including production, where a git change waits for review. The Backend
``<model>-active`` is created by Flux once (``kustomize.toolkit.fluxcd.io/ssa: IfNotPresent``) and from then
on belongs to this function, so a reconcile never reverts a switch, while the fallback lists themselves stay
in git (the route, Flux's as usual). The switch is audited (target ``modelrouting/<env>/<model>``) with its
inputs, and the Backend carries why (annotations), which ``platformctl models status`` shows.

Gather (``gather``): per model, the active Backend from Kubernetes; per pool, its ``gpuscaling`` row from
Storage (the quota signal, and the queue wait estimated from the policy's carried averages: waiting requests
over the completion rate, Little's law; stale after ``STALE_SECONDS``). Decide (``decide``): pure. Act
(``act``): one JSON merge patch of the Backend under ``actuation.mutate`` (leased, audited, dry-run aware).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from shared.errors import ConfigError, PlatformError

log = logging.getLogger("platform_core.model_routing")

ACTOR = "model-routing"
STATE_TABLE = "modelrouting"
NAMESPACE = "model-serving"
BACKENDS = ("gateway.envoyproxy.io/v1alpha1", "backends")
SERVICE_PORT = 8000
#: The pool name of a backend on the cluster's CPU pool (no GPU scaling row: its queue wait is unknown, so a model
#: there never switches proactively; the gateway's error fallback still applies).
CPU = "cpu"
ROUTED_TO = "platform.example.com/routed-to"
ROUTING_REASON = "platform.example.com/routing-reason"
ROUTING_SINCE = "platform.example.com/routing-since"
ROUTING_MESSAGE = "platform.example.com/routing-message"
#: A pool's gpuscaling row older than this says nothing about its queue now (the scaling tick runs every 15 s).
STALE_SECONDS = 120.0

# Reason codes.
PRIMARY = "Primary"                  # on the first entry, nothing wrong
BREACHING = "Breaching"              # the active entry is over the SLO, not yet for breach_seconds
QUOTA_EXHAUSTED = "QuotaExhausted"   # switched away: the active entry's pool has no GPU quota left
QUEUE_WAIT_BREACH = "QueueWaitBreach"  # switched away: queue wait over the SLO for breach_seconds
RECOVERED = "Recovered"              # switched back: an earlier entry is fit again for recover_seconds
HOLDING = "Holding"                  # on a fallback; no earlier entry has recovered yet
NO_FIT_FALLBACK = "NoFitFallback"    # the active entry is unfit and no later one is better: stay
INPUT_MISSING = "InputMissing"       # the active entry's signals are missing or stale: stay
ROUTE_UNKNOWN = "RouteUnknown"       # the active Backend points at no entry of the list: back to the first
SWITCH_REASONS = (QUOTA_EXHAUSTED, QUEUE_WAIT_BREACH, RECOVERED, ROUTE_UNKNOWN)


# -- configuration: platform.yaml models[] ---------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    """One backend of a model's fallback list: a vLLM Service in model-serving on a GPU pool."""

    backend: str
    pool: str
    #: the model name it serves, when not the requested one (a smaller model)
    model: str | None = None

    @property
    def hostname(self) -> str:
        return f"{self.backend}.{NAMESPACE}.svc.cluster.local"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    fallback: tuple[Entry, ...]
    queue_wait_slo_seconds: float = 10.0
    breach_seconds: float = 300.0
    recover_seconds: float = 900.0
    recover_ratio: float = 0.5

    @property
    def active_backend(self) -> str:
        """The Backend the function owns (gitops: apps/base/inference-gateway/active-backends.yaml)."""
        return f"{self.name}-active"


def parse_models(raw: Any, *, pools: Sequence[str], source: str = "platform.yaml") -> tuple[ModelSpec, ...]:
    """``models:`` of a platform file; every problem listed in one ConfigError."""
    problems: list[str] = []
    models = []
    for i, m in enumerate(raw or []):
        where = f"{source}: models[{i}]"
        if not isinstance(m, dict) or not isinstance(m.get("name"), str):
            problems.append(f"{where}: expected a mapping with a name")
            continue
        entries = []
        for j, e in enumerate(m.get("fallback") or []):
            if not isinstance(e, dict) or not isinstance(e.get("backend"), str) or e.get("pool") not in (*pools, CPU):
                problems.append(f"{where}.fallback[{j}]: needs a backend and a pool: one of gpu_pools "
                                f"({', '.join(pools)}) or {CPU}")
                continue
            entries.append(Entry(e["backend"], e["pool"], e.get("model")))
        if not entries:
            problems.append(f"{where}: fallback lists no backend")
        if len({e.backend for e in entries}) != len(entries):
            problems.append(f"{where}: a backend is listed twice")
        numbers = {}
        for key in ("queue_wait_slo_seconds", "breach_seconds", "recover_seconds", "recover_ratio"):
            if key in m:
                value = m[key]
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    problems.append(f"{where}: {key} must be a positive number")
                    continue
                numbers[key] = float(value)
        if numbers.get("recover_ratio", 0.5) > 1:
            problems.append(f"{where}: recover_ratio must be at most 1 (a lower bar than the switch away)")
        models.append(ModelSpec(m["name"], tuple(entries), **numbers))
    if len({m.name for m in models}) != len(models):
        problems.append(f"{source}: models: a name is listed twice")
    if problems:
        raise ConfigError(problems)
    return tuple(models)


def load_models(platform: Any, config_dir: Path | str | None = None) -> tuple[ModelSpec, ...]:
    """The environment's models from its platform file (the one source of the fallback lists)."""
    import yaml

    from shared.platform import DEFAULT_CONFIG_DIR

    path = Path(config_dir or DEFAULT_CONFIG_DIR) / platform.name / "platform.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return parse_models(raw.get("models"), pools=[p.name for p in platform.gpu_pools], source=str(path))


# -- the decision ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolSignal:
    """What one GPU pool says now: its queue wait estimate (None: unknown) and whether its quota ran out."""

    queue_wait_seconds: float | None
    quota_exhausted: bool = False


@dataclass(frozen=True)
class RoutingState:
    """Carried between ticks, per model: since when each backend has been over the SLO / well under it."""

    over_since: Mapping[str, float] = field(default_factory=dict)
    good_since: Mapping[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"over_since": dict(self.over_since), "good_since": dict(self.good_since)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> RoutingState:
        data = data or {}
        return cls({k: float(v) for k, v in (data.get("over_since") or {}).items()},
                   {k: float(v) for k, v in (data.get("good_since") or {}).items()})


@dataclass(frozen=True)
class RoutePlan:
    model: str
    current: str | None  # the backend the active Backend points at now (None: none of the list)
    target: str          # where it should point
    reason: str
    message: str
    state: RoutingState = field(repr=False, default_factory=RoutingState)

    @property
    def switch(self) -> bool:
        """Whether acting on this plan moves traffic (a hold never does, whatever it points at)."""
        return self.current != self.target and self.reason in SWITCH_REASONS


def decide(model: ModelSpec, signals: Mapping[str, PoolSignal], current: str | None, state: RoutingState,
           now: float) -> RoutePlan:
    """Where ``model``'s traffic should go first, given each pool's signal and the carried timers."""
    slo = model.queue_wait_slo_seconds
    over, good = dict(state.over_since), dict(state.good_since)
    for entry in model.fallback:
        sig = signals.get(entry.pool, PoolSignal(None))
        wait = sig.queue_wait_seconds
        if wait is None or wait <= slo:
            over.pop(entry.backend, None)
        else:
            over.setdefault(entry.backend, now)
        # The recovery clock runs only while the pool is usable: a pool without quota is not "recovering".
        if wait is not None and wait <= model.recover_ratio * slo and not sig.quota_exhausted:
            good.setdefault(entry.backend, now)
        else:
            good.pop(entry.backend, None)
    new_state = RoutingState(over, good)
    names = [e.backend for e in model.fallback]

    def signal(entry: Entry) -> PoolSignal:
        return signals.get(entry.pool, PoolSignal(None))

    def unfit(entry: Entry) -> str | None:
        if signal(entry).quota_exhausted:
            return QUOTA_EXHAUSTED
        since = over.get(entry.backend)
        if since is not None and now - since >= model.breach_seconds:
            return QUEUE_WAIT_BREACH
        return None

    def recovered(entry: Entry) -> bool:
        since = good.get(entry.backend)
        return not signal(entry).quota_exhausted and since is not None and now - since >= model.recover_seconds

    def plan(target: str, reason: str, message: str) -> RoutePlan:
        return RoutePlan(model.name, current, target, reason, message, new_state)

    if current not in names:
        first = model.fallback[0]
        return plan(first.backend, ROUTE_UNKNOWN,
                    f"{model.active_backend} points at {current or 'nothing known'}: back to {first.backend}")
    index = names.index(current)
    entry = model.fallback[index]
    for earlier in model.fallback[:index]:
        if recovered(earlier):
            return plan(earlier.backend, RECOVERED,
                        f"{earlier.backend} ({earlier.pool}) has been under {model.recover_ratio:g} x the "
                        f"{slo:g}s queue-wait SLO for {model.recover_seconds:g}s: traffic back from {current}")
    why = unfit(entry)
    if why is not None:
        for later in model.fallback[index + 1:]:
            if unfit(later) is None:
                cause = (f"the {entry.pool} pool's GPU quota is exhausted" if why == QUOTA_EXHAUSTED else
                         f"{current}'s queue wait has been over the {slo:g}s SLO for {model.breach_seconds:g}s "
                         f"({_fmt(signal(entry).queue_wait_seconds)} now)")
                return plan(later.backend, why, f"{cause}: traffic to {later.backend} ({later.pool}"
                                                f"{', model ' + later.model if later.model else ''})")
        return plan(current, NO_FIT_FALLBACK, f"{current} is unfit ({why}) and no later entry is fit: staying")
    wait = signal(entry).queue_wait_seconds
    if wait is None:
        return plan(current, INPUT_MISSING,
                    f"no fresh queue-wait signal for the {entry.pool} pool: staying on {current}")
    if current in over:
        return plan(current, BREACHING, f"{current}'s queue wait {_fmt(wait)} is over the {slo:g}s SLO since "
                                        f"{now - over[current]:.0f}s (switch at {model.breach_seconds:g}s)")
    if index == 0:
        return plan(current, PRIMARY, f"{current}: queue wait {_fmt(wait)} within the {slo:g}s SLO")
    return plan(current, HOLDING, f"on fallback {current}; {names[0]} has not been under "
                                  f"{model.recover_ratio:g} x SLO for {model.recover_seconds:g}s yet")


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return "unbounded" if math.isinf(seconds) else f"{seconds:.1f}s"


# -- gather ----------------------------------------------------------------------------------------------------

def queue_wait_from_scaling_row(row: Mapping[str, Any] | None, now: float) -> PoolSignal:
    """A pool's signal from its ``gpuscaling`` row (shared/services/scaling/tick.py ``save_carried``).

    Quota: ``fallback_to`` is set while the pool's quota is exhausted. Queue wait: the policy carries the
    requests queued and in flight at its last observation (``load``), the average in flight (``busy``) and the
    completion rate (``done_rate``); by Little's law the waiting ones wait about (load - busy) / done_rate.
    A row older than ``STALE_SECONDS`` (or none) gives no wait: the decision holds rather than guess."""
    if not row:
        return PoolSignal(None)
    quota = bool(row.get("fallback_to"))
    try:
        policy = json.loads(row.get("policy") or "{}")
    except ValueError:
        return PoolSignal(None, quota)
    at = policy.get("at")
    if at is None or now - float(at) > STALE_SECONDS:
        return PoolSignal(None, quota)
    waiting = max(0.0, float(policy.get("load") or 0) - float(policy.get("busy") or 0))
    rate = float(policy.get("done_rate") or 0)
    if waiting <= 0.5:
        return PoolSignal(0.0, quota)
    return PoolSignal(waiting / rate if rate > 0 else math.inf, quota)


def backend_target(backend: Mapping[str, Any] | None, model: ModelSpec) -> str | None:
    """The fallback entry the active Backend points at (by its endpoint's hostname), or None."""
    if not backend:
        return None
    endpoints = (backend.get("spec") or {}).get("endpoints") or []
    hostname = ((endpoints[0] if endpoints else {}).get("fqdn") or {}).get("hostname")
    return next((e.backend for e in model.fallback if e.hostname == hostname), None)


@dataclass(frozen=True)
class ModelStatus:
    """One model for ``platformctl models status`` and the audit: where its traffic goes first and why."""

    model: str
    routed_to: str | None
    pool: str | None
    reason: str | None
    since: str | None
    message: str | None
    fallback: tuple[str, ...]
    signals: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "routed_to": self.routed_to, "pool": self.pool, "reason": self.reason,
                "since": self.since, "message": self.message, "fallback": list(self.fallback),
                "signals": dict(self.signals)}


def gather_signals(ctx: Any, models: Sequence[ModelSpec], now: float) -> dict[str, PoolSignal]:
    from shared.services.scaling.tick import STATE_TABLE as SCALING_TABLE

    env = ctx.platform.name
    pools = sorted({e.pool for m in models for e in m.fallback})
    return {p: queue_wait_from_scaling_row(ctx.storage.get(SCALING_TABLE, env, p), now) for p in pools}


def status(ctx: Any, models: Sequence[ModelSpec] | None = None, *, now: dt.datetime) -> list[ModelStatus]:
    models = models if models is not None else load_models(ctx.platform)
    signals = gather_signals(ctx, models, now.timestamp())
    out = []
    for model in models:
        backend = ctx.cluster.get(*BACKENDS, model.active_backend, NAMESPACE)
        annotations = ((backend or {}).get("metadata") or {}).get("annotations") or {}
        target = backend_target(backend, model)
        pool = next((e.pool for e in model.fallback if e.backend == target), None)
        out.append(ModelStatus(
            model.name, target, pool, annotations.get(ROUTING_REASON), annotations.get(ROUTING_SINCE),
            annotations.get(ROUTING_MESSAGE), tuple(e.backend for e in model.fallback),
            {p: {"queue_wait_seconds": s.queue_wait_seconds, "quota_exhausted": s.quota_exhausted}
             for p, s in signals.items() if any(e.pool == p for e in model.fallback)}))
    return out


# -- act -------------------------------------------------------------------------------------------------------

def backend_patch(model: ModelSpec, plan: RoutePlan, now: dt.datetime) -> dict[str, Any]:
    """The JSON merge patch that points the active Backend at ``plan.target`` and says why."""
    entry = next(e for e in model.fallback if e.backend == plan.target)
    return {"metadata": {"annotations": {ROUTED_TO: entry.backend, ROUTING_REASON: plan.reason,
                                         ROUTING_SINCE: now.isoformat(), ROUTING_MESSAGE: plan.message[:500]}},
            "spec": {"endpoints": [{"fqdn": {"hostname": entry.hostname, "port": SERVICE_PORT}}]}}


def _load_state(storage: Any, env: str, model: str) -> tuple[RoutingState, str | None]:
    row = storage.get(STATE_TABLE, env, model)
    if row is None:
        return RoutingState(), None
    return RoutingState.from_json(json.loads(row.get("state") or "{}")), row.get("_etag")


def _save_state(storage: Any, env: str, model: str, state: RoutingState, etag: str | None) -> None:
    """Under the model's tick lease, so the ETag only guards against a writer outside it."""
    entity = {"PartitionKey": env, "RowKey": model, "state": json.dumps(state.to_json(), sort_keys=True)}
    if etag:
        storage.replace(STATE_TABLE, entity, etag)
    else:
        storage.insert(STATE_TABLE, entity)


def tick(ctx: Any, *, now: dt.datetime, models: Sequence[ModelSpec] | None = None,
         dry_run: bool = False) -> list[RoutePlan]:
    """Gather, decide and act for every model; a switch is one audited patch of the model's active Backend."""
    models = models if models is not None else load_models(ctx.platform)
    signals = gather_signals(ctx, models, now.timestamp())
    plans = []
    for model in models:
        try:
            plans.append(_tick_model(ctx, model, signals, now, dry_run=dry_run))
        except PlatformError as exc:  # one model's failure (lease held, API error) does not stop the others
            log.warning("model routing of %s: %s: %s", model.name, exc.code, exc,
                        extra={"model": model.name, "error_code": exc.code})
            plans.append(RoutePlan(model.name, None, model.fallback[0].backend, exc.code, str(exc)))
    return plans


def _tick_model(ctx: Any, model: ModelSpec, signals: Mapping[str, PoolSignal], now: dt.datetime, *,
                dry_run: bool) -> RoutePlan:
    from shared.services.actuation import mutate

    env, t = ctx.platform.name, now.timestamp()
    target = f"modelrouting/{env}/{model.name}"
    with ctx.state.lease(target + "/tick", seconds=60):
        backend = ctx.cluster.get(*BACKENDS, model.active_backend, NAMESPACE)
        current = backend_target(backend, model)
        carried, etag = _load_state(ctx.storage, env, model.name)
        plan = decide(model, signals, current, carried, t)
        inputs = {"current": current, "target": plan.target, "reason": plan.reason,
                  "signals": {p: {"queue_wait_seconds": None if s.queue_wait_seconds is None or
                                  math.isinf(s.queue_wait_seconds) else round(s.queue_wait_seconds, 3),
                                  "quota_exhausted": s.quota_exhausted}
                              for p, s in signals.items() if any(e.pool == p for e in model.fallback)}}
        if plan.switch and backend is None:
            log.warning("model routing: %s has no Backend %s/%s (Flux has not created it yet)", model.name,
                        NAMESPACE, model.active_backend, extra={"model": model.name})
            plan = replace(plan, reason=INPUT_MISSING,
                           message=f"Backend {NAMESPACE}/{model.active_backend} not found")
        elif plan.switch:
            patch = backend_patch(model, plan, now)
            mutate(ctx, actor=ACTOR, action="route", target=target, reason=plan.reason, inputs=inputs,
                   dry_run=dry_run, change=lambda p=patch, m=model: ctx.cluster.patch_merge(
                       *BACKENDS, m.active_backend, p, NAMESPACE))
            log.warning("model %s: traffic %s -> %s (%s): %s", model.name, current, plan.target, plan.reason,
                        plan.message, extra={"model": model.name, "reason": plan.reason})
        if not dry_run:
            _save_state(ctx.storage, env, model.name, plan.state, etag)
    return plan
