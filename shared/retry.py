"""Retry with bounded exponential backoff, full jitter and ``Retry-After``.

Only ``TemporaryError`` is retried; everything else propagates at once, and so does
``OutcomeUnknownError``: the request may have been applied, and sending it again could apply it twice
(two certificates, two commits). Its caller reconciles instead. Time and randomness are
injected so that tests run instantly and deterministically.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from shared.errors import OutcomeUnknownError, TemporaryError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    #: Total attempts including the first; 1 means no retry.
    attempts: int = 4
    #: Backoff before the second attempt, in seconds; doubles each time.
    base_delay: float = 0.5
    #: Cap on one backoff, in seconds, so a long outage does not stretch one invocation forever.
    max_delay: float = 30.0
    #: A ``Retry-After`` longer than this (seconds) is not waited out in-process: the error is raised
    #: so the caller can reschedule (queue visibility timeout, next timer tick).
    max_retry_after: float = 60.0

    def delay(self, attempt: int, error: TemporaryError, rand: Callable[[], float]) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if error.retry_after is not None:
            return max(0.0, float(error.retry_after))
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return ceiling * rand()  # full jitter: spreads retries of many instances apart


NO_RETRY = RetryPolicy(attempts=1)


def retry(
    operation: Callable[[], T],
    policy: RetryPolicy = RetryPolicy(),
    *,
    sleep: Callable[[float], None] = time.sleep,
    rand: Callable[[], float] = random.random,
    on_retry: Callable[[int, TemporaryError, float], None] | None = None,
) -> T:
    """Call ``operation`` until it succeeds, raises a non-temporary error, or attempts run out."""
    attempt = 1
    while True:
        try:
            return operation()
        except TemporaryError as error:
            if isinstance(error, OutcomeUnknownError) or attempt >= policy.attempts:
                raise
            wait = policy.delay(attempt, error, rand)
            if wait > policy.max_retry_after:
                raise
            if on_retry is not None:
                on_retry(attempt, error, wait)
            sleep(wait)
            attempt += 1
