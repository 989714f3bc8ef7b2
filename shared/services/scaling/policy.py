"""The GPU pool scaling policy: a pure function of (parameters, observation, carried state, now).

Why it is shaped this way:

- A GPU node takes minutes to serve (default 480 s: VM, driver, image pull, model load), so sizing on
  the current queue is always late. The policy sizes the pool for the arrival rate *forecast one
  time-to-ready ahead*: a fast and a slow exponential average of the arrival rate, whose gap measures
  the trend of a ramp; only rising trends are projected (falling demand is left to the stabilization
  window, which is cheap to be wrong about).
- Slots needed follow square-root staffing (Halfin-Whitt): offered load ``a = rate x service time``
  plus ``safety x sqrt(a)``; it gives proportionally more headroom to small pools, where queueing
  hurts most. A backlog adds the slots that would clear it within ``backlog_clear_seconds``.
- Nodes already provisioning count as capacity, so a second tick never adds them twice.
- Scale-down keeps the highest recommendation of the stabilization window (as the HPA does), never
  goes below what the requests in flight occupy, and goes to ``min_count`` (zero) only after
  ``idle_to_zero_seconds`` with nothing queued, in flight or arriving.
- Stale or missing inputs hold the current size: an unreachable queue never scales a pool down.
- A manual override with an expiry wins over everything but ``max_count``.

Arrivals are not observed directly: a Storage queue only has a depth. The policy derives them from the
change of (queued + in flight) plus the requests completed, read from a cumulative counter (vLLM's
``vllm:request_success_total`` summed over the pool's pods); with no counter, completions are
estimated from the requests in flight and the service time (Little's law). The same counter gives the
measured service time (in flight / completion rate), which replaces the prior ``service_seconds``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

# Reason codes: stable strings for logs, audit records and alerts.
HOLD = "Hold"
WAKE = "WakeFromZero"
SCALE_UP = "ScaleUp"
SCALE_UP_CAPPED = "ScaleUpCapped"
SCALE_DOWN = "ScaleDown"
STABILIZING = "Stabilizing"
IN_FLIGHT_FLOOR = "InFlightFloor"
IDLE_TO_ZERO = "IdleToZero"
BOUNDS = "Bounds"
INPUT_STALE = "InputStale"
INPUT_MISSING = "InputMissing"
OVERRIDE = "Override"


@dataclass(frozen=True)
class ScalingParameters:
    """Every knob of the policy, with its unit and default. Per pool overrides: ``gpu_pools[].scaling``."""

    #: nodes; the policy never goes below (``gpu_pools[].min_count``)
    min_count: int = 0
    #: nodes; nor above (``gpu_pools[].max_count``): quota and budget
    max_count: int = 16
    #: requests one node serves at once (``requests_per_gpu x gpus_per_node``)
    slots_per_node: int = 8
    #: seconds between two decisions (the timer's period)
    interval_seconds: float = 15.0
    #: seconds from asking for a node to it serving requests (VM, driver, image pull, model load)
    time_to_ready_seconds: float = 480.0
    #: messages; a pool at zero wakes when the queue holds more than this (KEDA's activationQueueLength)
    activation_queue_length: int = 0
    #: seconds a request holds a slot, before one is measured (replaced by in flight / completion rate)
    service_seconds: float = 10.0
    #: seconds; time constant of the fast arrival-rate average (what "now" means)
    rate_window_seconds: float = 300.0
    #: seconds; time constant of the slow average; fast minus slow measures the trend
    trend_window_seconds: float = 900.0
    #: seconds of queue wait the SLO allows
    slo_wait_seconds: float = 30.0
    #: ratio; the burst replay keeps waits within this share of ``slo_wait_seconds``: a fluid replay of
    #: per-tick counts is optimistic (it spreads a tick's arrivals evenly and serves the average request),
    #: and a pool given back on its word misses the SLO on the next, larger burst
    burst_wait_share: float = 0.5
    #: share of requests that must wait at most ``slo_wait_seconds`` when sizing for recent bursts
    slo_quantile: float = 0.95
    #: seconds of per-tick arrivals replayed to size for bursts (a fluid queue over the recent past)
    burst_window_seconds: float = 600.0
    #: seconds; time constant of the measured service time's average
    service_window_seconds: float = 300.0
    #: ratio; no scale-down while the arrival rate's least-squares line over ``trend_window_seconds``
    #: rose by more than this share of the current rate (a ramp under way: nodes given back now would
    #: be needed again before new ones could be ready)
    rising_share: float = 0.2
    #: ratio; the forecast rate is at most this multiple of the current rate (a ramp, not a spike)
    max_forecast_growth: float = 1.5
    #: square-root staffing factor: slots = a + safety x sqrt(a) for an offered load of a slots
    safety: float = 0.0
    #: ratio; a need at most this share above a whole number of nodes is left to the queue (noise, not demand)
    sizing_tolerance: float = 0.06
    #: ratio; extra slots for the backlog expected one time to ready ahead are at most this share of
    #: the load's slots
    backlog_headroom: float = 0.1
    #: ratio; while no node serves yet (a wake from zero), extra slots for the backlog expected when the
    #: first nodes are ready are at most this share of the load's slots: the whole first wave is asked
    #: for at once instead of in waves one time to ready apart, and stays within 1.2 x the load
    wake_headroom: float = 0.2
    #: seconds after a node asked for now is ready by which the backlog expected then should be gone
    backlog_clear_seconds: float = 600.0
    #: seconds of per-tick arrivals kept to pair a backlog's measured service time with the arrival
    #: rate of one queue wait ago (a longer wait sizes on today's rate)
    lag_history_seconds: float = 1800.0
    #: seconds of history (since the policy first saw the pool) before its first scale-down: a quiet
    #: start says nothing about the bursts the pool's size may be for
    warmup_seconds: float = 1800.0
    #: seconds; scale-down takes the highest recommendation seen over this window
    stabilization_seconds: float = 600.0
    #: seconds with nothing queued, in flight or arriving before going to ``min_count``
    idle_to_zero_seconds: float = 600.0
    #: nodes one decision may add
    max_step_up: int = 8
    #: nodes one decision may remove
    max_step_down: int = 2
    #: seconds; an observation older than this is stale and holds the size
    stale_after_seconds: float = 90.0

    def __post_init__(self) -> None:
        problems = []
        if self.min_count < 0 or self.max_count < self.min_count:
            problems.append(f"need 0 <= min_count <= max_count, got {self.min_count}..{self.max_count}")
        for name in ("slots_per_node", "max_step_up", "max_step_down"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        for name in ("interval_seconds", "service_seconds", "rate_window_seconds", "trend_window_seconds",
                     "service_window_seconds", "backlog_clear_seconds", "stale_after_seconds"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive")
        if self.trend_window_seconds <= self.rate_window_seconds:
            problems.append("trend_window_seconds must exceed rate_window_seconds")
        if self.max_forecast_growth < 1:
            problems.append("max_forecast_growth must be at least 1")
        if problems:
            raise ValueError("; ".join(problems))

    def with_overrides(self, overrides: dict[str, Any] | None) -> ScalingParameters:
        """These parameters with some replaced by name (unknown names are an error)."""
        if not overrides:
            return self
        known = {f.name: f.type for f in fields(self)}
        unknown = sorted(set(overrides) - set(known))
        if unknown:
            raise ValueError(f"unknown scaling parameters: {', '.join(unknown)}")
        typed = {k: (int(v) if known[k] == "int" else float(v)) for k, v in overrides.items()}
        return replace(self, **typed)


@dataclass(frozen=True)
class Observation:
    """What one tick gathered. ``None`` means the input could not be read."""

    observed_at: float  # epoch seconds when gathered
    queued: int | None  # requests waiting (queue depth less those in flight)
    in_flight: int | None  # requests being served
    ready: int  # nodes serving (not cordoned)
    provisioning: int  # nodes asked for and not yet serving (counted: never add twice)
    #: cumulative requests completed (a counter; resets are tolerated); None: estimate
    completed_total: int | None = None
    #: cumulative seconds the completed requests were served for (vLLM's request latency sum); None: use
    #: Little's law on in flight and completions
    service_seconds_total: float | None = None


@dataclass(frozen=True)
class Override:
    count: int
    expires_at: float  # epoch seconds
    by: str = ""

    def active(self, now: float) -> bool:
        return now < self.expires_at


@dataclass(frozen=True)
class PolicyState:
    """What the policy carries from one tick to the next (stored as JSON between timer runs)."""

    at: float | None = None  # when the last observation was taken
    since: float | None = None  # first observation of this history (no scale-down before a full window)
    load: int = 0  # queued + in flight at that time
    completed_total: int | None = None
    service_seconds_total: float | None = None
    rate_fast: float = 0.0  # requests/s
    rate_slow: float = 0.0  # requests/s
    busy: float = 0.0  # average requests in flight
    done_rate: float = 0.0  # average completions/s
    served_rate: float = 0.0  # average service seconds completed per second (with a latency counter)
    last_active: float | None = None  # last time anything was queued, in flight or arriving
    #: (time, nodes) recommendations inside the stabilization window
    recommendations: tuple[tuple[float, int], ...] = ()
    #: (seconds covered, requests arrived) per tick inside the burst window
    arrivals: tuple[tuple[float, float], ...] = ()
    override: Override | None = None
    #: the policy has seen the pool at zero nodes: its size since is the policy's own, so the warmup
    #: that protects a size found on a running pool does not apply
    seen_empty: bool = False
    #: (time, nodes) the policy asked for within the last time to ready: how soon each provisioning
    #: node serves, so that the backlog expected when new nodes are ready counts what those serve first
    asks: tuple[tuple[float, int], ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # shallow: asdict deep-copies
        data["recommendations"] = [list(r) for r in self.recommendations]
        data["arrivals"] = [list(r) for r in self.arrivals]
        data["asks"] = [list(r) for r in self.asks]
        data["override"] = asdict(self.override) if self.override else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> PolicyState:
        if not data:
            return cls()
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["recommendations"] = tuple((float(t), int(n)) for t, n in values.get("recommendations") or ())
        values["arrivals"] = tuple((float(t), float(n)) for t, n in values.get("arrivals") or ())
        values["asks"] = tuple((float(t), int(n)) for t, n in values.get("asks") or ())
        if values.get("override"):
            values["override"] = Override(**values["override"])
        return cls(**values)


@dataclass(frozen=True)
class Decision:
    target: int  # nodes the pool should have (ready + provisioning)
    current: int  # nodes it has (ready + provisioning)
    reason: str
    message: str
    state: PolicyState = field(repr=False)
    #: the figures the decision was made from (audited with it)
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def change(self) -> int:
        return self.target - self.current


def decide(params: ScalingParameters, obs: Observation | None, state: PolicyState, now: float) -> Decision:
    """One decision for one pool. Pure: everything it needs is passed in, including the time."""
    current = (obs.ready + obs.provisioning) if obs is not None else None
    override = state.override if state.override and state.override.active(now) else None
    if override is not None and current is not None:
        target = min(max(override.count, 0), params.max_count)
        capped = " (capped at max_count)" if target != override.count else ""
        return Decision(target, current, OVERRIDE,
                        f"manual override to {target} node(s){capped} until {_clock(override.expires_at)}"
                        f"{' by ' + override.by if override.by else ''}",
                        replace(state, override=override))
    state = replace(state, override=override)  # an expired override is dropped
    if obs is None or obs.queued is None or obs.in_flight is None:
        missing = "pool" if obs is None else ("queue depth" if obs is None or obs.queued is None else "in flight")
        return Decision(current or 0, current or 0, INPUT_MISSING,
                        f"{missing} could not be read: holding the current size", state)
    if now - obs.observed_at > params.stale_after_seconds:
        return Decision(current, current, INPUT_STALE,
                        f"inputs are {now - obs.observed_at:.0f}s old (> {params.stale_after_seconds:.0f}s): "
                        "holding the current size", state)

    state, fig = _update_estimates(params, obs, state)
    slots = params.slots_per_node
    in_flight_floor = math.ceil(obs.in_flight / slots)
    active = obs.queued > 0 or obs.in_flight > 0 or fig["arrived"] > 0
    if active or state.last_active is None:
        state = replace(state, last_active=obs.observed_at if active else (state.last_active or obs.observed_at))
    idle_for = obs.observed_at - (state.last_active or obs.observed_at)

    # What the pool should have once a node asked for now is ready.
    rate_now = max(fig["rate_now"], 0.0)
    rate_ahead = max(rate_now, min(fig["rate_ahead"], rate_now * params.max_forecast_growth))
    service = fig["service_seconds"]
    lagged = fig.get("rate_lagged")
    if lagged is not None and obs.queued > slots:
        # Behind a backlog the measured service time is that of requests which arrived one queue wait
        # ago: pair it with the arrival rate of that time (the work rate then), not with today's rate
        # (a mix shifting to shorter requests would otherwise read as more work, and a cold start
        # would buy nodes for demand that is not there).
        rate_now = rate_ahead = lagged
    load_slots = rate_ahead * service
    staffed = load_slots + params.safety * math.sqrt(load_slots) if load_slots > 0 else 0.0
    # Nodes asked for now serve one time to ready from now: size for the backlog there will be then,
    # not for today's queue. Until then the queue grows by the work arriving beyond what the ready
    # nodes serve, less what the nodes already on their way serve once they are ready (the policy
    # knows when it asked for them: ``asks``). A cold start thus asks for its first wave in the first
    # ticks instead of in waves one time to ready apart (each wave waits 480 s more, and the earliest
    # requests set the p95), and a node on its way is never asked for twice.
    ttr = params.time_to_ready_seconds
    growth = 0.5 * (rate_now + rate_ahead) * service - obs.ready * slots  # slots short until then
    serving_soon = _provisioning_serve(params, state.asks, obs.provisioning, now) * slots
    backlog_work = max(0.0, obs.queued * service + growth * ttr - serving_soon)  # slot-seconds
    backlog = round(backlog_work / service) if service > 0 else 0
    # That backlog is to be gone ``backlog_clear_seconds`` after, with at most ``backlog_headroom``
    # (``wake_headroom`` while nothing serves yet) above the load: a backlog is a one-off, capacity
    # bought for it outlives it (a cold start would otherwise overshoot what the demand needs).
    headroom = params.wake_headroom if obs.ready == 0 else params.backlog_headroom
    staffed += min(backlog_work / params.backlog_clear_seconds, headroom * max(load_slots, slots))
    wanted = math.ceil(staffed / slots / (1.0 + params.sizing_tolerance) - 1e-9)
    if active and wanted == 0:
        wanted = 1
    # Bursts shorter than a node's time to ready are absorbed by the queue, not by new nodes; but the
    # nodes that served recent bursts within the SLO are kept while bursts recur: the fewest nodes
    # whose replay of the recent per-tick arrivals (a fluid queue) meets the SLO is a floor to hold
    # (never a reason to add: nodes asked for now come after the burst).
    burst_need = _burst_need(params, _last(state.arrivals, params.burst_window_seconds), service,
                             limit=max(current, 1))
    keep = max(wanted, min(burst_need, current))
    fig.update(rate_ahead=rate_ahead, staffed_slots=staffed, wanted=wanted, backlog=backlog,
               idle_seconds=idle_for, in_flight_floor=in_flight_floor, burst_need=burst_need)

    window_start = now - params.stabilization_seconds
    recs = (*tuple(r for r in state.recommendations if r[0] > window_start), (now, keep))
    state = replace(state, recommendations=recs)
    highest = max(n for _, n in recs)

    def out(target: int, reason: str, message: str) -> Decision:
        bounded = min(max(target, params.min_count), params.max_count)
        if bounded != target and reason not in (IDLE_TO_ZERO,):
            message += f"; held within bounds {params.min_count}..{params.max_count}"
            reason = BOUNDS if bounded == current else reason
        asks = tuple(a for a in state.asks if a[0] > now - params.time_to_ready_seconds)
        if bounded > current:
            asks = (*asks, (now, bounded - current))
        return Decision(bounded, current, reason, message, replace(state, asks=asks), fig)

    if current == 0:
        state = replace(state, seen_empty=True)
        if obs.queued > params.activation_queue_length:
            target = min(max(wanted, 1), params.max_step_up)
            return out(target, WAKE, f"{obs.queued} queued (> {params.activation_queue_length}): waking to "
                                     f"{target} node(s) for {rate_ahead * 60:.0f} req/min and about {backlog} "
                                     "queued by the time they are ready")
        return out(0, HOLD, "idle at zero")
    if not active and idle_for >= params.idle_to_zero_seconds:
        return out(params.min_count, IDLE_TO_ZERO,
                   f"nothing queued, in flight or arriving for {idle_for:.0f}s: going to {params.min_count}")
    if wanted > current:
        target = min(wanted, current + params.max_step_up)
        reason = SCALE_UP if target == wanted else SCALE_UP_CAPPED
        return out(target, reason,
                   f"{rate_ahead * 60:.0f} req/min expected in {params.time_to_ready_seconds:.0f}s x "
                   f"{service:.1f}s each and {backlog} backlog need {wanted} node(s); "
                   f"{obs.ready} ready + {obs.provisioning} on the way: adding {target - current}")
    history = now - (state.since if state.since is not None else now)
    # A pool found at some size is not given back before ``warmup_seconds`` of history: a quiet start
    # says nothing about the bursts that size was for.
    needed_history = max(params.stabilization_seconds, params.warmup_seconds)
    if highest < current and history < needed_history and not state.seen_empty:
        return out(current, STABILIZING,
                   f"need {wanted} now, but only {history:.0f}s of history (< {needed_history:.0f}s): "
                   f"holding {current}")
    rise = fig.get("fitted_slope", 0.0) * params.trend_window_seconds
    if highest < current and rise > params.rising_share * max(fig.get("fitted_rate", 0.0), 1e-9):
        return out(current, STABILIZING,
                   f"need {highest} over the last {params.stabilization_seconds:.0f}s, but arrivals rose "
                   f"{rise * 60:.0f} req/min over the last {params.trend_window_seconds:.0f}s: holding {current}")
    if highest < current:
        target = max(highest, current - params.max_step_down, in_flight_floor)
        if target < current:
            return out(target, SCALE_DOWN,
                       f"highest need over the last {params.stabilization_seconds:.0f}s is {highest} node(s), "
                       f"{in_flight_floor} busy with requests in flight: removing {current - target}")
        return out(current, IN_FLIGHT_FLOOR, f"{obs.in_flight} requests in flight keep {current} node(s)")
    if wanted < current:
        return out(current, STABILIZING,
                   f"need {wanted} now but {highest} within the last {params.stabilization_seconds:.0f}s: holding "
                   f"{current}")
    return out(current, HOLD, f"{current} node(s) match the need")


def _update_estimates(params: ScalingParameters, obs: Observation, state: PolicyState
                      ) -> tuple[PolicyState, dict[str, float]]:
    """Fold one observation into the carried averages; return the new state and the figures used."""
    assert obs.queued is not None and obs.in_flight is not None
    load = obs.queued + obs.in_flight
    service = _service(params, state)
    if state.at is None or obs.observed_at <= state.at:
        # First sight (or a repeated one): no interval to measure a rate over.
        new = replace(state, at=obs.observed_at, load=load, completed_total=obs.completed_total,
                      service_seconds_total=obs.service_seconds_total,
                      since=state.since if state.since is not None else obs.observed_at)
        return new, {"arrived": float(load if state.at is None else 0), "rate_now": 0.0,
                     "rate_ahead": 0.0, "service_seconds": service, "dt": 0.0}
    dt = obs.observed_at - state.at
    if obs.completed_total is not None and state.completed_total is not None:
        completed = obs.completed_total - state.completed_total
        if completed < 0:  # the counter was reset (pods restarted)
            completed = obs.completed_total
        measured = True
    else:
        completed = min(state.load, obs.in_flight * dt / service) if service > 0 else 0.0
        measured = False
    arrived = max(0.0, load - state.load + completed)
    rate = arrived / dt
    since = state.since if state.since is not None else state.at
    elapsed = obs.observed_at - since
    # Averages started at zero with the bias removed (as Adam does): right from the second tick, and
    # without a phantom ramp from zero to the first rate seen.
    fast = _ewma(state.rate_fast, rate, dt, params.rate_window_seconds)
    slow = _ewma(state.rate_slow, rate, dt, params.trend_window_seconds)
    fast_now = fast / (1.0 - math.exp(-elapsed / params.rate_window_seconds))
    slow_now = slow / (1.0 - math.exp(-elapsed / params.trend_window_seconds))
    busy, done_rate, served_rate = state.busy, state.done_rate, state.served_rate
    if measured:
        # Both averages share one time constant, so their ratio needs no bias correction.
        done_rate = _ewma(done_rate, completed / dt, dt, params.service_window_seconds)
        if obs.service_seconds_total is not None and state.service_seconds_total is not None:
            served = obs.service_seconds_total - state.service_seconds_total
            if served < 0:  # reset with the completions counter
                served = obs.service_seconds_total
            served_rate = _ewma(served_rate, served / dt, dt, params.service_window_seconds)
            if done_rate > 0 and served_rate > 0:
                service = served_rate / done_rate
        else:
            # Little's law: in flight = completion rate x service time (biased high while load rises,
            # since completions lag starts: prefer the latency counter where the pods export it).
            busy = _ewma(busy, obs.in_flight, dt, params.service_window_seconds)
            if done_rate > 0 and busy > 0:
                service = busy / done_rate
    # A ramp of slope k lags an average of time constant tau by k x tau: the gap of the two averages
    # gives k; "now" is the fast average advanced by its own lag.
    slope = (fast_now - slow_now) / (params.trend_window_seconds - params.rate_window_seconds)
    rate_now = fast_now + max(slope, 0.0) * params.rate_window_seconds
    rate_ahead = fast_now + slope * (params.rate_window_seconds + params.time_to_ready_seconds)
    history = (*state.arrivals, (dt, arrived))
    # The averages only settle into a ramp's lag after several time constants: early in a ramp they
    # see too little of it. A least-squares line through the per-tick rates of the trend window sees
    # a ramp as soon as the window holds one; rising lines only (falling demand is the stabilization
    # window's business).
    fitted_now, fitted_slope = _fit_rate(history, params.trend_window_seconds)
    if fitted_slope <= 0:
        # The averages' gap outlives a ramp by the slow one's time constant: project it only while the
        # fitted line still rises significantly.
        rate_ahead = min(rate_ahead, rate_now)
    covered = 0.0
    keep_from = len(history)
    while keep_from > 0 and covered < max(params.burst_window_seconds, params.trend_window_seconds,
                                          params.lag_history_seconds):
        keep_from -= 1
        covered += history[keep_from][0]
    new = replace(state, at=obs.observed_at, since=since, load=load, arrivals=history[keep_from:],
                  completed_total=obs.completed_total,
                  service_seconds_total=obs.service_seconds_total, rate_fast=fast, rate_slow=slow, busy=busy,
                  done_rate=done_rate, served_rate=served_rate)
    lagged = None
    if obs.queued > 0 and done_rate > 0:
        wait = obs.queued / (done_rate if measured else max(obs.in_flight, 1) / service)
        lagged = _rate_between(history[keep_from:], wait, wait + params.rate_window_seconds)
    fig = {"arrived": arrived, "rate_now": rate_now, "rate_ahead": rate_ahead,
           "fitted_rate": fitted_now, "fitted_slope": fitted_slope,
           "service_seconds": service, "dt": dt, "rate_fast": fast_now, "rate_slow": slow_now}
    if lagged is not None:
        fig["rate_lagged"] = lagged
    return new, fig


def _provisioning_serve(params: ScalingParameters, asks: tuple[tuple[float, int], ...], provisioning: int,
                        now: float) -> float:
    """Node-seconds the ``provisioning`` nodes serve within one time to ready from ``now``: the newest
    asks are the nodes still on their way; a node asked for by someone else counts half a time to ready."""
    ttr = params.time_to_ready_seconds
    total, left = 0.0, provisioning
    for at, n in reversed(asks):
        if left <= 0:
            break
        take = min(n, left)
        total += take * min(ttr, max(0.0, now - at))
        left -= take
    return total + max(0, left) * ttr / 2


def _fit_rate(history: tuple[tuple[float, float], ...], window: float) -> tuple[float, float]:
    """(rate at the end, slope) of the least-squares line through per-tick rates of the last ``window`` s,
    each tick weighted by its length; (0, 0) with fewer than three ticks; a slope not significant is 0."""
    points: list[tuple[float, float, float]] = []  # (middle time, rate, weight), time 0 = now
    t = 0.0
    for dt, n in reversed(history):
        if t >= window or dt <= 0:
            break
        points.append((-(t + dt / 2), n / dt, dt))
        t += dt
    if len(points) < 3:
        return 0.0, 0.0
    w = sum(p[2] for p in points)
    mt = sum(p[0] * p[2] for p in points) / w
    mr = sum(p[1] * p[2] for p in points) / w
    var = sum(p[2] * (p[0] - mt) ** 2 for p in points)
    if var <= 0:
        return mr, 0.0
    slope = sum(p[2] * (p[0] - mt) * (p[1] - mr) for p in points) / var
    # A slope within three standard errors of zero is noise (one busy tick at the end of a quiet
    # window is not a ramp).
    residual = sum(p[2] * (p[1] - mr - slope * (p[0] - mt)) ** 2 for p in points) / w
    error = math.sqrt(residual * w / var / max(len(points) - 2, 1))
    return mr - slope * mt, (slope if abs(slope) > 3 * error else 0.0)


def _burst_need(params: ScalingParameters, arrivals: tuple[tuple[float, float], ...], service: float,
                limit: int) -> int:
    """Fewest nodes (up to ``limit``) whose fluid replay of ``arrivals`` keeps waits within the SLO."""
    total = sum(n for _, n in arrivals)
    if total <= 0:
        return 0

    def meets(nodes: int) -> bool:
        capacity = nodes * params.slots_per_node  # slot-seconds per second
        backlog = late = 0.0
        for dt, n in arrivals:
            # Requests arriving in this tick wait for the backlog ahead of them (on average, half of
            # this tick's own work too).
            wait = (backlog + n * service / 2) / capacity
            if wait > params.slo_wait_seconds * params.burst_wait_share:
                late += n
            backlog = max(0.0, backlog + n * service - capacity * dt)
        return late <= (1.0 - params.slo_quantile) * total

    return fewest_meeting(meets, 1, limit) if meets(limit) else limit


def fewest_meeting(meets: Callable[[int], bool], low: int, high: int) -> int:
    """The least ``n`` in ``[low, high]`` with ``meets(n)``, for a predicate that stays true once true
    (more nodes never wait longer) and holds at ``high``: a binary search."""
    while low < high:
        mid = (low + high) // 2
        if meets(mid):
            high = mid
        else:
            low = mid + 1
    return high


def _rate_between(history: tuple[tuple[float, float], ...], newest: float, oldest: float) -> float | None:
    """Average arrival rate between ``oldest`` and ``newest`` seconds ago; None when the history does not
    reach back that far (then the oldest ticks it has, if they cover at least a third of the span)."""
    t = covered = arrived = 0.0
    for dt, n in reversed(history):
        if t >= oldest:
            break
        if t + dt > newest:
            share = min(t + dt, oldest) - max(t, newest)
            covered += share
            arrived += n * share / dt
        t += dt
    if covered < (oldest - newest) / 3:
        return None
    return arrived / covered


def _last(history: tuple[tuple[float, float], ...], window: float) -> tuple[tuple[float, float], ...]:
    """The ticks of ``history`` covering its last ``window`` seconds."""
    covered, start = 0.0, len(history)
    while start > 0 and covered < window:
        start -= 1
        covered += history[start][0]
    return history[start:]


def _service(params: ScalingParameters, state: PolicyState) -> float:
    if state.done_rate > 0 and state.served_rate > 0:
        return state.served_rate / state.done_rate
    if state.done_rate > 0 and state.busy > 0:
        return state.busy / state.done_rate
    return params.service_seconds


def _ewma(previous: float, sample: float, dt: float, tau: float) -> float:
    alpha = 1.0 - math.exp(-dt / tau)
    return previous + (sample - previous) * alpha


def _clock(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
