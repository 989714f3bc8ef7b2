"""Discrete-event replay of an LLM request trace against a GPU pool controller.

A trace is the Azure LLM inference trace format (CSV: ``TIMESTAMP, ContextTokens, GeneratedTokens``).
Requests queue FIFO and start when a *ready* node has a free slot; a node serves ``slots_per_node``
requests at once (``requests_per_gpu x gpus_per_node`` in platform.yaml: 8 for the H100 pool). A node
asked for serves after ``time_to_ready_seconds`` (default 480 s, optional seeded jitter) and is billed
from the moment it is asked for. Scale-down never kills a request: the least busy ready nodes are
cordoned (no new work), and each is removed, and stops being billed, when its last request ends.
Provisioning nodes cannot be cancelled (AKS cannot either).

Controllers are called at their own interval with what production would see (queued, in flight,
ready, provisioning, a completions counter) and return the pool's target size:

- ``PolicyController``: the real ``policy.decide`` with its state carried tick to tick, as the timer
  function carries it in its table (including a JSON round trip, so nothing unserialisable survives).
- ``KedaController``: KEDA's azure-queue scaler plus HPA (desired pods = ceil((queued + in flight) /
  per-pod target), polled every 30 s, immediate scale-up, 300 s scale-down stabilization keeping the
  highest recommendation, zero after 300 s idle) over the cluster-autoscaler (scans every 10 s, adds a
  node for pods Pending 30 s, removes a node unneeded for 10 min and not within 10 min of a scale-up).
  One vLLM pod per node. Nodes the CA has not yet removed keep serving: this favours the baseline.
- ``static``: the fewest nodes whose p95 wait meets the SLO over the whole scenario, found by binary
  search on a fast FIFO multi-server replay (an oracle no operator has).

Service time per request (seconds) = context tokens / prefill rate + generated tokens / decode rate.
Defaults (``ServiceModel``) are for a 70B-class model (Llama-2-70B, FP8) under vLLM on one H100 with
about 8 sequences batched: prefill about 2,500 tokens/s for one request's prompt and decode about
20 tokens/s per sequence (about 160 tokens/s per GPU), in line with vLLM's published serving
benchmarks and the Splitwise paper's H100 measurements (ISCA 2024, the same source as the traces).
They are order-of-magnitude figures: pass your own measured rates with ``--prefill-tps/--decode-tps``.
With them the conversation trace's busiest minute keeps about 8-10 nodes busy at 8 slots per node.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import heapq
import json
import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from shared.services.scaling.policy import Observation, PolicyState, ScalingParameters, decide, fewest_meeting

DAY_SECONDS = 86400.0


@dataclass(frozen=True)
class ServiceModel:
    #: tokens/s one request's prompt is processed at (prefill)
    prefill_tokens_per_second: float = 2500.0
    #: tokens/s one sequence generates at while batched with others (decode)
    decode_tokens_per_second: float = 20.0

    def seconds(self, context_tokens: int, generated_tokens: int) -> float:
        return context_tokens / self.prefill_tokens_per_second + generated_tokens / self.decode_tokens_per_second


@dataclass(frozen=True)
class Trace:
    name: str
    arrivals: tuple[float, ...]  # seconds from the trace's start, sorted
    context_tokens: tuple[int, ...]
    generated_tokens: tuple[int, ...]
    duration: float  # seconds the trace covers (billing horizon)

    def __len__(self) -> int:
        return len(self.arrivals)


def _parse_time(text: str) -> float:
    text = text.strip()
    if "." in text:  # the traces carry 7 fractional digits; Python reads at most 6
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def load_trace(path: str | Path) -> Trace:
    """Read a trace CSV (TIMESTAMP, ContextTokens, GeneratedTokens); times become seconds from the first."""
    rows: list[tuple[float, int, int]] = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append((_parse_time(row["TIMESTAMP"]), int(row["ContextTokens"]), int(row["GeneratedTokens"])))
    if not rows:
        raise ValueError(f"{path}: no requests")
    rows.sort()
    start = rows[0][0]
    arrivals = tuple(r[0] - start for r in rows)
    return Trace(Path(path).stem, arrivals, tuple(r[1] for r in rows), tuple(r[2] for r in rows),
                 duration=_span(arrivals))


def make_trace(name: str, requests: Sequence[tuple[float, int, int]], duration: float | None = None) -> Trace:
    """A trace from (arrival seconds, context tokens, generated tokens) rows (tests, generated scenarios)."""
    rows = sorted(requests)
    arrivals = tuple(float(r[0]) for r in rows)
    return Trace(name, arrivals, tuple(int(r[1]) for r in rows), tuple(int(r[2]) for r in rows),
                 duration=duration if duration is not None else _span(arrivals))


def _span(arrivals: Sequence[float]) -> float:
    """Whole minutes covering the arrivals (a one-hour trace bills one hour)."""
    return max(60.0, math.ceil((arrivals[-1] + 1e-9) / 60.0) * 60.0) if arrivals else 60.0


def diurnal_keep_probability(t: float, trough: float = 0.1, trough_hour: float = 4.0) -> float:
    """Share of the busy hour's demand present at ``t`` seconds after midnight.

    A cosine day: ``trough`` (10%) at ``trough_hour`` (04:00), the full hour's demand twelve hours
    later (16:00): the shape of interactive traffic in one region (low at night, high in the afternoon).
    """
    phase = 2 * math.pi * (t - trough_hour * 3600.0) / DAY_SECONDS
    return trough + (1.0 - trough) * (1.0 - math.cos(phase)) / 2.0


def build_day(trace: Trace, *, seed: int = 0, trough: float = 0.1) -> Trace:
    """24 h from one hour: the hour repeated back to back, each request kept with the diurnal probability."""
    rng = random.Random(seed)
    period = trace.duration
    rows: list[tuple[float, int, int]] = []
    copies = math.ceil(DAY_SECONDS / period)
    for k in range(copies):
        offset = k * period
        for a, c, g in zip(trace.arrivals, trace.context_tokens, trace.generated_tokens, strict=True):
            t = offset + a
            if t < DAY_SECONDS and rng.random() < diurnal_keep_probability(t, trough):
                rows.append((t, c, g))
    return make_trace(f"{trace.name}-day", rows, duration=DAY_SECONDS)


# -- synthetic traces: other shapes of demand than the two published hours ------------------------

SHAPES = ("ramp", "onoff", "flat")


def synthetic_trace(shape: str, *, seed: int = 0, duration: float = 3600.0) -> Trace:
    """A seeded trace of one shape, to check the policy on demand other than the two published hours.

    - ``ramp``: Poisson arrivals whose rate climbs from 15% to 100% of 5.5 req/s over the first 20
      minutes, then holds (a service being switched on; about 7-8 nodes busy at the plateau).
    - ``onoff``: bursts of 8 req/s lasting 90 s on average (exponential) separated by 5 minutes on
      average of 0.3 req/s, with short code-completion-like requests (a batch client, a CI job).
    - ``flat``: Poisson at 5.5 req/s; thinned by ``build_day`` it is a Poisson diurnal day.

    Requests draw their tokens from log-normal distributions (conversation-like: median 1,000 prompt
    and 130 generated tokens, about 11 s of service on average with the default ``ServiceModel``;
    code-like for ``onoff``: 1,500 prompt and 15 generated tokens, about 1.5 s).
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}: expected one of {', '.join(SHAPES)}")
    rng = random.Random(f"{shape}/{seed}")
    peak = 5.5
    context, generated = (1500, 15) if shape == "onoff" else (1000, 130)

    def tokens() -> tuple[int, int]:
        return (max(1, min(16000, round(rng.lognormvariate(math.log(context), 1.0)))),
                max(1, min(4000, round(rng.lognormvariate(math.log(generated), 1.0)))))

    def rate_at(t: float) -> float:
        if shape == "ramp":
            return peak * (0.15 + 0.85 * min(1.0, t / 1200.0))
        return peak

    rows: list[tuple[float, int, int]] = []
    if shape == "onoff":
        t, on = 0.0, False
        while t < duration:
            length = rng.expovariate(1 / 90.0) if on else rng.expovariate(1 / 300.0)
            rate, end = (8.0 if on else 0.3), min(duration, t + length)
            t += rng.expovariate(rate)
            while t < end:
                rows.append((t, *tokens()))
                t += rng.expovariate(rate)
            t, on = end, not on
    else:  # a non-homogeneous Poisson process by thinning a homogeneous one at the peak rate
        t = rng.expovariate(peak)
        while t < duration:
            if rng.random() < rate_at(t) / peak:
                rows.append((t, *tokens()))
            t += rng.expovariate(peak)
    return make_trace(f"synthetic-{shape}-{seed}", rows, duration=duration)


def window(trace: Trace, start_hour: float = 0.0, hours: float | None = None) -> Trace:
    """The requests of ``trace`` from ``start_hour`` for ``hours`` (None: to the end), times from the window's
    start: a week-long trace (the 2024 Azure traces) benchmarked an hour or a day at a time."""
    begin = start_hour * 3600.0
    end = math.inf if hours is None else begin + hours * 3600.0
    if begin == 0.0 and hours is None:
        return trace
    lo, hi = bisect.bisect_left(trace.arrivals, begin), bisect.bisect_left(trace.arrivals, end)
    if lo >= hi:
        raise ValueError(f"{trace.name}: no request between hour {start_hour:g} and "
                         f"{'the end' if hours is None else f'hour {start_hour + hours:g}'}")
    rows = [(trace.arrivals[i] - begin, trace.context_tokens[i], trace.generated_tokens[i]) for i in range(lo, hi)]
    duration = None if hours is None else hours * 3600.0
    return make_trace(f"{trace.name}@{start_hour:g}h", rows, duration=duration)


#: reshapings of a published trace, to check the policy on demand shaped like it but not it
VARIANTS = ("reversed", "shifted", "half", "double")


def variant_trace(trace: Trace, variant: str, *, seed: int = 0) -> Trace:
    """``trace`` reshaped, same requests (tokens) and duration, seeded:

    - ``reversed``: time runs backwards (a ramp up becomes a ramp down, a burst's tail its head);
    - ``shifted``: the second half first (what was the busy start comes after a warmed-up pool);
    - ``half``: each request kept with probability 0.5 (a smaller service);
    - ``double``: each request twice, the copy within 1 s of it (a larger one, with the same bursts).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: expected one of {', '.join(VARIANTS)}")
    rng = random.Random(f"{variant}/{seed}")
    rows = list(zip(trace.arrivals, trace.context_tokens, trace.generated_tokens, strict=True))
    end = trace.duration
    if variant == "reversed":
        rows = [(max(0.0, end - a), c, g) for a, c, g in rows]
    elif variant == "shifted":
        rows = [((a + end / 2) % end, c, g) for a, c, g in rows]
    elif variant == "half":
        rows = [r for r in rows if rng.random() < 0.5]
    else:
        rows = rows + [(min(end, max(0.0, a + rng.uniform(-1.0, 1.0))), c, g) for a, c, g in rows]
    return make_trace(f"{trace.name}-{variant}", rows, duration=end)


@dataclass(frozen=True)
class SimConfig:
    slots_per_node: int = 8  # requests one node serves at once
    time_to_ready_seconds: float = 480.0  # asked for -> serving
    ready_jitter_seconds: float = 0.0  # +/- uniform, seeded
    seed: int = 0
    slo_seconds: float = 30.0  # queue wait the SLO allows (p95)
    initial_nodes: int = 0  # ready at t=0
    service: ServiceModel = field(default_factory=ServiceModel)
    #: USD per node-hour of the pool's VM size (shared.services.cost_prices, the one price source);
    #: None leaves the cost out of the metrics.
    node_hour_price: float | None = None


@dataclass(frozen=True)
class PoolView:
    """What a controller may see at a tick: what production gathers."""

    now: float
    queued: int
    in_flight: int
    ready: int
    provisioning: int
    completed_total: int
    service_seconds_total: float


class Controller(Protocol):
    name: str
    interval: float

    def tick(self, view: PoolView) -> int: ...

    def target(self) -> int | None: ...


class PolicyController:
    """The production policy, its state carried between ticks exactly as the timer carries it (JSON)."""

    name = "policy"

    def __init__(self, params: ScalingParameters, *, epoch: float = 1.7e9) -> None:
        self.params = params
        self.interval = params.interval_seconds
        self.epoch = epoch  # the policy sees wall-clock-like times, as in production
        self._stored: dict[str, Any] | None = None
        self._target: int | None = None
        self.decisions: list[tuple[float, str]] = []

    def tick(self, view: PoolView) -> int:
        now = self.epoch + view.now
        obs = Observation(observed_at=now, queued=view.queued, in_flight=view.in_flight, ready=view.ready,
                          provisioning=view.provisioning, completed_total=view.completed_total,
                          service_seconds_total=view.service_seconds_total)
        state = PolicyState.from_json(self._stored)
        decision = decide(self.params, obs, state, now)
        self._stored = json.loads(json.dumps(decision.state.to_json()))
        self._target = decision.target
        if decision.change:
            self.decisions.append((view.now, decision.reason))
        return decision.target

    def target(self) -> int | None:
        return self._target


class KedaController:
    """KEDA (queue scaler + HPA) on top of the cluster-autoscaler, one serving pod per node."""

    name = "keda"

    def __init__(self, *, per_pod_target: int = 8, poll: float = 30.0, stabilization: float = 300.0,
                 cooldown: float = 300.0, activation: int = 0, max_pods: int = 1000,
                 ca_scan: float = 10.0, ca_pending_delay: float = 30.0, ca_unneeded: float = 600.0,
                 ca_after_scale_up: float = 600.0) -> None:
        self.per_pod_target = per_pod_target
        self.poll, self.stabilization, self.cooldown, self.activation = poll, stabilization, cooldown, activation
        self.max_pods = max_pods
        self.interval = ca_scan
        self.ca_pending_delay, self.ca_unneeded, self.ca_after_scale_up = \
            ca_pending_delay, ca_unneeded, ca_after_scale_up
        self.pods = 0
        self._next_poll = 0.0
        self._recs: deque[tuple[float, int]] = deque()
        self._last_active: float | None = None
        self._pending_since: float | None = None
        self._unneeded_since: float | None = None
        self._last_scale_up = -math.inf
        self._target = 0

    def tick(self, view: PoolView) -> int:
        now = view.now
        if now >= self._next_poll:
            self._next_poll = now + self.poll
            work = view.queued + view.in_flight
            if work > 0:
                self._last_active = now
            rec = min(math.ceil(work / self.per_pod_target), self.max_pods)
            if self.pods == 0:
                if work > self.activation:
                    self.pods = max(rec, 1)
            elif work == 0 and self._last_active is not None and now - self._last_active >= self.cooldown:
                self.pods = 0
                self._recs.clear()
            else:
                rec = max(rec, 1)
                self._recs.append((now, rec))
                while self._recs and self._recs[0][0] <= now - self.stabilization:
                    self._recs.popleft()
                self.pods = rec if rec >= self.pods else max(r for _, r in self._recs)
        nodes = view.ready + view.provisioning
        target = nodes
        if self.pods > nodes:
            self._unneeded_since = None
            self._pending_since = now if self._pending_since is None else self._pending_since
            if now - self._pending_since >= self.ca_pending_delay:
                target = self.pods
                self._last_scale_up = now
                self._pending_since = None
        elif self.pods < nodes:
            self._pending_since = None
            self._unneeded_since = now if self._unneeded_since is None else self._unneeded_since
            if now - self._unneeded_since >= self.ca_unneeded and now - self._last_scale_up >= self.ca_after_scale_up:
                target = self.pods
                self._unneeded_since = None
        else:
            self._pending_since = self._unneeded_since = None
        self._target = target
        return target

    def target(self) -> int | None:
        return self._target


class _Node:
    __slots__ = ("asked_at", "busy", "gone_at", "id", "ready_at", "state")

    def __init__(self, node_id: int, asked_at: float, ready_at: float) -> None:
        self.id = node_id
        self.state = "provisioning"  # -> ready -> cordoned -> gone
        self.busy = 0
        self.asked_at = asked_at
        self.ready_at = ready_at
        self.gone_at: float | None = None


@dataclass
class Result:
    policy: str
    waits: list[float]  # per request, in arrival order
    node_seconds: float
    lower_bound_node_seconds: float
    scale_operations: int
    peak_nodes: int
    duration: float
    slo_seconds: float
    #: (t, arrivals since last sample, queued, target, provisioning, ready) per controller tick
    timeline: list[tuple[float, int, int, int, int, int]] = field(default_factory=list)
    arrivals: tuple[float, ...] = ()

    def percentile(self, q: float) -> float:
        return percentile(sorted(self.waits), q)

    def metrics(self) -> dict[str, Any]:
        ordered = sorted(self.waits)
        within = bisect.bisect_right(ordered, self.slo_seconds) / len(ordered) if ordered else 1.0
        hours = self.node_seconds / 3600.0
        bound = self.lower_bound_node_seconds / 3600.0
        return {
            "policy": self.policy,
            "requests": len(ordered),
            "wait_p50": percentile(ordered, 50), "wait_p95": percentile(ordered, 95),
            "wait_p99": percentile(ordered, 99), "wait_max": ordered[-1] if ordered else 0.0,
            "within_slo": within,
            "node_hours": hours,
            "lower_bound_node_hours": bound,
            "node_hours_over_bound": hours / bound if bound else math.inf,
            "scale_operations": self.scale_operations,
            "peak_nodes": self.peak_nodes,
        }

    def slo_holds_after(self, bucket: float = 60.0) -> float | None:
        """Earliest arrival time from which every later ``bucket`` of arrivals has its p95 within the SLO."""
        buckets: dict[int, list[float]] = {}
        for a, w in zip(self.arrivals, self.waits, strict=True):
            buckets.setdefault(int(a // bucket), []).append(w)
        holds_from: float | None = None
        for index in sorted(buckets, reverse=True):
            if percentile(sorted(buckets[index]), 95) > self.slo_seconds:
                break
            holds_from = index * bucket
        return holds_from


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def service_times(trace: Trace, model: ServiceModel) -> list[float]:
    return [model.seconds(c, g) for c, g in zip(trace.context_tokens, trace.generated_tokens, strict=True)]


def lower_bound_node_seconds(trace: Trace, config: SimConfig) -> float:
    """No policy uses fewer node-seconds than the work: sum of service times / requests a node serves at once."""
    return sum(service_times(trace, config.service)) / config.slots_per_node


def simulate(trace: Trace, controller: Controller, config: SimConfig = SimConfig()) -> Result:
    """Replay ``trace`` against ``controller``; every request is served (the replay runs past the trace's end)."""
    rng = random.Random(config.seed)
    slots = config.slots_per_node
    arrivals = trace.arrivals
    services = service_times(trace, config.service)
    n = len(arrivals)
    waits = [0.0] * n
    queue: deque[int] = deque()
    completions: list[tuple[float, int, int]] = []  # (time, node id, request)
    coming: list[tuple[float, int]] = []  # (ready time, node id)
    nodes: dict[int, _Node] = {}
    ready: list[_Node] = []  # serving nodes, oldest first (work packs onto them; the newest drain first)
    next_id = 0
    for _ in range(config.initial_nodes):
        node = _Node(next_id, 0.0, 0.0)
        node.state = "ready"
        nodes[next_id] = node
        ready.append(node)
        next_id += 1
    free = len(ready) * slots
    in_flight = 0
    completed = 0
    served = 0.0
    provisioning = 0
    scale_ops = 0
    peak = len(nodes)
    timeline: list[tuple[float, int, int, int, int, int]] = []
    arrived_since = 0
    i = 0
    tick_at = 0.0
    inf = math.inf
    retired: list[_Node] = []

    def start_work(now: float) -> None:
        nonlocal free, in_flight
        while queue and free > 0:
            for node in ready:
                if node.busy < slots:
                    break
            req = queue.popleft()
            node.busy += 1
            free -= 1
            in_flight += 1
            waits[req] = now - arrivals[req]
            heapq.heappush(completions, (now + services[req], node.id, req))

    def retire(node: _Node, now: float) -> None:
        node.state = "gone"
        node.gone_at = now

    while True:
        t_arr = arrivals[i] if i < n else inf
        t_done = completions[0][0] if completions else inf
        t_ready = coming[0][0] if coming else inf
        if i >= n and not queue and not completions and tick_at > trace.duration:
            break
        now = min(t_arr, t_done, t_ready, tick_at)
        if t_done == now:
            _, node_id, req = heapq.heappop(completions)
            node = nodes[node_id]
            node.busy -= 1
            in_flight -= 1
            completed += 1
            served += services[req]
            if node.state == "ready":
                free += 1
            elif node.state == "cordoned" and node.busy == 0:
                retire(node, now)
            start_work(now)
        elif t_ready == now:
            _, node_id = heapq.heappop(coming)
            node = nodes[node_id]
            provisioning -= 1
            if node.state == "provisioning":
                node.state = "ready"
                ready.append(node)
                free += slots
                start_work(now)
        elif t_arr == now:
            queue.append(i)
            i += 1
            arrived_since += 1
            start_work(now)
        else:
            view = PoolView(now, len(queue), in_flight, len(ready), provisioning, completed, served)
            target = max(0, controller.tick(view))
            current = len(ready) + provisioning
            if target > current:
                scale_ops += 1
                for _ in range(target - current):
                    jitter = rng.uniform(-1, 1) * config.ready_jitter_seconds if config.ready_jitter_seconds else 0
                    node = _Node(next_id, now, now + max(0.0, config.time_to_ready_seconds + jitter))
                    nodes[next_id] = node
                    heapq.heappush(coming, (node.ready_at, next_id))
                    next_id += 1
                    provisioning += 1
            elif target < current and ready:
                scale_ops += 1
                excess = min(current - target, len(ready))
                # The least busy nodes, the newest first among equals: cordon, and remove once empty.
                victims = sorted(ready, key=lambda nd: (nd.busy, -nd.id))[:excess]
                for node in victims:
                    ready.remove(node)
                    free -= slots - node.busy
                    node.state = "cordoned"
                    if node.busy == 0:
                        retire(node, now)
            alive = sum(1 for nd in nodes.values() if nd.state != "gone")
            peak = max(peak, alive)
            timeline.append((now, arrived_since, len(queue), target, provisioning, len(ready)))
            arrived_since = 0
            tick_at = now + controller.interval
            # Forget retired nodes now and then so that the tick's count stays cheap.
            if len(nodes) > 4 * max(alive, 8):
                for key in [k for k, nd in nodes.items() if nd.state == "gone"]:
                    retired.append(nodes.pop(key))
    horizon = trace.duration
    node_seconds = 0.0
    for node in list(nodes.values()) + retired:
        end = node.gone_at if node.gone_at is not None else horizon
        node_seconds += max(0.0, min(end, horizon) - min(node.asked_at, horizon))
    return Result(controller.name, waits, node_seconds, sum(services) / slots, scale_ops, peak,
                  trace.duration, config.slo_seconds, timeline, arrivals)


def fifo_waits(trace: Trace, nodes: int, config: SimConfig, services: Sequence[float] | None = None,
               *, ready_at: float = 0.0) -> list[float]:
    """Waits with a fixed pool of ``nodes`` nodes serving from ``ready_at`` (default: the start): a FIFO
    multi-server queue."""
    services = services if services is not None else service_times(trace, config.service)
    slots = nodes * config.slots_per_node
    if slots <= 0:
        return [math.inf] * len(trace)
    free_at = [ready_at] * slots
    waits = []
    for a, s in zip(trace.arrivals, services, strict=True):
        earliest = free_at[0]
        start = a if earliest <= a else earliest
        heapq.heapreplace(free_at, start + s)
        waits.append(start - a)
    return waits


def static_size(trace: Trace, config: SimConfig, *, limit: int = 1000) -> int:
    """The fewest nodes whose p95 wait meets the SLO over the whole trace (binary search: waits fall with nodes)."""
    services = service_times(trace, config.service)

    def meets(n: int) -> bool:
        return percentile(sorted(fifo_waits(trace, n, config, services)), 95) <= config.slo_seconds

    low = max(1, math.ceil(sum(services) / config.slots_per_node / trace.duration))
    high = low
    while not meets(high):
        high *= 2
        if high > limit:
            raise ValueError(f"no pool of at most {limit} nodes meets the SLO")
    return fewest_meeting(meets, low, high)


def simulate_static(trace: Trace, nodes: int, config: SimConfig) -> Result:
    services = service_times(trace, config.service)
    waits = fifo_waits(trace, nodes, config, services)
    timeline = [(0.0, 0, 0, nodes, 0, nodes), (trace.duration, 0, 0, nodes, 0, nodes)]
    return Result("static", waits, nodes * trace.duration, sum(services) / config.slots_per_node, 0, nodes,
                  trace.duration, config.slo_seconds, timeline, trace.arrivals)


# -- scenarios -----------------------------------------------------------------------------------

SCENARIOS = ("steady", "bursty", "cold", "day")
POLICIES = ("policy", "keda", "static")


@dataclass(frozen=True)
class Scenario:
    name: str
    trace: Trace
    start_at_static: bool  # dynamic policies start with static's size ready (else from zero)


def scenario(name: str, trace: Trace, *, seed: int = 0) -> Scenario:
    """steady/bursty: the trace, starting at static's size; cold: from zero; day: 24 h built from the hour,
    starting at static's size too (a running service at midnight, not a cold start: that is ``cold``)."""
    if name in ("steady", "bursty"):
        return Scenario(name, trace, True)
    if name == "cold":
        return Scenario(name, trace, False)
    if name == "day":
        return Scenario(name, build_day(trace, seed=seed), True)
    raise ValueError(f"unknown scenario {name!r}: expected one of {', '.join(SCENARIOS)}")


def run_scenario(sc: Scenario, *, params: ScalingParameters | None = None, config: SimConfig = SimConfig(),
                 policies: Sequence[str] = POLICIES) -> dict[str, Any]:
    """Run the policies on one scenario; returns metrics per policy plus the scenario's own figures."""
    static_nodes = static_size(sc.trace, config)
    start = replace(config, initial_nodes=static_nodes if sc.start_at_static else 0)
    params = params or default_parameters(config)
    results: dict[str, Result] = {}
    for name in policies:
        if name == "static":
            results[name] = simulate_static(sc.trace, static_nodes, config)
        elif name == "policy":
            results[name] = simulate(sc.trace, PolicyController(params), start)
        elif name == "keda":
            results[name] = simulate(sc.trace, KedaController(per_pod_target=config.slots_per_node,
                                                              max_pods=params.max_count), start)
        else:
            raise ValueError(f"unknown policy {name!r}: expected one of {', '.join(POLICIES)}")
    out: dict[str, Any] = {"scenario": sc.name, "trace": sc.trace.name, "requests": len(sc.trace),
                           "hours": sc.trace.duration / 3600.0, "static_nodes": static_nodes, "policies": {}}
    for name, result in results.items():
        m = result.metrics()
        m["cost"] = m["node_hours"] * config.node_hour_price if config.node_hour_price is not None else None
        if sc.name == "cold":
            m["slo_holds_after_s"] = result.slo_holds_after()
            # "Peak nodes / nodes finally needed": what the demand needs (static's size, the oracle), not
            # the size the policy itself settles at (that would reward settling oversized).
            m["overshoot"] = result.peak_nodes / static_nodes
            m["settled_nodes"] = result.timeline[-1][3] if result.timeline else 0
        out["policies"][name] = m
    out["results"] = results
    return out


def default_parameters(config: SimConfig, **overrides: Any) -> ScalingParameters:
    return ScalingParameters(min_count=0, max_count=64, slots_per_node=config.slots_per_node,
                             time_to_ready_seconds=config.time_to_ready_seconds).with_overrides(overrides)


def plot(runs: dict[str, Any], path: str | Path) -> None:
    """Arrivals, queue depth, target, provisioning and ready nodes per policy, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results: dict[str, Result] = runs["results"]
    fig, axes = plt.subplots(len(results), 1, figsize=(12, 3.2 * len(results)), sharex=True, squeeze=False)
    for ax, (name, result) in zip(axes[:, 0], results.items(), strict=True):
        _plot_one(ax, name, result)
    axes[-1, 0].set_xlabel("minutes")
    fig.suptitle(f"{runs['scenario']} ({runs['trace']}): static needs {runs['static_nodes']} nodes")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_one(ax: Any, name: str, result: Result) -> None:
    minute: dict[int, int] = {}
    for a in result.arrivals:
        minute[int(a // 60)] = minute.get(int(a // 60), 0) + 1
    xs = sorted(minute)
    ax2 = ax.twinx()
    ax2.bar(xs, [minute[x] for x in xs], width=1.0, color="0.85", label="arrivals/min")
    ax2.set_ylabel("arrivals/min, queued")
    t = [row[0] / 60 for row in result.timeline]
    ax2.plot(t, [row[2] for row in result.timeline], color="tab:red", lw=0.8, label="queued")
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.step(t, [row[3] for row in result.timeline], where="post", color="tab:blue", label="target")
    ax.step(t, [row[4] for row in result.timeline], where="post", color="tab:orange", label="provisioning")
    ax.step(t, [row[5] for row in result.timeline], where="post", color="tab:green", label="ready")
    m = result.metrics()
    ax.set_title(f"{name}: p95 wait {m['wait_p95']:.1f}s, {m['node_hours']:.1f} node-h "
                 f"({m['node_hours_over_bound']:.2f}x bound), peak {m['peak_nodes']}")
    ax.set_ylabel("nodes")
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)


def table(runs: Sequence[dict[str, Any]]) -> str:
    """One text table over scenarios and policies."""
    head = (f"{'scenario':<8} {'policy':<7} {'p50':>6} {'p95':>6} {'p99':>7} {'max':>7} {'in SLO':>7} "
            f"{'node-h':>7} {'cost $':>8} {'/bound':>6} {'ops':>5} {'peak':>4}  notes")
    lines = [head, "-" * len(head)]
    for run in runs:
        for name, m in run["policies"].items():
            notes = f"static={run['static_nodes']}" if name == "static" else ""
            if run["scenario"] == "cold" and name != "static":
                holds = m.get("slo_holds_after_s")
                notes = (f"SLO holds after {holds / 60:.1f} min" if holds is not None else "SLO never holds") \
                    + f", overshoot {m['overshoot']:.2f}"
            lines.append(
                f"{run['scenario']:<8} {name:<7} {m['wait_p50']:6.1f} {m['wait_p95']:6.1f} {m['wait_p99']:7.1f} "
                f"{m['wait_max']:7.1f} {m['within_slo'] * 100:6.1f}% {m['node_hours']:7.1f} "
                f"{_money(m.get('cost')):>8} "
                f"{m['node_hours_over_bound']:6.2f} {m['scale_operations']:5d} {m['peak_nodes']:4d}  {notes}")
    return "\n".join(lines)


def _money(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def metrics_json(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in run.items() if k != "results"} for run in runs]


Callback = Callable[[str], None]
