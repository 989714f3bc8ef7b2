"""vLLM's own Prometheus metrics, read from one serving pod: what the GPU scaling tick measures in flight with.

A strict parser of the Prometheus text exposition format (version 0.0.4,
https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format), pure: text in, figures out.
Only what the tick uses is kept, each summed over every sample of the name whatever its labels (vLLM labels
them ``model_name`` and ``engine``, and the success counter also ``finished_reason``: stop, length, abort...).
The names are the ones vLLM's V1 engine exports (``vllm/v1/metrics/loggers.py``; the pinned release is in
gitops/versions.yaml):

- ``vllm:num_requests_running`` (gauge): requests in the engine's running batch, on the GPU now;
- ``vllm:num_requests_waiting`` (gauge): requests accepted by the server, waiting for a place in the batch;
- ``vllm:request_success_total`` (counter, one sample per ``finished_reason``): requests finished;
- ``vllm:e2e_request_latency_seconds_sum`` (the histogram's sum): seconds those requests took, end to end.

A text that is not the format, or lacks the running gauge (not a vLLM server, or the wrong port), or carries a
value the sums cannot use (NaN, infinite, negative) raises ``MetricsError``: the caller treats that pod as
unreadable, never as "zero requests".
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
SUCCESS = "vllm:request_success_total"
E2E_SUM = "vllm:e2e_request_latency_seconds_sum"
WANTED = (RUNNING, WAITING, SUCCESS, E2E_SUM)

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_SAMPLE = re.compile(rf"^(?P<name>{_NAME})\s*(?:\{{(?P<labels>.*)\}})?\s+(?P<value>\S+)(?:\s+(?P<ts>-?\d+))?\s*$")
_LABEL = re.compile(r'\s*(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*(?:,|$)')
_TYPES = ("counter", "gauge", "histogram", "summary", "untyped")


class MetricsError(ValueError):
    """The text cannot be used: its first problem, with the line number where there is one."""


@dataclass(frozen=True)
class ServingMetrics:
    """One pod's figures (the samples of each name summed); a counter the pod does not export is None."""

    running: float
    waiting: float
    success_total: float | None
    e2e_seconds_sum: float | None


def parse(text: str) -> ServingMetrics:
    """The wanted figures of one pod's ``/metrics`` answer; ``MetricsError`` if the text cannot be trusted."""
    sums: dict[str, float] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            _check_comment(line.lstrip(), number)
            continue
        name, value = _sample(line, number)
        if name in WANTED:
            if math.isnan(value) or math.isinf(value) or value < 0:
                raise MetricsError(f"line {number}: {name} is {value}: not a count of requests or seconds")
            sums[name] = sums.get(name, 0.0) + value
    if RUNNING not in sums:
        raise MetricsError(f"no {RUNNING} sample: not a vLLM server's metrics (wrong port?)")
    return ServingMetrics(running=sums[RUNNING], waiting=sums.get(WAITING, 0.0),
                          success_total=sums.get(SUCCESS), e2e_seconds_sum=sums.get(E2E_SUM))


def _check_comment(line: str, number: int) -> None:
    """``# HELP name text`` and ``# TYPE name type`` must be well formed; any other comment is free text."""
    parts = line[1:].split(None, 3)
    if not parts or parts[0] not in ("HELP", "TYPE"):
        return
    if len(parts) < 2 or not re.fullmatch(_NAME, parts[1]):
        raise MetricsError(f"line {number}: malformed {parts[0]} line: {line[:120]!r}")
    if parts[0] == "TYPE" and (len(parts) != 3 or parts[2] not in _TYPES):
        raise MetricsError(f"line {number}: malformed TYPE line: {line[:120]!r}")


def _sample(line: str, number: int) -> tuple[str, float]:
    match = _SAMPLE.match(line)
    if match is None:
        raise MetricsError(f"line {number}: not a sample: {line[:120]!r}")
    labels = match.group("labels")
    if labels is not None:
        _check_labels(labels, number)
    raw = match.group("value")
    try:
        if "_" in raw:  # Python's float() takes digit separators; the format (Go's ParseFloat) does not
            raise ValueError(raw)
        value = float(raw)  # NaN, +Inf, -Inf, exponents: as Go's ParseFloat spells them
    except ValueError:
        raise MetricsError(f"line {number}: {match.group('name')}: value {raw[:40]!r} is not a number") from None
    return match.group("name"), value


def _check_labels(text: str, number: int) -> None:
    pos, seen = 0, set()
    while pos < len(text):
        if not text[pos:].strip():
            return
        label = _LABEL.match(text, pos)
        if label is None or label.end() == pos:
            raise MetricsError(f"line {number}: malformed labels: {{{text[:120]}}}")
        if label.group("key") in seen:
            raise MetricsError(f"line {number}: label {label.group('key')} repeated")
        seen.add(label.group("key"))
        pos = label.end()
